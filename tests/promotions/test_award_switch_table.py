"""Reference 001, "How the EMF behaves b/w Milestones & Loyalty promotions": the five rows
of ENABLE_AWARD_WHEN_TARGET_ACHIEVED x isTargetAchievedEvent, end to end (activity ->
tracking -> target event -> promotion -> award; the cycle end by `evaluate_cycles`)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from evaluation.models import TargetEvent
from promotions.models import Award

from .conftest import close_cycles, txn

pytestmark = pytest.mark.django_db

REACHED = 'currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")'
AFTER_MARCH = datetime(2026, 4, 2, tzinfo=UTC)


def _achieve_in_march(post, run):
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 600),
        txn(2, "2026-03-10T10:00:00+00:00", 600),
    )
    run()


def _awarded_on():
    return [a.event.type for a in Award.objects.select_related("event").order_by("id")]


@pytest.mark.parametrize(
    "switch, flag, before_cycle_end, after_cycle_end",
    [
        # Active / true: the rule holds on the immediate event only.
        (True, " && currentEvent.isTargetAchievedEvent == true", ["target_achieved"], ["target_achieved"]),
        # Active / false: the immediate event arrives but pays nothing; the cycle end pays.
        (True, " && currentEvent.isTargetAchievedEvent == false", [], ["period_elapsed"]),
        # Active / rule not written: the documented double award.
        (True, "", ["target_achieved"], ["target_achieved", "period_elapsed"]),
        # Inactive / true: only the cycle-end event arrives, and it is not the achievement event.
        (False, " && currentEvent.isTargetAchievedEvent == true", [], []),
        # Inactive / false: the cycle end pays.
        (False, " && currentEvent.isTargetAchievedEvent == false", [], ["period_elapsed"]),
    ],
    ids=["active-true", "active-false", "active-not-written", "inactive-true", "inactive-false"],
)  # fmt: skip
def test_award_switch_table_row(
    org, make_group, promo, post, run, switch, flag, before_cycle_end, after_cycle_end
):
    org.award_when_target_achieved = switch
    org.save()
    make_group()
    promotion = promo(REACHED + flag)

    _achieve_in_march(post, run)
    immediate = TargetEvent.objects.filter(type="target_achieved")
    assert immediate.count() == (1 if switch else 0)
    assert all(e.is_target_achieved_event and e.consumed_at for e in immediate)
    assert _awarded_on() == before_cycle_end

    close_cycles(AFTER_MARCH)
    elapsed = TargetEvent.objects.get(type="period_elapsed", period_name="ABC P1")
    assert elapsed.is_target_achieved_event is False
    assert (elapsed.achieved, elapsed.defined) == (Decimal(1200), Decimal(1000))
    assert elapsed.consumed_at is not None
    assert _awarded_on() == after_cycle_end
    assert all(a.promotion_id == promotion.id and a.points == 100 for a in Award.objects.all())


def test_the_cycle_end_event_comes_even_when_the_target_was_missed(
    org, make_group, promo, post, run
):
    """ "An event request is sent even if targetAchieved < targetDefined": a rule on the gap
    can act on the customers who missed."""
    make_group()
    promo(
        "currentEvent.isTargetAchievedEvent == false"
        ' && currentEvent.targetGaps("ABC") > 0 && currentEvent.targetGaps("ABC") <= 500',
        [{"type": "award_points", "basis": "fixed", "points": 10}],
    )
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 700),
        txn(2, "2026-03-05T10:00:00+00:00", 100, mobile="9000000002"),
    )
    run()
    close_cycles(AFTER_MARCH)
    # 9000000001 is 300 short (paid), 9000000002 is 900 short (not paid).
    assert list(Award.objects.values_list("customer__mobile", "points")) == [
        ("9000000001", Decimal(10))
    ]
