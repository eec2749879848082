/* Member care Milestones page: clicking a target pane shows its information and timeline
   without a reload (the pane is also a plain link, so the page works without JavaScript). */
(function () {
  "use strict";
  function select(id, push) {
    var found = false;
    document.querySelectorAll(".mc-detail").forEach(function (section) {
      var match = section.dataset.target === id;
      section.hidden = !match;
      found = found || match;
    });
    if (!found) return false;
    document.querySelectorAll(".mc-pane").forEach(function (pane) {
      var match = pane.dataset.target === id;
      pane.classList.toggle("is-selected", match);
      if (match) pane.setAttribute("aria-current", "true");
      else pane.removeAttribute("aria-current");
    });
    if (push) {
      var url = new URL(window.location.href);
      url.searchParams.set("target", id);
      window.history.replaceState({ target: id }, "", url);
    }
    return true;
  }
  document.addEventListener("click", function (event) {
    var pane = event.target.closest("a.mc-pane");
    if (!pane || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    if (select(pane.dataset.target, true)) {
      event.preventDefault();
      var detail = document.getElementById("mc-target-" + pane.dataset.target);
      if (detail && detail.getBoundingClientRect().top < 0) detail.scrollIntoView({ block: "start" });
    }
  });
})();
