/* Citations in the browser (web/transcripts.py).
   On the session page: select a passage in a transcript panel, press the button that appears,
   and the server issues a citation of the segments the selection touches; the citation block,
   its code and a link to its check page are shown under the player.
   On a citation's check page: "Phát đoạn trích" plays the passage and pauses at its end. */
(function () {
  "use strict";

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    s = s % 60;
    return (h ? h + ":" + (m < 10 ? "0" : "") : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }

  function selectedSegments(panel) {
    var selection = window.getSelection();
    if (!selection || selection.isCollapsed || !selection.rangeCount) { return []; }
    var range = selection.getRangeAt(0);
    if (!panel.contains(range.commonAncestorContainer) && !range.intersectsNode(panel)) { return []; }
    var out = [], segments = panel.querySelectorAll(".seg");
    for (var i = 0; i < segments.length; i++) {
      if (range.intersectsNode(segments[i])) { out.push(segments[i]); }
    }
    // A selection ending at the very start of the next segment does not take it in.
    if (out.length > 1 && range.endContainer && out[out.length - 1].contains(range.endContainer) &&
        range.endOffset === 0 && range.toString().trim().length > 0) {
      var last = out[out.length - 1], before = document.createRange();
      before.setStart(last, 0);
      before.setEnd(range.endContainer, range.endOffset);
      if (!before.toString().trim()) { out.pop(); }
    }
    return out;
  }

  function text(tag, className, content) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (content !== undefined) { el.textContent = content; }
    return el;
  }

  function panelFor(section, tools) {
    var panel = section.querySelector(".cite-panel");
    if (!panel) {
      panel = text("div", "cite-panel");
      panel.setAttribute("aria-live", "polite");
      tools.parentNode.insertBefore(panel, tools.nextSibling);
    }
    panel.textContent = "";
    return panel;
  }

  function showCitation(panel, data) {
    panel.appendChild(text("h3", "", "Trích dẫn " + data.code));
    var block = text("pre", "cite-block", data.block);
    panel.appendChild(block);
    var actions = text("p", "actions");
    var copy = text("button", "", "Sao chép");
    copy.type = "button";
    copy.addEventListener("click", function () {
      var range = document.createRange();
      range.selectNodeContents(block);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      copy.textContent = done ? "Đã sao chép" : "Đã chọn khối trích dẫn: nhấn Ctrl+C để sao chép";
    });
    actions.appendChild(copy);
    var check = text("a", "check-link", "Kiểm tra trích dẫn");
    check.href = data.check_url;
    actions.appendChild(check);
    var docx = text("a", "", "Tải .docx");
    docx.href = data.docx_url;
    actions.appendChild(docx);
    panel.appendChild(actions);
    panel.scrollIntoView({block: "nearest"});
  }

  function cite(section, tools, segments, button) {
    var body = new FormData();
    body.append("csrf_token", tools.dataset.csrf);
    body.append("recording", tools.dataset.recording);
    body.append("version", tools.dataset.version);
    body.append("start", segments[0].dataset.start);
    body.append("end", segments[segments.length - 1].dataset.end);
    button.disabled = true;
    var panel = panelFor(section, tools);
    panel.appendChild(text("p", "note", "Đang tạo trích dẫn…"));
    fetch(tools.dataset.citeUrl, {method: "POST", body: body, credentials: "same-origin",
                                  headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      })
      .then(function (result) {
        panel.textContent = "";
        if (result.ok) { showCitation(panel, result.data); }
        else { panel.appendChild(text("p", "error", result.data.message || "Không trích dẫn được.")); }
      })
      .catch(function () {
        panel.textContent = "";
        panel.appendChild(text("p", "error", "Không kết nối được với máy chủ; vui lòng thử lại."));
      })
      .then(function () { button.remove(); });
  }

  function sessionPage(section) {
    var tools = section.querySelector(".transcript-tools");
    var transcript = section.querySelector(".transcript");
    if (!tools || !transcript || !tools.dataset.citeUrl) { return; }
    var button = null;

    // A drag that selects text must not also seek the player (player.js listens for clicks).
    transcript.addEventListener("click", function (event) {
      var selection = window.getSelection();
      if (event.target.closest(".cite-button")) { return; }
      if (selection && !selection.isCollapsed && transcript.contains(selection.anchorNode)) {
        event.stopImmediatePropagation();
      }
    }, true);

    function offer() {
      if (button) { button.remove(); button = null; }
      var segments = selectedSegments(transcript);
      if (!segments.length) { return; }
      var start = parseFloat(segments[0].dataset.start);
      var end = parseFloat(segments[segments.length - 1].dataset.end);
      button = text("button", "cite-button", "Trích dẫn đoạn đã chọn (" + clock(start) + "–" + clock(Math.ceil(end)) + ")");
      button.type = "button";
      var last = segments[segments.length - 1];
      button.style.top = (last.offsetTop + last.offsetHeight) + "px";
      button.style.left = "1rem";
      var chosen = segments, pressed = button;
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function (event) {
        event.stopPropagation();
        cite(section, tools, chosen, pressed);
        button = null;
      });
      transcript.appendChild(button);
    }

    transcript.addEventListener("mouseup", function () { window.setTimeout(offer, 0); });
    transcript.addEventListener("keyup", function (event) {
      if (event.shiftKey) { window.setTimeout(offer, 0); }
    });
  }

  function checkPage(player) {
    var start = parseFloat(player.dataset.start), end = parseFloat(player.dataset.end);
    var play = document.getElementById("cite-play");
    player.addEventListener("timeupdate", function () {
      if (player.currentTime >= end && !player.paused) { player.pause(); }
    });
    if (play) {
      play.addEventListener("click", function () {
        function go() {
          player.currentTime = start;
          var playing = player.play();
          if (playing && playing.catch) { playing.catch(function () {}); }
        }
        if (player.readyState >= 1) { go(); } else { player.addEventListener("loadedmetadata", go, {once: true}); player.load(); }
      });
    }
  }

  var sections = document.querySelectorAll(".recording");
  for (var i = 0; i < sections.length; i++) { sessionPage(sections[i]); }
  var citePlayer = document.getElementById("cite-player");
  if (citePlayer) { checkPage(citePlayer); }
}());
