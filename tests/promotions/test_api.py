"""API contract: /api/v1/promotions/ and /api/v1/awards/ (and coupon series)."""

from datetime import date
from decimal import Decimal

import pytest

from promotions.models import Promotion

from .conftest import txn

pytestmark = pytest.mark.django_db

URL = "/api/v1/promotions/"
CONDITION = (
    '(currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC"))'
    " && (currentEvent.isTargetAchievedEvent == true)"
)


def body(**over):
    data = {
        "name": "Instant ABC",
        "activity": "target_period_elapsed",
        "start": "2026-01-01",
        "end": "2026-12-31",
        "is_active": True,
        "condition": CONDITION,
        "actions": [
            {"type": "award_points", "points": 100, "basis": "fixed", "rounding": "floor",
             "expiry_days": 365, "points_type": "regular"},
            {"type": "issue_coupon", "series": "SUMMER10"},
            {"type": "send_message", "channel": "sms", "template": "Hi {customer.name}, {points} points!"},
        ],
    }  # fmt: skip
    data.update(over)
    return data


@pytest.fixture
def series(api, configurer):
    response = api(configurer).post(
        "/api/v1/coupon-series/", {"code": "SUMMER10", "generate": 3}, format="json"
    )
    assert response.status_code == 201, response.content
    assert (response.json()["total"], response.json()["available"]) == (3, 3)
    return response.json()


