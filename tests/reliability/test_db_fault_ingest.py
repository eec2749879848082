"""The database connection fails in the middle of a 1,000-activity batch: the API answers a
server error, nothing of the batch is stored, and the same batch sent again counts every
activity exactly once."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from enrolment.models import Customer
from evaluation.models import Activity, ActivityStatus, Contribution
from evaluation.tracking import activities_track

from .conftest import batch, gross_by_mobile, progress_by_mobile

pytestmark = pytest.mark.django_db(transaction=True)
ACTIVITY_INSERT = f"INSERT INTO {Activity._meta.db_table} "


class FailOnSecondInsert:
    """execute_wrapper: the first chunk of 500 rows goes in, the second fails."""

    def __init__(self, fault):
        self.fault = fault
        self.inserts = 0
        self.fired = False

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith(ACTIVITY_INSERT):
            self.inserts += 1
            if self.inserts == 2 and not self.fired:
                self.fired = True
                self.fault()
        return execute(sql, params, many, context)


def _injected():
    raise OperationalError("server closed the connection unexpectedly")


def _terminate_own_backend():
    """Kill this connection's PostgreSQL backend from another connection, for real."""
    import psycopg

    pid = connection.connection.info.backend_pid
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"],
        password=s["PASSWORD"] or None, dbname=s["NAME"], autocommit=True,
    ) as admin:  # fmt: skip
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


def _client(user):
    # The web server answers an error page instead of raising into the caller.
    client = APIClient()
    client.raise_request_exception = False
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


def _fault_then_retry(integration, make_group, fault):
    group = make_group()
    items = batch(1000, prefix="bulk", customers=120)
    wrapper = FailOnSecondInsert(fault)
    with connection.execute_wrapper(wrapper):
        response = _client(integration).post("/api/v1/activities/", items, format="json")
    assert wrapper.fired and wrapper.inserts == 2
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == "5"
    assert "nothing of this request was stored" in response.json()["detail"]
    # What a real server does after every request: drop a connection that failed.
    connection.close_if_unusable_or_obsolete()
    # All or nothing: not the first 500 rows, not the customers created for the batch.
    assert Activity.objects.count() == 0
    assert Customer.objects.count() == 0

    retry = _client(integration).post("/api/v1/activities/", items, format="json")
    assert retry.status_code == 202, retry.content[:300]
    assert retry.json()["accepted"] == 1000 and retry.json()["duplicates"] == 0
    again = _client(integration).post("/api/v1/activities/", items, format="json")
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 1000

    activities_track(activity_ids=list(Activity.objects.values_list("id", flat=True)))
    assert Activity.objects.count() == 1000
    assert not Activity.objects.exclude(status=ActivityStatus.DONE).exists()
    assert Contribution.objects.count() == 1000
    assert progress_by_mobile(group.targets.get()) == gross_by_mobile(items)


def test_a_failing_statement_mid_batch_stores_nothing_and_the_retry_counts_once(
    integration, make_group
):
    _fault_then_retry(integration, make_group, _injected)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_terminate_backend")
def test_a_connection_terminated_mid_batch_stores_nothing_and_the_retry_counts_once(
    integration, make_group
):
    _fault_then_retry(integration, make_group, _terminate_own_backend)
