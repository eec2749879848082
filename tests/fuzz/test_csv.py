"""CSV in and out: whatever bytes are uploaded as a custom list (per-customer target values),
the answer is a clear error and nothing is written, or a clean import; formula cells
(`=cmd|' /C calc'!A0`, `+1`, `-2`, `@SUM(1)`) never come back out unescaped in a CSV export
(the target-values sample, the admin's liability report)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from common.csv_safe import FORMULA_STARTS, csv_cell
from enrolment.models import Customer, CustomerTargetValue, Enrolment, EnrolmentNotification
from milestones.services.target_groups import target_group_create
from tests.factories import TillFactory
from tests.promotions import conftest as promotions_fixtures

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INJECTIONS = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(1)", '=HYPERLINK("http://x")', "\t=1"]


def _group(org, configurer, *, name="Fuel B2B", periods=None):
    cycle = (
        {
            "type": "custom_periods",
            "periods": [
                {"name": n, "start": date(2026, i + 1, 1), "end": date(2026, i + 1, 28)}
                for i, n in enumerate(periods)
            ],
        }
        if periods
        else {
            "type": "fixed_calendar",
            "frequency": "monthly",
            "count": 3,
            "start": date(2026, 1, 1),
        }
    )
    data = {
        "name": name,
        "start": date(2026, 1, 1),
        "end": date(2026, 12, 31),
        "till_code": TillFactory(organisation=org).code,
        "cycle": cycle,
        "enrolment": {"mode": "custom_list"},
        "target_value_mode": "per_customer",
        "targets": [{"name": "Litres", "kpi": "quantity", "value": Decimal(100)}],
    }
    group, _ = target_group_create(organisation=org, data=data, user=configurer, via_api=True)
    return group


@pytest.fixture
def group(org, configurer):
    return _group(org, configurer)


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from milestones_site.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def upload(api, configurer, eager, django_capture_on_commit_callbacks):
    """upload(group, bytes) -> (HTTP status, JSON): the import's status once its task ran, or
    the refusal."""
    client = api(configurer)

    def run(group, body: bytes):
        data = {"file": SimpleUploadedFile("values.csv", body, content_type="text/csv")}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/api/v1/target-groups/{group.id}/target-values/upload/", data, format="multipart"
            )
        assert response.status_code < 500, response.content[:500]
        if response.status_code != 202:
            return response.status_code, response.json()
        status = client.get(f"/api/v1/imports/{response.json()['import']}/")
        assert status.status_code == 200
        return 202, status.json()

    return run


def _written():
    return (
        Customer.objects.count(),
        CustomerTargetValue.objects.count(),
        Enrolment.objects.count(),
        EnrolmentNotification.objects.count(),
    )


def _assert_clear_refusal(code, body, before):
    if code == 202:
        assert body["status"] == "failed", body
        errors = body["errors"]
        assert errors and all(e["message"].strip() for e in errors), body
        assert all(isinstance(e["row"], int) for e in errors), body
    else:
        assert code == 400 and body, body
    assert _written() == before, "a refused file wrote something"


# NUL bytes have their own test (test_nul_bytes_in_a_file_are_a_clear_error).
bad_csv_text = st.one_of(
    st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"")),
    # a good header, then junk
    st.binary(max_size=200).map(lambda b: b"mobile,P1,P2,P3\n" + b.replace(b"\x00", b"")),
    # the right shape, the wrong encoding or delimiter
    st.sampled_from(["utf-16", "utf-32", "cp1252", "latin-1"]).map(
        lambda enc: "mobile,P1\n9000000001,5 café €\n".encode(enc, errors="replace")
    ),
    st.sampled_from([";", "\t", "|", " "]).map(
        lambda sep: f"mobile{sep}P1{sep}P2\n9000000001{sep}5{sep}6\n".encode()
    ),
    st.lists(st.text(max_size=12), min_size=1, max_size=4).map(
        lambda cells: ("mobile,P1\n" + ",".join(cells) + "\n").encode("utf-8", "surrogatepass")
    ),
)


@FUZZ
@given(body=bad_csv_text)
def test_any_uploaded_bytes_are_a_clean_import_or_a_clear_error(upload, group, body):
    note(repr(body))
    before = _written()
    code, result = upload(group, body)
    if code == 202 and result["status"] == "done":
        # The junk happened to be a valid file: then it was imported without complaint.
        assert result["errors"] == [], result
        return
    _assert_clear_refusal(code, result, before)


@pytest.mark.parametrize("body", [b"", b"\x01\x02", b"\xef\xbb\xbf", b"mobile,P1\n"])
def test_empty_and_binary_files_are_refused(upload, group, body):
    before = _written()
    _assert_clear_refusal(*upload(group, body), before)


@pytest.mark.parametrize("body", [b"\x00\x01\x02", b"mobile,P\x001\n9000000001,5\n"])
def test_nul_bytes_in_a_file_are_a_clear_error(upload, group, body):
    before = _written()
    _assert_clear_refusal(*upload(group, body), before)


def _cells(content: bytes) -> list[str]:
    return [c for row in csv.reader(io.StringIO(content.decode("utf-8"))) for c in row]


def _assert_no_live_formula(cells: list[str]):
    for cell in cells:
        if cell.startswith(FORMULA_STARTS):
            assert csv_cell(cell) == cell, f"formula cell exported unescaped: {cell!r}"


def test_formula_period_names_are_escaped_in_the_sample_csv(api, org, configurer):
    group = _group(org, configurer, name='=cmd"\nx', periods=INJECTIONS[:4])
    response = api(configurer).get(f"/api/v1/target-groups/{group.id}/target-values/sample/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    header = next(csv.reader(io.StringIO(response.content.decode())))
    assert header[1:] == ["'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(1)"]
    _assert_no_live_formula(_cells(response.content))


def test_the_escaped_sample_imports_as_it_is(api, org, configurer, upload):
    """The importer reads '=x back as the period =x, so a filled-in sample round-trips."""
    group = _group(org, configurer, periods=INJECTIONS[:4])
    sample = api(configurer).get(f"/api/v1/target-groups/{group.id}/target-values/sample/")
    header = sample.content.decode().splitlines()[0]
    code, status = upload(group, (header + "\n9000000001,1,2,3,4\n").encode())
    assert (code, status["status"], status["values_written"]) == (202, "done", 4), status


