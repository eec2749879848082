"""Cycle-end evaluation, offset days, per-customer cycles, unified and milestones-achieved
targets, reprocessing."""

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections

from enrolment.models import Customer, Enrolment
from evaluation import cycle_end
from evaluation.cycle_end import evaluate_cycles, evaluation_plan
from evaluation.models import (
    Activity,
    EvaluationRun,
    GroupAchievement,
    Progress,
    RunStatus,
    TargetEvent,
)
from evaluation.reprocess import reprocess_execute, reprocess_start
from tests.evaluation.conftest import txn

pytestmark = pytest.mark.django_db
APRIL_2 = datetime(2026, 4, 2, tzinfo=UTC)


def march_group(make_group, name="March", **over):
    return make_group(
        name,
        cycle={
            "type": "fixed_calendar",
            "frequency": "monthly",
            "start": date(2026, 3, 1),
            "count": 1,
        },
        **over,
    )


def elapsed(**filters):
    return TargetEvent.objects.filter(type="period_elapsed", **filters)


def enrol(org, group, *mobiles):
    for mobile in mobiles:
        customer, _ = Customer.objects.get_or_create(organisation=org, mobile=mobile)
        Enrolment.objects.get_or_create(
            organisation=org, target_group=group, customer=customer, defaults={"source": "api"}
        )


def test_one_period_elapsed_event_per_enrolled_customer_achieved_or_not(
    org, make_group, post, track, stores
):
    group = march_group(make_group, targets=[{"name": "Spend", "kpi": "gross_sales", "value": Decimal(1000),
                                              "sub_targets": [{"name": "ABC1", "criteria": "percentage", "value": Decimal(30)}]}])  # fmt: skip
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 1200),
        txn(2, "2026-03-04T11:00:00+00:00", 400, mobile="9000000002"),
    )
    track()
    enrol(org, group, "9000000003")
    summary = evaluate_cycles(as_of=APRIL_2)
    assert summary.events == 3
    events = {e.customer.mobile: e for e in elapsed().select_related("customer")}
    assert (events["9000000001"].achieved, events["9000000001"].defined) == (1200, 1000)
    assert events["9000000001"].milestone_triggers == ["ABC1"] and events[
        "9000000002"
    ].milestone_triggers == ["ABC1"]
    assert (events["9000000003"].achieved, events["9000000003"].milestone_triggers) == (0, [])
    assert all(
        e.is_target_achieved_event is False and e.period_name == "March P1" for e in events.values()
    )
    assert EvaluationRun.objects.get().status == RunStatus.DONE


def test_evaluating_twice_writes_nothing_more(org, make_group, post, track, stores):
    march_group(make_group)
    post(txn(1, "2026-03-04T11:00:00+00:00", 10))
    track()
    assert evaluate_cycles(as_of=APRIL_2).events == 1
    assert evaluate_cycles(as_of=APRIL_2).events == 0
    assert elapsed().count() == 1


def test_a_killed_run_resumes_with_exactly_one_event_per_customer(org, make_group, monkeypatch):
    group = march_group(make_group)
    enrol(org, group, *[f"90000001{i:02d}" for i in range(30)])
    monkeypatch.setattr(cycle_end, "CHUNK_SPAN", 10)
    (run,) = evaluation_plan(as_of=APRIL_2)
    assert len(run.chunks) == 3
    cycle_end.evaluation_run_chunk(
        run_id=run.id, lo=run.chunks[0][0], hi=run.chunks[0][1]
    )  # then the worker dies
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.processed == 10
    evaluate_cycles(as_of=APRIL_2)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.processed == 30
    assert elapsed().count() == 30
    assert elapsed().values("customer").distinct().count() == 30


def test_offset_days_delay_the_event(org, make_group, stores, post, track):
    march_group(make_group, offset_days=3)
    post(txn(1, "2026-03-04T11:00:00+00:00", 10))
    track()
    assert evaluate_cycles(as_of=datetime(2026, 4, 2, tzinfo=UTC)).events == 0
    assert evaluate_cycles(as_of=datetime(2026, 4, 4, tzinfo=UTC)).events == 1
    # March ends at 24:00 on the 31st in Kolkata (18:30 UTC); plus 3 days.
    assert elapsed().get().occurred_at == datetime(2026, 4, 3, 18, 30, tzinfo=UTC)


def test_inactive_milestones_are_not_evaluated(org, make_group):
    group = march_group(make_group)
    enrol(org, group, "9000000001")
    group.is_active = False
    group.save()
    assert evaluate_cycles(as_of=APRIL_2).events == 0