def test_create_and_read_a_promotion_with_its_ordered_actions(api, configurer, make_group, series):
    group = make_group("ABC")
    response = api(configurer).post(URL, body(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["condition"] == CONDITION
    assert [a["type"] for a in data["actions"]] == ["award_points", "issue_coupon", "send_message"]
    assert data["actions"][0] == {"type": "award_points", "basis": "fixed", "points": 100.0,
                                  "percent": None, "rounding": "floor", "expiry_days": 365,
                                  "points_type": "regular"}  # fmt: skip
    assert data["actions"][1] == {"type": "issue_coupon", "series": "SUMMER10"}
    assert data["milestones"] == [
        {"id": group.id, "name": "ABC", "start": "2026-03-01", "end": "2026-05-31"}
    ]
    listed = api(configurer).get(URL).json()
    assert [p["name"] for p in listed] == ["Instant ABC"]
    assert api(configurer).get(f"{URL}{data['id']}/").json()["actions"] == data["actions"]


def test_a_condition_that_does_not_parse_is_a_400_naming_the_position(api, configurer, make_group):
    make_group("ABC")
    response = api(configurer).post(
        URL, body(condition='currentEvent.targetAchieved("ABC") >', actions=[]), format="json"
    )
    assert response.status_code == 400
    (message,) = response.json()["condition"]
    assert "at position" in message
    assert not Promotion.objects.exists()


def test_a_single_equals_sign_is_refused_with_its_position(api, configurer, make_group):
    make_group("ABC")
    rule = "currentEvent.isTargetAchievedEvent = true"
    response = api(configurer).post(URL, body(condition=rule, actions=[]), format="json")
    assert response.status_code == 400
    (message,) = response.json()["condition"]
    assert "==" in message and f"at position {rule.index('=')}" in message


def test_a_condition_naming_an_unknown_target_is_refused(api, configurer, make_group):
    make_group("ABC")
    rule = 'currentEvent.targetAchieved("ABD") > 0'
    response = api(configurer).post(URL, body(condition=rule, actions=[]), format="json")
    assert response.status_code == 400
    assert response.json()["condition"] == [
        "Unknown target 'ABD': no target or milestone of this organisation has that name "
        f"(at position {rule.index('ABD') - 1})"
    ]


def test_a_promotion_shorter_than_the_milestone_it_names_is_refused(api, configurer, make_group):
    make_group("ABC")  # March 1 to May 31
    response = api(configurer).post(URL, body(end="2026-04-30", actions=[]), format="json")
    assert response.status_code == 400
    assert "shorter than the milestone 'ABC'" in response.json()["end"][0]
    ok = api(configurer).post(
        URL, body(start="2026-03-01", end="2026-05-31", actions=[]), format="json"
    )
    assert ok.status_code == 201, ok.content


def test_bad_actions_are_refused_with_the_action_named(api, configurer, make_group):
    make_group("ABC")
    actions = [
        {"type": "award_points", "basis": "percent_of_achieved"},
        {"type": "issue_coupon", "series": "NOPE"},
        {"type": "send_message", "channel": "sms", "template": "Hi {customer.__class__}"},
    ]
    response = api(configurer).post(URL, body(actions=actions), format="json")
    assert response.status_code == 400
    errors = response.json()["actions"]
    assert errors[0].startswith("action 1: percent:")
    assert errors[1] == "action 2: series: unknown coupon series 'NOPE'."
    assert errors[2].startswith("action 3: template: Unknown placeholder {customer.__class__}")


def test_patch_changes_fields_and_replaces_the_actions(api, configurer, make_group, series):
    make_group("ABC")
    created = api(configurer).post(URL, body(), format="json").json()
    response = api(configurer).patch(
        f"{URL}{created['id']}/",
        {"is_active": False, "actions": [{"type": "award_points", "basis": "percent_over_target",
                                          "percent": 5, "points_type": "promotional"}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["is_active"] is False
    assert data["condition"] == CONDITION
    assert [(a["basis"], a["percent"], a["rounding"]) for a in data["actions"]] == [
        ("percent_over_target", 5.0, "actual")
    ]
    bad = api(configurer).patch(f"{URL}{created['id']}/", {"condition": "(("}, format="json")
    assert bad.status_code == 400 and "at position" in bad.json()["condition"][0]
    assert Promotion.objects.get().condition == CONDITION


def test_names_are_unique_in_the_organisation(api, configurer, make_group):
    make_group("ABC")
    assert api(configurer).post(URL, body(actions=[]), format="json").status_code == 201
    response = api(configurer).post(URL, body(actions=[]), format="json")
    assert response.status_code == 400


def test_only_configurers_write_and_every_role_reads(
    api, configurer, member_care, integration, make_group
):
    make_group("ABC")
    assert api(member_care).post(URL, body(actions=[]), format="json").status_code == 403
    assert api(integration).post(URL, body(actions=[]), format="json").status_code == 403
    assert api().get(URL).status_code == 401
    created = api(configurer).post(URL, body(actions=[]), format="json").json()
    listed = api(member_care).get(URL)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == [created["id"]]
    assert (
        api(integration)
        .patch(f"{URL}{created['id']}/", {"is_active": False}, format="json")
        .status_code
        == 403
    )
    assert api(member_care).get("/api/v1/awards/").status_code == 200


def test_another_organisations_promotion_answers_404(api, configurer, other_configurer, make_group):
    make_group("ABC")
    created = api(configurer).post(URL, body(actions=[]), format="json").json()
    assert api(other_configurer).get(f"{URL}{created['id']}/").status_code == 404
    assert (
        api(other_configurer)
        .patch(f"{URL}{created['id']}/", {"is_active": False}, format="json")
        .status_code
        == 404
    )
    assert api(other_configurer).get(URL).json() == []
    # Another organisation's milestone names are unknown here.
    response = api(other_configurer).post(URL, body(actions=[]), format="json")
    assert response.status_code == 400 and "Unknown target 'ABC'" in response.json()["condition"][0]


def test_awards_are_listed_with_the_contract_fields_and_filters(
    api, configurer, member_care, other_configurer, make_group, promo, post, run
):
    abc = make_group("ABC")
    xyz = make_group("XYZ", targets=[{"name": "XYZ", "kpi": "gross_sales", "value": Decimal(500)}])
    promotion = promo(
        "currentEvent.isTargetAchievedEvent == true",
        [{"type": "award_points", "basis": "fixed", "points": 50, "expiry_days": 30},
         {"type": "send_message", "channel": "sms", "template": "{points} for {target.name}"}],
        start=date(2026, 3, 1), end=date(2026, 5, 31),
    )  # fmt: skip
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 1200),
        txn(2, "2026-03-04T11:00:00+00:00", 600, mobile="9000000002"),
    )
    run()
    awards = api(member_care).get("/api/v1/awards/").json()
    # customer 1 reached ABC and XYZ; customer 2 reached XYZ: 3 events x 2 actions
    assert len(awards) == 6
    first = awards[0]
    for field in ("type", "customer", "promotion", "target", "period", "event", "points",
                  "coupon_code", "message", "created_at"):  # fmt: skip
        assert field in first
    assert (first["type"], first["points"], first["promotion"], first["till"]) == (
        "award_points", 50.0, promotion.id, "T1")  # fmt: skip
    messages = [a["message"] for a in awards if a["type"] == "send_message"]
    assert sorted(messages) == ["50 for ABC", "50 for XYZ", "50 for XYZ"]

    c2 = next(
        a["customer"]
        for a in awards
        if a["message"] == "50 for XYZ" and a["customer"] != first["customer"]
    )
    by_customer = api(member_care).get(f"/api/v1/awards/?customer={c2}").json()
    assert {a["customer"] for a in by_customer} == {c2} and len(by_customer) == 2
    by_target = api(member_care).get(f"/api/v1/awards/?target={abc.targets.get().id}").json()
    assert len(by_target) == 2 and {a["target"] for a in by_target} == {abc.targets.get().id}
    by_xyz = (
        api(member_care)
        .get(f"/api/v1/awards/?target={xyz.targets.get().id}&type=award_points")
        .json()
    )
    assert len(by_xyz) == 2
    assert api(member_care).get(f"/api/v1/awards/?promotion={promotion.id + 1}").json() == []
    assert api(other_configurer).get("/api/v1/awards/").json() == []


def test_the_schema_describes_promotions_and_awards(api, configurer):
    response = api(configurer).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/promotions/", "/api/v1/promotions/{id}/", "/api/v1/awards/"} <= set(paths)


def test_points_type_is_regular_or_promotional(api, configurer, make_group):
    make_group("ABC")
    actions = [{"type": "award_points", "points": 1, "points_type": "both"}]
    response = api(configurer).post(URL, body(actions=actions), format="json")
    assert response.status_code == 400
    assert "not a points type" in str(response.json()["actions"])
    actions[0]["points_type"] = "promotional"
    response = api(configurer).post(URL, body(actions=actions), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["actions"][0]["points_type"] == "promotional"
