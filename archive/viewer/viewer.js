/* The offline viewer of a TCD Archive backup. It runs from file:// with no server and no
   network: the data comes from viewer/data.js (window.TCD_DATA), the media from data/.
   Everything from the data is put into the page as text (textContent), never as HTML. */
(function () {
  "use strict";
  var DATA = window.TCD_DATA || { sessions: [] };
  var $ = function (id) { return document.getElementById(id); };
  var player = $("player");
  var current = { session: null, recording: null, segments: [], segEls: [], wordEls: [] };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function clock(t) {
    t = Math.max(0, Math.floor(t || 0));
    var h = Math.floor(t / 3600), m = Math.floor(t % 3600 / 60), s = t % 60;
    return (h ? h + ":" : "") + (h && m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }

  /* Fold case and Vietnamese diacritics (đ included) so "boi thuong" finds "bồi thường". */
  function fold(text) {
    return (text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
  }

  function findSession(id) {
    for (var i = 0; i < DATA.sessions.length; i++) if (DATA.sessions[i].id === id) return DATA.sessions[i];
    return null;
  }

  /* -- the list of sessions ------------------------------------------------------------------ */
  function showList() {
    $("session").hidden = true;
    $("sessions").hidden = false;
    player.pause();
  }

  function renderList() {
    var body = $("session-list");
    body.textContent = "";
    $("session-count").textContent = DATA.sessions.length;
    DATA.sessions.forEach(function (s) {
      var tr = el("tr");
      tr.dataset.session = s.id;
      [s.id, s.held_on, s.title, s.case_code || "", String(s.recordings.length)].forEach(function (v) {
        tr.appendChild(el("td", v));
      });
      tr.addEventListener("click", function () { location.hash = "#s=" + encodeURIComponent(s.id); });
      body.appendChild(tr);
    });
    var disc = DATA.disc;
    $("medium").textContent = disc
      ? "Đĩa " + disc.number + "/" + disc.count + (disc.label ? " — " + disc.label : "") + " · lập lúc " + DATA.generated_at
      : "Bản sao lưu lập lúc " + DATA.generated_at;
  }

  /* -- one session ---------------------------------------------------------------------------- */
  function showSession(s, recId, seek) {
    $("sessions").hidden = true;
    $("results").hidden = true;
    $("session").hidden = false;
    if (current.session !== s) {
      current.session = s;
      current.recording = null;
      $("session-title").textContent = s.id + " — " + s.title;
      var meta = $("session-meta");
      meta.textContent = "";
      [["Ngày", s.held_on], ["Vụ việc", s.case_code], ["Phân loại", s.category], ["Chủ trì", s.chair],
       ["Điểm cầu trung tâm", s.central_point], ["Điểm cầu đại biểu", (s.delegate_points || []).join("; ")],
       ["Người khiếu nại, kiến nghị, phản ánh", (s.complainants || []).join("; ")], ["Ghi chú", s.notes]
      ].forEach(function (pair) {
        if (!pair[1]) return;
        meta.appendChild(el("dt", pair[0]));
        meta.appendChild(el("dd", pair[1]));
      });
      var tabs = $("recording-tabs");
      tabs.textContent = "";
      s.recordings.forEach(function (r, i) {
        var b = el("button", "Bản ghi " + (i + 1) + (r.point ? " — " + r.point : ""));
        b.type = "button";
        b.dataset.recording = r.id;
        b.addEventListener("click", function () {
          location.hash = "#s=" + encodeURIComponent(s.id) + "&r=" + encodeURIComponent(r.id);
        });
        tabs.appendChild(b);
      });
    }
    var rec = null;
    s.recordings.forEach(function (r) { if (r.id === recId) rec = r; });
    rec = rec || s.recordings[0] || null;
    if (rec && current.recording !== rec) loadRecording(rec);
    if (rec && seek !== undefined && !isNaN(seek)) seekTo(seek);
  }

  function loadRecording(rec) {
    current.recording = rec;
    Array.prototype.forEach.call($("recording-tabs").children, function (b) {
      b.setAttribute("aria-selected", String(b.dataset.recording === rec.id));
    });
    var note = $("media-note");
    if (rec.media) {
      player.src = rec.media;
      note.textContent = rec.name + (rec.point ? " · " + rec.point : "") + " · " + clock(rec.duration);
    } else {
      player.removeAttribute("src");
      player.load();
      note.textContent = "Tệp ghi hình của bản ghi này không nằm trên đĩa này (hoặc được chia thành nhiều phần trên các đĩa); xem README.html.";
    }
    var links = $("downloads");
    links.textContent = "";
    Object.keys(rec.files || {}).forEach(function (kind) {
      var a = el("a", { original: "Tệp gốc", access: "Bản xem" }[kind] || kind);
      a.href = rec.files[kind];
      links.appendChild(a);
      links.appendChild(document.createTextNode(" "));
    });
    renderTranscript(rec);
    renderNotes(rec);
  }

  /* Notes handlers left on moments or spans; a click plays from the note's moment. */
  function renderNotes(rec) {
    var list = $("notes");
    list.textContent = "";
    var notes = (rec.notes || []).slice().sort(function (a, b) { return a.start - b.start; });
    $("notes-area").hidden = !notes.length;
    notes.forEach(function (n) {
      var li = el("li", null, "note");
      var time = el("span", clock(n.start) + (n.end != null && n.end > n.start ? "–" + clock(n.end) : ""), "time");
      time.addEventListener("click", function () { seekTo(n.start); });
      li.appendChild(time);
      li.appendChild(el("span", " " + n.text + " "));
      li.appendChild(el("span", "(" + n.author + ", " + String(n.created_at || "").slice(0, 10) + ")", "muted"));
      list.appendChild(li);
    });
  }

  function renderTranscript(rec) {
    var box = $("transcript");
    box.textContent = "";
    current.segments = [];
    current.segEls = [];
    current.wordEls = [];
    var t = rec.transcript;
    if (!t) {
      $("transcript-info").textContent = "";
      box.appendChild(el("p", "Bản ghi này chưa có biên bản lời nói trên đĩa này.", "muted"));
      return;
    }
    $("transcript-info").textContent = "(phiên bản " + t.version + ", " +
      (t.kind === "human" ? "do " + t.author + " hiệu đính" : "máy nhận dạng") + ")";
    t.segments.forEach(function (seg) {
      var p = el("p", null, "seg");
      var time = el("span", clock(seg.start), "time");
      time.addEventListener("click", function () { seekTo(seg.start); });
      p.appendChild(time);
      if (seg.speaker) p.appendChild(el("span", seg.speaker + ":", "speaker"));
      if (seg.words && seg.words.length) {
        seg.words.forEach(function (w, i) {
          var span = el("span", w.w, "word");
          span.dataset.start = w.start;
          span.addEventListener("click", function () { seekTo(w.start); });
          if (i) p.appendChild(document.createTextNode(" "));
          p.appendChild(span);
          current.wordEls.push({ start: w.start, end: w.end, el: span });
        });
      } else {
        /* A corrected transcript may have no word times: each word seeks to its segment. */
        seg.text.split(/\s+/).forEach(function (w, i) {
          var span = el("span", w, "word");
          span.dataset.start = seg.start;
          span.addEventListener("click", function () { seekTo(seg.start); });
          if (i) p.appendChild(document.createTextNode(" "));
          p.appendChild(span);
        });
      }
      box.appendChild(p);
      current.segments.push(seg);
      current.segEls.push(p);
    });
  }

  function seekTo(t) {
    if (!current.recording || !current.recording.media) return;
    var go = function () {
      player.currentTime = t;
      var played = player.play();
      if (played && played.catch) played.catch(function () {});
    };
    if (player.readyState >= 1) go();
    else player.addEventListener("loadedmetadata", go, { once: true });
  }

  player.addEventListener("timeupdate", function () {
    var t = player.currentTime;
    current.segEls.forEach(function (p, i) {
      var seg = current.segments[i];
      var on = t >= seg.start && t < seg.end;
      if (on && !p.classList.contains("active")) p.scrollIntoView({ block: "nearest" });
      p.classList.toggle("active", on);
    });
    current.wordEls.forEach(function (w) { w.el.classList.toggle("active", t >= w.start && t < w.end); });
  });

  /* -- search --------------------------------------------------------------------------------- */
  function search(query) {
    var terms = fold(query).split(/\s+/).filter(Boolean);
    var hits = [];
    if (!terms.length) return hits;
    DATA.sessions.forEach(function (s) {
      var head = fold([s.id, s.title, s.case_code, (s.complainants || []).join(" ")].join(" "));
      s.recordings.forEach(function (r) {
        ((r.transcript && r.transcript.segments) || []).forEach(function (seg) {
          var text = fold(seg.text);
          var all = terms.every(function (term) { return text.indexOf(term) >= 0 || head.indexOf(term) >= 0; });
          var any = terms.some(function (term) { return text.indexOf(term) >= 0; });
          if (all && any) hits.push({ session: s, recording: r, seg: seg });
        });
      });
    });
    return hits;
  }

  /* The segment's text with each matched term in <mark>, built from text nodes. */
  function highlighted(text, terms) {
    var folded = fold(text);
    var marks = [];
    terms.forEach(function (term) {
      var at = folded.indexOf(term);
      while (at >= 0) { marks.push([at, at + term.length]); at = folded.indexOf(term, at + term.length); }
    });
    marks.sort(function (a, b) { return a[0] - b[0]; });
    var frag = document.createDocumentFragment(), pos = 0;
    marks.forEach(function (m) {
      if (m[0] < pos) return;
      frag.appendChild(document.createTextNode(text.slice(pos, m[0])));
      frag.appendChild(el("mark", text.slice(m[0], m[1])));
      pos = m[1];
    });
    frag.appendChild(document.createTextNode(text.slice(pos)));
    return frag;
  }

  $("search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var query = $("q").value;
    var terms = fold(query).split(/\s+/).filter(Boolean);
    var hits = search(query);
    var list = $("result-list");
    list.textContent = "";
    $("result-count").textContent = "(" + hits.length + ")";
    hits.slice(0, 500).forEach(function (h) {
      var li = el("li");
      li.appendChild(el("strong", h.session.id + " · " + h.session.held_on + " · " + clock(h.seg.start) + " "));
      li.appendChild(el("span", h.session.title + " — ", "muted"));
      li.appendChild(highlighted(h.seg.text, terms));
      li.addEventListener("click", function () {
        location.hash = "#s=" + encodeURIComponent(h.session.id) + "&r=" + encodeURIComponent(h.recording.id) +
          "&t=" + h.seg.start;
      });
      list.appendChild(li);
    });
    if (!hits.length) list.appendChild(el("li", "Không tìm thấy đoạn nào có các từ này.", "muted"));
    $("results").hidden = false;
    $("session").hidden = true;
    $("sessions").hidden = false;
  });

  /* -- routing: #s=SESSION&r=RECORDING&t=SECONDS, so a place can be bookmarked ---------------- */
  function route() {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) params[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
    });
    var s = params.s && findSession(params.s);
    if (s) showSession(s, params.r, params.t !== undefined ? parseFloat(params.t) : undefined);
    else showList();
  }

  $("back").addEventListener("click", function (ev) { ev.preventDefault(); location.hash = ""; showList(); });
  window.addEventListener("hashchange", route);
  renderList();
  route();
})();
