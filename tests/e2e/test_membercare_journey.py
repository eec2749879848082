"""In a real browser: a configurer creates a milestone from a template and uploads a custom
list, activities come in through the API, and a member-care agent reads the customer's
timeline. Every step asserts what the page shows; screenshots of the key pages are written to
test-artifacts/screenshots/ (names start with `journey-`).
"""

import re
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from enrolment.models import ImportJob
from evaluation.models import Activity, ActivityStatus
from milestones.cycles import add_months
from milestones.models import TargetGroup
from milestones.selectors import org_today
from milestones.services.target_groups import target_group_create
from tests.factories import TillFactory

from .conftest import api_post, log_in, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

GREEN = "rgb(46, 125, 50)"
WHITE = "rgb(255, 255, 255)"
GRAY = "rgb(158, 158, 158)"
CSV = b"mobile,P1,P2,P3\n919000000001,1000,2000,3000\n919000000002,500,,800\n919000000003,1500,1500,1500\n"


def day(d) -> str:
    return f"{d:%d %b %Y}"


def at(org, d, hour: int) -> str:
    return timezone.make_aware(datetime.combine(d, time(hour)), org.tzinfo).isoformat()


def computed(locator, prop: str) -> str:
    return locator.evaluate(f"el => getComputedStyle(el).getPropertyValue('{prop}')").strip()


