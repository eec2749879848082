"""The Simulate form of a milestone and the report page: what they show, their errors, the
live progress while a run goes, roles and organisations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from milestones.selectors import org_today
from simulations.models import Simulation
from tests.factories import PromotionFactory, TargetGroupFactory, target_data
from tests.simulations.conftest import SimulationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def club(org, stores, window):
    return TargetGroupFactory(
        organisation=org, name="Spend club", start=window[0], end=window[1],
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": window[0]},
        targets=[target_data("Club spend", value=1500, sub_targets=[
            {"name": "Club half", "criteria": "percentage", "value": 50}])],
    )  # fmt: skip


def new_url(group) -> str:
    return f"{reverse('simulations:new')}?target_group={group.pk}"


def test_the_form_lists_each_target_with_its_value_and_a_past_window(
    admin_client_for, configurer, club, org
):
    TargetGroupFactory(organisation=org, name="Other", targets=[target_data("Other spend")])
    PromotionFactory(
        organisation=org,
        name="Club reward",
        condition='currentEvent.targetAchieved("Club spend") > 0',
    )
    PromotionFactory(organisation=org, name="Unrelated", condition='currentEvent.targetAchieved("Other spend") > 0')  # fmt: skip
    page = admin_client_for(configurer).get(new_url(club))
    assert page.status_code == 200
    html = page.content.decode()
    target = club.targets.get()
    assert "Club spend" in html and "1,500" in html
    assert f'name="value_{target.pk}"' in html and 'value="1500"' in html
    assert f'<label class="sim-hidden-label" for="id_compare_{target.pk}">' in html
    first = org_today(org).replace(day=1)
    assert f'value="{(first - timedelta(days=1)).isoformat()}"' in html  # ends yesterday-ish
    assert "Club reward" in html and "Unrelated" not in html  # only promotions that hear it
    assert "Asia/Kolkata" in html


def test_running_two_values_shows_both_runs_side_by_side(
    admin_client_for, configurer, club, seed, window, eager, django_capture_on_commit_callbacks
):
    seed()
    target = club.targets.get()
    client = admin_client_for(configurer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            new_url(club),
            {"target_group": club.pk, "window_start": window[0].isoformat(),
             "window_end": window[1].isoformat(), f"value_{target.pk}": "1500",
             f"compare_{target.pk}": "800"},
        )  # fmt: skip
    assert response.status_code == 302
    a, b = Simulation.objects.order_by("id")
    assert response["Location"] == f"/simulations/{a.pk}/?compare={b.pk}"
    assert (a.label, b.label) == ("As configured", "Club spend 800")
    assert a.status == b.status == "done"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "A: As configured" in html and "B: Club spend 800" in html
    assert html.count("<svg") >= 2 and "hx-trigger" not in html  # done: no more polling
    reached_a = sum(c["achieved"] for c in a.result["targets"][0]["cycles"])
    reached_b = sum(c["achieved"] for c in b.result["targets"][0]["cycles"])
    assert reached_b > reached_a
    row = re.search(r"Reaching the target \(all cycles\)</th><td[^>]*>([\d,]+)</td><td[^>]*>([\d,]+)</td><td[^>]*>([^<]+)</td>", html)  # fmt: skip
    assert row is not None
    assert row.groups() == (str(reached_a), str(reached_b), f"+{reached_b - reached_a}")
    first = a.result["targets"][0]["cycles"][0]
    assert f"{first['participants']}</td>" in html


def test_a_running_simulation_shows_its_progress_and_polls(admin_client_for, configurer, org):
    running = SimulationFactory(
        organisation=org, created_by=configurer, status="running", total=400, processed=100,
        label="Trying 8,000",
    )  # fmt: skip
    client = admin_client_for(configurer)
    page = client.get(f"/simulations/{running.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in page and f'hx-get="/simulations/{running.pk}/"' in page
    assert "100 of 400 customers replayed (25 %)" in page
    assert '<progress id="sim-progress-A"' in page and 'value="25"' in page
    fragment = client.get(f"/simulations/{running.pk}/", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body and 'id="sim-report"' in body
    Simulation.objects.filter(pk=running.pk).update(status="failed", error="Window refused.")
    body = client.get(f"/simulations/{running.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert (
        "hx-trigger" not in body and "The simulation failed." in body and "Window refused." in body
    )


def test_form_errors_are_at_their_fields_and_listed_at_the_top(
    admin_client_for, configurer, club, org
):
    target = club.targets.get()
    today = org_today(org)
    page = admin_client_for(configurer).post(
        new_url(club),
        {"target_group": club.pk, "window_start": (today - timedelta(days=5)).isoformat(),
         "window_end": today.isoformat(), f"value_{target.pk}": "-3"},
    )  # fmt: skip
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="error-summary"' in html and "There are 2 problems" in html
    assert 'href="#id_window_end"' in html and f'href="#id_value_{target.pk}"' in html
    assert "The window must lie in the past" in html
    assert Simulation.objects.count() == 0


def test_a_value_the_milestone_refuses_is_shown_at_its_target(
    admin_client_for, configurer, club, window
):
    target = club.targets.get()
    page = admin_client_for(configurer).post(
        new_url(club),
        {"target_group": club.pk, "window_start": window[0].isoformat(),
         "window_end": window[1].isoformat(), f"value_{target.pk}": "1000000000000000"},
    )  # fmt: skip
    html = page.content.decode()
    assert page.status_code == 200
    assert "Target 1 (Club spend): the target value is too large." in html
    assert f'href="#id_value_{target.pk}"' in html
    assert Simulation.objects.count() == 0


def test_text_is_escaped_in_tables_and_charts(admin_client_for, configurer, org):
    cycle = {
        "name": "<i>P1</i>", "start": "2026-08-01", "end": "2026-08-31", "target": 10,
        "participants": 3, "achieved": 1, "sub_targets": [], "median": 2, "top": 12,
        "distribution": {"0-25": 1, "25-50": 1, "50-75": 0, "75-100": 0, "achieved": 1},
        "awards": {"count": 0, "points": 0, "coupons": 0},
    }  # fmt: skip
    done = SimulationFactory(
        organisation=org, created_by=configurer, status="done", label="<script>alert(1)</script>",
        result={"targets": [{"name": "<b>Bold</b>", "value": 10, "cycles": [cycle]}],
                "liability": {"points": 12500, "coupons": 0},
                "window": {"start": "2026-08-01", "end": "2026-08-31"}, "notes": []},
    )  # fmt: skip
    html = admin_client_for(configurer).get(f"/simulations/{done.pk}/").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt;" in html
    assert "<i>P1</i>" not in html
    assert "12,500" in html  # plain grouped numbers


def test_roles_and_organisations(
    admin_client_for, client, member_care, other_configurer, org, club
):
    mine = SimulationFactory(organisation=org)
    for url in (new_url(club), f"/simulations/{mine.pk}/"):
        assert client.get(url).status_code == 302  # anonymous: to the sign-in page
        assert admin_client_for(member_care).get(url).status_code == 403
        client.logout()
        assert admin_client_for(other_configurer).get(url).status_code == 404
        client.logout()
    assert (
        admin_client_for(other_configurer).get(f"/simulations/{mine.pk}/?compare=abc").status_code
        == 404
    )
