"""A milestone created from scratch with the keyboard only: Tab to each field, type, pick
from lists with the arrow keys, press Enter to save. No click, no mouse."""

import pytest
from playwright.sync_api import expect

from milestones.models import TargetGroup
from tests.factories import TillFactory

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def tab_to(page, element_id: str, limit: int = 150) -> None:
    """Press Tab until the element has the focus (as a keyboard user moves through a form)."""
    for _ in range(limit):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def test_a_milestone_created_from_scratch_without_a_mouse(live_server, new_page, screenshot, org, configurer):  # fmt: skip
    TillFactory(organisation=org, code="T1", name="Till one")
    page = new_page()
    log_in(page, live_server.url, "alice", "/admin/milestones/targetgroup/add/?scratch=1")
    expect(page.locator("h1")).to_contain_text("New milestone")

    tab_to(page, "id_name")
    page.keyboard.type("Keyboard spend")
    tab_to(page, "id_start")
    page.keyboard.type("01012027")  # mm dd yyyy segments of the date input
    tab_to(page, "id_end")
    page.keyboard.type("03312027")
    tab_to(page, "id_till")
    page.keyboard.press("ArrowDown")  # the first till
    tab_to(page, "id_cycle_frequency")
    page.keyboard.type("Monthly")  # a select picks the option its name starts with
    expect(page.locator("#ms-cycle-preview tbody tr")).to_have_count(3)
    tab_to(page, "id_targets-0-name")
    page.keyboard.type("Spend 5000")
    tab_to(page, "id_targets-0-kpi")
    page.keyboard.type("Gross")
    expect(page.locator("#id_targets-0-entity")).to_be_visible()  # the KPI's own fields
    tab_to(page, "id_targets-0-value")
    page.keyboard.type("5000")
    screenshot(page, "keyboard-01-filled-without-a-mouse")
    page.keyboard.press("Enter")  # saves (the form's first button is Save)

    expect(page.locator("h1")).to_contain_text("Keyboard spend", timeout=15_000)
    group = TargetGroup.objects.get(organisation=org, name="Keyboard spend")
    target = group.targets.get()
    assert (group.start.isoformat(), group.end.isoformat(), group.till.code) == (
        "2027-01-01", "2027-03-31", "T1")  # fmt: skip
    assert (target.name, target.kpi, target.value) == ("Spend 5000", "gross_sales", 5000)
    assert group.periods.count() == 3
    screenshot(page, "keyboard-02-created")
