"""Near-miss events (issue 20): optional per target, a customer within N % of the target with
at most D days of the cycle left gets one `near_miss` event per cycle; promotions on "Near
miss" hear it (`currentEvent.isNearMissEvent`)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from evaluation.models import NearMissRule, TargetEvent
from evaluation.near_miss import near_miss_rule_set, near_misses_check
from promotions.models import Award, Message
from tests.factories import UserFactory

from .conftest import pipeline, txn

pytestmark = pytest.mark.django_db
# March 2026 in Kolkata: the 29th (from 00:00 IST) leaves 3 days: 29, 30, 31
MARCH_28_NOON = datetime(2026, 3, 28, 6, 30, tzinfo=UTC)
MARCH_29_EARLY = datetime(2026, 3, 28, 19, 0, tzinfo=UTC)  # 00:30 on the 29th in Kolkata


def _setup(org, make_group, post_and_track):
    group = make_group("ABC")  # 1000 to reach in each monthly cycle
    target = group.targets.get()
    near_miss_rule_set(target=target, within_percent=Decimal(10), days_left=3)
    post_and_track(
        txn(1, datetime(2026, 3, 5, tzinfo=UTC), 950, mobile="9000000001"),  # near
        txn(2, datetime(2026, 3, 5, tzinfo=UTC), 899, mobile="9000000002"),  # not near enough
        txn(3, datetime(2026, 3, 5, tzinfo=UTC), 1000, mobile="9000000003"),  # reached
        txn(4, datetime(2026, 3, 5, tzinfo=UTC), 900, mobile="9000000004"),  # exactly 10 % off
    )
    return target


@pytest.fixture
def post_and_track(api, integration, django_capture_on_commit_callbacks):
    def send(*items):
        with django_capture_on_commit_callbacks(execute=False):
            body = [{**i, "occurred_at": i["occurred_at"].isoformat()} for i in items]
            assert (
                api(integration).post("/api/v1/activities/", body, format="json").status_code == 202
            )
        pipeline()

    return send


def test_one_event_per_cycle_for_those_near_the_target_in_its_last_days(
    org, make_group, post_and_track
):
    _setup(org, make_group, post_and_track)
    assert near_misses_check(now=MARCH_28_NOON) == []  # 4 days left in Kolkata
    written = near_misses_check(now=MARCH_29_EARLY)  # 3 days left there (still the 28th in UTC)
    events = TargetEvent.objects.filter(id__in=written)
    assert sorted(events.values_list("customer__mobile", "achieved")) == [
        ("9000000001", Decimal(950)),
        ("9000000004", Decimal(900)),
    ]
    assert {e.type for e in events} == {"near_miss"} and {e.period_name for e in events} == {
        "ABC P1"
    }
    assert near_misses_check(now=datetime(2026, 3, 30, tzinfo=UTC)) == []  # once per cycle


def test_a_near_miss_promotion_messages_the_customer(org, make_group, post_and_track, promo):
    _setup(org, make_group, post_and_track)
    promo("currentEvent.isNearMissEvent && currentEvent.targetName == \"ABC\"",
          [{"type": "send_message", "channel": "sms",
            "template": "Only {gap} to go for {target.name}!"}], activity="near_miss")  # fmt: skip
    promo("true", activity="target_period_elapsed", name="Cycle end only")  # hears no near miss
    near_misses_check(now=MARCH_29_EARLY)
    pipeline()
    assert sorted(Message.objects.values_list("recipient", "body")) == [
        ("9000000001", "Only 50 to go for ABC!"),
        ("9000000004", "Only 100 to go for ABC!"),
    ]
    assert not Award.objects.filter(
        promotion__name="Cycle end only", event__type="near_miss"
    ).exists()


def test_the_near_miss_api_sets_reads_and_refuses_at_the_field(
    api, configurer, make_group, other_org
):
    target = make_group("ABC").targets.get()
    url = f"/api/v1/targets/{target.pk}/near-miss/"
    client = api(configurer)
    assert client.get(url).status_code == 404
    assert client.put(url, {"within_percent": 10, "days_left": 3}, format="json").json() == {
        "within_percent": 10.0, "days_left": 3}  # fmt: skip
    bad = client.put(url, {"within_percent": 80, "days_left": 0}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"within_percent", "days_left"}
    assert NearMissRule.objects.get().within_percent == 10  # unchanged
    stranger = UserFactory(organisation=other_org, role="configurer")
    assert api(stranger).get(url).status_code == 404
    assert client.delete(url).status_code == 204 and not NearMissRule.objects.exists()


def test_a_cyclic_milestone_has_no_near_miss(api, configurer, make_group):
    group = make_group("Cyc", cycle={"type": "cyclic", "frequency": "days", "days": 30,
                                     "start": datetime(2026, 3, 1).date(), "count": 3})  # fmt: skip
    url = f"/api/v1/targets/{group.targets.get().pk}/near-miss/"
    refused = api(configurer).put(url, {"within_percent": 10, "days_left": 3}, format="json")
    assert refused.status_code == 400 and "target" in str(refused.json())
