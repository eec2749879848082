"""Issue 15, finding 2: one integration request must not break tracking, rewards and pages
for everyone. Amounts are bounded where they are summed, progress cannot overflow, and a
poison row (an activity, a target event) fails alone, recorded with its reason, retried a
capped number of times, while the other organisation goes on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from enrolment.models import Customer
from evaluation.kpis import PROGRESS_LIMIT
from evaluation.models import Activity, ActivityStatus, Progress, TargetEvent
from evaluation.tracking import MAX_ATTEMPTS, activities_due, activities_retry, activities_track
from promotions import consumer
from promotions.consumer import events_due, events_retry, target_events_consume
from promotions.models import Award, ConsumeFailure
from promotions.services import promotion_create
from tests.factories import (
    ActivityFactory,
    CustomerFactory,
    TargetEventFactory,
    TargetGroupFactory,
    monthly_cycle,
    target_data,
)

WHEN = datetime(2026, 3, 10, 10, tzinfo=UTC)
CAP = 10**14


def _group(org, user, name):
    """March to May 2026 in monthly cycles, one gross-sales target of 1000 named `name`."""
    return TargetGroupFactory(
        organisation=org,
        created_by=user,
        name=name,
        start=date(2026, 3, 1),
        end=date(2026, 5, 31),
        cycle=monthly_cycle(date(2026, 3, 1), count=3),
        targets=[target_data(name)],
    )


def _activity(org, customer, ext, gross, when=WHEN):
    return ActivityFactory(
        customer=customer,
        external_id=ext,
        occurred_at=when,
        payload={"gross": str(gross), "net": str(gross)},
    )


@pytest.fixture
def two_orgs(org, other_org, configurer, other_configurer):
    """acme and globex, each with a live milestone and a customer."""
    a = _group(org, configurer, "Spend A")
    b = _group(other_org, other_configurer, "Spend B")
    ca = CustomerFactory(organisation=org, mobile="9000000001", name="A One")
    cb = CustomerFactory(organisation=other_org, mobile="9000000002", name="B One")
    return a, b, ca, cb


def _txn(i, **fields):
    return {"id": f"t{i}", "type": "transaction", "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-03-10T10:00:00Z", **fields}  # fmt: skip


# --- amounts bounded where they are summed -----------------------------------------------


def test_line_items_that_add_up_past_the_cap_are_refused_and_nothing_is_stored(api, integration):
    lines = [{"sku": f"x{n}", "gross": CAP} for n in range(1000)]
    response = api(integration).post(
        "/api/v1/activities/", [_txn(i, line_items=lines) for i in range(11)], format="json"
    )
    assert response.status_code == 400
    assert "line_items" in response.json()["items"]["0"]
    assert "over the cap" in str(response.json()["items"]["0"]["line_items"])
    assert not Activity.objects.exists()


def test_a_number_an_attribute_target_may_sum_is_capped(api, integration):
    item = {"id": "e1", "type": "event", "name": "visit", "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-03-10T10:00:00Z", "attributes": {"spend": "1e30", "ok": 5}}  # fmt: skip
    response = api(integration).post("/api/v1/activities/", [item], format="json")
    assert response.status_code == 400
    assert "spend" in str(response.json()["items"]["0"]["attributes"])
    assert not Activity.objects.exists()


@pytest.mark.parametrize("field", ["gross", "net", "discount"])
def test_negative_amounts_are_refused_naming_the_field(api, integration, field):
    response = api(integration).post(
        "/api/v1/activities/", [_txn(1, **{field: -300})], format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["items"]["0"]
    assert not Activity.objects.exists()


def test_negative_line_item_quantity_is_refused(api, integration):
    response = api(integration).post(
        "/api/v1/activities/", [_txn(1, line_items=[{"sku": "a", "quantity": -2, "gross": 5}])],
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert "quantity" in str(response.json()["items"]["0"]["line_items"])


def test_an_activity_that_would_overflow_progress_is_refused_at_ingest(api, integration, two_orgs):
    group, _b, customer, _cb = two_orgs
    target = group.targets.get()
    Progress.objects.create(
        organisation=customer.organisation, target=target, customer=customer, cycle_ordinal=1,
        cycle_start=WHEN, target_value=Decimal(1000), achieved=PROGRESS_LIMIT - 5 * 10**13,
    )  # fmt: skip
    response = api(integration).post(
        "/api/v1/activities/", [_txn(1, gross=10**13), _txn(2, gross=CAP)], format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["items"]) == ["1"]
    assert "past" in str(response.json()["items"]["1"])
    assert not Activity.objects.exists()


# --- tracking: the poison fails alone -------------------------------------------------------


def test_a_poison_activity_fails_alone_and_the_other_organisation_is_tracked(two_orgs):
    a, b, ca, cb = two_orgs
    # stored before the caps existed: alone, it takes the progress past the limit
    poison = _activity(ca.organisation, ca, "poison", 10**17)
    good_a = _activity(ca.organisation, ca, "good-a", 400, WHEN + timedelta(hours=1))
    good_b = _activity(cb.organisation, cb, "good-b", 700)
    result = activities_track(activity_ids=[poison.id, good_a.id, good_b.id], now=WHEN)

    poison.refresh_from_db()
    assert poison.status == ActivityStatus.FAILED
    assert "past the limit" in poison.error
    assert poison.attempts == 1
    assert Activity.objects.get(pk=good_a.pk).status == ActivityStatus.DONE
    assert Activity.objects.get(pk=good_b.pk).status == ActivityStatus.DONE
    assert result.activities == 2
    assert Progress.objects.get(customer=ca).achieved == Decimal(400)
    assert Progress.objects.get(customer=cb).achieved == Decimal(700)


def test_progress_summed_by_several_activities_never_passes_the_limit(two_orgs):
    _a, _b, ca, _cb = two_orgs
    ids = [_activity(ca.organisation, ca, f"big{i}", CAP, WHEN + timedelta(minutes=i)).id
           for i in range(3)]  # fmt: skip
    target = _a.targets.get()
    Progress.objects.create(
        organisation=ca.organisation, target=target, customer=ca, cycle_ordinal=1,
        period=_a.periods.get(ordinal=1), cycle_start=WHEN - timedelta(days=9),
        cycle_end=WHEN + timedelta(days=21), target_value=Decimal(1000),
        achieved=PROGRESS_LIMIT - Decimal(CAP) - Decimal(CAP) // 2,
    )  # fmt: skip
    activities_track(activity_ids=ids, now=WHEN)
    statuses = list(Activity.objects.order_by("occurred_at").values_list("status", flat=True))
    assert statuses == [ActivityStatus.DONE, ActivityStatus.FAILED, ActivityStatus.FAILED]
    assert Progress.objects.get(customer=ca).achieved < PROGRESS_LIMIT


def test_failed_activities_are_retried_with_backoff_up_to_the_cap_then_wait_for_a_person(two_orgs):
    _a, _b, ca, _cb = two_orgs
    poison = _activity(ca.organisation, ca, "poison", 10**17)
    activities_track(activity_ids=[poison.id], now=WHEN)
    for attempt in range(1, MAX_ATTEMPTS):
        assert poison.id not in activities_due(older_than=timedelta(0), per_organisation=100)
        Activity.objects.filter(pk=poison.pk).update(
            processed_at=datetime.now(UTC) - timedelta(minutes=4**attempt)
        )
        assert poison.id in activities_due(older_than=timedelta(0), per_organisation=100)
        activities_track(activity_ids=[poison.id], now=WHEN)
        assert Activity.objects.get(pk=poison.pk).attempts == attempt + 1
    Activity.objects.filter(pk=poison.pk).update(processed_at=datetime.now(UTC) - timedelta(days=9))
    assert poison.id not in activities_due(older_than=timedelta(0), per_organisation=100)
    assert Activity.objects.get(pk=poison.pk).status == ActivityStatus.FAILED
    # a person's retry, only within their organisation
    assert activities_retry(organisation_id=_cb.organisation_id, activity_ids=[poison.id]) == []
    assert activities_retry(organisation_id=ca.organisation_id, activity_ids=[poison.id]) == [
        poison.id
    ]
    poison.refresh_from_db()
    assert (poison.status, poison.attempts, poison.error) == (ActivityStatus.PENDING, 0, "")


def test_the_tracking_sweep_serves_every_organisation(two_orgs):
    _a, _b, ca, cb = two_orgs
    backlog = [_activity(ca.organisation, ca, f"a{i}", 1).id for i in range(30)]
    other = _activity(cb.organisation, cb, "b0", 1).id
    due = activities_due(older_than=timedelta(0), per_organisation=10)
    assert other in due
    assert len([i for i in due if i in backlog]) == 10


# --- promotions: the poison event fails alone ------------------------------------------------


def _elapsed(group, customer):
    """The cycle end of the group's target for P1: 1200 of 1000."""
    return TargetEventFactory(
        target=group.targets.get(), customer=customer, period_name="P1",
        achieved=Decimal(1200), occurred_at=WHEN,
    )  # fmt: skip


