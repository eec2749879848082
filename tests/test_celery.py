"""The Celery app talks to the configured broker (filesystem by default, Redis in CI)."""

import pytest
from celery.contrib.testing.worker import start_worker
from django_celery_beat.models import PeriodicTask

from milestones.models import Heartbeat
from milestones.tasks import record_heartbeat
from milestones_site.celery import app
from milestones_site.schedules import PERIODIC_TASKS, install_periodic_tasks


@pytest.mark.django_db
def test_a_fresh_database_has_every_declared_schedule():
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert set(PERIODIC_TASKS) <= names


@pytest.mark.django_db
def test_installing_again_keeps_an_operators_edits():
    PeriodicTask.objects.filter(name="heartbeat").update(enabled=False)
    assert install_periodic_tasks() == 0
    assert PeriodicTask.objects.get(name="heartbeat").enabled is False


@pytest.mark.django_db(transaction=True)
def test_a_task_sent_through_the_real_broker_is_run_by_a_worker():
    with start_worker(
        app, perform_ping_check=False, pool="solo", concurrency=1, queues=["default"]
    ):
        record_heartbeat.apply_async(args=["broker-test"], queue="default")
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if Heartbeat.objects.filter(name="broker-test").exists():
                break
            time.sleep(0.1)
    beat = Heartbeat.objects.get(name="broker-test")
    assert beat.runs == 1
