"""The set-based fold (evaluation.sql_fold) against the row-by-row fold: the same activities,
tracked in batches both ways, give the same progress, events, contributions and group
achievements, field by field."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from enrolment.models import Customer, CustomerTargetValue, Enrolment
from evaluation import sql_fold
from evaluation.models import (
    Activity,
    ActivityStatus,
    Contribution,
    CycleAnchor,
    GroupAchievement,
    Progress,
    TargetEvent,
)
from evaluation.tracking import activities_track

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, tzinfo=UTC)
MOBILES = [f"90000000{n:02d}" for n in range(8)]


def milestones(make_group):
    fixed = [
        make_group("Spend", targets=[{"name": "Spend", "kpi": "gross_sales", "value": Decimal(600), "sub_targets": [
            {"name": "Half", "criteria": "percentage", "value": Decimal(50)},
            {"name": "300", "criteria": "absolute", "value": Decimal(300)}]}]),
        make_group("Petrol", targets=[{"name": "Petrol net", "kpi": "net_sales", "entity": "line_item", "value": Decimal(150),
                                       "rule": 'currentLineItem.category == "petrol"'}]),
        make_group("Litres", targets=[{"name": "Litres", "kpi": "quantity", "entity": "line_item", "value": Decimal(20)}]),
        make_group("Visits", targets=[{"name": "Visits", "kpi": "transaction_count", "value": Decimal(4),
                                       "rule": "currentTxn.value >= 50"}]),
        make_group("Steps", targets=[
            {"name": "Walks", "kpi": "event_count", "event_name": "Walk", "value": Decimal(3)},
            {"name": "Step sum", "kpi": "event_sum", "event_name": "Walk", "attribute": "steps", "value": Decimal(9000)}]),
        make_group("Points", targets=[{"name": "Points", "kpi": "points", "points_type": "both", "value": Decimal(100)}]),
        make_group("Referrals", targets=[{"name": "Referrals", "kpi": "customer_event_count", "event_name": "referral", "value": Decimal(2)},
                                         {"name": "Returns", "kpi": "customer_event_count", "event_name": "return", "value": Decimal(2)}]),
        make_group("Unified", unified_mode="all", targets=[
            {"name": "U spend", "kpi": "gross_sales", "value": Decimal(200)},
            {"name": "U visits", "kpi": "transaction_count", "value": Decimal(3)}]),
        make_group("Weekly", cycle={"type": "fixed_calendar", "frequency": "weekly", "start": date(2026, 3, 2), "count": 8},
                   targets=[{"name": "Weekly spend", "kpi": "gross_sales", "value": Decimal(250)}]),
    ]  # fmt: skip
    row_by_row = [
        make_group("Days", targets=[{"name": "Days", "kpi": "days_of_activity", "value": Decimal(5)}]),
        make_group("Cyclic", cycle={"type": "cyclic", "frequency": "days", "days": 10, "start": date(2026, 3, 1), "count": 4},
                   targets=[{"name": "Cyclic spend", "kpi": "gross_sales", "value": Decimal(300)}]),
        make_group("Till", cycle={"type": "till_achievement", "start": date(2026, 3, 1), "count": 3},
                   targets=[{"name": "Till spend", "kpi": "gross_sales", "value": Decimal(200)}]),
    ]  # fmt: skip
    return fixed, row_by_row


def activities(seed: int) -> list[dict]:
    rng = random.Random(seed)
    out, bills = [], []
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(240):
        at = (start + timedelta(minutes=rng.randrange(60 * 24 * 58))).isoformat()
        mobile = rng.choice(MOBILES)
        kind = rng.random()
        base = {"id": f"a-{i}", "customer": {"mobile": mobile}, "occurred_at": at}
        if kind < 0.5:
            gross = rng.randrange(5, 160)
            bill = f"B{i}"
            bills.append((mobile, bill, gross))
            lines = [{"sku": "P", "category": rng.choice(["petrol", "milk"]), "quantity": rng.randrange(1, 9),
                      "gross": gross, "net": gross - 1}]  # fmt: skip
            out.append({**base, "type": "transaction", "store": "S1", "gross": gross, "net": gross - 1,
                        "bill_number": bill, "line_items": lines})  # fmt: skip
        elif kind < 0.6 and bills:
            mobile, bill, gross = rng.choice(bills)
            out.append({**base, "customer": {"mobile": mobile}, "type": "return", "bill_number": bill,
                        "gross": rng.randrange(1, gross + 1), "net": 1})  # fmt: skip
        elif kind < 0.8:
            out.append(
                {
                    **base,
                    "type": "event",
                    "name": "Walk",
                    "attributes": {"steps": rng.randrange(500, 6000)},
                }
            )
        elif kind < 0.9:
            out.append(
                {
                    **base,
                    "type": "points",
                    "regular": rng.randrange(0, 30),
                    "promotional": rng.randrange(0, 10),
                }
            )
        else:
            out.append({**base, "type": "customer_event", "name": "referral"})
    return out


def snapshot():
    progress = {
        (p.target.name, p.customer.mobile, p.cycle_ordinal): (
            p.achieved, p.target_value, p.achieved_at, p.reached_at, p.cycle_start, p.cycle_end, p.period_id)
        for p in Progress.objects.select_related("target", "customer")
    }  # fmt: skip
    events = {
        e.dedupe_key: (e.type, e.achieved, e.defined, e.milestone_value_defined, e.occurred_at,
                       e.period_name, e.milestone_triggers, e.sub_target_id, e.is_target_achieved_event)
        for e in TargetEvent.objects.all()
    }  # fmt: skip
    contributions = {
        (c.activity.external_id, c.progress.target.name, c.progress.cycle_ordinal): c.amount
        for c in Contribution.objects.select_related("activity", "progress__target")
    }
    groups = {
        (g.target_group.name, g.customer.mobile, g.cycle_ordinal): g.achieved_at
        for g in GroupAchievement.objects.select_related("target_group", "customer")
    }
    return progress, events, contributions, groups


def track_in_batches(size: int) -> None:
    ids = list(Activity.objects.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), size):
        activities_track(activity_ids=ids[start : start + size], now=NOW)


def forget_tracking() -> None:
    for model in (Contribution, Progress, TargetEvent, GroupAchievement, CycleAnchor, Enrolment):
        model.objects.all().delete()
    Activity.objects.update(status=ActivityStatus.PENDING, processed_at=None)


@pytest.mark.parametrize(("seed", "batch"), [(1, 240), (2, 37), (3, 1)])
def test_the_set_based_fold_writes_what_the_row_by_row_fold_writes(
    org, make_group, post, stores, settings, monkeypatch, seed, batch
):
    if connection.vendor != "postgresql":
        pytest.skip("the set-based fold is PostgreSQL's")
    org.allow_return_on_target = True
    org.award_when_target_achieved = True
    org.save()
    fixed, _ = milestones(make_group)
    items = activities(seed)
    for start in range(0, len(items), 100):
        post(*items[start : start + 100])
    # per-customer target values for two customers of the spend milestone
    spend = fixed[0].targets.get()
    for mobile, value in ((MOBILES[0], 250), (MOBILES[1], 90)):
        customer = Customer.objects.get(mobile=mobile)
        for ordinal in (3, 4):
            CustomerTargetValue.objects.create(organisation=org, target=spend, customer=customer,
                                               cycle_ordinal=ordinal, value=Decimal(value))  # fmt: skip
    folded = []
    real_fold = sql_fold.fold

    def spy(**kwargs):
        folded.append(sum(len(ms) for ms in kwargs["fast"].values()))
        return real_fold(**kwargs)

    monkeypatch.setattr(sql_fold, "fold", spy)
    settings.TRACKING_SQL_FOLD = True
    track_in_batches(batch)
    set_based = snapshot()
    assert sum(folded) > 200  # most matches went the set-based way

    forget_tracking()
    folded.clear()
    settings.TRACKING_SQL_FOLD = False
    track_in_batches(batch)
    assert folded == []
    row_by_row = snapshot()

    for got, want in zip(set_based, row_by_row, strict=True):
        assert got == want
    progress, events, contributions, groups = set_based
    # the comparison is worth something: every kind of row is there
    assert len(progress) > 100 and len(contributions) > 50 and groups
    kinds = {v[0] for v in events.values()}
    assert kinds == {"sub_target_achieved", "target_achieved"}
    assert any(key[0] == "Spend" and v[1] == Decimal(250) for key, v in progress.items())
    assert any(k.startswith("unified:") for k in events)


def test_a_batch_mixing_both_folds_keeps_each_target_on_one_side(
    org, make_group, post, stores, settings
):
    """A customer's target is folded one way for the whole batch: a return on a sales target
    sends all that target's matches of the batch to the row-by-row fold."""
    if connection.vendor != "postgresql":
        pytest.skip("the set-based fold is PostgreSQL's")
    org.allow_return_on_target = True
    org.save()
    fixed, row_by_row = milestones(make_group)
    post(
        {"id": "t1", "type": "transaction", "customer": {"mobile": MOBILES[0]}, "store": "S1",
         "occurred_at": "2026-03-03T10:00:00+00:00", "gross": 400, "net": 400, "bill_number": "X"},
        {"id": "r1", "type": "return", "customer": {"mobile": MOBILES[0]}, "bill_number": "X",
         "occurred_at": "2026-03-04T10:00:00+00:00", "gross": 100, "net": 100},
    )  # fmt: skip
    ids = list(Activity.objects.order_by("id").values_list("id", flat=True))
    matches = {}
    from evaluation import config_cache

    config = config_cache.org_config(org)
    activities_by_id = {a.id: a for a in Activity.objects.filter(id__in=ids)}
    for a in activities_by_id.values():
        for tcfg in config.targets_by_entity.get("transaction", ()):
            matches.setdefault(a.customer_id, []).append((a, tcfg, None))
    fast = sql_fold.split(matches)
    fast_targets = {t.target.name for ms in fast.values() for _, t, _ in ms}
    slow_targets = {t.target.name for ms in matches.values() for _, t, _ in ms}
    assert "Spend" in slow_targets and "Spend" not in fast_targets  # the return's target
    assert "Visits" in fast_targets  # transaction count: returns do not count for it
    assert {"Days", "Cyclic spend", "Till spend"} <= slow_targets
    assert not fast_targets & slow_targets
    activities_track(activity_ids=ids, now=NOW)
    spend = fixed[0].targets.get()
    assert Progress.objects.get(target=spend).achieved == Decimal(300)


