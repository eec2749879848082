"""The broker is down while activities arrive: the API still accepts and stores them; when
the broker is back, the sweeper queues them and a real worker tracks each exactly once."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from evaluation.models import Activity, ActivityStatus, Contribution
from evaluation.tasks import track_sweep_pending
from milestones_site.celery import app

from .conftest import batch, gross_by_mobile, progress_by_mobile, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_activities_posted_while_redis_is_stopped_are_tracked_exactly_once_after_it_returns(
    api, integration, make_group, private_redis, use_broker
):
    group = make_group()
    use_broker(private_redis.url)
    private_redis.stop()  # the outage: nothing listens on the broker's port any more
    assert not private_redis.ping()

    client = api(integration)
    sent = [batch(200, prefix=f"down{k}") for k in range(3)]
    for items in sent:
        started = time.monotonic()
        response = client.post("/api/v1/activities/", items, format="json")
        assert response.status_code == 202, response.content[:300]
        assert response.json()["accepted"] == 200
        print(f"POST of 200 with the broker down: {time.monotonic() - started:.2f} s")
    # Sent again during the outage: recognised as duplicates, not stored twice.
    response = client.post("/api/v1/activities/", sent[0], format="json")
    assert response.json() == {**response.json(), "accepted": 0, "duplicates": 200}
    assert Activity.objects.count() == 600
    assert Activity.objects.filter(status=ActivityStatus.PENDING).count() == 600

    private_redis.start()  # the broker is back (empty: nothing was ever queued)
    with start_worker(
        app, perform_ping_check=False, pool="solo", concurrency=1,
        queues=["tracking", "promotions", "default"],
    ):  # fmt: skip
        # What beat does every minute; twice, so some activities are queued twice.
        assert track_sweep_pending(older_than_seconds=0) == 600
        track_sweep_pending(older_than_seconds=0)
        after = batch(200, prefix="after")  # the normal path works again
        assert client.post("/api/v1/activities/", after, format="json").status_code == 202
        assert wait_for(
            lambda: not Activity.objects.filter(status=ActivityStatus.PENDING).exists(), 60
        )
    assert Activity.objects.count() == 800
    assert Contribution.objects.count() == 800  # one per activity: none counted twice
    assert progress_by_mobile(group.targets.get()) == gross_by_mobile(*sent, after)