def test_the_command_evaluates_as_of_a_date_and_refuses_a_wrong_one(org, make_group):
    group = march_group(make_group)
    enrol(org, group, "9000000001", "9000000002")
    out = StringIO()
    call_command("evaluate_cycles", "--as-of", "2026-03-15", stdout=out)
    assert "0 period-elapsed event(s)" in out.getvalue()
    call_command("evaluate_cycles", "--as-of", "2026-04-02T00:00:00+00:00", stdout=out)
    assert "2 period-elapsed event(s)" in out.getvalue()
    with pytest.raises(CommandError, match="ISO date"):
        call_command("evaluate_cycles", "--as-of", "yesterday")


def test_planners_queue_each_run_once(org, make_group, monkeypatch):
    group = march_group(make_group)
    enrol(org, group, "9000000001")
    queued = []
    monkeypatch.setattr("evaluation.tasks.evaluate_chunk.delay", lambda *args: queued.append(args))
    evaluate_cycles(as_of=APRIL_2, inline=False)
    evaluate_cycles(as_of=APRIL_2, inline=False)
    assert len(queued) == 1 and EvaluationRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent planners: PostgreSQL")
def test_two_beats_at_once_still_evaluate_each_cycle_once(org, make_group, monkeypatch):
    group = march_group(make_group)
    enrol(org, group, *[f"90000002{i:02d}" for i in range(20)])
    errors = []

    def beat():
        try:
            evaluate_cycles(as_of=APRIL_2, inline=True)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if "unique" not in str(e).lower()]
    assert EvaluationRun.objects.count() == 1
    assert elapsed().count() == 20


def test_cyclic_cycles_are_evaluated_at_each_customers_own_end(
    org, make_group, post, track, stores
):
    org.timezone = "UTC"
    org.save()
    make_group(
        "Cyclic",
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        cycle={
            "type": "cyclic",
            "frequency": "days",
            "days": 30,
            "start": date(2026, 1, 1),
            "count": 3,
        },
    )
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 10),
        txn(2, "2026-03-20T10:00:00+00:00", 10, mobile="9000000002"),
    )
    track()
    evaluate_cycles(as_of=datetime(2026, 4, 10, tzinfo=UTC))
    assert [(e.customer.mobile, e.cycle_ordinal) for e in elapsed().select_related("customer")] == [
        ("9000000001", 1)
    ]
    evaluate_cycles(as_of=datetime(2026, 4, 20, tzinfo=UTC))
    assert elapsed().count() == 2
    assert elapsed(customer__mobile="9000000002").get().occurred_at == datetime(
        2026, 4, 19, 10, tzinfo=UTC
    )


@pytest.mark.parametrize("switch", [True, False])
def test_the_award_switch_decides_the_immediate_event_the_cycle_end_one_always_comes(
    org, make_group, post, track, stores, switch
):
    org.award_when_target_achieved = switch
    org.save()
    march_group(make_group)
    post(txn(1, "2026-03-04T11:00:00+00:00", 1500))
    track()
    evaluate_cycles(as_of=APRIL_2)
    kinds = sorted((e.type, e.is_target_achieved_event) for e in TargetEvent.objects.all())
    expected = [("period_elapsed", False)] + ([("target_achieved", True)] if switch else [])
    assert kinds == expected


@pytest.mark.parametrize(("mode", "events"), [("all", 0), ("any", 1)])
def test_unified_groups_reach_on_all_or_any(org, make_group, post, track, stores, mode, events):
    group = march_group(make_group, unified_mode=mode, targets=[
        {"name": "U spend", "kpi": "gross_sales", "value": Decimal(100)},
        {"name": "U visits", "kpi": "transaction_count", "value": Decimal(3)},
    ])  # fmt: skip
    post(txn(1, "2026-03-04T11:00:00+00:00", 150))
    track()
    unified = TargetEvent.objects.filter(type="target_achieved", target__isnull=True)
    assert unified.count() == events
    post(txn(2, "2026-03-05T11:00:00+00:00", 1), txn(3, "2026-03-06T11:00:00+00:00", 1))
    track()
    assert unified.count() == 1
    assert GroupAchievement.objects.filter(target_group=group).count() == 1


