"""POST /api/v1/simulations/ and GET /api/v1/simulations/{id}/: the contract's shape, its
refusals (the milestone and promotion endpoints' own messages), roles and organisations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from milestones.selectors import org_today
from simulations import engine
from simulations.models import Simulation
from simulations.services import simulation_run
from tests.factories import PromotionFactory, TargetGroupFactory, target_data
from tests.simulations.conftest import SimulationFactory

pytestmark = pytest.mark.django_db


def spend(start, end, **more):
    data = {
        "name": "Monthly spend",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "till_code": "T1",
        "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": start.isoformat()},
        "targets": [
            {
                "name": "Spend 1500",
                "kpi": "gross_sales",
                "value": 1500,
                "sub_targets": [{"name": "Half", "criteria": "percentage", "value": 50}],
            }
        ],
    }
    data.update(more)
    return data


def body_for(window, **more):
    start, end = window
    return {
        "target_group": spend(start, end),
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        **more,
    }


def test_a_simulation_answers_202_then_its_result_in_the_contracts_shape(seed, window, simulate):
    seed()
    got = simulate(body_for(window))
    assert got["status"] == "done"
    assert got["total"] == got["processed"] > 0
    result = got["result"]
    assert set(result) >= {"targets", "liability"}
    (target,) = result["targets"]
    assert target["name"] == "Spend 1500"
    assert [c["name"] for c in target["cycles"]] == [f"Monthly spend P{i}" for i in (1, 2, 3)]
    cycle = target["cycles"][0]
    assert set(cycle) >= {
        "name", "start", "end", "participants", "achieved", "sub_targets", "distribution",
        "awards", "median", "top",
    }  # fmt: skip
    assert cycle["start"] == window[0].isoformat()
    assert set(cycle["distribution"]) == {"0-25", "25-50", "50-75", "75-100", "achieved"}
    assert sum(cycle["distribution"].values()) == cycle["participants"]
    assert cycle["distribution"]["achieved"] == cycle["achieved"]
    assert cycle["sub_targets"][0]["name"] == "Half"
    assert cycle["sub_targets"][0]["reached"] >= cycle["achieved"]
    assert set(cycle["awards"]) >= {"count", "points", "coupons"}
    assert result["liability"] == {"points": 0, "coupons": 0}  # no promotion given


def test_a_bad_configuration_is_a_400_with_the_create_endpoints_messages(
    api, configurer, stores, window
):
    start, end = window
    bad = spend(start, end, till_code="S1")
    bad["targets"][0]["sub_targets"] = [{"name": "Lots", "criteria": "percentage", "value": 150}]
    bad["cycle"]["count"] = 5  # five months do not fit in three
    created = api(configurer).post("/api/v1/target-groups/", bad, format="json")
    assert created.status_code == 400
    response = api(configurer).post(
        "/api/v1/simulations/",
        {"target_group": bad, "window": {"start": start.isoformat(), "end": end.isoformat()}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"target_group": created.json()}
    assert Simulation.objects.count() == 0


def test_bad_changes_are_a_400_with_the_patch_endpoints_messages(api, configurer, org, window):
    group = TargetGroupFactory(
        organisation=org, name="Live", start=window[0], end=org_today(org) + timedelta(days=60),
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": window[0]},
        targets=[target_data("Live spend")],
    )  # fmt: skip
    target = group.targets.get()
    changes = {"targets": [{"id": target.pk, "kpi": "net_sales", "value": -5}]}
    patched = api(configurer).patch(f"/api/v1/target-groups/{group.pk}/", changes, format="json")
    assert patched.status_code == 400
    response = api(configurer).post(
        "/api/v1/simulations/",
        {"target_group_id": group.pk, "changes": changes,
         "window": {"start": window[0].isoformat(), "end": window[1].isoformat()}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json() == {"changes": patched.json()}
    group.refresh_from_db()
    assert group.name == "Live" and group.targets.get().kpi == "gross_sales"


def test_a_bad_draft_promotion_is_a_400_with_the_promotion_endpoints_messages(
    api, configurer, stores, window
):
    start, end = window
    draft = {
        "name": "Broken",
        "condition": 'currentEvent.targetAchieved("Spend 1500") >',
        "actions": [{"type": "issue_coupon", "series": "NOPE"}],
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    response = api(configurer).post(
        "/api/v1/simulations/", body_for(window, draft_promotions=[draft]), format="json"
    )
    assert response.status_code == 400
    # the promotion endpoint's own answer, for the same promotion beside the same milestone
    api(configurer).post("/api/v1/target-groups/", spend(start, end), format="json")
    made = api(configurer).post("/api/v1/promotions/", draft, format="json")
    assert made.status_code == 400
    assert response.json() == {"draft_promotions": [made.json()]}


@pytest.mark.parametrize(
    "window_of, message",
    [
        (lambda today: (today - timedelta(days=10), today), "must lie in the past"),
        (lambda today: (today - timedelta(days=3), today - timedelta(days=20)), "before it starts"),
        (
            lambda today: (today - timedelta(days=900), today - timedelta(days=1)),
            "at most 731 days",
        ),
    ],
)
def test_a_window_outside_the_past_is_a_400(api, configurer, org, stores, window_of, message):
    start, end = window_of(org_today(org))
    response = api(configurer).post(
        "/api/v1/simulations/",
        {"target_group": spend(start, end), "window": {"start": start.isoformat(), "end": end.isoformat()}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert any(message in m for m in response.json()["window"])


def test_a_window_shorter_than_one_cycle_is_a_400(api, configurer, stores, window):
    start = window[0]
    response = api(configurer).post(
        "/api/v1/simulations/",
        {"target_group": spend(start, window[1]),
         "window": {"start": start.isoformat(), "end": (start + timedelta(days=20)).isoformat()}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert "Not one whole monthly cycle fits" in response.json()["window"][0]


def test_the_milestone_is_given_once(api, configurer, window):
    w = {"start": window[0].isoformat(), "end": window[1].isoformat()}
    neither = api(configurer).post("/api/v1/simulations/", {"window": w}, format="json")
    assert neither.status_code == 400 and "Give the milestone" in neither.json()["target_group"][0]
    both = api(configurer).post(
        "/api/v1/simulations/",
        {"window": w, "target_group": {}, "target_group_id": 1},
        format="json",
    )
    assert both.status_code == 400 and "not both" in both.json()["target_group"][0]
    loose = api(configurer).post(
        "/api/v1/simulations/", {"window": w, "target_group": {}, "changes": {}}, format="json"
    )
    assert "`changes` go with `target_group_id`" in loose.json()["changes"][0]
    not_json = api(configurer).post("/api/v1/simulations/", [1, 2], format="json")
    assert not_json.status_code == 400


def test_another_organisations_milestone_is_unknown_like_a_missing_one(
    api, configurer, other_org, window
):
    theirs = TargetGroupFactory(organisation=other_org, name="Theirs")
    w = {"start": window[0].isoformat(), "end": window[1].isoformat()}
    for pk in (theirs.pk, 999_999):
        response = api(configurer).post(
            "/api/v1/simulations/", {"target_group_id": pk, "window": w}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"target_group_id": [f"Unknown milestone {pk}."]}


def test_a_listed_promotion_must_hear_the_milestone(api, configurer, org, stores, window):
    TargetGroupFactory(organisation=org, name="Other", targets=[target_data("Other spend")])
    elsewhere = PromotionFactory(
        organisation=org,
        name="Elsewhere",
        condition='currentEvent.targetAchieved("Other spend") > 0',
    )
    theirs_or_missing = 987_654
    response = api(configurer).post(
        "/api/v1/simulations/",
        body_for(window, promotions=[elsewhere.pk, theirs_or_missing]),
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["promotions"] == [
        "Promotion 'Elsewhere' names none of this milestone's targets: it would pay nothing here.",
        f"Unknown promotion {theirs_or_missing}.",
    ]


def test_an_existing_milestone_is_simulated_with_changed_values_and_stays_as_it_is(
    org, configurer, seed, window, simulate
):
    seed()
    group = TargetGroupFactory(
        organisation=org, name="Spend club", start=window[0], end=window[1],
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": window[0]},
        targets=[target_data("Club spend", value=1500)],
    )  # fmt: skip
    target = group.targets.get()
    w = {"start": window[0].isoformat(), "end": window[1].isoformat()}
    as_is = simulate({"target_group_id": group.pk, "window": w})["result"]
    lower = simulate(
        {"target_group_id": group.pk, "window": w,
         "changes": {"targets": [{"id": target.pk, "value": 400}]}}
    )["result"]  # fmt: skip
    assert as_is["targets"][0]["value"] == 1500 and lower["targets"][0]["value"] == 400
    reached = [sum(c["achieved"] for c in r["targets"][0]["cycles"]) for r in (as_is, lower)]
    assert reached[1] > reached[0]  # a lower target is reached by more customers
    target.refresh_from_db()
    group.refresh_from_db()
    assert (group.name, target.name, target.value) == ("Spend club", "Club spend", 1500)


def test_progress_is_written_while_the_run_goes(
    org, configurer, seed, window, monkeypatch, settings
):
    """Chunk by chunk of customers (row by row here: the one-query count of PostgreSQL
    has a single step)."""
    settings.SIMULATION_SET_BASED = False
    seed(customers=30)
    monkeypatch.setattr(engine, "CHUNK", 7)
    simulation = SimulationFactory(
        organisation=org, created_by=configurer,
        input={"target_group": spend(*window), "window": {"start": window[0].isoformat(),
                                                         "end": window[1].isoformat()}},
    )  # fmt: skip
    seen = []
    settle = engine._Replay.settle

    def watching(self, entries):
        row = Simulation.objects.get(pk=simulation.pk)
        seen.append((row.status, row.processed, row.total))
        return settle(self, entries)

    monkeypatch.setattr(engine._Replay, "settle", watching)
    done = simulation_run(simulation_id=simulation.pk)
    assert done.status == "done" and done.processed == done.total
    processed = [p for _s, p, _t in seen]
    assert {s for s, _p, _t in seen} == {"running"}
    assert {t for _s, _p, t in seen} == {done.total}  # the total is known from the start
    assert processed == sorted(processed) and processed[0] == 0 and processed[-1] > 0
    assert len(set(processed)) > 2  # it moved chunk by chunk


def test_a_run_that_breaks_is_failed_with_its_reason(org, configurer, seed, window, monkeypatch):
    seed(customers=3)

    def broken(scenario, progress=None):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr("simulations.services.simulate", broken)
    simulation = SimulationFactory(
        organisation=org, created_by=configurer,
        input={"target_group": spend(*window), "window": {"start": window[0].isoformat(),
                                                         "end": window[1].isoformat()}},
    )  # fmt: skip
    done = simulation_run(simulation_id=simulation.pk)
    assert done.status == "failed" and "the disk is full" in done.error
    assert simulation_run(simulation_id=simulation.pk).status == "failed"  # not run twice


def test_roles_and_organisations(api, configurer, member_care, integration, other_configurer, org,
                                 window):  # fmt: skip
    mine = SimulationFactory(organisation=org, created_by=configurer)
    url = f"/api/v1/simulations/{mine.pk}/"
    assert api(configurer).get(url).status_code == 200
    assert api(other_configurer).get(url).status_code == 404
    assert api(configurer).get("/api/v1/simulations/999999/").status_code == 404
    assert api(configurer).get(f"/api/v1/simulations/{2**70}/").status_code == 404
    assert api(member_care).get(url).status_code == 403
    assert api(integration).get(url).status_code == 403
    assert api().get(url).status_code == 401
    body = {"window": {"start": window[0].isoformat(), "end": window[1].isoformat()}}
    assert api(member_care).post("/api/v1/simulations/", body, format="json").status_code == 403
    assert api(integration).post("/api/v1/simulations/", body, format="json").status_code == 403
    assert api().post("/api/v1/simulations/", body, format="json").status_code == 401
