"""Issue 16: a promotion pays a given achievement (customer, target, cycle, trigger) at most
once, hears only the events of the targets its condition names, and books the award to the
target whose achievement paid. Use cases 1 and 5 of reference 001 followed literally."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from evaluation.models import Activity, ActivityStatus, TargetEvent
from evaluation.reprocess import reprocess_execute, reprocess_start
from milestones_site.celery import app as celery_app
from promotions.consumer import target_events_consume
from promotions.models import Award

from .conftest import close_cycles, txn

pytestmark = pytest.mark.django_db

AFTER_MARCH = datetime(2026, 4, 2, tzinfo=UTC)
REACHED = 'currentEvent.targetAchieved("{0}") > currentEvent.targetDefined("{0}")'
IMMEDIATE = " && currentEvent.isTargetAchievedEvent == true"


def switch(org, active):
    org.award_when_target_achieved = active
    org.save()


def test_use_case_1_pays_once_for_abc_only_whatever_other_milestones_are_reached(
    org, make_group, promo, post, run
):
    switch(org, True)
    for name in ("ABC", "XYZ", "QRS"):
        make_group(name)
    promo(f"({REACHED.format('ABC')}) && (currentEvent.isTargetAchievedEvent == true)")
    post(txn(1, "2026-03-04T10:00:00+00:00", 1200))  # reaches ABC, XYZ and QRS at once
    run()
    post(txn(2, "2026-03-05T10:00:00+00:00", 100))
    run()
    assert TargetEvent.objects.filter(type="target_achieved").count() == 3
    award = Award.objects.get()
    assert (award.target_group.name, award.points) == ("ABC", Decimal(100))
    close_cycles(AFTER_MARCH)
    assert Award.objects.count() == 1


def test_use_case_5_pays_once_per_milestone_each_booked_to_its_own(
    org, make_group, promo, post, run
):
    switch(org, True)
    make_group("ABC")
    make_group("XYZ", targets=[{"name": "XYZ", "kpi": "gross_sales", "value": Decimal(2000)}])
    make_group("Other")
    promo(
        f'(({REACHED.format("ABC")} && currentEvent.targetName.contains("ABC")) || '
        f'({REACHED.format("XYZ")} && currentEvent.targetName.contains("XYZ")))' + IMMEDIATE
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    post(txn(2, "2026-03-06T10:00:00+00:00", 1000))
    run()
    close_cycles(AFTER_MARCH)
    booked = sorted(Award.objects.values_list("target__name", "event__type"))
    assert booked == [("ABC", "target_achieved"), ("XYZ", "target_achieved")]


def test_a_rule_combining_two_targets_pays_once_per_cycle_when_the_second_is_reached(
    org, make_group, promo, post, run
):
    """ "2x points on completing $1000 and 1000 bonus points on 5 visits in a year"."""
    switch(org, True)
    make_group("Spend")
    make_group("Visits", targets=[{"name": "Visits", "kpi": "transaction_count", "value": 5}])
    both = "currentEvent.targetAchieved(\"Spend\") >= currentEvent.targetDefined(\"Spend\") && currentEvent.targetAchieved(\"Visits\") >= currentEvent.targetDefined(\"Visits\")"  # fmt: skip
    promo(both + IMMEDIATE, [{"type": "award_points", "basis": "fixed", "points": 1000}])
    post(txn(1, "2026-03-02T10:00:00+00:00", 1100))  # Spend reached on the first visit
    run()
    assert not Award.objects.exists()
    for day in range(3, 8):  # visits 2..6: the 5th reaches Visits
        post(txn(day, f"2026-03-{day:02d}T10:00:00+00:00", 10))
        run()
    close_cycles(AFTER_MARCH)
    award = Award.objects.get()
    assert (award.target.name, award.event.type, award.points) == (
        "Visits",
        "target_achieved",
        Decimal(1000),
    )


def test_the_ledger_refuses_a_second_payment_of_one_achievement(org, make_group, promo, post, run):
    switch(org, True)
    make_group("ABC")
    promotion = promo(REACHED.format("ABC").replace(">", ">=") + IMMEDIATE)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1000))
    run()
    award = Award.objects.get()
    event = award.event
    # the same achievement carried by another event (a replay tool writing its own key)
    copy = TargetEvent.objects.create(
        organisation_id=event.organisation_id, type=event.type, dedupe_key="replayed-1",
        customer=event.customer, target_group_id=event.target_group_id, target=event.target,
        cycle_ordinal=event.cycle_ordinal, period_name=event.period_name, achieved=event.achieved,
        defined=event.defined, is_target_achieved_event=True, occurred_at=event.occurred_at,
    )  # fmt: skip
    assert copy.achievement == event.achievement
    target_events_consume(event_ids=[copy.id])
    assert Award.objects.count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Award.objects.create(
            organisation=org, promotion=promotion, event=copy, achievement=copy.achievement,
            action_index=0, type="award_points", status="done", customer=event.customer,
            target_group_id=event.target_group_id, awarded_at=event.occurred_at,
        )  # fmt: skip


def test_reprocessing_a_backdated_milestone_hands_its_events_to_promotions(
    org, make_group, promo, post, run, django_capture_on_commit_callbacks
):
    switch(org, True)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()  # tracked before the milestone existed: counts nowhere
    assert Activity.objects.get().status == ActivityStatus.DONE
    group = make_group("ABC")
    promo(REACHED.format("ABC") + IMMEDIATE)
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the queued consumption runs inline
    try:
        run_row = reprocess_start(target_group=group, queue=False)
        with django_capture_on_commit_callbacks(execute=True):
            reprocess_execute(run_id=run_row.id)
    finally:
        celery_app.conf.task_always_eager = eager
    award = Award.objects.get()  # paid by the hand-off, with no sweep and no pipeline
    assert award.event.type == "target_achieved" and award.target.name == "ABC"