@pytest.fixture
def paying(two_orgs, configurer, other_configurer):
    a, b, ca, cb = two_orgs
    for group, user in ((a, configurer), (b, other_configurer)):
        name = group.targets.get().name
        promotion_create(
            organisation=group.organisation,
            user=user,
            data={"name": f"Pay {name}", "activity": "target_period_elapsed",
                  "start": date(2026, 1, 1), "end": date(2026, 12, 31),
                  "condition": f'currentEvent.targetAchieved("{name}") >= currentEvent.targetDefined("{name}")',
                  "actions": [{"type": "award_points", "basis": "fixed", "points": 77}]},
        )  # fmt: skip
    return _elapsed(a, ca), _elapsed(b, cb)


def test_a_poison_event_fails_alone_and_the_other_organisation_is_paid(paying, monkeypatch):
    poisoned, healthy = paying
    real = consumer.event_profile

    def profile(event, *args):  # the fault: this event's profile cannot be built
        if event.id == poisoned.id:
            raise ArithmeticError("achieved cannot be read")
        return real(event, *args)

    monkeypatch.setattr(consumer, "event_profile", profile)
    result = target_events_consume(event_ids=[poisoned.id, healthy.id])
    assert result.failed == 1
    assert Award.objects.get(event=healthy).points == 77
    assert not Award.objects.filter(event=poisoned).exists()
    failure = ConsumeFailure.objects.get(event=poisoned)
    assert "achieved cannot be read" in failure.error
    assert failure.organisation_id == poisoned.organisation_id
    assert TargetEvent.objects.get(pk=poisoned.pk).consumed_at is None
    assert TargetEvent.objects.get(pk=healthy.pk).consumed_at is not None

    # the sweep skips it during its backoff, and for good after the cap
    assert poisoned.id not in events_due(older_than=timedelta(0), per_organisation=100)
    ConsumeFailure.objects.filter(event=poisoned).update(
        failed_at=datetime.now(UTC) - timedelta(minutes=2)
    )
    assert poisoned.id in events_due(older_than=timedelta(0), per_organisation=100)
    ConsumeFailure.objects.filter(event=poisoned).update(attempts=ConsumeFailure.MAX_ATTEMPTS)
    assert poisoned.id not in events_due(older_than=timedelta(0), per_organisation=100)
    assert target_events_consume().claimed == 0  # the oldest-unconsumed path skips it too

    # fixed, then retried by a person: paid once, the failure gone
    monkeypatch.setattr(consumer, "event_profile", real)
    assert events_retry(organisation_id=healthy.organisation_id, event_ids=[poisoned.id]) == []
    assert events_retry(organisation_id=poisoned.organisation_id, event_ids=[poisoned.id]) == [
        poisoned.id
    ]
    target_events_consume(event_ids=[poisoned.id])
    assert Award.objects.get(event=poisoned).points == 77
    assert not ConsumeFailure.objects.exists()