def test_third_level_walk_5000_steps_a_day_5_days_a_week_3_weeks_in_a_month(
    org, make_group, post, track
):
    org.timezone = "UTC"
    org.save()
    june = {"start": date(2026, 6, 1), "end": date(2026, 6, 30)}
    daily = make_group("Daily walk", **june, cycle={"type": "fixed_calendar", "frequency": "daily", "start": date(2026, 6, 1), "count": 30},
                       targets=[{"name": "5000 steps", "kpi": "event_sum", "event_name": "Walk", "attribute": "steps", "value": Decimal(5000)}])  # fmt: skip
    weekly = make_group("Weekly walk", **june, cycle={"type": "fixed_calendar", "frequency": "weekly", "start": date(2026, 6, 1), "count": 4},
                        targets=[{"name": "5 days", "kpi": "milestones_achieved", "source_target_group": daily.id, "value": Decimal(5)}])  # fmt: skip
    monthly = make_group("Monthly walk", **june, cycle={"type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 6, 1), "count": 1},
                         targets=[{"name": "3 weeks", "kpi": "milestones_achieved", "source_target_group": weekly.id, "value": Decimal(3)}])  # fmt: skip
    walks = []
    # Weeks 1-3: 5 good days each (Mon-Fri) with 6000 steps in two walks; week 4: only 2 good days.
    for week in range(4):
        for day in range(5 if week < 3 else 2):
            d = 1 + week * 7 + day
            walks.append(
                {
                    "id": f"w-{d}-a",
                    "type": "event",
                    "customer": {"mobile": "9000000001"},
                    "occurred_at": f"2026-06-{d:02d}T07:00:00+00:00",
                    "name": "Walk",
                    "attributes": {"steps": 3000},
                }
            )
            walks.append(
                {
                    "id": f"w-{d}-b",
                    "type": "event",
                    "customer": {"mobile": "9000000001"},
                    "occurred_at": f"2026-06-{d:02d}T19:00:00+00:00",
                    "name": "Walk",
                    "attributes": {"steps": 3000},
                }
            )
    # A short day: 4000 steps does not count.
    walks.append(
        {
            "id": "w-short",
            "type": "event",
            "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-06-06T07:00:00+00:00",
            "name": "Walk",
            "attributes": {"steps": 4000},
        }
    )
    post(*walks)
    track()
    weeks = {
        p.cycle_ordinal: p.achieved for p in Progress.objects.filter(target=weekly.targets.get())
    }
    assert weeks == {1: 5, 2: 5, 3: 5, 4: 2}
    month = Progress.objects.get(target=monthly.targets.get())
    assert month.achieved == 3 and month.achieved_at == datetime(2026, 6, 19, 19, tzinfo=UTC)
    assert (
        TargetEvent.objects.filter(type="target_achieved", target=monthly.targets.get()).count()
        == 1
    )


def test_reprocessing_a_backdated_milestone_equals_live_tracking_and_sends_nothing_twice(
    org, make_group, post, track, stores
):
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 700),
        txn(2, "2026-03-05T11:00:00+00:00", 500),
        txn(3, "2026-03-06T11:00:00+00:00", 50, mobile="9000000002"),
    )
    track()
    assert not Progress.objects.exists()  # nothing configured yet
    group = march_group(
        make_group,
        "Backdated",
        targets=[{"name": "Back spend", "kpi": "gross_sales", "value": Decimal(1000)}],
    )
    run = reprocess_start(target_group=group, queue=False)
    assert run.total == 2
    reprocess_execute(run_id=run.id)
    run.refresh_from_db()
    assert (run.status, run.processed) == (RunStatus.DONE, 2)
    totals = {p.customer.mobile: p.achieved for p in Progress.objects.select_related("customer")}
    assert totals == {"9000000001": 1200, "9000000002": 50}
    assert TargetEvent.objects.filter(type="target_achieved").count() == 1
    again = reprocess_start(target_group=group, queue=False)
    reprocess_execute(run_id=again.id)
    assert {
        p.customer.mobile: p.achieved for p in Progress.objects.select_related("customer")
    } == totals
    assert TargetEvent.objects.filter(type="target_achieved").count() == 1
    assert Activity.objects.filter(status="done").count() == 3


def test_reprocess_command_reports_progress(org, make_group, post, track, stores):
    post(txn(1, "2026-03-04T11:00:00+00:00", 700))
    track()
    group = march_group(make_group, "Later")
    out = StringIO()
    call_command("reprocess", str(group.id), stdout=out)
    assert "1/1 customers" in out.getvalue() and "status done" in out.getvalue()
    assert Progress.objects.get().achieved == 700
    with pytest.raises(CommandError, match="No milestone"):
        call_command("reprocess", "999999")
