"""axe-core in Chromium: no serious or critical violation on the pages a configurer and a
member-care agent use every day (the screens being rebuilt — the create form, audience groups,
the promotion form and the upload flow — get theirs with their rebuild).

One live server and the demo data (milestones.demo.load_demo) for the whole module, one
signed-in browser context per person. Every check also saves a full-page screenshot as
test-artifacts/screenshots/a11y-<page>.png.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from enrolment.models import Customer
from evaluation.models import ReprocessRun
from milestones.models import TargetGroup

from .conftest import axe_check

SPEND = "Demo: boost spend"


@pytest.fixture(scope="module")
def spend(demo):
    return TargetGroup.objects.get(organisation=demo, name=SPEND)


@pytest.fixture(scope="module")
def meera(demo):
    """The demo customer with the most activity (her panes have reached sub-targets)."""
    return Customer.objects.get(organisation=demo, mobile__endswith="9000000003")


def test_milestone_list(module_server, page_as, spend):
    page = page_as("configurer")
    page.goto(f"{module_server.url}/admin/milestones/targetgroup/")
    expect(page.get_by_role("link", name=SPEND, exact=True)).to_be_visible()
    expect(page.get_by_label("Search milestones")).to_be_visible()
    axe_check(page, "a11y-milestone-list")


@pytest.mark.parametrize("tab", ["configuration", "information", "history"])
def test_milestone_view_page(module_server, page_as, spend, tab):
    page = page_as("configurer")
    page.goto(f"{module_server.url}/admin/milestones/targetgroup/{spend.pk}/view/?tab={tab}")
    expect(page.locator("h1")).to_contain_text(SPEND)
    expect(page.locator(f"#tab-{tab}")).to_be_visible()
    axe_check(page, f"a11y-milestone-view-{tab}")


def test_deactivation_confirmation(module_server, page_as, spend):
    page = page_as("configurer")
    page.goto(f"{module_server.url}/admin/milestones/targetgroup/{spend.pk}/view/")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("h1")).to_have_text(f"Deactivate {SPEND}?")
    axe_check(page, "a11y-deactivate-confirmation")
    spend.refresh_from_db()
    assert spend.is_active  # asking is all the page did


def test_member_care_search(module_server, page_as):
    page = page_as("care")
    page.goto(f"{module_server.url}/care/")
    expect(page.locator("h1")).to_have_text("Find a customer")
    axe_check(page, "a11y-care-search")
    page.get_by_label("Mobile, email or external id").fill("nobody@example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".mc-empty")).to_contain_text("nobody@example.com")
    axe_check(page, "a11y-care-search-no-match")


def test_customer_timeline_with_a_pane_open(module_server, page_as, meera):
    page = page_as("care")
    page.goto(f"{module_server.url}/care/customers/{meera.pk}/milestones/")
    expect(page.locator(".mc-customer-name")).to_have_text("Meera")
    petrol = page.locator("a.mc-pane", has_text="Petrol litres (demo)")
    petrol.click()
    detail = page.locator(".mc-detail:visible")
    expect(detail.locator(".mc-detail-title")).to_have_text("Petrol litres (demo)")
    detail.locator("li.mc-cycle summary").first.click()
    expect(detail.locator(".mc-sub").first).to_be_visible()
    axe_check(page, "a11y-care-timeline")


def test_insights(module_server, page_as, spend):
    page = page_as("configurer")
    page.goto(f"{module_server.url}/care/milestones/{spend.pk}/insights/")
    expect(page.locator("h1")).to_have_text(f"Insights: {SPEND}")
    axe_check(page, "a11y-insights")


def test_reprocessing_progress(module_server, page_as, demo, spend):
    run = ReprocessRun.objects.create(
        organisation=demo, target_group=spend, status="done", total=3, processed=3,
        finished_at=timezone.now(),
    )  # fmt: skip
    page = page_as("configurer")
    page.goto(f"{module_server.url}/care/runs/reprocess/{run.pk}/")
    bar = page.locator(".mc-progress")
    expect(bar).to_have_attribute("data-state", "done")
    expect(bar.locator(".mc-progress-result")).to_be_visible()
    axe_check(page, "a11y-reprocessing-done")


def test_refused_page(module_server, page_as):
    page = page_as("care")
    response = page.goto(f"{module_server.url}/admin/milestones/targetgroup/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("This page is not open to your role")
    axe_check(page, "a11y-403")
