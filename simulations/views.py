"""Pages: the Simulate form of a milestone and the report of a run (or of two side by side).
Configurers of the organisation only; another organisation's milestone or run is a 404.

While a run is pending or running, the report's body polls itself with htmx every second
(`hx-get` on the same URL, answered with the body alone) and stops once the run is done or
failed."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from common.permissions import CONFIG_ROLES, role_required

from .forms import SimulateForm
from .inputs import SimulationRefused
from .selectors import milestone_of, promotions_for, report, simulation_of
from .services import simulations_create


def _page(request, template: str, **context) -> TemplateResponse:
    """Inside the admin's frame (header, user tools, htmx), without its app sidebar."""
    site = admin.site
    base = {
        "site_header": site.site_header,
        "site_title": site.site_title,
        "site_url": None,
        "has_permission": request.user.is_active and request.user.is_staff,
        "is_nav_sidebar_enabled": False,
        "is_popup": False,
    }
    return TemplateResponse(request, template, {**base, **context})


@require_http_methods(["GET", "POST"])
@role_required(*CONFIG_ROLES)
def simulate_page(request):
    """GET ?target_group=ID: the form; POST: start the run(s) and go to the report."""
    org = request.user.organisation
    group = milestone_of(
        organisation=org, target_group_id=request.GET.get("target_group") or request.POST.get("target_group")
    )  # fmt: skip
    promotions = promotions_for(group=group)
    form = SimulateForm(
        request.POST if request.method == "POST" else None, group=group, promotions=promotions
    )
    if request.method == "POST" and form.is_valid():
        try:
            made = simulations_create(organisation=org, user=request.user, runs=form.requests())
        except SimulationRefused as exc:
            form.add_refusal(exc.errors)
        else:
            url = reverse("simulations:report", args=[made[0].pk])
            if len(made) > 1:
                url += f"?compare={made[1].pk}"
            return redirect(url)
    return _page(
        request,
        "simulations/simulate.html",
        title=f"Simulate {group.name}",
        group=group,
        form=form,
        error_summary=_error_summary(form),
        admin_view_url=reverse("admin:milestones_targetgroup_view", args=[group.pk]),
    )


def _error_summary(form) -> list[dict]:
    """Every error of the form, for the summary at the top: each links to its field."""
    if not form.is_bound:
        return []
    items = [{"anchor": "sim-form", "label": "", "message": m} for m in form.non_field_errors()]
    for field in form:
        for message in field.errors:
            items.append({"anchor": field.auto_id, "label": field.label, "message": message})
    return items


@require_http_methods(["GET"])
@role_required(*CONFIG_ROLES)
def report_page(request, simulation_id: int):
    """One run, or two side by side with ?compare=ID. An htmx request gets the body alone
    (the progress bar while running, the numbers once done)."""
    org = request.user.organisation
    runs = [simulation_of(organisation=org, simulation_id=simulation_id)]
    if request.GET.get("compare"):
        runs.append(simulation_of(organisation=org, simulation_id=request.GET["compare"]))
    context = {"data": report(runs), "poll_url": request.get_full_path()}
    if getattr(request, "htmx", False):
        return TemplateResponse(request, "simulations/_report_body.html", context)
    first = runs[0]
    group_pk = (first.input or {}).get("target_group_id")
    return _page(
        request,
        "simulations/report.html",
        title="Simulation" + (" comparison" if len(runs) > 1 else ""),
        simulate_again=(
            f"{reverse('simulations:new')}?target_group={group_pk}"
            if isinstance(group_pk, int)
            else None
        ),
        **context,
    )
