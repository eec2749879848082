/* The audience group page's few lines of script; the rest is CSS (:has) and htmx.
   - The error summary takes the focus when the page opens; its links focus their input
     (opening "Advanced: edit as JSON" when the input is inside it). */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var link = event.target.closest(".ag-summary a[href^='#']");
    if (!link) { return; }
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) { return; }
    event.preventDefault();
    var details = field.closest("details");
    if (details) { details.open = true; }
    var input = field.matches("input, select, textarea") ? field : field.querySelector("input, select, textarea");
    (input || field).scrollIntoView({ block: "center" });
    (input || field).focus();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("ag-summary");
    if (summary) { summary.focus(); }
  });
})();