def test_the_consume_sweep_serves_every_organisation(paying):
    poisoned, healthy = paying
    a_group = poisoned.target_group_id
    for i in range(2, 30):
        customer = Customer.objects.create(
            organisation_id=poisoned.organisation_id, mobile=f"91{i:08d}"
        )
        _elapsed(type(poisoned.target_group).objects.get(pk=a_group), customer)  # fmt: skip
    due = events_due(older_than=timedelta(0), per_organisation=5)
    assert healthy.id in due
    assert len(due) == 6


# --- the overflow already stored is repaired ------------------------------------------------


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL refuses the write itself")
def test_repair_overflow_rebuilds_poisoned_progress(two_orgs, capsys):
    a, _b, ca, _cb = two_orgs
    lines = [{"sku": f"x{n}", "gross": str(CAP)} for n in range(1000)]
    bad = Activity.objects.create(
        organisation=ca.organisation, external_id="old-bad", type="transaction", customer=ca,
        occurred_at=WHEN, status=ActivityStatus.DONE,
        payload={"gross": str(10**17), "line_items": lines},
    )  # fmt: skip
    good = _activity(ca.organisation, ca, "old-good", 250)
    activities_track(activity_ids=[good.id], now=WHEN)
    event = TargetEvent.objects.create(
        organisation_id=ca.organisation_id, type="sub_target_achieved", dedupe_key="bogus",
        customer=ca, target_group_id=a.id, target=a.targets.get(), cycle_ordinal=1,
        achieved=Decimal(1), defined=Decimal(1000), occurred_at=WHEN,
    )  # fmt: skip
    with connection.cursor() as cursor:  # what the uncapped ingest left behind
        cursor.execute(
            "UPDATE evaluation_targetevent SET achieved = 1.1e18 WHERE id = %s", [event.id]
        )
        cursor.execute(
            "UPDATE evaluation_progress SET achieved = 1.1e18 WHERE customer_id = %s", [ca.id]
        )
    with pytest.raises(ArithmeticError):
        list(Progress.objects.filter(customer=ca))
    call_command("repair_overflow")
    assert "1 overflowed progress row(s)" in capsys.readouterr().out
    assert Progress.objects.get(customer=ca).achieved == Decimal(250)
    bad.refresh_from_db()
    assert bad.status == ActivityStatus.FAILED and "repair_overflow" in bad.error
    event.refresh_from_db()  # closed without paying, readable again
    assert event.achieved is None and event.consumed_at is not None


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL refuses the write itself")
def test_repair_overflow_dry_run_reports_and_changes_nothing(two_orgs, capsys):
    _a, _b, ca, _cb = two_orgs
    good = _activity(ca.organisation, ca, "old-good", 250)
    activities_track(activity_ids=[good.id], now=WHEN)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE evaluation_progress SET achieved = 1.1e18 WHERE customer_id = %s", [ca.id]
        )
    call_command("repair_overflow", "--dry-run")
    assert "1 overflowed progress row(s), 1 customer(s), 1 milestone(s)" in capsys.readouterr().out
    with connection.cursor() as cursor:  # still there: a dry run writes nothing
        cursor.execute("SELECT count(*) FROM evaluation_progress WHERE achieved > 1e17")
        assert cursor.fetchone()[0] == 1
    assert Activity.objects.get(pk=good.pk).status == ActivityStatus.DONE


