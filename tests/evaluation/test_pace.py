"""Progress pace of an ongoing cycle (API.md, "Additions (second round)"): remaining,
days_left, required_daily_pace, pace_so_far, on_track."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from enrolment.models import Customer
from evaluation.selectors import customer_milestones
from tests.evaluation.conftest import txn
from tests.factories import monthly_cycle

pytestmark = pytest.mark.django_db
PACE_KEYS = ("remaining", "days_left", "required_daily_pace", "pace_so_far", "on_track")


def _march(customer_mobile, now):
    cycles = customer_milestones(customer=Customer.objects.get(mobile=customer_mobile), now=now)
    return {c["name"]: c for c in cycles[0]["cycles"]}


def test_an_ongoing_cycle_has_its_pace_in_calendar_days_of_the_organisation(
    make_group, post, track, stores
):
    make_group("Spend")  # 2026 in monthly cycles, 1000 to reach; the org is in Asia/Kolkata
    post(
        txn(1, "2026-03-05T10:00:00+00:00", 400, mobile="9000000001"),
        txn(2, "2026-03-05T10:00:00+00:00", 100, mobile="9000000002"),
    )
    track(now=datetime(2026, 3, 6, tzinfo=UTC))
    # 10 March, 20:00 UTC is already 11 March in Kolkata: 11 days elapsed, 21 left (11..31)
    now = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    ahead = next(c for c in _march("9000000001", now).values() if c["status"] == "ongoing")
    assert {k: ahead[k] for k in PACE_KEYS} == {
        "remaining": Decimal(600),
        "days_left": 21,
        "required_daily_pace": Decimal("28.5714"),  # 600 / 21
        "pace_so_far": Decimal("36.3636"),  # 400 / 11
        "on_track": True,  # 400 + 36.36 x 21 = 1163 >= 1000
    }
    behind = next(c for c in _march("9000000002", now).values() if c["status"] == "ongoing")
    assert behind["remaining"] == Decimal(900) and behind["on_track"] is False
    # completed and upcoming cycles carry no pace
    others = [c for c in _march("9000000001", now).values() if c["status"] != "ongoing"]
    assert others and all(c[k] is None for c in others for k in PACE_KEYS)


def test_the_api_answers_the_pace_of_today_s_cycle(
    api, configurer, make_group, post, track, stores, org
):
    today = timezone.now().astimezone(org.tzinfo).date()
    first = today.replace(day=1)
    make_group("Now", start=first, end=date(today.year + 1, 12, 31),
               cycle=monthly_cycle(first, count=3))  # fmt: skip
    post(txn(1, timezone.now().isoformat(), 250, mobile="9000000003"))
    track()
    customer = Customer.objects.get(mobile="9000000003")
    body = api(configurer).get(f"/api/v1/customers/{customer.id}/milestones/").json()
    ongoing = [c for c in body[0]["cycles"] if c["status"] == "ongoing"]
    assert len(ongoing) == 1
    cycle = ongoing[0]
    last = date.fromisoformat(cycle["end"])
    assert cycle["remaining"] == 750.0
    assert cycle["days_left"] == (last - today).days + 1
    assert cycle["required_daily_pace"] == round(750 / cycle["days_left"], 4)
    assert cycle["pace_so_far"] == round(250 / ((today - first).days + 1), 4)
    assert isinstance(cycle["on_track"], bool)
    upcoming = [c for c in body[0]["cycles"] if c["status"] == "upcoming"]
    assert upcoming and all(c["days_left"] is None for c in upcoming)


def test_member_care_says_the_pace_in_words():
    from membercare.views import pace_text

    cycle = {"status": "ongoing", "remaining": Decimal(2300), "days_left": 9,
             "required_daily_pace": Decimal("255.5556"), "pace_so_far": Decimal(180),
             "on_track": False}  # fmt: skip
    assert pace_text(cycle) == (
        "Needs 2,300 more in 9 days (255.6 a day; 180 a day so far): behind pace."
    )
    assert pace_text({**cycle, "days_left": 1, "on_track": True}).startswith(
        "Needs 2,300 more in 1 day"
    )
    assert pace_text({**cycle, "remaining": Decimal(0)}) == ""  # reached
    assert pace_text({**cycle, "status": "completed"}) == ""
