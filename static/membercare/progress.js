/* A live progress bar for long work (custom-list imports, evaluation and reprocessing runs).

   <div class="mc-progress" data-status-url="/api/v1/imports/7/" data-unit="rows">…</div>
   (markup: templates/membercare/_progress.html). The status URL answers JSON with at least
   {status: pending|running|done|failed, total, processed}; polling stops at done or failed,
   and the fields named in the element's JSON script are shown as the final summary. */
(function () {
  "use strict";
  var LABELS = { pending: "Waiting for a worker", running: "Running", done: "Done", failed: "Failed" };
  var FINAL = { done: true, failed: true };

  function setText(root, selector, value) {
    var el = root.querySelector(selector);
    if (el) el.textContent = value;
  }
  function show(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value === "number") return value.toLocaleString("en-US");
    return String(value);
  }

  function start(box) {
    if (box.dataset.started) return;
    box.dataset.started = "1";
    var url = box.dataset.statusUrl;
    var interval = parseInt(box.dataset.interval || "700", 10);
    var config = box.querySelector('script[type="application/json"]');
    var summary = config ? JSON.parse(config.textContent) : [];
    var failures = 0;
    var seen = [];

    function render(data) {
      var status = data.status || "pending";
      var total = Number(data.total || 0);
      var done = Number(data.processed || 0);
      var pct = total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : status === "done" ? 100 : 0;
      if (seen.indexOf(status) < 0) seen.push(status);
      box.dataset.state = status;
      box.dataset.seen = seen.join(" ");
      box.className = box.className.replace(/\bmc-progress--\w+/g, "").trim() + " mc-progress--" + status;
      setText(box, ".mc-progress-status", LABELS[status] || status);
      setText(box, ".mc-progress-done", show(done));
      setText(box, ".mc-progress-total", show(total));
      setText(box, ".mc-progress-percent", pct + "%");
      var fill = box.querySelector(".mc-progress-fill");
      if (fill) fill.style.width = pct + "%";
      var track = box.querySelector(".mc-progress-track");
      if (track) track.setAttribute("aria-valuenow", String(pct));
      if (FINAL[status]) renderResult(data);
      return !!FINAL[status];
    }

    function renderResult(data) {
      var result = box.querySelector(".mc-progress-result");
      var list = box.querySelector(".mc-progress-summary");
      if (list) {
        list.textContent = "";
        summary.forEach(function (item) {
          if (!(item.field in data)) return;
          var dt = document.createElement("dt");
          dt.textContent = item.label;
          var dd = document.createElement("dd");
          dd.textContent = show(data[item.field]);
          dd.dataset.field = item.field;
          list.appendChild(dt);
          list.appendChild(dd);
        });
      }
      var errors = box.querySelector(".mc-progress-errors");
      if (errors && Array.isArray(data.errors) && data.errors.length) {
        var body = errors.querySelector("tbody");
        body.textContent = "";
        data.errors.slice(0, 50).forEach(function (e) {
          var tr = document.createElement("tr");
          [e.row, e.column, e.message].forEach(function (v) {
            var td = document.createElement("td");
            td.textContent = show(v);
            tr.appendChild(td);
          });
          body.appendChild(tr);
        });
        var count = Number(data.error_count || data.errors.length);
        var more = errors.querySelector(".mc-progress-more");
        if (more && count > 50) {
          more.textContent = "…and " + (count - 50).toLocaleString("en-US") + " more.";
          more.hidden = false;
        }
        errors.hidden = false;
      }
      if (result) result.hidden = false;
      setText(box, ".mc-progress-note", data.status === "done" ? "Finished." : "The work stopped with an error: what went wrong is shown below.");
      box.dispatchEvent(new CustomEvent("mc-progress:finished", { bubbles: true, detail: data }));
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          setText(box, ".mc-progress-note", "");
          if (!render(data)) window.setTimeout(poll, interval);
        })
        .catch(function (error) {
          failures += 1;
          var wait = Math.min(interval * Math.pow(2, failures), 15000);
          setText(box, ".mc-progress-note", "Cannot read the status (" + error.message + "); trying again.");
          window.setTimeout(poll, wait);
        });
    }
    poll();
  }

  function startAll() {
    document.querySelectorAll(".mc-progress[data-status-url]").forEach(start);
  }
  window.McProgress = { start: start, startAll: startAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
