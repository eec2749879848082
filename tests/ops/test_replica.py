"""The read replica, against a real streaming standby of the test PostgreSQL
(`bin/standby start`, which `.ci/run` runs): the read-only pages read from the standby, a
page after the user's own write reads the primary, and a dead replica falls back to the
primary with a warning."""

import copy
import logging
import os
import time

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from common import replica
from enrolment.models import Customer
from tests.factories import CustomerFactory, OrganisationFactory, UserFactory

STANDBY_PORT = int(os.environ.get("STANDBY_PORT", "5433"))
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a standby is PostgreSQL's"),
]


def _standby_up() -> bool:
    import psycopg

    try:
        with psycopg.connect(host="127.0.0.1", port=STANDBY_PORT, user="postgres",
                             dbname="postgres", connect_timeout=2) as c:  # fmt: skip
            return c.execute("select pg_is_in_recovery()").fetchone()[0]
    except psycopg.OperationalError:
        return False


@pytest.fixture
def standby():
    """The "replica" alias on the standby, reading the test database (which it replicates)."""
    if not _standby_up():
        message = f"no standby on 127.0.0.1:{STANDBY_PORT}: start it with `bash bin/standby start`"
        if os.environ.get("REQUIRE_STANDBY"):
            pytest.fail(message)
        pytest.skip(message)
    yield from _alias(STANDBY_PORT)


def _alias(port):
    config = copy.deepcopy(connections["default"].settings_dict)
    config.update(PORT=str(port), CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
    config.setdefault("OPTIONS", {})["connect_timeout"] = 2
    # As DATABASE_REPLICA_URL would configure it, but made here, for this test only: the
    # connection lives in this thread's handler (Django's test case lets such a dynamically
    # made connection through; the rest of the suite never sees a replica).
    connections.settings[replica.REPLICA] = config
    wrapper = connections.create_connection(replica.REPLICA)
    del connections.settings[replica.REPLICA]
    connections[replica.REPLICA] = wrapper
    replica.reset_replica_state()
    yield wrapper
    wrapper.close()
    del connections[replica.REPLICA]
    replica.reset_replica_state()


def _caught_up(customer_id: int) -> None:
    """Wait (briefly) until the standby has replayed the committed test data."""
    for _ in range(100):
        if Customer.objects.using(replica.REPLICA).filter(pk=customer_id).exists():
            return
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up in 5 s")


@pytest.fixture
def agent_and_customer():
    org = OrganisationFactory(slug="rep", timezone="Asia/Kolkata")
    agent = UserFactory(organisation=org, role="member_care", username="rep-agent")
    customer = CustomerFactory(organisation=org, name="Replica Rita", mobile="9111100001")
    return agent, customer


def test_member_care_reads_from_the_standby(standby, client, agent_and_customer):
    agent, customer = agent_and_customer
    client.force_login(agent)
    _caught_up(customer.pk)
    with (
        CaptureQueriesContext(standby) as on_standby,
        CaptureQueriesContext(connection) as on_primary,
    ):
        page = client.get(f"/care/?q={customer.mobile}", follow=True)
    assert "Replica Rita" in page.content.decode()
    assert any("enrolment_customer" in q["sql"] for q in on_standby.captured_queries)
    assert not any("enrolment_customer" in q["sql"] for q in on_primary.captured_queries)
    with standby.cursor() as cursor:  # and it really is the standby
        cursor.execute("select pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True


def test_a_write_then_its_page_reads_the_primary(
    standby, client, agent_and_customer, admin_client_for
):
    agent, customer = agent_and_customer
    client.force_login(agent)
    _caught_up(customer.pk)
    client.post("/admin/logout/")  # any write-method request sets the read-your-writes cookie
    assert replica.PRIMARY_COOKIE in client.cookies
    client.force_login(agent)
    with CaptureQueriesContext(standby) as on_standby:
        page = client.get(f"/care/?q={customer.mobile}", follow=True)
    assert "Replica Rita" in page.content.decode()
    assert on_standby.captured_queries == []


def test_the_services_and_writes_never_use_the_standby(standby, agent_and_customer):
    _agent, customer = agent_and_customer
    with replica.replica_reads():
        assert Customer.objects.filter(pk=customer.pk).db == replica.REPLICA
    assert Customer.objects.filter(pk=customer.pk).db == "default"  # outside the block


def test_a_stopped_replica_falls_back_to_the_primary_with_a_warning(
    client, agent_and_customer, caplog
):
    agent, customer = agent_and_customer
    for _ in _alias(1):  # nothing listens on port 1: a stopped standby
        client.force_login(agent)
        with caplog.at_level(logging.WARNING, logger="common.replica"):
            page = client.get(f"/care/?q={customer.mobile}", follow=True)
        assert page.status_code == 200 and "Replica Rita" in page.content.decode()
        assert "read replica unavailable, reading from the primary" in caplog.text
        break
