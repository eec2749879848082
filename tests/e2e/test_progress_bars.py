"""In a real browser: the progress bar follows a long run as it moves, then shows its summary;
a failed import lists its problems. Screenshots start with `progress-`."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from enrolment.models import ImportJob
from evaluation.models import ReprocessRun
from milestones.selectors import org_today
from milestones.services.target_groups import target_group_create
from tests.factories import TillFactory

from .conftest import log_in

SETTLED = """share => {
  const fill = document.querySelector('.mc-progress-fill');
  const track = fill.parentElement.getBoundingClientRect().width;
  return Math.abs(fill.getBoundingClientRect().width - track * share) < 3;
}"""


def bar_settles_at(page, share: float) -> None:
    """The fill has reached `share` of the track (its width is animated)."""
    page.wait_for_function(SETTLED, arg=share)


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def group(org, configurer):
    today = org_today(org)
    group, _ = target_group_create(
        organisation=org, user=configurer, via_api=True,
        data={"name": "Long work", "start": today, "end": today + timedelta(days=89),
              "till_code": TillFactory(organisation=org).code,
              "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 2},
              "enrolment": {"mode": "custom_list"}, "target_value_mode": "per_customer",
              "targets": [{"name": "Spend", "kpi": "gross_sales", "value": 1000}]},
    )  # fmt: skip
    return group


def test_the_bar_follows_a_reprocessing_run_to_its_end(live_server, new_page, screenshot, org, configurer, group):  # fmt: skip
    run = ReprocessRun.objects.create(organisation=org, target_group=group)
    page = new_page()
    log_in(page, live_server.url, "alice", f"/care/runs/reprocess/{run.pk}/")
    expect(page.locator("h1")).to_have_text(f"Reprocessing #{run.pk} — Long work")
    bar = page.locator(".mc-progress")
    expect(bar.locator(".mc-progress-status")).to_have_text("Waiting for a worker")
    expect(bar.locator(".mc-progress-count")).to_have_text("0 / 0 customers")

    ReprocessRun.objects.filter(pk=run.pk).update(status="running", total=1200, processed=300)
    expect(bar).to_have_attribute("data-state", "running")
    expect(bar.locator(".mc-progress-count")).to_have_text("300 / 1,200 customers")
    expect(bar.locator(".mc-progress-percent")).to_have_text("25%")
    expect(bar.locator(".mc-progress-track")).to_have_attribute("aria-valuenow", "25")
    expect(bar.locator(".mc-progress-result")).to_be_hidden()
    bar_settles_at(page, 0.25)
    screenshot(page, "progress-01-reprocessing-running")

    ReprocessRun.objects.filter(pk=run.pk).update(processed=900)
    expect(bar.locator(".mc-progress-count")).to_have_text("900 / 1,200 customers")
    expect(bar.locator(".mc-progress-percent")).to_have_text("75%")

    ReprocessRun.objects.filter(pk=run.pk).update(status="done", processed=1200, finished_at=timezone.now())  # fmt: skip
    expect(bar).to_have_attribute("data-state", "done")
    expect(bar).to_have_class(re.compile(r"\bmc-progress--done\b"))
    expect(bar.locator(".mc-progress-status")).to_have_text("Done")
    expect(bar.locator(".mc-progress-percent")).to_have_text("100%")
    expect(bar.locator(".mc-progress-summary")).to_contain_text("Total customers1,200")
    expect(bar.locator(".mc-progress-note")).to_have_text("Finished.")
    assert bar.get_attribute("data-seen") == "pending running done"
    bar_settles_at(page, 1.0)
    screenshot(page, "progress-02-reprocessing-done")

    # polling stopped at "done": a later change is not shown
    ReprocessRun.objects.filter(pk=run.pk).update(processed=5)
    page.wait_for_timeout(1500)
    expect(bar.locator(".mc-progress-count")).to_have_text("1,200 / 1,200 customers")


def test_a_failed_import_shows_its_problems(live_server, new_page, screenshot, org, configurer, group):  # fmt: skip
    job = ImportJob.objects.create(
        organisation=org, target_group=group, created_by=configurer, original_name="bad.csv",
        status="failed", total=3, processed=3, error_count=2, finished_at=timezone.now(),
        errors=[{"row": 2, "column": "mobile", "message": "'abc' is not a mobile number: it has no digits."},
                {"row": 4, "column": "P2", "message": "'ten' is not a number."}],
    )  # fmt: skip
    page = new_page()
    log_in(page, live_server.url, "alice", f"/care/imports/{job.pk}/")
    bar = page.locator(".mc-progress")
    expect(bar).to_have_attribute("data-state", "failed")
    expect(bar.locator(".mc-progress-status")).to_have_text("Failed")
    assert bar.locator(".mc-progress-fill").evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(198, 40, 40)"  # fmt: skip
    rows = page.locator("#mc-import-outcome .mc-problems tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td")).to_have_text(
        ["2", "mobile", "—", "'abc' is not a mobile number: it has no digits."]
    )
    expect(rows.nth(1).locator("td")).to_have_text(["4", "P2", "—", "'ten' is not a number."])
    expect(bar.locator("dd[data-field='error_count']")).to_have_text("2")
    expect(bar.locator(".mc-progress-note")).to_have_text(
        "The work stopped with an error: what went wrong is shown below."
    )
    bar_settles_at(page, 1.0)
    screenshot(page, "progress-03-import-failed-with-problems")
