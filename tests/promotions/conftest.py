"""End-to-end helpers: activities in through the API, tracked as the worker would, target
events consumed by promotions, cycles closed by `manage.py evaluate_cycles`."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.core.management import call_command

from evaluation.models import Activity, ActivityStatus, TargetEvent
from evaluation.tracking import activities_track
from promotions.consumer import target_events_consume
from promotions.services import promotion_create
from tests.factories import StoreFactory, TargetGroupFactory, monthly_cycle, target_data

PROMO_START, PROMO_END = date(2026, 1, 1), date(2026, 12, 31)


@pytest.fixture
def stores(org):
    return [
        StoreFactory(organisation=org, code="S1", zone="North"),
        StoreFactory(organisation=org, code="T1", is_till=True),
    ]


@pytest.fixture
def make_group(org, configurer, stores):
    """A milestone with three monthly cycles, March to May 2026 (org timezone Kolkata), one
    gross-sales target of 1000 named as the milestone, till T1."""

    def make(name="ABC", *, targets=None, **over):
        over.setdefault("start", date(2026, 3, 1))
        over.setdefault("end", date(2026, 5, 31))
        over.setdefault("till_code", "T1")
        over.setdefault("cycle", monthly_cycle(date(2026, 3, 1), count=3))
        return TargetGroupFactory(
            organisation=org,
            created_by=configurer,
            name=name,
            targets=targets or [target_data(name)],
            **over,
        )

    return make


@pytest.fixture
def promo(org, configurer):
    """promo(condition, actions, **fields) -> Promotion (through the service)."""

    counter = iter(range(1, 1000))

    def make(condition, actions=None, **fields):
        data = {
            "name": fields.pop("name", f"Promotion {next(counter)}"),
            "activity": "target_period_elapsed",
            "start": PROMO_START,
            "end": PROMO_END,
            "condition": condition,
            "actions": actions
            if actions is not None
            else [{"type": "award_points", "basis": "fixed", "points": 100}],
        }
        data.update(fields)
        return promotion_create(organisation=org, data=data, user=configurer)

    return make


@pytest.fixture
def post(api, integration, django_capture_on_commit_callbacks):
    def send(*items):
        with django_capture_on_commit_callbacks(execute=False):
            response = api(integration).post("/api/v1/activities/", list(items), format="json")
        assert response.status_code == 202, response.content
        return response.json()

    return send


def pipeline():
    """What the workers do, in order, until nothing is left: track every pending activity
    live (a minute after it happened), consume every new target event (a minute after it
    happened). Points fed back by awards are activities too, so this loops."""
    for _ in range(50):
        pending = list(
            Activity.objects.filter(status=ActivityStatus.PENDING).order_by("occurred_at", "id")
        )
        for activity in pending:
            activities_track(
                activity_ids=[activity.id], now=activity.occurred_at + timedelta(minutes=1)
            )
        events = list(TargetEvent.objects.filter(consumed_at__isnull=True).order_by("id"))
        for event in events:
            target_events_consume(
                event_ids=[event.id], now=event.occurred_at + timedelta(minutes=1)
            )
        if not pending and not events:
            return
    raise AssertionError("the pipeline did not settle")


@pytest.fixture
def run():
    return pipeline


def close_cycles(as_of: datetime):
    """Cycle-end evaluation as operations run it (`manage.py evaluate_cycles`), then the
    consumption of its period-elapsed events."""
    call_command("evaluate_cycles", as_of=as_of.isoformat(), stdout=_Null())
    pipeline()


class _Null:
    def write(self, *_):
        pass


def txn(i, at, gross, *, mobile="9000000001", store="S1"):
    return {
        "id": f"txn-{mobile}-{i}",
        "type": "transaction",
        "customer": {"mobile": mobile},
        "occurred_at": at,
        "store": store,
        "gross": gross,
        "net": gross,
    }
