/* Member care Milestones page: clicking a target pane shows its information and timeline
   without reloading the page. The details of a pane not drawn yet are fetched once as an
   HTML fragment (data-detail-url) and kept; each pane is also a plain link (?target=), so
   the page works without JavaScript and when a fetch fails. */
(function () {
  "use strict";
  var pending = {};

  function show(id) {
    document.querySelectorAll(".mc-detail").forEach(function (section) {
      section.hidden = section.dataset.target !== id;
    });
    document.querySelectorAll(".mc-pane").forEach(function (pane) {
      var match = pane.dataset.target === id;
      pane.classList.toggle("is-selected", match);
      if (match) pane.setAttribute("aria-current", "true");
      else pane.removeAttribute("aria-current");
    });
    var url = new URL(window.location.href);
    url.searchParams.set("target", id);
    window.history.replaceState({ target: id }, "", url);
    var detail = document.getElementById("mc-target-" + id);
    if (detail && detail.getBoundingClientRect().top < 0) detail.scrollIntoView({ block: "start" });
  }

  function load(pane) {
    var id = pane.dataset.target;
    if (document.getElementById("mc-target-" + id)) return show(id);
    if (pending[id]) return;
    pending[id] = true;
    pane.classList.add("is-loading");
    fetch(pane.dataset.detailUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var section = holder.querySelector(".mc-detail");
        if (!section) throw new Error("no details in the answer");
        document.querySelector(".mc-details").appendChild(section);
        show(id);
      })
      .catch(function () {
        window.location.href = pane.href; // the server draws the page with this target
      })
      .then(function () {
        delete pending[id];
        pane.classList.remove("is-loading");
      });
  }

  // The filter box: panes whose milestone or target name contains the text stay visible.
  document.addEventListener("input", function (event) {
    if (event.target.id !== "mc-pane-filter") return;
    var text = event.target.value.trim().toLowerCase();
    var shown = 0;
    document.querySelectorAll(".mc-pane-group").forEach(function (group) {
      var groupMatch = group.dataset.milestone.indexOf(text) !== -1;
      var any = false;
      group.querySelectorAll(".mc-pane").forEach(function (pane) {
        var match = !text || groupMatch || pane.dataset.name.indexOf(text) !== -1;
        pane.hidden = !match;
        if (match) any = true;
      });
      group.hidden = !any;
      if (any) shown += 1;
    });
    var none = document.querySelector(".mc-pane-none");
    if (none) none.hidden = shown > 0;
  });

  document.addEventListener("click", function (event) {
    var pane = event.target.closest("a.mc-pane");
    if (!pane || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    if (!pane.dataset.detailUrl || !document.querySelector(".mc-details")) return;
    event.preventDefault();
    load(pane);
  });
})();
