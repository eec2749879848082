"""Issue 16: the condition doctor warns, at save, about conditions that would never pay or
pay twice with the organisation's award switch and milestones. Warnings never block."""

from datetime import date
from decimal import Decimal

import pytest

from promotions.doctor import condition_warnings, switch_change_affects

pytestmark = pytest.mark.django_db
LIVE = {
    "start": date(2026, 11, 1),
    "end": date(2027, 4, 30),
    "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 11, 1), "count": 6},
}  # fmt: skip


@pytest.fixture
def live_group(make_group):
    """A milestone live today (the conftest's March-May 2026 ones have ended)."""
    return lambda name, **over: make_group(name, **{**LIVE, **over})


REACHED_GT = 'currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")'
REACHED_GE = 'currentEvent.targetAchieved("ABC") >= currentEvent.targetDefined("ABC")'


def codes(org, condition, activity="target_period_elapsed"):
    return [w.code for w in condition_warnings(organisation=org, condition=condition, activity=activity)]  # fmt: skip


def switch(org, active):
    org.award_when_target_achieved = active
    org.save()


SUBS = [{"name": "ABC", "kpi": "gross_sales", "value": Decimal(1000),
         "sub_targets": [{"name": "ABC70", "criteria": "percentage", "value": Decimal(70)}]}]  # fmt: skip


def test_strict_greater_never_pays_at_exact_achievement(org, live_group):
    switch(org, True)
    live_group("ABC")
    assert codes(org, REACHED_GT + " && currentEvent.isTargetAchievedEvent == true") == [
        "strict_greater"
    ]
    assert codes(org, REACHED_GE + " && currentEvent.isTargetAchievedEvent == true") == []
    reversed_ = 'currentEvent.targetDefined("ABC") < currentEvent.targetAchieved("ABC")'
    assert codes(org, reversed_ + " && currentEvent.isTargetAchievedEvent == true") == [
        "strict_greater"
    ]


def test_achieved_event_clause_with_the_switch_inactive_never_pays(org, live_group):
    """Row 4 of the award switch table (Inactive, == true): the doctor warns it never can."""
    switch(org, False)
    live_group("ABC")
    assert codes(org, REACHED_GE + " && currentEvent.isTargetAchievedEvent == true") == [
        "never_achieved_event"
    ]
    assert codes(org, REACHED_GE + " && currentEvent.isTargetAchievedEvent == false") == []
    assert codes(org, REACHED_GE) == []


def test_no_achieved_event_clause_with_the_switch_active_pays_twice(org, live_group):
    switch(org, True)
    live_group("ABC")
    assert codes(org, REACHED_GE) == ["pays_twice"]
    assert codes(org, REACHED_GE, activity="sub_target_reached") == []


def test_a_name_in_no_live_or_upcoming_milestone(org, live_group, make_group):
    switch(org, False)
    live_group("ABC")
    ended = make_group("Old")
    ended.start, ended.end = ended.start.replace(year=2020), ended.end.replace(year=2020)
    type(ended).objects.filter(pk=ended.pk).update(start=ended.start, end=ended.end)
    warnings = condition_warnings(
        organisation=org,
        condition=REACHED_GE + ' || currentEvent.targetAchieved("Old") > 0',
    )
    assert [w.code for w in warnings] == ["unknown_target"]
    assert '"Old"' in warnings[0].message


def test_a_sub_target_no_named_target_has(org, live_group):
    switch(org, False)
    live_group("ABC", targets=SUBS)
    live_group("XYZ")
    assert codes(org, 'currentEvent.targetMilestoneTrigger.contains("ABC70")') == []
    assert codes(org, 'currentEvent.targetMilestoneTrigger.contains("ABC80")') == [
        "unknown_sub_target"
    ]
    named = (
        'currentEvent.targetExists("XYZ") && currentEvent.targetMilestoneTrigger.contains("ABC70")'
    )
    assert codes(org, named) == ["unknown_sub_target"]


def test_changing_the_switch_lists_the_promotions_whose_meaning_changes(org, live_group, promo):
    switch(org, False)
    live_group("ABC")
    dates = {"start": date(2026, 11, 1), "end": date(2027, 4, 30)}
    promo(REACHED_GE + " && currentEvent.isTargetAchievedEvent == false", name="End of cycle", **dates)  # fmt: skip
    promo(REACHED_GE, name="Any time", **dates)
    promo('currentEvent.targetMilestoneTrigger.contains("x")', name="Subs", activity="sub_target_reached", **dates)  # fmt: skip
    assert switch_change_affects(organisation=org, new_value=False) == []
    affected = switch_change_affects(organisation=org, new_value=True)
    assert [(a["name"], [w["code"] for w in a["warnings"]]) for a in affected] == [
        ("Any time", ["pays_twice"]),
        ("End of cycle", []),
    ]
    assert org.award_when_target_achieved is False  # asking changes nothing


def test_the_api_answers_the_warnings_and_saves_anyway(org, live_group, api, configurer):
    """Reference 004's "500 bonus points as soon as they make their 5th transaction" rule,
    copied literally, with the switch Inactive: two warnings, and the promotion is saved."""
    switch(org, False)
    live_group("Visits", targets=[{"name": "Visits", "kpi": "transaction_count", "value": 5}])
    body = {
        "name": "Fifth visit", "start": "2026-11-01", "end": "2027-04-30",
        "condition": 'currentEvent.targetAchieved("Visits") > currentEvent.targetDefined("Visits") && currentEvent.isTargetAchievedEvent == true',
        "actions": [{"type": "award_points", "basis": "fixed", "points": 500}],
    }  # fmt: skip
    response = api(configurer).post("/api/v1/promotions/", body, format="json")
    assert response.status_code == 201, response.content
    codes = [w["code"] for w in response.json()["warnings"]]
    assert codes == ["strict_greater", "never_achieved_event"]
    assert ">=" in response.json()["warnings"][0]["message"]
    fixed = body["condition"].replace(" > ", " >= ").replace("== true", "== false")
    response = api(configurer).patch(
        f"/api/v1/promotions/{response.json()['id']}/", {"condition": fixed}, format="json"
    )
    assert response.status_code == 200 and response.json()["warnings"] == []


def test_the_org_settings_answer_lists_the_promotions_whose_meaning_changes(
    org, live_group, promo, api, configurer
):
    switch(org, False)
    live_group("ABC")
    promo(REACHED_GE, name="Any time", start=date(2026, 11, 1), end=date(2027, 4, 30))
    response = api(configurer).patch(
        "/api/v1/org-settings/", {"award_when_target_achieved": True}, format="json"
    )
    assert response.status_code == 200
    affected = response.json()["promotions_affected"]
    assert [(a["name"], [w["code"] for w in a["warnings"]]) for a in affected] == [
        ("Any time", ["pays_twice"])
    ]


def test_the_promotions_list_shows_the_doctor_column_at_a_fixed_cost(
    org, live_group, promo, client, configurer
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    switch(org, True)
    live_group("ABC")
    dates = {"start": date(2026, 11, 1), "end": date(2027, 4, 30)}
    client.force_login(configurer)

    def listed():
        with CaptureQueriesContext(connection) as queries:
            html = client.get("/admin/promotions/promotion/").content.decode()
        return html, len(queries)

    promo(REACHED_GE, name="P0", **dates)
    html, few = listed()
    assert "Condition doctor" in html and "no isTargetAchievedEvent clause" in html
    for i in range(1, 6):
        promo(REACHED_GE, name=f"P{i}", **dates)
    html, many = listed()
    assert html.count("no isTargetAchievedEvent clause") == 6
    assert many == few  # the milestones are read once per page, not once per promotion
