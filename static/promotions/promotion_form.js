/* The promotion form's few lines of script; everything else is htmx and the server.
   - An Insert button writes its picker's value at the cursor of its box (a target as
     currentEvent.targetAchieved("Monthly spend"), the name already quoted by the server;
     a placeholder into a message), then lets the live check run.
   - An action row added by "Add another" is handed to htmx, so its type select works.
   - The rule box says whether it is invalid after each live check (aria-invalid).
   - The error summary takes the focus when the page opens; its links focus their input. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var link = event.target.closest(".pa-error-summary a[href^='#']");
    if (link) {
      var field = document.getElementById(link.getAttribute("href").slice(1));
      if (field) {
        event.preventDefault();
        field.scrollIntoView({ block: "center" });
        field.focus();
      }
      return;
    }
    var button = event.target.closest("[data-insert-into]");
    if (!button) { return; }
    var box = document.getElementById(button.dataset.insertInto);
    var what = document.getElementById(button.dataset.insertWhat);
    var how = button.dataset.insertHow ? document.getElementById(button.dataset.insertHow) : null;
    var template = how ? how.value : button.dataset.insertTemplate;
    if (!box || !what || !what.value) { return; }
    var text = template ? template.split("%s").join(what.value) : what.value;
    box.focus();
    box.setRangeText(text, box.selectionStart, box.selectionEnd, "end");
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });

  window.addEventListener("load", function () {  // after the admin's own first-field focus
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  });

  document.addEventListener("formset:added", function (event) {
    if (window.htmx) { window.htmx.process(event.target); }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = (event.detail && event.detail.target) || event.target;
    if (target.id !== "id_condition_check") { return; }
    var box = document.getElementById("id_condition");
    var state = target.querySelector("[data-state]");
    if (box && state) {
      box.setAttribute("aria-invalid", state.dataset.state === "invalid" ? "true" : "false");
    }
  });
})();
