"""Batches arriving while workers track (found by bench/bench_load.py): the activity rows'
foreign-key checks lock their customers (KEY SHARE) at commit, in the batch's order, while
tracking locks customers FOR UPDATE in id order; unordered, the two deadlock and the API
answers 500. Ingest takes its customer locks in id order first, so they never cross."""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection, connections

from evaluation.ingest import activities_ingest
from evaluation.models import Activity, ActivityStatus, Progress
from evaluation.tracking import activities_track

from .conftest import batch

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL"),
]
CUSTOMERS = 40


def test_ingest_and_tracking_at_once_never_deadlock(org, make_group):
    group = make_group()
    seed = batch(CUSTOMERS, prefix="seed", customers=CUSTOMERS, json=False)
    activities_ingest(organisation=org, items=seed)
    errors, sent = [], []
    stop = time.monotonic() + 6

    def ingest(n):
        rnd = random.Random(n)
        k = 0
        try:
            while time.monotonic() < stop:
                k += 1
                items = batch(200, prefix=f"i{n}-{k}", customers=CUSTOMERS, json=False)
                rnd.shuffle(items)  # customers in any order, as integrators send them
                activities_ingest(organisation=org, items=items)
                sent.extend(items)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    def track():
        try:
            while time.monotonic() < stop:
                ids = list(
                    Activity.objects.filter(status=ActivityStatus.PENDING).values_list("id", flat=True)[:300]
                )  # fmt: skip
                activities_track(activity_ids=ids)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=track) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    activities_track(
        activity_ids=list(Activity.objects.filter(status=ActivityStatus.PENDING).values_list("id", flat=True))
    )  # fmt: skip
    total = sum(p.achieved for p in Progress.objects.filter(target=group.targets.get()))
    assert sent and total == sum(i["gross"] for i in sent) + sum(range(1, 10)) * 4 + sum(
        range(1, 5)
    )
