"""The hand-off after an achievement (issue 16, B): reaching Target 1 re-evaluates, at once
and in one bounded task, the filter audience groups that read Target 1, so the fuel brand's
"Target 2: only those who achieved Target 1" enrols its new achievers within seconds, through
the real tracking task, with no beat and no manual refresh."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from enrolment import audiences
from enrolment.models import AudienceRefreshStatus, Customer, Enrolment
from evaluation.models import Activity
from evaluation.tasks import track_activities
from milestones_site.celery import app as celery_app

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


@pytest.fixture
def eager_celery():
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = eager


@pytest.fixture
def post(api, integration, django_capture_on_commit_callbacks):
    """Activities in through the API; tracking is not queued (the test calls the task)."""

    def send(*items):
        with django_capture_on_commit_callbacks(execute=False):
            response = api(integration).post("/api/v1/activities/", list(items), format="json")
        assert response.status_code == 202, response.content
        return response.json()

    return send


def txn(i, mobile, gross):
    at = (NOW - timedelta(minutes=5)).isoformat()
    return {"id": f"txn-{i}", "type": "transaction", "customer": {"mobile": mobile},
            "occurred_at": at, "gross": gross, "net": gross}  # fmt: skip


@pytest.fixture
def fuel(org, make_group, configurer):
    """Fuel 1 (everyone, Target 1: spend 1,000 now) and Fuel 2, which enrols the customers
    of the filter group "Achieved Target 1"."""
    first, last = NOW.date() - timedelta(days=10), NOW.date() + timedelta(days=10)

    def now_cycle(name):
        return {"type": "custom_periods", "periods": [{"name": name, "start": first, "end": last}]}

    g1 = make_group(
        "Fuel 1", start=first, end=last, cycle=now_cycle("Now 1"),
        targets=[{"name": "Target 1", "kpi": "gross_sales", "value": Decimal(1000)}],
    )  # fmt: skip
    achieved_t1 = audiences.audience_group_create(
        organisation=org, name="Achieved Target 1", kind="filter", user=configurer,
        filter={"conditions": [{"target": "Target 1", "achieved": True}]},
    )  # fmt: skip
    g2 = make_group(
        "Fuel 2", start=first, end=last, cycle=now_cycle("Now 2"), mode="audience_group",
        enrolment={"mode": "audience_group", "audience_group": achieved_t1.id},
        targets=[{"name": "Target 2", "kpi": "gross_sales", "value": Decimal(2000)}],
    )  # fmt: skip
    return g1, achieved_t1, g2


def enrolled_in(group) -> set[str]:
    return set(
        Enrolment.objects.filter(target_group=group, is_active=True).values_list(
            "customer__mobile", flat=True
        )
    )


def track(django_capture_on_commit_callbacks) -> None:
    ids = list(Activity.objects.filter(status="pending").values_list("id", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        track_activities(ids)


def test_reaching_target_1_through_the_tracking_task_enrols_in_target_2_at_once(
    fuel, post, eager_celery, django_capture_on_commit_callbacks
):
    g1, achieved_t1, g2 = fuel
    post(txn(1, "9000000001", 1200), txn(2, "9000000002", 300))
    assert enrolled_in(g2) == set()
    track(django_capture_on_commit_callbacks)
    # no beat, no "Refresh now": the tracking task handed the achievement over
    assert enrolled_in(g2) == {"9000000001"}
    achieved_t1.refresh_from_db()
    assert achieved_t1.member_count == 1
    # the second customer gets there later: the next tracking batch enrols them too
    post(txn(3, "9000000002", 800))
    track(django_capture_on_commit_callbacks)
    assert enrolled_in(g2) == {"9000000001", "9000000002"}


def test_the_hand_off_works_with_the_award_switch_inactive_too(
    org, fuel, post, eager_celery, django_capture_on_commit_callbacks
):
    """No immediate achievement event is written with the switch Inactive; the target is
    reached all the same, and the audience follows."""
    org.award_when_target_achieved = False
    org.save()
    _g1, _achieved_t1, g2 = fuel
    post(txn(1, "9000000001", 1200))
    track(django_capture_on_commit_callbacks)
    assert enrolled_in(g2) == {"9000000001"}


def test_a_batch_without_achievements_queues_no_refresh(
    fuel, post, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    calls = []
    monkeypatch.setattr(
        audiences,
        "audience_groups_refresh_for_targets",
        lambda **kw: calls.append(kw) or ([], None),
    )
    post(txn(1, "9000000001", 300))
    track(django_capture_on_commit_callbacks)
    assert calls == []


def test_the_hand_off_is_bounded_and_goes_on_in_the_next_run(fuel, org):
    g1, achieved_t1, _ = fuel
    t1 = g1.targets.get()
    more = [
        audiences.audience_group_create(
            organisation=org,
            name=f"Reached {n}",
            kind="filter",
            filter={"conditions": [{"target": t1.id, "achieved": True}]},
        )  # fmt: skip
        for n in range(3)
    ]
    unrelated = audiences.audience_group_create(
        organisation=org, name="Pune", kind="filter",
        filter={"conditions": [{"field": "attributes.city", "op": "eq", "value": "Pune"}]},
    )  # fmt: skip
    readers = [achieved_t1.id, *(g.id for g in more)]
    refreshed, last = audiences.audience_groups_refresh_for_targets(target_ids=[t1.id], limit=2)
    assert refreshed == readers[:2] and last == readers[1]
    refreshed, last = audiences.audience_groups_refresh_for_targets(
        target_ids=[t1.id], after_group_id=last, limit=2
    )
    assert refreshed == readers[2:] and last is None
    assert unrelated.id not in refreshed


def test_the_hand_off_skips_a_group_the_beat_gave_up_on(fuel, org):
    g1, achieved_t1, g2 = fuel
    achieved_t1.refresh_status = AudienceRefreshStatus.INVALID
    achieved_t1.save(update_fields=["refresh_status"])
    Customer.objects.create(organisation=org, mobile="9000000009")
    refreshed, last = audiences.audience_groups_refresh_for_targets(
        target_ids=[g1.targets.get().id]
    )
    assert (refreshed, last) == ([], None)
