"""One organisation's broken audience group never stops another's (issue 15, finding 3).

Organisation B (globex) renames a target that one of its filter groups names; organisation
C (acme) has a filter group feeding a milestone and a new gold customer. The beat must
refresh C's group and enrol the customer, and record B's problem on B's group.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from enrolment import audiences, tasks
from enrolment.audiences import audience_group_create
from enrolment.models import AudienceGroup, Customer, Enrolment
from evaluation.models import Progress
from milestones.models import Target
from milestones.services.target_groups import target_group_create
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def milestone(org, user, name, target_name, *, audience=None):
    StoreFactory(organisation=org, code=f"T-{name}", is_till=True)
    enrolment = {"mode": "audience_group", "audience_group": audience.id} if audience else None
    group, _ = target_group_create(
        organisation=org,
        user=user,
        via_api=True,
        data={
            "name": name,
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "till_code": f"T-{name}",
            "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 3,
                      "start": date(2026, 1, 1)},
            "enrolment": enrolment or {"mode": "all_customers"},
            "targets": [{"name": target_name, "kpi": "quantity", "value": Decimal(10)}],
        },
    )  # fmt: skip
    return group


def enrolled(group) -> set[int]:
    return set(
        Enrolment.objects.filter(target_group=group, is_active=True).values_list(
            "customer_id", flat=True
        )
    )


@pytest.fixture
def poisoned(other_org, other_configurer):
    """Globex's filter group (named to come first) reads a target that is then renamed."""
    group = milestone(other_org, other_configurer, "Globex fuel", "Gold spend")
    audience = audience_group_create(
        organisation=other_org, name="A globex achievers", kind="filter",
        filter={"conditions": [{"target": "Gold spend", "achieved": True}]},
    )  # fmt: skip
    Target.objects.filter(target_group=group).update(name="Platinum spend")
    return audience


@pytest.fixture
def gold(org, configurer):
    """Acme: a filter group of gold customers feeding a milestone."""
    audience = audience_group_create(
        organisation=org, name="Gold tier", kind="filter",
        filter={"conditions": [{"field": "attributes.tier", "op": "eq", "value": "gold"}]},
    )  # fmt: skip
    group = milestone(org, configurer, "Acme gold", "Acme visits", audience=audience)
    return audience, group


def test_the_beat_refreshes_every_other_group_when_one_is_poisoned(org, poisoned, gold):
    audience, group = gold
    newcomer = Customer.objects.create(organisation=org, mobile="9000000001",
                                       attributes={"tier": "gold"})  # fmt: skip
    assert tasks.refresh_filter_audience_groups() == 2  # did not raise
    assert enrolled(group) == {newcomer.id}
    audience.refresh_from_db()
    assert (audience.member_count, audience.refresh_status) == (1, "ok")
    poisoned.refresh_from_db()
    assert poisoned.refresh_status == "invalid"
    assert poisoned.refresh_attempts == 1
    assert "no target named 'Gold spend' in this organisation" in poisoned.refresh_error
    assert poisoned.refresh_parked


def test_an_invalid_group_is_skipped_and_keeps_its_last_members(other_org, poisoned, gold):
    member = Customer.objects.create(organisation=other_org, mobile="9000000009")
    poisoned.memberships.create(customer=member)
    AudienceGroup.objects.filter(pk=poisoned.pk).update(member_count=1)
    tasks.refresh_filter_audience_groups()
    tasks.refresh_filter_audience_groups()
    poisoned.refresh_from_db()
    assert (poisoned.refresh_status, poisoned.refresh_attempts) == ("invalid", 1)  # tried once
    assert list(poisoned.memberships.values_list("customer_id", flat=True)) == [member.id]
    assert audiences.audience_groups_refresh_organisation(organisation_id=other_org.id) == {
        "ok": 0, "invalid": 0, "failed": 0, "skipped": 1,
    }  # fmt: skip


def test_refresh_now_retries_an_invalid_group_once_it_holds_again(api, other_configurer, poisoned):
    client = api(other_configurer)
    url = f"/api/v1/audience-groups/{poisoned.id}/refresh/"
    tasks.refresh_filter_audience_groups()
    response = client.post(url)
    assert response.status_code == 400
    assert response.json() == {
        "filter": ["Condition 1: no target named 'Gold spend' in this organisation."]
    }
    shown = client.get(f"/api/v1/audience-groups/{poisoned.id}/").json()
    assert shown["refresh_status"] == "invalid" and "Gold spend" in shown["refresh_error"]
    Target.objects.filter(organisation=poisoned.organisation).update(name="Gold spend")
    response = client.post(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["refresh_status"], body["refresh_error"], body["refresh_attempts"]) == (
        "ok", "", 0,
    )  # fmt: skip


