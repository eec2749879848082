"""One threshold rule (`milestones.thresholds`): a sub-target of 50 % of a customer's target
of 1000.0001 is reached at 500.0001 (4 places, half up). Tracking fires there and the
enrolment notification tells the customer the same value, on SQLite and PostgreSQL, through
both import backends and both tracking folds."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from enrolment.models import EnrolmentNotification
from evaluation.models import Activity, TargetEvent
from evaluation.tasks import track_activities
from milestones.thresholds import threshold, threshold_sql

NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("target_value", "percent", "expected"),
    [
        ("1000.0001", "50", "500.0001"),  # 500.00005: half up, not half to even (500.0000)
        ("1000.0003", "50", "500.0002"),  # 500.00015
        ("0.0001", "50", "0.0001"),  # 0.00005
        ("0.0001", "49.9999", "0"),  # 0.0000499999
        ("99999999999999.9999", "100", "99999999999999.9999"),
        ("333.3333", "33.3333", "111.1110"),  # 111.11098888...
    ],
)
def test_a_percentage_threshold_rounds_to_four_places_half_up(target_value, percent, expected):
    assert threshold("percentage", Decimal(percent), Decimal(target_value)) == Decimal(expected)


def test_an_absolute_threshold_is_its_value():
    assert threshold("absolute", Decimal("10.5"), Decimal("1000.0001")) == Decimal("10.5")


@pytest.mark.django_db
def test_the_sql_rule_gives_the_python_value():
    if connection.vendor != "postgresql":
        pytest.skip("the SQL rule is PostgreSQL's")
    cases = [
        ("percentage", "50", "1000.0001"),
        ("percentage", "50", "1000.0003"),
        ("percentage", "49.9999", "0.0001"),
        ("percentage", "33.3333", "333.3333"),
        ("percentage", "12.5", "0.0004"),
        ("absolute", "10.5", "1000.0001"),
    ]
    with connection.cursor() as cursor:
        for criteria, value, target_value in cases:
            expr = threshold_sql(criteria, Decimal(value), "t.v")
            cursor.execute(f"SELECT {expr} FROM (SELECT %s::numeric AS v) t", [target_value])
            expected = threshold(criteria, Decimal(value), Decimal(target_value))
            assert cursor.fetchone()[0] == expected, (criteria, value, target_value)


# --- tracking and the notification agree -----------------------------------------------------


@pytest.fixture(params=["default", "python"])
def import_path(request, settings):
    """The import's backend: the SQL one on PostgreSQL ("default"), the Python one."""
    if request.param == "python":
        if connection.vendor != "postgresql":
            pytest.skip("SQLite always takes the Python path")
        settings.ENROLMENT_IMPORT_SQL = False
    return request.param


@pytest.fixture(params=["default", "row_by_row"])
def fold(request, settings):
    """Tracking's fold: set-based on PostgreSQL ("default"), row by row."""
    if request.param == "row_by_row":
        if connection.vendor != "postgresql":
            pytest.skip("SQLite always folds row by row")
        settings.TRACKING_SQL_FOLD = False
    return request.param


@pytest.fixture
def group(make_group):
    first, last = NOW.date() - timedelta(days=10), NOW.date() + timedelta(days=10)
    return make_group(
        "Fuel B2B",
        per_customer=True,
        start=first,
        end=last,
        cycle={"type": "custom_periods", "periods": [{"name": "Now", "start": first, "end": last}]},
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": Decimal(1000),
                "sub_targets": [
                    {"name": "Halfway", "criteria": "percentage", "value": Decimal(50)}
                ],
            }
        ],
    )


@pytest.fixture
def spend(api, integration, django_capture_on_commit_callbacks):
    """spend(gross): one bill through the API, then the tracking task (as the worker runs it)."""
    sent = []

    def send(gross: str) -> None:
        sent.append(gross)
        item = {"id": f"txn-{len(sent)}", "type": "transaction",
                "customer": {"mobile": "9000000001"},
                "occurred_at": (NOW - timedelta(minutes=10 - len(sent))).isoformat(),
                "gross": gross, "net": gross}  # fmt: skip
        with django_capture_on_commit_callbacks(execute=False):  # tracking: called below
            response = api(integration).post("/api/v1/activities/", [item], format="json")
        assert response.status_code == 202, response.content
        ids = list(Activity.objects.filter(status="pending").values_list("id", flat=True))
        with django_capture_on_commit_callbacks(execute=True):
            track_activities(ids)

    return send


@pytest.mark.django_db
def test_tracking_fires_at_the_threshold_the_notification_shows(
    import_path, fold, upload, group, spend
):
    status = upload(group, "mobile,P1\n9000000001,1000.0001\n")
    assert (status["status"], status["notifications"]) == ("done", 1), status
    data = EnrolmentNotification.objects.get().payload["data"]
    (halfway, _target) = data["milestoneDetails"]
    assert (halfway["milestoneName"], halfway["thresholdValue"]) == ("Halfway", "500.0001")

    spend("500.0000")  # half to even would have fired here, below what the customer was told
    assert not TargetEvent.objects.filter(type="sub_target_achieved").exists()
    spend("0.0001")
    (event,) = TargetEvent.objects.filter(type="sub_target_achieved")
    assert event.milestone_value_defined == Decimal(halfway["thresholdValue"])
    assert (event.defined, event.achieved) == (Decimal("1000.0001"), Decimal("500.0001"))
