"""The forecast of a live cycle, checked against what happened: a finished cycle is replayed
to its midpoint (only the activities before it tracked), forecast there, then played to the
end and closed; the forecast's error is measured."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from evaluation.ingest import activities_ingest
from evaluation.models import Activity, ActivityStatus, Progress
from evaluation.tracking import activities_track
from promotions.consumer import target_events_consume
from promotions.forecast import milestone_forecast
from tests.factories import target_data

pytestmark = pytest.mark.django_db


def _spend(org, month: int, customers: range, plan: list[tuple[int, int]], tag: str):
    items = [
        {"id": f"{tag}-{c}-{day}", "type": "transaction", "customer": {"mobile": f"9100{c:06d}"},
         "occurred_at": datetime(2026, month, day, 6, tzinfo=UTC), "gross": Decimal(amount)}
        for c in customers for day, amount in plan
    ]  # fmt: skip
    activities_ingest(organisation=org, items=items)


def _track_until(moment: datetime):
    ids = Activity.objects.filter(status=ActivityStatus.PENDING, occurred_at__lt=moment)
    activities_track(activity_ids=list(ids.values_list("id", flat=True)), now=moment)
    target_events_consume(now=moment)


def test_the_forecast_at_a_cycle_s_midpoint_matches_what_happened(org, make_group, promo):
    org.award_when_target_achieved = True
    org.save()
    group = make_group("ABC", targets=[target_data("ABC", sub_targets=[
        {"name": "Half", "criteria": "percentage", "value": Decimal(50)}])])  # fmt: skip
    promo('currentEvent.targetAchieved("ABC") >= currentEvent.targetDefined("ABC")')  # 100 points
    # March (finished): 20 customers reach half by the 10th; 18 of them buy again on the 25th
    # and reach the target. 20 others spend 200 early and never get anywhere.
    _spend(org, 3, range(0, 18), [(5, 600), (25, 500)], "m")
    _spend(org, 3, range(18, 20), [(5, 600)], "m")
    _spend(org, 3, range(20, 40), [(5, 200), (25, 100)], "m")
    _track_until(datetime(2026, 4, 1, tzinfo=UTC))
    # April, the cycle forecast at its midpoint: 10 customers at half (9 will finish), 30 slow
    _spend(org, 4, range(0, 9), [(4, 600), (26, 500)], "a")
    _spend(org, 4, range(9, 10), [(4, 600)], "a")
    _spend(org, 4, range(10, 40), [(4, 200), (26, 100)], "a")
    midpoint = datetime(2026, 4, 16, tzinfo=UTC)
    _track_until(midpoint)

    forecast = milestone_forecast(group, now=midpoint)
    [t] = forecast["targets"]
    assert forecast["cycle"]["ordinal"] == 2 and forecast["cycle"]["end"] == date(2026, 4, 30)
    assert t["customers"] == 40 and t["achieved_so_far"] == 0
    assert t["on_pace"] == 10  # pace alone: every customer at half is projected past 1000
    assert t["sub_targets"] == [{"name": "Half", "reached_so_far": 10, "on_pace": 0}]
    # from the same point in March: 18 of 20 at half finished, 0 of 20 below it did
    assert t["history_points"] == {
        "-1": {"seen": 20, "reached": 0},
        "0": {"seen": 20, "reached": 18},
    }
    assert t["expected_achievers"] == Decimal("9.00")
    assert t["liability"]["paid"] == {"points": Decimal(0), "coupons": 0}
    assert t["liability"]["projected_total"] == {"points": Decimal("900.00"), "coupons": 0}

    _track_until(datetime(2026, 5, 1, tzinfo=UTC))  # what happened
    actual = Progress.objects.filter(cycle_ordinal=2, achieved_at__isnull=False).count()
    assert actual == 9
    error = abs(t["expected_achievers"] - actual) / actual
    assert error <= Decimal("0.10")  # the pace estimate alone was 10 (11 % off)


def test_no_forecast_outside_a_running_fixed_cycle(org, make_group):
    group = make_group("ABC")
    later = milestone_forecast(group, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert later == {"cycle": None, "reason": "No cycle is running now.", "targets": []}


def test_the_forecast_api_answers_the_organisation_s_own_milestones_only(
    api, configurer, make_group, other_org
):
    from tests.factories import UserFactory

    group = make_group("ABC")
    body = api(configurer).get(f"/api/v1/target-groups/{group.pk}/forecast/")
    assert body.status_code == 200 and set(body.json()) == {"cycle", "reason", "targets"}
    stranger = UserFactory(organisation=other_org, role="configurer")
    assert api(stranger).get(f"/api/v1/target-groups/{group.pk}/forecast/").status_code == 404


def test_the_insights_page_shows_the_forecast_of_the_running_cycle(
    org, make_group, admin_client_for, configurer
):
    from django.utils import timezone

    from tests.factories import CustomerFactory, EnrolmentFactory, ProgressFactory, monthly_cycle

    today = timezone.now().astimezone(org.tzinfo).date()
    first = today.replace(day=1)
    group = make_group("Now", start=first, end=date(today.year + 1, 12, 31),
                       cycle=monthly_cycle(first, count=2))  # fmt: skip
    period = group.periods.get(ordinal=1)
    for n, value in enumerate([Decimal(999), Decimal(1)]):
        customer = CustomerFactory(organisation=org, mobile=f"91111000{n:02d}")
        EnrolmentFactory(customer=customer, target_group=group)
        ProgressFactory(customer=customer, target=group.targets.get(), cycle_ordinal=1,
                        period=period, achieved=value, target_value=Decimal(1000),
                        cycle_start=period.starts_at, cycle_end=period.ends_at)  # fmt: skip
    html = admin_client_for(configurer).get(f"/care/milestones/{group.pk}/insights/").content
    page = html.decode()
    assert "Forecast of the running cycle" in page and "Asia/Kolkata" in page
    row = page.split('<th scope="row">Now</th>')[1].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    assert cells[:2] == ["2", "0"]  # customers, reached so far
    assert cells[5] == "not known yet"  # no earlier cycle paid anything: no projection