@FUZZ
@given(
    text=st.one_of(
        st.sampled_from(INJECTIONS),
        st.tuples(st.sampled_from(FORMULA_STARTS), st.text(max_size=15)).map("".join),
        st.text(max_size=15),
    )
)
def test_csv_cell_never_lets_a_formula_through(text):
    cell = csv_cell(text)
    assert not cell.startswith(FORMULA_STARTS)
    assert cell == text or cell == "'" + text


def test_numbers_keep_their_sign():
    assert [csv_cell(v) for v in (-2, Decimal("-1.5"), -0.5, "+3", 0, None)] == [
        "-2",
        "-1.5",
        "-0.5",
        "'+3",
        "0",
        "",
    ]


# The promotions suite's fixtures: milestones, a promotion, activities through the API and
# the workers' pipeline (a module attribute is a fixture to pytest).
stores = promotions_fixtures.stores
make_group = promotions_fixtures.make_group
promo = promotions_fixtures.promo
post = promotions_fixtures.post
run = promotions_fixtures.run


def test_formula_names_are_escaped_in_the_liability_csv(
    admin_client_for, configurer, make_group, promo, post, run
):
    make_group("=cmd|' /C calc'!A0", targets=[{"name": "@SUM(1)", "kpi": "gross_sales",
                                               "value": Decimal(1000)}])  # fmt: skip
    promo("currentEvent.isTargetAchievedEvent == true", name="+1")
    post(promotions_fixtures.txn(1, "2026-03-04T10:00:00+00:00", 1200))
    run()
    exported = admin_client_for(configurer).get("/admin/promotions/award/liability/?format=csv")
    assert exported.status_code == 200 and exported["Content-Type"] == "text/csv"
    table = list(csv.reader(io.StringIO(exported.content.decode())))
    assert len(table) == 2, table
    assert "'=cmd|' /C calc'!A0" in table[1] and "'@SUM(1)" in table[1], table
    _assert_no_live_formula(_cells(exported.content))