def _both_ways(settings, batches: list[list[str]]):
    """Track the batches (external ids) with the set-based fold, then again row by row."""
    out = []
    for flag in (True, False):
        settings.TRACKING_SQL_FOLD = flag
        for external_ids in batches:
            ids = Activity.objects.filter(external_id__in=external_ids).values_list("id", flat=True)
            activities_track(activity_ids=list(ids), now=datetime(2026, 7, 20, tzinfo=UTC))
        out.append(snapshot())
        forget_tracking()
    return out


def test_targets_reached_in_both_folds_feed_milestones_achieved_in_time_order(
    org, make_group, post, stores, settings
):
    """A daily milestone with one target of each fold, feeding a weekly '2 days' target: the
    second day counts when it was reached, whichever fold reached it."""
    if connection.vendor != "postgresql":
        pytest.skip("the set-based fold is PostgreSQL's")
    org.timezone = "UTC"
    org.award_when_target_achieved = True
    org.save()
    june = {"start": date(2026, 6, 1), "end": date(2026, 6, 30)}
    daily = make_group(
        "Daily",
        **june,
        cycle={
            "type": "fixed_calendar",
            "frequency": "daily",
            "start": date(2026, 6, 1),
            "count": 30,
        },
        targets=[
            {"name": "A spend", "kpi": "gross_sales", "value": Decimal(100)},
            {"name": "B walk day", "kpi": "event_days", "event_name": "Walk", "value": Decimal(1)},
        ],
    )
    make_group(
        "Weekly",
        **june,
        cycle={
            "type": "fixed_calendar",
            "frequency": "weekly",
            "start": date(2026, 6, 1),
            "count": 4,
        },
        targets=[
            {
                "name": "2 days",
                "kpi": "milestones_achieved",
                "source_target_group": daily.id,
                "value": Decimal(2),
            }
        ],
    )
    c = {"mobile": MOBILES[0]}
    post({"id": "t1", "type": "transaction", "customer": c, "store": "S1", "occurred_at": "2026-06-01T09:00:00+00:00", "gross": 10, "net": 10},
         {"id": "t2", "type": "transaction", "customer": c, "store": "S1", "occurred_at": "2026-06-02T09:00:00+00:00", "gross": 100, "net": 100},
         {"id": "w1", "type": "event", "name": "Walk", "customer": c, "occurred_at": "2026-06-01T12:00:00+00:00", "attributes": {}},
         {"id": "t3", "type": "transaction", "customer": c, "store": "S1", "occurred_at": "2026-06-01T15:00:00+00:00", "gross": 90, "net": 90},
         {"id": "w2", "type": "event", "name": "Walk", "customer": c, "occurred_at": "2026-06-02T18:00:00+00:00", "attributes": {}})  # fmt: skip
    set_based, row_by_row = _both_ways(settings, [["t1", "t2", "w1"], ["t3", "w2"]])
    assert set_based == row_by_row
    second_day = datetime(2026, 6, 2, 18, tzinfo=UTC)
    assert set_based[0][("2 days", MOBILES[0], 1)][2] == second_day  # achieved_at
    assert set_based[3][("Weekly", MOBILES[0], 1)] == second_day


