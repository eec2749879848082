"""Two consumers at once on PostgreSQL: every action is paid exactly once, every coupon
goes to one customer, every event is claimed by one consumer."""

import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections

from evaluation.ingest import activities_ingest
from evaluation.models import Activity, TargetEvent
from evaluation.tracking import activities_track
from promotions.consumer import events_redeliver, target_events_consume
from promotions.models import Award, Coupon, Message
from promotions.services import coupon_series_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks are a PostgreSQL matter"
    ),
]
CUSTOMERS = 25


def _setup(org, make_group, promo):
    make_group("ABC")
    coupon_series_create(organisation=org, code="WIN", generate=CUSTOMERS + 5)
    promo(
        'currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")',
        [
            {"type": "award_points", "basis": "percent_of_achieved", "percent": 10},
            {"type": "issue_coupon", "series": "WIN"},
            {"type": "send_message", "channel": "sms", "template": "{points} + {coupon.code}"},
        ],
    )
    start = datetime(2026, 3, 2, tzinfo=UTC)
    items = [
        {
            "id": f"t-{i}",
            "type": "transaction",
            "customer": {"mobile": f"90000000{i:02d}"},
            "occurred_at": start + timedelta(minutes=i),
            "gross": Decimal(1001 + i),
        }
        for i in range(CUSTOMERS)
    ]
    activities_ingest(organisation=org, items=items)
    activities_track(
        activity_ids=list(Activity.objects.values_list("id", flat=True)),
        now=datetime(2026, 3, 10, tzinfo=UTC),
    )
    ids = list(TargetEvent.objects.values_list("id", flat=True))
    assert len(ids) == CUSTOMERS
    return ids


def _race(ids, consumers=2):
    barrier = threading.Barrier(consumers)
    errors, results = [], []

    def consume():
        try:
            barrier.wait()
            order = random.sample(ids, len(ids))
            for start in range(0, len(order), 5):
                results.append(target_events_consume(event_ids=order[start : start + 5]))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def _assert_paid_once():
    assert Award.objects.count() == CUSTOMERS * 3
    assert Award.objects.filter(status="done").count() == CUSTOMERS * 3
    codes = list(Award.objects.filter(type="issue_coupon").values_list("coupon_code", flat=True))
    assert len(set(codes)) == CUSTOMERS
    assert Coupon.objects.filter(issued_at__isnull=False).count() == CUSTOMERS
    assert Message.objects.count() == CUSTOMERS
    assert Activity.objects.filter(type="points").count() == CUSTOMERS
    points = sorted(Award.objects.filter(type="award_points").values_list("points", flat=True))
    assert points == [Decimal(1001 + i) / 10 for i in range(CUSTOMERS)]


def test_two_consumers_at_once_pay_every_action_exactly_once(org, make_group, promo):
    ids = _setup(org, make_group, promo)
    results = _race(ids)
    assert sum(r.claimed for r in results) == CUSTOMERS
    assert sum(r.skipped for r in results) == CUSTOMERS
    _assert_paid_once()
    assert not TargetEvent.objects.filter(consumed_at__isnull=True).exists()


def test_redelivery_racing_two_consumers_pays_nothing_more(org, make_group, promo):
    ids = _setup(org, make_group, promo)
    _race(ids)
    for _ in range(3):
        events_redeliver(event_ids=ids)
        results = _race(ids, consumers=3)
        assert sum(len(r.awards) for r in results) == 0
    _assert_paid_once()


def test_three_consumers_pay_each_achievement_once_whatever_event_carries_it(
    org, make_group, promo
):
    """Per achievement, not per event: every achievement also arrives in a second event (a
    replay tool writing its own key); three consumers race over both copies."""
    ids = _setup(org, make_group, promo)
    copies = []
    for event in TargetEvent.objects.filter(pk__in=ids):
        event.pk, event.dedupe_key, event.consumed_at = None, f"replay-{event.dedupe_key}", None
        event.save()
        copies.append(event.pk)
    _race(ids + copies, consumers=3)
    _assert_paid_once()
    per_achievement = Award.objects.values("promotion", "achievement", "action_index")
    assert per_achievement.distinct().count() == Award.objects.count() == CUSTOMERS * 3
    assert not TargetEvent.objects.filter(consumed_at__isnull=True).exists()
