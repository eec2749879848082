"""In a real browser: the milestone form follows the configurer's choices through htmx (the
fields of a KPI, the cycles listed as they are computed, the rule checked while typing,
thresholds in values, "add" rows), shows every error at once with a summary that links to
the fields, and lets a live milestone end earlier by dropping the cycles that have not
started. Screenshots start with `config-form-`."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from milestones.models import TargetGroup
from milestones.selectors import org_today
from milestones.services.target_groups import target_group_create
from tests.factories import StoreFactory, TillFactory

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)
ADD = "/admin/milestones/targetgroup/add/?scratch=1"


def serious_axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]


def test_the_form_follows_the_choices_and_checks_while_typing(live_server, new_page, screenshot, org, configurer):  # fmt: skip
    TillFactory(organisation=org)
    for code, zone in [("S1", "North"), ("S2", "South"), ("S3", "North")]:
        StoreFactory(organisation=org, code=code, zone=zone)
    page = new_page()
    log_in(page, live_server.url, "alice", ADD)
    target = page.locator("#target-targets-0")

    # fields follow the KPI
    page.select_option("#id_targets-0-kpi", "event_sum")
    expect(target.locator("#id_targets-0-attribute")).to_be_visible()
    page.fill("#id_targets-0-event_name", "Review")
    page.fill("#id_targets-0-attribute", "stars")
    page.focus("#id_targets-0-kpi")  # as a keyboard user changes it
    page.select_option("#id_targets-0-kpi", "gross_sales")
    expect(target.locator("#id_targets-0-event_name")).to_have_count(0)
    expect(target.locator("#id_targets-0-entity")).to_be_visible()
    expect(page.locator("#id_targets-0-kpi")).to_be_focused()  # htmx kept the focus

    # the cycles, listed as soon as they can be computed, in the organisation's time zone
    page.fill("#id_name", "Spring spend")
    page.fill("#id_start", "2027-01-01")
    page.fill("#id_end", "2027-03-31")
    page.select_option("#id_cycle_frequency", "days")
    expect(page.locator("#id_cycle_days")).to_be_visible()
    page.select_option("#id_cycle_frequency", "monthly")
    expect(page.locator("#id_cycle_days")).to_have_count(0)
    preview = page.locator("#ms-cycle-preview")
    expect(preview).to_contain_text("Starts (Asia/Kolkata)")
    expect(preview.locator("tbody tr")).to_have_count(3)
    expect(preview.locator("tbody tr").nth(1).locator("td")).to_have_text(
        ["Spring spend P2", "01 Feb 2027 00:00", "28 Feb 2027 23:59:59"]
    )
    # ... and the target's per-cycle values grid follows
    page.click("#cv-targets-0 summary")
    expect(page.locator("#id_targets-0-cv_3")).to_be_visible()
    page.fill("#id_targets-0-cv_2", "12000")

    # the rule box, checked on each pause, the error position marked
    page.fill("#id_targets-0-rule", "currentTxn.value >=")
    check = page.locator("#rule-check-targets-0")
    expect(check).to_contain_text("at character 20 (the end of the rule)")
    expect(check.locator("mark.ms-rule-at")).to_have_count(1)
    page.fill("#id_targets-0-rule", "currentTxn.value >= 100")
    expect(check).to_contain_text("✓ The rule is valid")

    # sub-targets: "add" brings a row with the focus; the threshold shows in values
    page.fill("#id_targets-0-name", "Spend 10000")
    page.fill("#id_targets-0-value", "10000")
    page.click("#subs-targets-0 button")
    expect(page.locator("#id_targets-0-sub_1_name")).to_be_focused()
    page.keyboard.type("Halfway")
    page.select_option("#id_targets-0-sub_1_criteria", "percentage")
    page.fill("#id_targets-0-sub_1_value", "50")
    expect(page.locator("#reached-targets-0-1")).to_contain_text("5,000")

    # zones are listed once, and the box filters them
    zones = page.locator("#id_targets-0-scope_zones")
    expect(zones.locator("input")).to_have_count(2)
    page.fill("[data-filter-for='id_targets-0-scope_zones']", "sou")
    expect(zones.locator("label:visible")).to_have_text(["South"])
    page.check("#id_targets-0-scope_zones label:has-text('South') input")
    screenshot(page, "config-form-live-checks")
    assert serious_axe_violations(page) == []

    page.click("input[name=_save]")
    expect(page.locator("h1")).to_contain_text("Spring spend")
    group = TargetGroup.objects.get(name="Spring spend")
    target = group.targets.get()
    assert (target.kpi, target.event_name, target.attribute) == ("gross_sales", "", "")
    assert target.cycle_values == {"2": "12000"} and target.scope_zones == ["South"]
    assert [(s.name, s.criteria) for s in target.sub_targets.all()] == [("Halfway", "percentage")]


def test_every_error_at_once_with_a_summary_that_links_to_the_fields(live_server, new_page, screenshot, org, configurer):  # fmt: skip
    TillFactory(organisation=org)
    page = new_page()
    log_in(page, live_server.url, "alice", ADD)
    page.fill("#id_start", "2027-01-01")
    page.fill("#id_end", "2026-12-01")
    page.fill("#id_targets-0-name", "Spend")
    page.select_option("#id_targets-0-kpi", "quantity")
    expect(page.locator("#id_targets-0-entity")).to_be_visible()
    page.fill("#id_targets-0-value", "5")
    page.fill("#id_targets-0-rule", "currentTxn.foo > 1")
    page.click("input[name=_save]")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Please correct 3 errors")
    expect(summary.locator("a")).to_have_count(3)
    expect(page.locator("#id_name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_end")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#rule-check-targets-0 mark.ms-rule-at")).to_have_text("f")
    summary.locator("a[href='#id_targets-0-rule']").click()
    expect(page).to_have_url(live_server.url + ADD + "#id_targets-0-rule")
    screenshot(page, "config-form-errors")
    assert serious_axe_violations(page) == []
    assert not TargetGroup.objects.exists()


def test_a_live_milestone_ends_earlier_by_dropping_the_cycles_not_started(live_server, new_page, screenshot, org, configurer):  # fmt: skip
    today = org_today(org)
    group, _ = target_group_create(
        organisation=org, user=configurer, via_api=True,
        data={"name": "Running", "start": today - timedelta(days=5), "end": today + timedelta(days=150),
              "till_code": TillFactory(organisation=org).code,
              "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 5},
              "targets": [{"name": "Spend", "kpi": "gross_sales", "value": 1000}]},
    )  # fmt: skip
    p3 = group.periods.get(ordinal=3)
    page = new_page()
    log_in(page, live_server.url, "alice", f"/admin/milestones/targetgroup/{group.pk}/change/")
    expect(page.locator("#id_start_row .ms-readonly")).to_have_text(f"{group.start:%d %b %Y}")
    expect(page.locator("#targetgroup_form [disabled]")).to_have_count(0)
    page.fill("#id_end", p3.end.isoformat())
    drop = page.locator("#id_drop_cycles")
    expect(page.locator("#id_drop_cycles_row")).to_contain_text(
        "Drop cycles Running P4, Running P5 that end after the new end date"
    )
    expect(page.locator("#ms-cycle-preview tr.ms-dropped")).to_have_count(2)
    drop.check()
    screenshot(page, "config-form-drop-cycles")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("were dropped")
    group.refresh_from_db()
    assert group.end == p3.end and group.periods.count() == 3