def test_a_period_value_beyond_four_places_is_decided_as_stored(
    org, make_group, post, stores, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("the set-based fold is PostgreSQL's")
    org.award_when_target_achieved = True
    org.save()
    make_group("Spend", targets=[{"name": "Spend", "kpi": "gross_sales", "value": Decimal(1000),
                                  "period_values": {"P3": "100.00004"}}])  # fmt: skip
    post({"id": "t1", "type": "transaction", "customer": {"mobile": MOBILES[0]}, "store": "S1",
          "occurred_at": "2026-03-05T09:00:00+00:00", "gross": 100, "net": 100})  # fmt: skip
    set_based, row_by_row = _both_ways(settings, [["t1"]])
    assert set_based == row_by_row
    (event,) = set_based[1].values()
    assert event[0] == "target_achieved" and event[2] == Decimal("100.0000")


def test_a_role_without_the_permission_keeps_the_row_triggers(org):
    """hold_references asks the database once; when the answer changes (the grant taken
    away), the refused SET aborts nothing and the row triggers stay on."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    import os

    from common.bulk import hold_references
    from milestones.models import Organisation

    role = f"milestones_noset_{os.getpid()}"
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {role} NOLOGIN")  # undone with the test's transaction
            cursor.execute(f"GRANT SELECT, UPDATE ON milestones_organisation TO {role}")
            cursor.execute(f"SET LOCAL ROLE {role}")
            connection._may_hold_references = None
            assert hold_references(cursor, {Organisation: [org.id]}) is False  # asked: no
            connection._may_hold_references = True  # as if granted when first asked
            assert hold_references(cursor, {Organisation: [org.id]}) is False  # refused
            assert connection._may_hold_references is False
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"
            cursor.execute("RESET ROLE")
        assert Organisation.objects.get(pk=org.id) == org  # the transaction is still usable
    finally:
        connection._may_hold_references = None
