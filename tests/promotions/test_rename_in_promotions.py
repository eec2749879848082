"""Renaming a target that promotions name (issue 16): refused with the promotions listed,
unless the edit asks to rename it in their conditions too ("rename_in_promotions")."""

from datetime import UTC, date, datetime

import pytest

from milestones.models import Target, TargetGroup
from promotions.admin import PromotionAdmin
from promotions.models import Award, Promotion
from promotions.services import condition_rename_target, target_name_literals

from .conftest import close_cycles, txn

pytestmark = pytest.mark.django_db

URL = "/api/v1/target-groups/"
AFTER_MARCH = datetime(2026, 4, 2, tzinfo=UTC)
PAYS = (
    'currentEvent.targetAchieved("Spend 1000") >= currentEvent.targetDefined("Spend 1000")'
    " && currentEvent.isTargetAchievedEvent == false"
)


@pytest.fixture
def group(make_group):
    from decimal import Decimal

    return make_group(
        "Spring spend",
        targets=[{"name": "Spend 1000", "kpi": "gross_sales", "value": Decimal(1000)}],
    )


def rename(client, group, new, **extra):
    target = group.targets.get()
    body = {"targets": [{"id": target.id, "name": new}], **extra}
    return client.patch(f"{URL}{group.id}/", body, format="json")


# --- refused -------------------------------------------------------------------------------


def test_renaming_a_target_promotions_name_is_refused_with_their_names(
    api, configurer, group, promo
):
    promo(PAYS, name="Gold payout")
    promo('currentEvent.targetName.contains("Spend 1000")', name="Spend note")
    promo('currentEvent.targetName.contains("Spend")', name="Unrelated")
    response = rename(api(configurer), group, "Spend 2000")
    assert response.status_code == 400, response.json()
    message = " ".join(response.json()["targets"])
    assert "Gold payout" in message and "Spend note" in message
    assert "Unrelated" not in message and "rename_in_promotions" in message
    assert Target.objects.get().name == "Spend 1000"
    assert Promotion.objects.get(name="Gold payout").condition == PAYS


def test_renaming_a_target_no_promotion_names_needs_nothing_more(api, configurer, group, promo):
    promo('currentEvent.targetName.contains("Spend")', name="Unrelated")
    response = rename(api(configurer), group, "Spend 2000")
    assert response.status_code == 200, response.json()
    assert Target.objects.get().name == "Spend 2000"


# --- renamed everywhere --------------------------------------------------------------------


def test_rename_in_promotions_rewrites_their_conditions(api, configurer, group, promo):
    promo(PAYS, name="Gold payout")
    promo(
        "currentEvent.targetExists('Spend 1000') && currentEvent.targetGaps(\"Spend 1000\") <= 0"
        ' && currentEvent.targetName.contains("Spend 1000") && currentEvent.targetPeriod.contains("P1")',
        name="Note",
    )
    response = rename(api(configurer), group, "Spend 2000", rename_in_promotions=True)
    assert response.status_code == 200, response.json()
    assert Target.objects.get().name == "Spend 2000"
    assert Promotion.objects.get(name="Gold payout").condition == PAYS.replace(
        "Spend 1000", "Spend 2000"
    )
    assert Promotion.objects.get(name="Note").condition == (
        "currentEvent.targetExists('Spend 2000') && currentEvent.targetGaps(\"Spend 2000\") <= 0"
        ' && currentEvent.targetName.contains("Spend 2000") && currentEvent.targetPeriod.contains("P1")'
    )


def test_a_renamed_target_still_pays_through_its_promotion(
    api, configurer, org, group, promo, post, run
):
    promotion = promo(PAYS, name="Gold payout")
    assert (
        rename(api(configurer), group, "Spend 2000", rename_in_promotions=True).status_code == 200
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 1200))
    run()
    close_cycles(AFTER_MARCH)
    award = Award.objects.get()
    assert award.promotion == promotion and award.target.name == "Spend 2000"
    assert award.points == 100 and award.period == "Spring spend P1"


