"""Per-customer target values from CSV: runs the SQL path on PostgreSQL and the Python path on
SQLite; `python_path` forces the Python path on PostgreSQL too."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from enrolment.models import Customer, CustomerTargetValue, Enrolment, EnrolmentNotification
from enrolment.selectors import target_value_for

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["default", "python"])
def path(request, settings):
    if request.param == "python":
        if connection.vendor != "postgresql":
            pytest.skip("SQLite always takes the Python path")
        settings.ENROLMENT_IMPORT_SQL = False
    return request.param


@pytest.fixture
def group(make_group):
    return make_group("Fuel B2B", per_customer=True)


def nothing_written():
    return (
        Customer.objects.count(),
        CustomerTargetValue.objects.count(),
        Enrolment.objects.count(),
        EnrolmentNotification.objects.count(),
    ) == (0, 0, 0, 0)


def values_of(group, mobile):
    customer = Customer.objects.get(mobile=mobile)
    target = group.targets.get()
    return [
        target_value_for(target=target, customer_id=customer.id, cycle_ordinal=n) for n in (1, 2, 3)
    ]


def test_values_per_cycle_with_blank_cells_taking_the_default(path, upload, group):
    status = upload(group, "mobile,P1,P2,P3\n9000000001,150,,200\n9000000002,,120.5,\n")
    assert status["status"] == "done", status
    sql = connection.vendor == "postgresql" and path == "default"
    assert status["method"] == ("postgres_copy" if sql else "python")
    assert (status["total"], status["processed"], status["errors"]) == (2, 2, [])
    assert status["created_customers"] == 2 and status["newly_enrolled"] == 2
    assert values_of(group, "9000000001") == [Decimal(150), Decimal(100), Decimal(200)]
    assert values_of(group, "9000000002") == [Decimal(100), Decimal("120.5"), Decimal(100)]
    # a blank cell writes no row: the default applies
    assert CustomerTargetValue.objects.count() == 3
    assert set(Enrolment.objects.values_list("source", "is_active")) == {("custom_list", True)}


def test_columns_map_by_full_period_name_shorthand_or_do_not_import(path, upload, group):
    text = "phone,first,Fuel B2B P2,notes\n+91 90000 00001,10,20,vip\n"
    status = upload(
        group,
        text,
        identifier_column="phone",
        mapping='{"first": "P1", "Fuel B2B P2": "Fuel B2B P2", "notes": "do_not_import"}',
    )
    assert status["status"] == "done", status
    assert values_of(group, "919000000001") == [Decimal(10), Decimal(20), Decimal(100)]


def test_cyclic_milestones_take_p1_to_the_cycle_count(path, upload, make_group):
    group = make_group(
        "Cyclic B2B",
        per_customer=True,
        cycle={
            "type": "cyclic",
            "frequency": "days",
            "days": 30,
            "count": 2,
            "start": date(2026, 1, 1),
        },
    )
    assert upload(group, "mobile,P1,P2\n9000000001,5,6\n")["status"] == "done"
    assert values_of(group, "9000000001")[:2] == [Decimal(5), Decimal(6)]
    refused = upload(group, "mobile,P1,P3\n9000000001,5,6\n")
    assert refused["status"] == "failed"
    assert refused["errors"] == [
        {"row": 1, "column": "P3",
         "message": "The column 'P3' is not mapped: map it to a cycle (P1..P2) or to do_not_import."}
    ]  # fmt: skip


def test_a_value_applies_to_every_target_of_the_milestone(path, upload, make_group):
    group = make_group(
        "Two targets",
        per_customer=True,
        targets=[
            {"name": "Litres", "kpi": "quantity", "value": Decimal(100)},
            {"name": "Visits", "kpi": "transaction_count", "value": Decimal(4)},
        ],
    )
    upload(group, "mobile,P1\n9000000001,7\n")
    customer = Customer.objects.get()
    for target in group.targets.all():
        assert target_value_for(target=target, customer_id=customer.id, cycle_ordinal=1) == 7


def test_upload_more_adds_customers_updates_values_and_blank_clears(path, upload, group):
    upload(group, "mobile,P1,P2\n9000000001,150,160\n9000000002,10,20\n")
    status = upload(group, "mobile,P1,P2\n9000000001,300,\n9000000003,1,2\n")
    assert status["status"] == "done", status
    assert status["created_customers"] == 1 and status["newly_enrolled"] == 1
    assert values_of(group, "9000000001")[:2] == [Decimal(300), Decimal(100)]  # P2 back to default
    assert values_of(group, "9000000002")[:2] == [Decimal(10), Decimal(20)]  # untouched
    assert values_of(group, "9000000003")[:2] == [Decimal(1), Decimal(2)]
    assert Enrolment.objects.filter(target_group=group, is_active=True).count() == 3


def test_unknown_customers_are_reported_when_the_list_must_not_create_them(
    path, upload, group, org
):
    Customer.objects.create(organisation=org, mobile="9000000001")
    status = upload(group, "mobile,P1\n9000000001,5\n9000000009,5\n", create_customers=False)
    assert status["status"] == "failed"
    assert status["errors"] == [
        {"row": 3, "column": "mobile", "message": "No customer with mobile 9000000009 in this organisation."}
    ]  # fmt: skip
    assert CustomerTargetValue.objects.count() == 0 and Customer.objects.count() == 1


BAD_ROWS = [
    ("mobile,P1\nabc,5\n", {"row": 2, "column": "mobile", "message": "'abc' is not a mobile number: it has no digits."}),
    ("mobile,P1\n12,5\n", {"row": 2, "column": "mobile", "message": "'12' is not a mobile number: it needs 6 to 15 digits."}),
    ("mobile,P1\n,5\n", {"row": 2, "column": "mobile", "message": "The mobile is missing."}),
    ("mobile,P1\n9000000001,ten\n", {"row": 2, "column": "P1", "message": "'ten' is not a number."}),
    ("mobile,P1\n9000000001,-5\n", {"row": 2, "column": "P1", "message": "'-5' is negative: target values cannot be negative."}),
    ("mobile,P1\n9000000001,1.23456\n", {"row": 2, "column": "P1", "message": "'1.23456' has more than 4 decimal places."}),
    ("mobile,P1\n9000000001,5,6\n", {"row": 2, "column": "", "message": "This row has 3 columns where the header has 2: check the delimiter (commas) and quoting."}),
]  # fmt: skip


@pytest.mark.parametrize("text,error", BAD_ROWS)
def test_each_bad_row_is_reported_with_row_column_and_reason_and_nothing_is_written(
    path, upload, group, text, error
):
    status = upload(group, "mobile,P1\n9000000002,1\n" + text.split("\n", 1)[1])
    expected = {**error, "row": 3}
    assert status["status"] == "failed"
    assert status["errors"] == [expected]
    assert status["error_count"] == 1
    assert nothing_written()


def test_a_duplicate_customer_in_the_file_names_the_first_row(path, upload, group):
    status = upload(group, "mobile,P1\n9000000001,5\n9000000002,6\n+9000000001,7\n")
    assert status["errors"] == [
        {"row": 4, "column": "mobile",
         "message": "The customer with mobile 9000000001 is already in row 2: each customer may appear once in a file."}
    ]  # fmt: skip
    assert nothing_written()


def test_every_bad_row_is_reported_not_only_the_first(path, upload, group):
    status = upload(group, "mobile,P1,P2\nx,-1,y\n9000000001,1,2\n9000000002,oops,3\n")
    assert [(e["row"], e["column"]) for e in status["errors"]] == [
        (2, "mobile"),
        (2, "P1"),
        (2, "P2"),
        (4, "P1"),
    ]
    assert status["error_count"] == 4
    assert nothing_written()


def test_wrong_encoding_is_reported_on_its_row(path, upload, group):
    body = b"mobile,P1\n9000000001,5\n" + "9000000002,5 café\n".encode("latin-1")
    status = upload(group, body)
    assert status["errors"] == [
        {"row": 3, "column": "",
         "message": "This row is not UTF-8 text: save the file as CSV UTF-8 (comma-separated)."}
    ]  # fmt: skip
    assert nothing_written()


def test_a_utf16_file_is_refused_whole(path, upload, group):
    status = upload(group, "mobile,P1\n9000000001,5\n".encode("utf-16"))
    assert status["errors"] == [
        {"row": 0, "column": "", "message": "The file is UTF-16 text: save it as CSV UTF-8 (comma-separated)."}
    ]  # fmt: skip


def test_a_semicolon_separated_file_is_reported_as_the_wrong_delimiter(path, upload, group):
    status = upload(group, "mobile;P1\n9000000001;5\n")
    assert status["status"] == "failed"
    assert status["errors"][0]["row"] == 1
    assert "seems to be separated by ';'" in status["errors"][0]["message"]
    assert nothing_written()


def test_an_unmapped_column_is_refused(path, upload, group):
    status = upload(group, "mobile,P1,bonus\n9000000001,5,1\n")
    assert status["errors"] == [
        {"row": 1, "column": "bonus",
         "message": "The column 'bonus' is not mapped: map it to a cycle (P1..P3) or to do_not_import."}
    ]  # fmt: skip
    assert nothing_written()


def test_a_missing_identifier_column_and_a_mapping_to_no_cycle_are_refused(path, upload, group):
    status = upload(group, "phone,P1\n9000000001,5\n", mapping='{"P1": "P9"}')
    messages = [e["message"] for e in status["errors"]]
    assert "The identifier column 'mobile' is not in the file (its columns: phone, P1)." in messages
    assert any("mapped to 'P9', which is not a cycle" in m for m in messages)


@pytest.mark.parametrize(
    "body,message",
    [
        (b"", "The file is empty."),
        (b"mobile,P1\n", "The file has a header row but no customer rows."),
    ],
)
def test_an_empty_file_is_refused(path, upload, group, body, message):
    status = upload(group, body)
    assert status["status"] == "failed"
    assert status["errors"] == [{"row": 0, "column": "", "message": message}]


def test_a_file_over_25_mb_is_refused_before_it_is_read(api, configurer, group, settings):
    settings.CSV_UPLOAD_MAX_BYTES = 1000
    from django.core.files.uploadedfile import SimpleUploadedFile

    big = SimpleUploadedFile("big.csv", b"mobile,P1\n" + b"9000000001,1\n" * 200)
    response = api(configurer).post(
        f"/api/v1/target-groups/{group.id}/target-values/upload/", {"file": big}, format="multipart"
    )
    assert response.status_code == 400
    assert "files over 0 MB are refused" in response.json()["file"][0]
    assert not group.imports.exists()


def test_the_content_length_alone_refuses_a_big_upload(api, configurer, group):
    response = api(configurer).generic(
        "POST",
        f"/api/v1/target-groups/{group.id}/target-values/upload/",
        "",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(30 * 1024 * 1024),
    )
    assert response.status_code == 400
    assert response.json()["file"] == ["The file is 30.0 MB: files over 25 MB are refused."]


def test_skip_bad_rows_imports_the_good_ones_and_lists_the_bad(path, upload, group):
    status = upload(group, "mobile,P1\n9000000001,5\nbad,6\n9000000002,-1\n9000000003,7\n",
                    skip_bad_rows=True)  # fmt: skip
    assert status["status"] == "done"
    assert status["skipped_rows"] == 2
    assert [e["row"] for e in status["errors"]] == [3, 4]
    assert sorted(Customer.objects.values_list("mobile", flat=True)) == ["9000000001", "9000000003"]


def test_a_same_target_for_all_milestone_refuses_value_columns(upload, make_group):
    group = make_group("List only", mode="custom_list")
    status = upload(group, "mobile,P1\n9000000001,5\n")
    assert "same target for all customers" in status["errors"][0]["message"]
    ok = upload(group, "mobile,P1\n9000000001,5\n", mapping='{"P1": "do_not_import"}')
    assert ok["status"] == "done" and Enrolment.objects.filter(target_group=group).count() == 1


def test_uploading_to_a_milestone_not_enrolled_by_list_is_a_400(upload, make_group):
    group = make_group("Everyone")
    body = upload(group, "mobile\n9000000001\n", expect=400)
    assert "custom_list enrolment mode" in body["non_field_errors"][0]


def test_member_care_cannot_upload_and_another_org_gets_404(
    upload, group, member_care, other_configurer
):
    upload(group, "mobile,P1\n1\n", user=member_care, expect=403)
    upload(group, "mobile,P1\n1\n", user=other_configurer, expect=404)
    assert not group.imports.exists()


def test_the_sample_csv_has_the_identifier_and_each_period(api, configurer, group):
    response = api(configurer).get(f"/api/v1/target-groups/{group.id}/target-values/sample/")
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0] == "mobile,Fuel B2B P1,Fuel B2B P2,Fuel B2B P3"
    # 10 digits, like the stored customers (without a default country mobiles are digits)
    assert lines[1].split(",")[0] == "9000000001" and len(lines[1].split(",")) == 4
    # The default values in plain digits, so the sample file imports as it is.
    assert all(cell.isdigit() for cell in lines[1].split(",")[1:])


@pytest.mark.django_db(transaction=True)
def test_big_files_write_in_chunks_on_two_connections_with_exact_counts(
    upload, group, settings, monkeypatch
):
    """The SQL path's parallel writer (outside a transaction, over the row threshold): every
    chunk written once on its own connection, counts and progress exact, notifications once."""
    if connection.vendor != "postgresql":
        pytest.skip("the parallel writer is the PostgreSQL path's")
    settings.ENROLMENT_IMPORT_CHUNK = 7
    settings.ENROLMENT_IMPORT_PARALLEL_MIN_ROWS = 10
    settings.ENROLMENT_IMPORT_WORKERS = 2
    import threading

    from enrolment.importing.pg_path import PgImport

    threads, chunk = set(), PgImport._write_chunk

    def spy(self, start, end):
        threads.add(threading.get_ident())
        return chunk(self, start, end)

    monkeypatch.setattr(PgImport, "_write_chunk", spy)
    lines = [f"{9000000100 + n},{n + 1},,{2 * n}" for n in range(40)]
    lines.insert(5, "12,1,1,1")  # one bad row: skipped on request, the rest imported
    status = upload(group, "mobile,P1,P2,P3\n" + "\n".join(lines) + "\n", skip_bad_rows=True)
    assert status["status"] == "done", status
    assert (status["total"], status["processed"], status["skipped_rows"]) == (41, 41, 1)
    assert (status["created_customers"], status["newly_enrolled"]) == (40, 40)
    assert status["notifications"] == 40 == EnrolmentNotification.objects.count()
    assert len(threads) == 2 and threading.get_ident() not in threads
    assert CustomerTargetValue.objects.count() == 80  # P2 blank everywhere; P3 is 0 for n=0
    assert values_of(group, "9000000107") == [Decimal(8), Decimal(100), Decimal(14)]
    again = upload(group, "mobile,P1,P2,P3\n" + "\n".join(lines) + "\n", skip_bad_rows=True)
    assert (again["created_customers"], again["newly_enrolled"], again["notifications"]) == (
        0,
        0,
        0,
    )
    assert EnrolmentNotification.objects.count() == 40


def _pg_only():
    if connection.vendor != "postgresql":
        pytest.skip("the set-based reference check is the PostgreSQL path's")


@pytest.mark.parametrize("set_based", [True, False])
def test_references_checked_set_based_leave_every_later_write_checked(
    upload, group, settings, set_based
):
    """The SQL path checks a chunk's references with one lock per referenced table instead of
    one trigger per row; the same rows are written either way, and once the chunk is done
    (here inside the test's transaction, so SET LOCAL would otherwise outlive it) foreign keys
    are enforced again."""
    _pg_only()
    from django.db import IntegrityError, transaction
    from django.test.utils import CaptureQueriesContext

    settings.SET_BASED_REFERENCES = set_based
    upload(group, "mobile,P1,P2,P3\n9000000001,150,,200\n")  # one customer already there
    with CaptureQueriesContext(connection) as ctx:
        status = upload(group, "mobile,P1,P2,P3\n9000000001,160,,\n9000000002,,120,\n")
    assert status["status"] == "done", status
    assert (status["created_customers"], status["newly_enrolled"]) == (1, 1)
    assert values_of(group, "9000000001") == [Decimal(160), Decimal(100), Decimal(100)]
    assert values_of(group, "9000000002") == [Decimal(100), Decimal(120), Decimal(100)]
    assert EnrolmentNotification.objects.count() == 2
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert ("session_replication_role = replica" in sql) is set_based
    assert ("FOR KEY SHARE OF c" in sql) is set_based  # the customers, read and held at once
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"
    target = group.targets.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        CustomerTargetValue.objects.create(
            organisation_id=group.organisation_id,
            target=target,
            customer_id=10**12,
            cycle_ordinal=1,
            value=1,
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("moment", ["just after the chunk read its customers", "later"])
def test_a_customer_being_imported_cannot_be_deleted_until_the_chunk_commits(
    upload, group, monkeypatch, moment
):
    """What each row's foreign-key check would hold, the set-based check holds too: another
    connection's DELETE of a customer the chunk is writing for waits on its lock, from the
    statement that reads the chunk's customers to the commit."""
    _pg_only()
    import psycopg

    from enrolment.importing.pg_path import PgImport

    customer = Customer.objects.create(organisation_id=group.organisation_id, mobile="9000000001")
    outcome = []

    def try_delete():
        params = connection.get_connection_params()
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SET lock_timeout = '300ms'")
            try:
                other.execute("DELETE FROM enrolment_customer WHERE id = %s", [customer.id])
                outcome.append("deleted")
            except psycopg.errors.LockNotAvailable:
                outcome.append("blocked")

    def after_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "CREATE TEMP TABLE enrol_rows_" in sql:
            try_delete()
        return result

    text = "mobile,P1,P2,P3\n9000000001,160,,\n9000000002,,120,\n"
    if moment == "later":
        notify = PgImport._notify

        def delete_meanwhile(self, cursor, newly_t, targets):
            try_delete()
            return notify(self, cursor, newly_t, targets)

        monkeypatch.setattr(PgImport, "_notify", delete_meanwhile)
        status = upload(group, text)
    else:
        with connection.execute_wrapper(after_read):
            status = upload(group, text)
    assert status["status"] == "done", status
    assert outcome == ["blocked"]
    assert values_of(group, "9000000001")[0] == Decimal(160)