@pytest.fixture
def breaks(monkeypatch):
    """breaks(group): refreshing that group fails with a real database error (a query on a
    missing table), as an unforeseen poison would."""
    broken: set[int] = set()
    real = audiences._members_set

    def members_set(group, customer_ids):
        if group.id in broken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table_for_this_test")
        return real(group, customer_ids)

    monkeypatch.setattr(audiences, "_members_set", members_set)
    return broken.add


def test_a_failing_group_is_retried_up_to_the_cap_then_waits_for_refresh_now(
    api, other_configurer, other_org, org, gold, breaks
):
    failing = audience_group_create(
        organisation=other_org, name="Globex all", kind="filter",
        filter={"conditions": [{"field": "is_loyalty_member", "op": "eq", "value": True}]},
    )  # fmt: skip
    breaks(failing.id)
    audience, group = gold
    cap = AudienceGroup.REFRESH_MAX_ATTEMPTS
    for run in range(1, cap + 3):
        newcomer = Customer.objects.create(organisation=org, mobile=f"900000000{run}",
                                           attributes={"tier": "gold"})  # fmt: skip
        tasks.refresh_filter_audience_groups()
        assert newcomer.id in enrolled(group)  # acme goes on at every run
        failing.refresh_from_db()
        assert failing.refresh_status == "failed"
        assert failing.refresh_attempts == min(run, cap)  # no automatic attempt past the cap
        assert "no_such_table_for_this_test" in failing.refresh_error
    assert failing.refresh_parked
    response = api(other_configurer).post(f"/api/v1/audience-groups/{failing.id}/refresh/")
    assert response.status_code == 503
    assert "no_such_table_for_this_test" in response.json()["detail"]
    failing.refresh_from_db()
    assert failing.refresh_attempts == 1  # "Refresh now" starts the count again
    tasks.refresh_filter_audience_groups()
    failing.refresh_from_db()
    assert failing.refresh_attempts == 2


def test_the_achievement_hook_skips_a_broken_group_and_refreshes_the_others(
    org, configurer, breaks
):
    group = milestone(org, configurer, "Acme fuel", "Fuel 10")
    target = group.targets.get()
    broken = audience_group_create(
        organisation=org, name="A broken", kind="filter",
        filter={"conditions": [{"target": "Fuel 10", "achieved": True}]},
    )  # fmt: skip
    healthy = audience_group_create(
        organisation=org, name="B healthy", kind="filter",
        filter={"conditions": [{"target": target.id, "achieved": True}]},
    )  # fmt: skip
    breaks(broken.id)
    customer = Customer.objects.create(organisation=org, mobile="9000000001")
    period = group.periods.get(ordinal=1)
    Progress.objects.create(
        organisation=org, target=target, customer=customer, cycle_ordinal=1, period=period,
        cycle_start=period.starts_at, cycle_end=period.ends_at, target_value=Decimal(10),
        achieved=Decimal(10), achieved_at=period.starts_at,
    )  # fmt: skip
    tasks.refresh_audience_groups_for_target(target.id)
    healthy.refresh_from_db()
    broken.refresh_from_db()
    assert healthy.member_count == 1 and healthy.refresh_status == "ok"
    assert broken.refresh_status == "failed" and broken.member_count == 0


def test_run_by_a_worker_the_beat_plans_one_task_per_organisation(
    org, other_org, poisoned, gold, eager, monkeypatch
):
    planned = []
    real = tasks.refresh_organisation_audience_groups.delay

    def delay(organisation_id):
        planned.append(organisation_id)
        return real(organisation_id)

    monkeypatch.setattr(tasks.refresh_organisation_audience_groups, "delay", delay)
    Customer.objects.create(organisation=org, mobile="9000000001", attributes={"tier": "gold"})
    assert tasks.refresh_filter_audience_groups.apply().get() == 2
    assert sorted(planned) == sorted([org.id, other_org.id])
    audience, group = gold
    assert len(enrolled(group)) == 1
    poisoned.refresh_from_db()
    assert poisoned.refresh_status == "invalid"
    # the next run has only acme's group to refresh: globex's waits for a person
    planned.clear()
    assert tasks.refresh_filter_audience_groups.apply().get() == 1
    assert planned == [org.id]
