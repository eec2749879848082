/* Milestone configuration form. Everything that follows a choice (the fields of a KPI, of a
   cycle type, the cycles listed, the rule checked, "add" rows) is server-rendered through htmx;
   this only filters the store, zone and concept checkbox lists as you type, and brings the
   error summary into view after a refused save. */
(function () {
  "use strict";

  function filterList(box) {
    var list = document.getElementById(box.getAttribute("data-filter-for"));
    if (!list) { return; }
    var words = box.value.trim().toLowerCase();
    Array.prototype.forEach.call(list.children, function (option) {
      var text = option.textContent.toLowerCase();
      option.hidden = words !== "" && text.indexOf(words) < 0;
    });
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("input.ms-filter")) {
      filterList(event.target);
    }
  });
  // Enter in a filter box filters; it does not submit the form.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches && event.target.matches("input.ms-filter")) {
      event.preventDefault();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  });
})();
