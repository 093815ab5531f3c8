/* The session page: each transcript follows its player. The segment (and, for machine
   transcripts, the word) being played is marked and kept in view; a click on a word or a time
   code seeks there; ?t=SECONDS (with #rec-ID naming the recording) starts playback there. */
(function () {
  "use strict";

  function lastStartingBefore(items, t) {
    // items are sorted by start; binary search for the last one with start <= t
    var lo = 0, hi = items.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (items[mid].start <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  function collect(nodes) {
    var out = [];
    for (var i = 0; i < nodes.length; i++) {
      out.push({start: parseFloat(nodes[i].dataset.start), end: parseFloat(nodes[i].dataset.end), el: nodes[i]});
    }
    return out;
  }

  function follow(panel) {
    var player = document.getElementById(panel.dataset.player);
    if (!player) { return null; }
    var segments = collect(panel.querySelectorAll(".seg"));
    var words = collect(panel.querySelectorAll(".w"));
    var currentSeg = null, currentWord = null, userScrolledAt = 0;
    var LEAD = 0.5; // a segment is marked from half a second before it starts

    function keepInView(el) {
      if (Date.now() - userScrolledAt < 4000) { return; }
      var top = el.offsetTop - panel.offsetTop, bottom = top + el.offsetHeight;
      if (top < panel.scrollTop || bottom > panel.scrollTop + panel.clientHeight) {
        panel.scrollTop = Math.max(0, top - panel.clientHeight / 3);
      }
    }

    function mark() {
      var t = player.currentTime;
      var i = lastStartingBefore(segments, t + LEAD);
      var seg = i >= 0 ? segments[i].el : null;
      if (seg !== currentSeg) {
        if (currentSeg) { currentSeg.classList.remove("current"); }
        if (seg) { seg.classList.add("current"); keepInView(seg); }
        currentSeg = seg;
        panel.dataset.current = i >= 0 ? String(segments[i].start) : "";
      }
      var j = lastStartingBefore(words, t);
      var word = j >= 0 && t <= words[j].end + 0.3 ? words[j].el : null;
      if (word !== currentWord) {
        if (currentWord) { currentWord.classList.remove("current"); }
        if (word) { word.classList.add("current"); }
        currentWord = word;
      }
    }

    function tick() {
      mark();
      if (!player.paused && !player.ended) { window.requestAnimationFrame(tick); }
    }

    player.addEventListener("timeupdate", mark);
    player.addEventListener("seeked", mark);
    player.addEventListener("play", function () { window.requestAnimationFrame(tick); });
    panel.addEventListener("wheel", function () { userScrolledAt = Date.now(); }, {passive: true});
    panel.addEventListener("touchmove", function () { userScrolledAt = Date.now(); }, {passive: true});

    panel.addEventListener("click", function (event) {
      var target = event.target.closest(".w, .tc, .seg");
      if (!target) { return; }
      event.preventDefault();
      var start = parseFloat((target.classList.contains("tc") ? target.parentNode : target).dataset.start);
      if (isNaN(start)) { return; }
      userScrolledAt = 0;
      player.currentTime = start;
      mark();
      var playing = player.play();
      if (playing && playing.catch) { playing.catch(function () {}); }
    });
    return player;
  }

  function startAt(player, seconds) {
    function seek() {
      player.currentTime = seconds;
      var playing = player.play();
      if (playing && playing.catch) { playing.catch(function () {}); }
    }
    if (player.readyState >= 1) { seek(); } else { player.addEventListener("loadedmetadata", seek, {once: true}); }
  }

  var panels = document.querySelectorAll(".transcript");
  for (var k = 0; k < panels.length; k++) { follow(panels[k]); }

  var page = document.getElementById("session");
  if (!page) { return; }
  var seconds = parseFloat(page.dataset.startAt || "0");
  var section = null;
  if (window.location.hash.indexOf("#rec-") === 0) {
    section = document.getElementById(window.location.hash.slice(1));
  }
  section = section || document.querySelector(".recording");
  var player = section ? section.querySelector(".player") : null;
  if (player && seconds > 0) {
    startAt(player, seconds);
    section.scrollIntoView({block: "start"});
  }
}());