def test_from_a_template_to_the_customers_timeline(
    live_server, new_page, screenshot, worker, builtin_templates, org, configurer, member_care,
    integration, tmp_path,
):  # fmt: skip
    url = live_server.url
    today = org_today(org)
    this_month = today.replace(day=1)
    start = add_months(this_month, -1)  # cycles: last month, this month, next month
    end = add_months(this_month, 2) - timedelta(days=1)
    TillFactory(organisation=org)  # the organisation's only till: the template form picks it

    # --- the configurer creates a milestone from the "Boost customer spend" template --------
    admin = new_page()
    log_in(admin, url, "alice", "/admin/milestones/targetgroup/add/")
    expect(admin.locator("h1")).to_have_text("New milestone")
    admin.get_by_role("link", name="Use “Boost customer spend”").click()
    expect(admin.locator("h1")).to_have_text(
        "New milestone from the template “Boost customer spend”"
    )
    expect(admin.locator("#id_targets-0-name")).to_have_value("Monthly spend")
    expect(admin.locator("#id_targets-0-value")).to_have_value("10000")
    admin.fill("#id_name", "Diwali spend")
    admin.fill("#id_start", start.isoformat())
    admin.fill("#id_end", end.isoformat())
    admin.check("input[name='target_value_mode'][value='per_customer']")
    admin.check("input[name='enrolment_mode'][value='custom_list']")
    admin.fill("#id_offset_days", "40")  # last month's cycle still takes the activities below
    screenshot(admin, "journey-01-configurer-creates-from-template")
    admin.click("input[name='_save']")
    expect(admin.locator("ul.messagelist")).to_contain_text(
        "The milestone “Diwali spend” was created."
    )
    group = TargetGroup.objects.get(name="Diwali spend")
    assert (group.start, group.end, group.cycle_count) == (start, end, 3)
    assert re.search(rf"/admin/milestones/targetgroup/{group.pk}/view/", admin.url)

    # A second milestone for everyone (made through the service), so the agent has two panes.
    target_group_create(
        organisation=org, user=configurer, via_api=True,
        data={"name": "Store visits", "start": add_months(this_month, -2), "end": end, "till_code": "T1",
              "cycle": {"type": "cyclic", "frequency": "weekly", "count": 4},
              "targets": [{"name": "Weekly visits", "kpi": "transaction_count", "value": 3}]},
    )  # fmt: skip

    # --- the configurer uploads the per-customer targets and watches the import finish ----
    admin.goto(f"{url}/care/milestones/{group.pk}/insights/")
    expect(admin.locator("h1")).to_have_text("Insights: Diwali spend")
    admin.get_by_role("link", name="Custom list uploads").click()
    expect(admin.locator("h2").first).to_have_text("Upload a custom list")
    csv_path = tmp_path / "diwali-targets.csv"
    csv_path.write_bytes(CSV)
    admin.set_input_files("#id_file", str(csv_path))
    admin.get_by_role("button", name="Next: map the columns").click()
    expect(admin.locator("#mc-count-new")).to_have_text("3 new customers will be created")
    admin.get_by_role("button", name="Confirm & upload").click()
    job = ImportJob.objects.get(target_group=group)
    expect(admin).to_have_url(f"{url}/care/imports/{job.pk}/")
    bar = admin.locator(".mc-progress")
    # no worker yet: the bar polls and waits
    expect(bar).to_have_attribute("data-state", "pending")
    expect(bar.locator(".mc-progress-status")).to_have_text("Waiting for a worker")
    screenshot(admin, "journey-02-import-waiting-for-a-worker")

    with worker():
        expect(bar).to_have_attribute("data-state", "done", timeout=30_000)
        expect(bar.locator(".mc-progress-count")).to_have_text("3 / 3 rows")
        expect(bar.locator(".mc-progress-percent")).to_have_text("100%")
        assert bar.locator(".mc-progress-fill").evaluate("el => el.style.width") == "100%"
        summary = bar.locator(".mc-progress-summary")
        expect(summary.locator("dd[data-field='newly_enrolled']")).to_have_text("3")
        expect(summary.locator("dd[data-field='total']")).to_have_text("3")
        expect(summary.locator("dd[data-field='error_count']")).to_have_text("0")
        expect(bar.locator(".mc-progress-note")).to_have_text("Finished.")
        assert "pending" in bar.get_attribute("data-seen") and "done" in bar.get_attribute("data-seen")  # fmt: skip
        admin.wait_for_function(
            "() => { const f = document.querySelector('.mc-progress-fill');"
            " return f.getBoundingClientRect().width >= f.parentElement.clientWidth - 2; }"
        )
        screenshot(admin, "journey-03-import-finished")

        # --- activities come in through the API (an integrator, token auth) --------------
        now = timezone.now()
        month_start = timezone.make_aware(datetime.combine(this_month, time()), org.tzinfo)
        ongoing_at = max(now - timedelta(minutes=10), month_start).isoformat()
        items = [
            {"id": "bill-1", "type": "transaction", "customer": {"mobile": "919000000001"},
             "occurred_at": at(org, start + timedelta(days=2), 11), "gross": 300, "net": 300},
            {"id": "bill-2", "type": "transaction", "customer": {"mobile": "919000000001"},
             "occurred_at": at(org, start + timedelta(days=7), 18), "gross": 900, "net": 900},
            {"id": "bill-3", "type": "transaction", "customer": {"mobile": "+91 90000 00001"},
             "occurred_at": ongoing_at, "gross": 500, "net": 500},
            {"id": "bill-4", "type": "transaction", "customer": {"mobile": "919000000002"},
             "occurred_at": at(org, start + timedelta(days=4), 12), "gross": 200, "net": 200},
        ]  # fmt: skip
        status, body = api_post(url, "/api/v1/activities/", integration.auth_token.key, items)
        assert status == 202 and body["accepted"] == 4, body
        assert wait_until(
            lambda: Activity.objects.filter(status=ActivityStatus.DONE).count() == 4, timeout=90
        ), list(Activity.objects.values_list("external_id", "status", "error"))

    # --- a member-care agent finds the customer and reads the timeline --------------------
    agent = new_page()
    log_in(agent, url, "bob", "/care/")
    expect(agent.locator("h1")).to_have_text("Find a customer")
    agent.fill("#mc-q", "+91 90000 00001")
    agent.click("form.mc-search button[type=submit]")
    expect(agent.locator("h1")).to_have_text("Milestones")
    expect(agent.locator(".mc-ids")).to_contain_text("919000000001")
    panes = agent.locator("a.mc-pane")
    expect(panes).to_have_count(2)
    expect(panes.nth(0)).to_contain_text("Weekly visits")
    diwali_pane = panes.filter(has_text="Monthly spend (Diwali spend)")
    expect(diwali_pane).to_contain_text(f"{day(start)} – {day(end)}")
    expect(diwali_pane).to_contain_text("3 cycles")
    expect(panes.nth(0)).to_have_class(re.compile(r"\bis-selected\b"))

    diwali_pane.click()
    expect(diwali_pane).to_have_class(re.compile(r"\bis-selected\b"))
    target = group.targets.get()
    assert agent.url.endswith(f"?target={target.pk}")
    detail = agent.locator(f"#mc-target-{target.pk}")
    expect(detail).to_be_visible()
    expect(agent.locator(".mc-detail:visible")).to_have_count(1)
    expect(detail.locator(".mc-info-group")).to_have_text("Diwali spend")
    expect(detail.locator(".mc-info-tracker")).to_have_text("Single target")
    expect(detail.locator(".mc-info-evaluation")).to_have_text("Fixed")
    expect(detail.locator(".mc-info-kpi")).to_have_text("Gross sales · Transaction (bill)")
    expect(detail.locator(".mc-edge--start")).to_have_text(f"Start {day(start)}")
    expect(detail.locator(".mc-edge--end")).to_have_text(f"End {day(end)}")

    cycles = detail.locator("li.mc-cycle")
    expect(cycles).to_have_count(3)
    first, second, third = cycles.nth(0), cycles.nth(1), cycles.nth(2)
    # last month: completed, solid green, achieved with the customer's own target (CSV)
    expect(first).to_have_class(re.compile(r"\bmc-cycle--completed\b"))
    expect(first.locator(".mc-cycle-range")).to_have_text(f"{day(start)} – {day(this_month - timedelta(days=1))}")  # fmt: skip
    expect(first.locator(".mc-values")).to_have_text("1,200 of 1,000 (120.0%)")
    expect(first.locator(".mc-result")).to_have_text(
        f"Achieved on {day(start + timedelta(days=7))}, 18:00"
    )
    assert computed(first.locator(".mc-stop-pin"), "fill") == GREEN
    assert computed(first.locator(".mc-cycle-card"), "background-color") == GREEN
    assert first.locator(".mc-bar-fill").evaluate("el => el.style.width") == "100%"
    # this month: ongoing, outlined green
    expect(second).to_have_class(re.compile(r"\bmc-cycle--ongoing\b"))
    expect(second.locator(".mc-values")).to_have_text("500 of 2,000 (25.0%)")
    expect(second.locator(".mc-result")).to_have_text("In progress")
    assert computed(second.locator(".mc-stop-pin"), "fill") == WHITE
    assert computed(second.locator(".mc-stop-pin"), "stroke") == GREEN
    assert computed(second.locator(".mc-cycle-card"), "border-top-color") == GREEN
    assert computed(second.locator(".mc-cycle-card"), "background-color") == WHITE
    assert second.locator(".mc-bar-fill").evaluate("el => el.style.width") == "25%"
    # next month: upcoming, gray
    expect(third).to_have_class(re.compile(r"\bmc-cycle--upcoming\b"))
    expect(third.locator(".mc-values")).to_have_text("0 of 3,000 (0.0%)")
    assert computed(third.locator(".mc-stop-pin"), "fill") == GRAY
    assert computed(third.locator(".mc-cycle-card"), "border-top-color") == GRAY

    # the dropdown of last month's cycle: each sub-target with the date it was reached
    subs = first.locator(".mc-sub")
    expect(subs.first).to_be_hidden()
    first.locator("summary").click()
    expect(subs).to_have_count(2)
    expect(subs.nth(0).locator(".mc-sub-date")).to_have_text(day(start + timedelta(days=2)))
    expect(subs.nth(0).locator(".mc-sub-name")).to_have_text("Spend 20%")
    expect(subs.nth(0).locator(".mc-sub-threshold")).to_have_text("on reaching 200")
    expect(subs.nth(1).locator(".mc-sub-date")).to_have_text(day(start + timedelta(days=7)))
    expect(subs.nth(1).locator(".mc-sub-name")).to_have_text("Spend 50%")
    expect(subs.nth(1).locator(".mc-sub-threshold")).to_have_text("on reaching 500")
    second.locator("summary").click()
    ongoing_subs = second.locator(".mc-sub")
    expect(ongoing_subs.nth(0)).to_have_class(re.compile(r"\bis-reached\b"))
    expect(ongoing_subs.nth(1).locator(".mc-sub-date")).to_have_text("Not reached")
    screenshot(agent, "journey-04-agent-timeline")

    # --- the agent reads, never configures -----------------------------------------------
    for path in ("/admin/milestones/targetgroup/", "/admin/milestones/targetgroup/add/",
                 f"/admin/milestones/targetgroup/{group.pk}/change/",
                 f"/care/milestones/{group.pk}/insights/", f"/care/milestones/{group.pk}/imports/"):  # fmt: skip
        response = agent.goto(f"{url}{path}")
        assert response.status == 403, path
        expect(agent.locator("h1")).to_have_text("This page is not open to your role")
        expect(agent.locator("#content-main")).to_contain_text("find customers and read")
    screenshot(agent, "journey-05-agent-refused-configuration")
    assert agent.locator("#content-main form").count() == 0

    # --- the configurer's insights for the milestone ---------------------------------------
    admin.goto(f"{url}/care/milestones/{group.pk}/insights/")
    expect(admin.locator("#ins-enrolled")).to_have_text("3")
    section = admin.locator(f"#ins-target-{target.pk}")
    rate_rows = section.locator(".ins-rate tbody tr")
    expect(rate_rows.nth(0)).to_contain_text("1 of 3")
    expect(rate_rows.nth(0)).to_contain_text("33.3%")
    expect(section.locator(".ins-distribution tr.ins-bucket-b0 td")).to_have_text("2")
    expect(section.locator(".ins-distribution tr.ins-bucket-b25 td")).to_have_text("1")
    expect(section.locator(".ins-subs tbody tr").nth(0)).to_contain_text("1 (33.3%)")
    chart = section.locator(
        "svg[aria-label='Achievement rate per cycle: Monthly spend (Diwali spend)']"
    )
    expect(chart).to_be_visible()
    heights = chart.locator("rect.ins-bar").evaluate_all(
        "els => els.map(e => +e.getAttribute('height'))"
    )
    assert heights[0] > 0 and heights[1:] == [0, 0]
    screenshot(admin, "journey-06-configurer-insights")
