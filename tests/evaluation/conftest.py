from datetime import date, timedelta

import pytest

from evaluation.models import Activity, ActivityStatus
from evaluation.tracking import activities_track
from tests.factories import StoreFactory, TargetGroupFactory, TillFactory, monthly_cycle


@pytest.fixture
def stores(org):
    return [
        StoreFactory(organisation=org, code="S1", zone="North", concept="Fuel"),
        StoreFactory(organisation=org, code="S2", zone="South", concept="Retail"),
        TillFactory(organisation=org, code="T1"),
    ]


@pytest.fixture
def make_group(org, configurer):
    """make_group(name, targets=[...], **overrides) with the API's shape (Python values):
    2026 in twelve monthly cycles, one gross-sales target of 1000, till T1."""

    def make(name="Spend", *, targets=None, **over):
        over.setdefault("till_code", TillFactory(organisation=org).code)
        over.setdefault("cycle", monthly_cycle(date(2026, 1, 1), count=12))
        return TargetGroupFactory(
            organisation=org, created_by=configurer, name=name, targets=targets, **over
        )

    return make


@pytest.fixture
def post(api, integration, django_capture_on_commit_callbacks):
    """post(*activities) through the API; tracking is not run (see `track`)."""

    def send(*items, expect=202):
        with django_capture_on_commit_callbacks(execute=False):
            response = api(integration).post("/api/v1/activities/", list(items), format="json")
        assert response.status_code == expect, response.content
        return response.json()

    return send


@pytest.fixture
def track():
    """Track every pending activity as the worker would. With `now`, all at that moment;
    without, each a minute after it happened, in time order (live tracking)."""

    def run(now=None, **kwargs):
        from evaluation.tracking import TrackResult

        pending = list(
            Activity.objects.filter(status=ActivityStatus.PENDING).order_by("occurred_at", "id")
        )
        if now is not None:
            return activities_track(activity_ids=[a.id for a in pending], now=now, **kwargs)
        total = TrackResult()
        for activity in pending:
            result = activities_track(
                activity_ids=[activity.id],
                now=activity.occurred_at + timedelta(minutes=1),
                **kwargs,
            )
            total.activities += result.activities
            total.events += result.events
            total.achieved_targets |= result.achieved_targets
        return total

    return run


def txn(i, at, gross=None, *, mobile="9000000001", store="S1", bill=None, lines=None, **extra):
    body = {
        "id": f"txn-{i}",
        "type": "transaction",
        "customer": {"mobile": mobile},
        "occurred_at": at,
        "store": store,
    }
    if gross is not None:
        body["gross"] = gross
        body.setdefault("net", gross)
    if bill:
        body["bill_number"] = bill
    if lines is not None:
        body["line_items"] = lines
    body.update(extra)
    return body
