/* Milestone configuration form: add target blocks, show the cycle fields of the chosen type. */
(function () {
  "use strict";

  function addTarget(button) {
    var prefix = button.getAttribute("data-prefix");
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var tpl = document.getElementById("ms-target-template");
    if (!total || !tpl) { return; }
    var index = parseInt(total.value, 10);
    var html = tpl.innerHTML.replace(/__prefix__/g, String(index));
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var block = holder.firstElementChild;
    var heading = block.querySelector("h3");
    if (heading) { heading.textContent = "Target " + (index + 1); }
    document.getElementById("ms-targets").appendChild(block);
    total.value = String(index + 1);
  }

  var CYCLE_ROWS = {
    fixed_calendar: ["cycle_frequency", "cycle_days", "cycle_start", "cycle_count"],
    custom_periods: ["periods"],
    cyclic: ["cycle_frequency", "cycle_days", "cycle_start", "cycle_count"],
    till_achievement: ["cycle_start", "cycle_count"]
  };
  var ALL_CYCLE_ROWS = ["cycle_frequency", "cycle_days", "cycle_start", "cycle_count", "periods"];

  function showCycleRows() {
    var checked = document.querySelector("input[name='cycle_type']:checked");
    if (!checked) { return; }
    var wanted = CYCLE_ROWS[checked.value] || ALL_CYCLE_ROWS;
    ALL_CYCLE_ROWS.forEach(function (name) {
      var row = document.querySelector("#part-cycles .field-" + name);
      if (row) { row.style.display = wanted.indexOf(name) >= 0 ? "" : "none"; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("ms-add-target");
    if (button) { button.addEventListener("click", function () { addTarget(button); }); }
    document.querySelectorAll("input[name='cycle_type']").forEach(function (input) {
      input.addEventListener("change", showCycleRows);
    });
    showCycleRows();
  });
})();
