"""In a real browser: the Simulate form of a milestone runs two target values at once and the
report shows them side by side (tables and SVG charts); a running simulation's report follows
its progress by itself (htmx) and shows the numbers once done. Screenshots start with
`simulation-`."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from playwright.sync_api import expect

from milestones.cycles import add_months
from milestones.selectors import org_today
from simulations.models import Simulation
from tests.e2e.conftest import axe_check, log_in
from tests.factories import (
    ActivityFactory,
    CustomerFactory,
    TargetGroupFactory,
    TillFactory,
    target_data,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def club(org, configurer):
    TillFactory(organisation=org)
    first = org_today(org).replace(day=1)
    start, end = add_months(first, -3), first - timedelta(days=1)
    group = TargetGroupFactory(
        organisation=org, name="Spend club", start=start, end=end,
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": start},
        targets=[target_data("Club spend", value=1500, sub_targets=[
            {"name": "Club half", "criteria": "percentage", "value": 50}])],
    )  # fmt: skip
    for i in range(12):
        customer = CustomerFactory(organisation=org, name=f"Customer {i}")
        for k in range(i):
            day = start + timedelta(days=(k * 9 + i) % 90)
            ActivityFactory(
                customer=customer, status="done", external_id=f"e2e-{i}-{k}",
                occurred_at=datetime.combine(day, time(12), tzinfo=org.tzinfo),
                payload={"gross": str(150 + 40 * k), "net": str(150 + 40 * k)},
            )  # fmt: skip
    return group


def test_two_values_run_at_once_and_show_side_by_side(
    live_server, new_page, screenshot, eager, org, configurer, club
):
    page = new_page()
    # the Simulate button of the milestone's view page opens the form
    log_in(page, live_server.url, "alice", f"/admin/milestones/targetgroup/{club.pk}/view/")
    page.get_by_role("link", name="Simulate").click()
    expect(page.locator("h1")).to_have_text("Simulate Spend club")
    target = club.targets.get()
    expect(page.locator(f"#id_value_{target.pk}")).to_have_value("1500")
    page.fill(f"#id_compare_{target.pk}", "800")
    axe_check(page, "simulation-01-form")  # no serious accessibility problem; a screenshot
    page.click("text=Run simulation")
    report = page.locator("#sim-report")
    expect(report).to_have_attribute("data-state", "done")
    expect(page.locator("#sim-run-A")).to_have_text("A: As configured")
    expect(page.locator("#sim-run-B")).to_have_text("B: Club spend 800")
    a, b = Simulation.objects.order_by("id")
    reached = [sum(c["achieved"] for c in s.result["targets"][0]["cycles"]) for s in (a, b)]
    assert reached[1] > reached[0]
    row = page.locator(".sim-compare tr", has_text="Reaching the target (all cycles)")
    expect(row.locator("td")).to_have_text(
        [str(reached[0]), str(reached[1]), f"+{reached[1] - reached[0]}"]
    )
    expect(page.locator("svg.sim-chart")).to_have_count(2)
    expect(page.locator("table.sim-cycles")).to_have_count(2)
    expect(page.locator("table.sim-cycles[data-run='A'] tbody tr")).to_have_count(3)
    axe_check(page, "simulation-02-comparison")


def test_a_running_report_follows_its_progress_then_shows_the_numbers(
    live_server, new_page, screenshot, org, configurer
):
    running = Simulation.objects.create(
        organisation=org, created_by=configurer, status="running", total=400, processed=40,
        label="Trying 8,000", input={},
    )  # fmt: skip
    page = new_page()
    log_in(page, live_server.url, "alice", f"/simulations/{running.pk}/")
    count = page.locator(".sim-progress-count")
    expect(count).to_have_text("40 of 400 customers replayed (10 %)")
    Simulation.objects.filter(pk=running.pk).update(processed=300)
    expect(count).to_have_text("300 of 400 customers replayed (75 %)")  # polled, no reload
    expect(page.locator("progress#sim-progress-A")).to_have_attribute("value", "75")
    screenshot(page, "simulation-03-running")
    cycle = {
        "name": "P1", "start": "2026-08-01", "end": "2026-08-31", "target": 8000,
        "participants": 400, "achieved": 120, "sub_targets": [{"name": "Half", "reached": 210}],
        "distribution": {"0-25": 100, "25-50": 90, "50-75": 60, "75-100": 30, "achieved": 120},
        "median": 4100, "top": 25000, "awards": {"count": 120, "points": 24000, "coupons": 0},
    }  # fmt: skip
    Simulation.objects.filter(pk=running.pk).update(
        status="done", processed=400,
        result={"targets": [{"name": "Spend 8000", "value": 8000, "cycles": [cycle]}],
                "liability": {"points": 24000, "coupons": 0},
                "window": {"start": "2026-08-01", "end": "2026-08-31"}, "notes": []},
    )  # fmt: skip
    expect(page.locator("#sim-report")).to_have_attribute("data-state", "done")
    expect(page.locator("[data-liability-points='A']")).to_have_text("24,000")
    expect(page.locator("table.sim-cycles tbody tr td[data-reached]")).to_have_text("120 (30 %)")
    expect(page.locator(".sim-progress-count")).to_have_count(0)
    screenshot(page, "simulation-04-done")
