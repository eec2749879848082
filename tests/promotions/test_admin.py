"""Admin screens: promotions with the rule validated on save, the liability report and CSV."""

import csv
import io
from decimal import Decimal

import pytest

from promotions.models import Promotion, PromotionAction

from .conftest import txn

pytestmark = pytest.mark.django_db

ADD = "/admin/promotions/promotion/add/"


def form(**over):
    data = {
        "name": "Instant",
        "description": "",
        "activity": "target_period_elapsed",
        "start": "2026-01-01",
        "end": "2026-12-31",
        "is_active": "on",
        "condition": 'currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")',
        "actions-TOTAL_FORMS": "1",
        "actions-INITIAL_FORMS": "0",
        "actions-MIN_NUM_FORMS": "0",
        "actions-MAX_NUM_FORMS": "1000",
        "actions-0-position": "0",
        "actions-0-type": "award_points",
        "actions-0-basis": "fixed",
        "actions-0-points": "100",
        "actions-0-rounding": "actual",
        "actions-0-points_type": "regular",
    }
    data.update(over)
    return data


def test_a_configurer_creates_a_promotion_with_actions_in_the_admin(
    admin_client_for, configurer, make_group
):
    make_group("ABC")
    client = admin_client_for(configurer)
    assert client.get(ADD).status_code == 200
    response = client.post(ADD, form())
    assert response.status_code == 302, response.content.decode()[:3000]
    promotion = Promotion.objects.get()
    assert promotion.organisation_id == configurer.organisation_id
    assert promotion.created_by == configurer
    assert PromotionAction.objects.get().points == 100


def test_the_rule_is_validated_on_save_and_the_error_shows_its_position(
    admin_client_for, configurer, make_group
):
    make_group("ABC")
    client = admin_client_for(configurer)
    rule = 'currentEvent.targetAchieved("ABC") >> 1'
    response = client.post(ADD, form(condition=rule))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["condition"]
    assert len(errors) == 1 and "at position" in errors[0]
    assert not Promotion.objects.exists()


def test_the_admin_refuses_a_promotion_shorter_than_its_milestone_and_a_bad_template(
    admin_client_for, configurer, make_group
):
    make_group("ABC")
    client = admin_client_for(configurer)
    response = client.post(ADD, form(end="2026-04-01"))
    assert "shorter than the milestone" in str(response.context["adminform"].form.errors)
    response = client.post(
        ADD,
        form(**{"actions-0-type": "send_message", "actions-0-channel": "sms",
                "actions-0-template": "Hi {customer.password}"}),
    )  # fmt: skip
    assert response.status_code == 200
    assert "Unknown placeholder {customer.password}" in response.content.decode()
    assert not Promotion.objects.exists()


def test_member_care_cannot_open_promotions_but_sees_the_ledger(
    admin_client_for, member_care, make_group, promo, post, run
):
    _two_milestones_paid(make_group, promo, post, run)
    client = admin_client_for(member_care)
    assert client.get(ADD).status_code == 403
    ledger = client.get("/admin/promotions/award/")
    assert ledger.status_code == 200
    assert ledger.context["cl"].result_count == 4  # two actions on each milestone's event
    liability = client.get("/admin/promotions/award/liability/")
    assert liability.status_code == 200
    assert sorted(r["target_group__name"] for r in liability.context["rows"]) == ["ABC", "XYZ"]


def _two_milestones_paid(make_group, promo, post, run):
    make_group("ABC")
    make_group("XYZ", targets=[{"name": "XYZ", "kpi": "gross_sales", "value": Decimal(500)}])
    promo(
        "currentEvent.isTargetAchievedEvent == true",
        [{"type": "award_points", "basis": "percent_of_achieved", "percent": 10},
         {"type": "award_points", "basis": "fixed", "points": 5, "points_type": "promotional"}],
    )  # fmt: skip
    post(txn(1, "2026-03-04T10:00:00+00:00", 1200))
    run()


def test_the_liability_report_splits_one_promotion_by_milestone(
    admin_client_for, configurer, make_group, promo, post, run
):
    _two_milestones_paid(make_group, promo, post, run)
    client = admin_client_for(configurer)
    response = client.get("/admin/promotions/award/liability/")
    assert response.status_code == 200
    rows = {r["target_group__name"]: r for r in response.context["rows"]}
    assert (rows["ABC"]["regular_points"], rows["ABC"]["promotional_points"]) == (120, 5)
    assert (rows["XYZ"]["regular_points"], rows["XYZ"]["promotional_points"]) == (120, 5)

    exported = client.get("/admin/promotions/award/liability/?format=csv")
    assert exported["Content-Type"] == "text/csv"
    table = list(csv.reader(io.StringIO(exported.content.decode())))
    assert table[0][:4] == ["Milestone id", "Milestone", "Target id", "Target"]
    assert [(r[1], r[3], Decimal(r[4]), Decimal(r[5]), Decimal(r[6])) for r in table[1:]] == [
        ("ABC", "ABC", Decimal(120), Decimal(5), Decimal(125)),
        ("XYZ", "XYZ", Decimal(120), Decimal(5), Decimal(125)),
    ]


def test_the_liability_report_is_per_organisation(
    admin_client_for, other_configurer, make_group, promo, post, run
):
    _two_milestones_paid(make_group, promo, post, run)
    response = admin_client_for(other_configurer).get("/admin/promotions/award/liability/")
    assert list(response.context["rows"]) == []


def test_another_organisations_promotion_is_not_found_in_the_admin(
    admin_client_for, other_configurer, make_group, promo
):
    make_group("ABC")
    promotion = promo("currentEvent.isTargetAchievedEvent == true")
    client = admin_client_for(other_configurer)
    response = client.get(f"/admin/promotions/promotion/{promotion.id}/change/")
    assert response.status_code == 302  # the admin redirects a missing object to its list
    assert client.get("/admin/promotions/promotion/").context["cl"].result_count == 0


def test_actions_are_numbered_in_the_order_given(admin_client_for, configurer, make_group):
    make_group("ABC")
    client = admin_client_for(configurer)
    data = form(
        **{
            "actions-TOTAL_FORMS": "2",
            "actions-0-position": "5",
            "actions-1-position": "5",
            "actions-1-type": "send_message",
            "actions-1-channel": "sms",
            "actions-1-template": "{points} points",
        }
    )
    assert "duplicate data for position" in client.post(ADD, data).content.decode()
    data["actions-0-position"], data["actions-1-position"] = "5", "7"
    assert client.post(ADD, data).status_code == 302
    promotion = Promotion.objects.get()
    assert list(promotion.actions.values_list("position", "type")) == [
        (0, "award_points"),
        (1, "send_message"),
    ]
    # Deleting the first action renumbers the rest.
    first, second = promotion.actions.order_by("position")
    change = f"/admin/promotions/promotion/{promotion.id}/change/"
    edit = form(
        **{
            "actions-TOTAL_FORMS": "2",
            "actions-INITIAL_FORMS": "2",
            "actions-0-id": str(first.id),
            "actions-0-promotion": str(promotion.id),
            "actions-0-DELETE": "on",
            "actions-1-id": str(second.id),
            "actions-1-promotion": str(promotion.id),
            "actions-1-position": "1",
            "actions-1-type": "send_message",
            "actions-1-channel": "sms",
            "actions-1-template": "{points} points",
        }
    )
    assert client.post(change, edit).status_code == 302
    assert list(promotion.actions.values_list("position", "type")) == [(0, "send_message")]