def test_the_promotions_list_names_the_renamed_target_s_milestone(
    api, configurer, group, promo, admin_client_for
):
    promotion = promo(PAYS, name="Gold payout")
    rename(api(configurer), group, "Spend 2000", rename_in_promotions=True)
    listed = api(configurer).get("/api/v1/promotions/").json()
    assert [m["name"] for m in listed[0]["milestones"]] == ["Spring spend"]
    column = PromotionAdmin(Promotion, None).milestones(Promotion.objects.get(pk=promotion.pk))
    assert column == "Spring spend"


def test_a_promotion_that_no_longer_validates_refuses_the_whole_rename(
    api, configurer, group, promo
):
    promo(PAYS, name="Gold payout")
    # The milestone now outlasts the promotion (saved while it did not): re-validation says so.
    TargetGroup.objects.filter(pk=group.pk).update(end=date(2027, 3, 31))
    response = rename(api(configurer), group, "Spend 2000", rename_in_promotions=True)
    assert response.status_code == 400, response.json()
    problems = " ".join(response.json()["rename_in_promotions"])
    assert "Gold payout" in problems and "shorter than the milestone" in problems
    assert Target.objects.get().name == "Spend 1000"
    assert Promotion.objects.get().condition == PAYS


# --- the admin edit screen -----------------------------------------------------------------


def edit_post(client, group, **changes):
    """The edit screen as rendered, with `changes` on top (read-only fields not sent)."""
    from tests.milestones.test_admin_config import rendered_post_data

    url = f"/admin/milestones/targetgroup/{group.id}/change/"
    data = rendered_post_data(client.get(url))
    data.update(changes)
    return client.post(url, data)


def test_the_edit_screen_refuses_the_rename_at_the_target_s_name(
    admin_client_for, configurer, group, promo
):
    promo(PAYS, name="Gold payout")
    client = admin_client_for(configurer)
    page = client.get(f"/admin/milestones/targetgroup/{group.id}/change/")
    assert "Also rename it in the promotions that name it" in page.content.decode()
    response = edit_post(client, group, **{"targets-0-name": "Spend 2000"})
    assert response.status_code == 200
    errors = response.context["formset"].forms[0].errors["name"]
    assert any("Gold payout" in e for e in errors)
    assert Target.objects.get().name == "Spend 1000"


def test_the_edit_screen_renames_in_promotions_when_ticked(
    admin_client_for, configurer, group, promo
):
    promo(PAYS, name="Gold payout")
    client = admin_client_for(configurer)
    response = edit_post(
        client, group, **{"targets-0-name": "Spend 2000", "rename_in_promotions": "on"}
    )
    assert response.status_code == 302
    assert Target.objects.get().name == "Spend 2000"
    assert '"Spend 2000"' in Promotion.objects.get().condition


# --- the rewrite itself (pure) -------------------------------------------------------------


def test_only_the_quoted_name_inside_the_target_calls_is_rewritten():
    source = (
        'currentEvent.targetAchieved("Old") > 1 // targetAchieved("Old")\n'
        '&& currentEvent.name == "Old" && currentEvent.targetPeriod.contains("Old")'
        ' && currentEvent.targetAchieved("Older") > 0 && "targetAchieved(\\"Old\\")" != ""'
        " && currentEvent.targetName == 'Old'"
    )
    assert condition_rename_target(source, "Old", 'Ne"w') == (
        'currentEvent.targetAchieved("Ne\\"w") > 1 // targetAchieved("Old")\n'
        '&& currentEvent.name == "Old" && currentEvent.targetPeriod.contains("Old")'
        ' && currentEvent.targetAchieved("Older") > 0 && "targetAchieved(\\"Old\\")" != ""'
        " && currentEvent.targetName == 'Ne\"w'"
    )
    assert target_name_literals("currentEvent.targetDefined(", "Old") == []  # does not parse
