/* Notes and sealed spans on the session page (issue 9): markers on each player's timeline,
   placed from their data-start/data-end (CSP forbids inline styles in the markup, so positions
   are set here); a click on a marker or a note's time code plays from the note's second; "Lấy
   thời điểm đang phát" copies the player's current time into the new note's form. */
(function () {
  "use strict";

  function play(player, seconds) {
    if (!player || isNaN(seconds)) { return; }
    player.currentTime = seconds;
    var playing = player.play();
    if (playing && playing.catch) { playing.catch(function () {}); }
  }

  function place(box) {
    var duration = parseFloat(box.dataset.duration || "0");
    var player = document.getElementById(box.dataset.player);
    if (player && player.duration && isFinite(player.duration)) { duration = player.duration; }
    if (!(duration > 0)) { return; }
    var marks = box.querySelectorAll(".tl-note, .tl-seal");
    for (var i = 0; i < marks.length; i++) {
      var start = parseFloat(marks[i].dataset.start), end = parseFloat(marks[i].dataset.end);
      marks[i].style.left = Math.min(100, 100 * start / duration) + "%";
      if (!isNaN(end)) { marks[i].style.width = Math.max(0.4, 100 * (end - start) / duration) + "%"; }
    }
  }

  function wire(box) {
    var player = document.getElementById(box.dataset.player);
    place(box);
    if (player) { player.addEventListener("loadedmetadata", function () { place(box); }); }
    box.addEventListener("click", function (event) {
      var mark = event.target.closest(".tl-note, .note-item .tc");
      if (mark) {
        event.preventDefault();
        var item = mark.classList.contains("tc") ? mark.parentNode : mark;
        play(player, parseFloat(item.dataset.start));
        return;
      }
      if (event.target.classList.contains("note-now") && player) {
        var field = box.querySelector(".note-start");
        if (field) { field.value = (Math.round(player.currentTime * 10) / 10).toString(); field.focus(); }
      }
    });
  }

  var boxes = document.querySelectorAll(".records");
  for (var k = 0; k < boxes.length; k++) { wire(boxes[k]); }
}());
