/* The jobs page: poll /api/jobs and redraw both tables while anything is unfinished. */
(function () {
  "use strict";
  var UNFINISHED = {pending: 1, running: 1, waiting: 1, queued: 1};
  var uploadsBody = document.getElementById("upload-rows");
  var jobsBody = document.getElementById("job-rows");
  var highlight = (document.getElementById("uploads") || {dataset: {}}).dataset.highlight || "";
  if (!uploadsBody || !jobsBody) { return; }

  function cell(row, text) {
    var td = document.createElement("td");
    if (text instanceof Node) { td.appendChild(text); } else { td.textContent = text == null ? "" : String(text); }
    row.appendChild(td);
    return td;
  }

  function empty(body, columns, text) {
    var tr = document.createElement("tr");
    tr.className = "empty";
    var td = cell(tr, text);
    td.colSpan = columns;
    body.appendChild(tr);
  }

  function drawUploads(uploads) {
    uploadsBody.textContent = "";
    if (!uploads.length) { return empty(uploadsBody, 5, "Chưa có tệp nào được tải lên gần đây."); }
    uploads.forEach(function (u) {
      var tr = document.createElement("tr");
      tr.dataset.upload = u.id;
      if (u.id === highlight) { tr.className = "highlight"; }
      cell(tr, u.created_at);
      cell(tr, u.user);
      cell(tr, u.names.join(", "));
      cell(tr, u.status_label);
      var result = document.createElement("div");
      u.outcomes.forEach(function (o) {
        var line = document.createElement("div");
        line.className = "outcome " + o.status;
        line.textContent = o.name + ": " + o.status_label + (o.message ? " – " + o.message : "");
        result.appendChild(line);
      });
      if (u.message) { var m = document.createElement("div"); m.textContent = u.message; result.appendChild(m); }
      cell(tr, result);
      uploadsBody.appendChild(tr);
    });
  }

  function drawJobs(jobs) {
    jobsBody.textContent = "";
    if (!jobs.length) { return empty(jobsBody, 7, "Chưa có công việc nào."); }
    jobs.forEach(function (j) {
      var tr = document.createElement("tr");
      tr.dataset.job = j.id;
      cell(tr, j.id);
      cell(tr, j.source_name);
      cell(tr, j.session_id);
      cell(tr, j.stage_label);
      cell(tr, j.status_label);
      var bar = document.createElement("progress");
      bar.max = 1;
      bar.value = j.progress;
      cell(tr, bar);
      cell(tr, j.message);
      jobsBody.appendChild(tr);
    });
  }

  function busy(data) {
    return data.jobs.some(function (j) { return UNFINISHED[j.status]; }) ||
           data.uploads.some(function (u) { return UNFINISHED[u.status]; });
  }

  function poll() {
    fetch("/api/jobs", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        drawUploads(data.uploads);
        drawJobs(data.jobs);
        window.setTimeout(poll, busy(data) ? 1000 : 5000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  poll();
}());