# --- a person sees the reason and retries ---------------------------------------------------


def test_the_admin_shows_why_an_activity_failed_and_a_configurer_retries_it(
    client, two_orgs, configurer, member_care, django_capture_on_commit_callbacks
):
    _a, _b, ca, _cb = two_orgs
    poison = _activity(ca.organisation, ca, "poison", 10**17)
    activities_track(activity_ids=[poison.id], now=WHEN)
    client.force_login(member_care)
    page = client.get("/admin/evaluation/activity/?status=failed").content.decode()
    assert "poison" in page and "past the limit" in page
    assert "retry_failed" not in page  # member care reads, never retries
    client.force_login(configurer)
    page = client.get("/admin/evaluation/activity/?status=failed").content.decode()
    assert "retry_failed" in page
    response = client.post(
        "/admin/evaluation/activity/",
        {"action": "retry_failed", "_selected_action": [poison.id]},
        follow=True,
    )
    assert "1 failed activity(ies) queued" in response.content.decode()
    poison.refresh_from_db()
    assert (poison.status, poison.attempts) == (ActivityStatus.PENDING, 0)


def test_the_admin_lists_failed_target_events_with_their_reason(client, paying, configurer):
    poisoned, _healthy = paying
    consumer.event_consume_failed(event_id=poisoned.id, error="achieved cannot be read")
    client.force_login(configurer)
    page = client.get("/admin/promotions/consumefailure/").content.decode()
    assert "achieved cannot be read" in page
    response = client.post(
        "/admin/promotions/consumefailure/",
        {"action": "retry", "_selected_action": [ConsumeFailure.objects.get().pk]},
        follow=True,
    )
    assert "1 event(s) queued" in response.content.decode()
    assert not ConsumeFailure.objects.exists()
