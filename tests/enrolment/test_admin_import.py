"""The admin's custom-list upload: django-import-export preview (errors shown), then confirm;
and the background upload with its progress bar."""

import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from enrolment.models import (
    Customer,
    CustomerTargetValue,
    Enrolment,
    EnrolmentNotification,
    ImportJob,
)
from enrolment.selectors import target_value_for

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/enrolment/importjob/import/"
CONFIRM_URL = "/admin/enrolment/importjob/process_import/"


@pytest.fixture
def group(make_group):
    return make_group("Admin B2B", per_customer=True)


def preview(client, group, text, **options):
    data = {
        "format": "0",
        "import_file": SimpleUploadedFile("list.csv", text.encode(), content_type="text/csv"),
        "target_group": group.id,
        "identifier_type": "mobile",
        "identifier_column": "",
        "mapping": "",
        "send_trigger": "on",
        "create_customers": "on",
        **options,
    }
    return client.post(IMPORT_URL, data)


def hidden_inputs(html: str) -> dict:
    fields = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = (value.group(1) if value else "").replace("&quot;", '"')
    return fields


def test_preview_shows_every_bad_row_and_offers_no_confirmation(
    admin_client_for, configurer, group
):
    client = admin_client_for(configurer)
    page = client.get(IMPORT_URL)
    assert page.status_code == 200 and b"target_group" in page.content
    response = preview(client, group, "mobile,P1,P2\n9000000001,5,6\nabc,-1,7\n")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Row 3: &#x27;abc&#x27; is not a mobile number: it has no digits." in html
    assert "Row 3: &#x27;-1&#x27; is negative: target values cannot be negative." in html
    assert 'action="/admin/enrolment/importjob/process_import/"' not in html
    assert not Customer.objects.exists() and not CustomerTargetValue.objects.exists()


def test_preview_then_confirm_writes_the_values(admin_client_for, configurer, group):
    client = admin_client_for(configurer)
    response = preview(client, group, "mobile,P1,P2\n9000000001,5,\n9000000002,7,8\n")
    html = response.content.decode()
    assert 'action="/admin/enrolment/importjob/process_import/"' in html
    assert not Customer.objects.exists()  # the preview is a dry run
    confirm = hidden_inputs(html)
    confirm.pop("csrfmiddlewaretoken", None)
    response = client.post(CONFIRM_URL, confirm)
    assert response.status_code == 302, response.content[:2000]
    target = group.targets.get()
    first = Customer.objects.get(mobile="9000000001")
    assert target_value_for(target=target, customer_id=first.id, cycle_ordinal=1) == Decimal(5)
    assert target_value_for(target=target, customer_id=first.id, cycle_ordinal=2) == Decimal(100)
    assert Enrolment.objects.filter(target_group=group, is_active=True).count() == 2
    job = ImportJob.objects.get()
    assert (job.method, job.status, job.newly_enrolled, job.total) == ("admin", "done", 2, 2)


def test_skip_bad_rows_lets_the_admin_confirm_the_good_rows(admin_client_for, configurer, group):
    client = admin_client_for(configurer)
    response = preview(client, group, "mobile,P1\n9000000001,5\nabc,6\n", skip_bad_rows="on")
    confirm = hidden_inputs(response.content.decode())
    confirm.pop("csrfmiddlewaretoken", None)
    assert client.post(CONFIRM_URL, confirm).status_code == 302
    assert list(Customer.objects.values_list("mobile", flat=True)) == ["9000000001"]


def test_a_bad_header_is_shown_in_the_preview(admin_client_for, configurer, group):
    response = preview(admin_client_for(configurer), group, "mobile,bonus\n9000000001,5\n")
    assert "The column &#x27;bonus&#x27; is not mapped" in response.content.decode()
    assert not Customer.objects.exists()


def test_background_upload_shows_its_progress_in_the_list(
    admin_client_for, configurer, group, eager, django_capture_on_commit_callbacks
):
    client = admin_client_for(configurer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/enrolment/importjob/add/",
            {
                "target_group": group.id,
                "file": SimpleUploadedFile("big.csv", b"mobile,P1\n9000000001,5\n9000000002,6\n"),
                "identifier_type": "mobile",
                "identifier_column": "",
                "mapping": "",
                "send_trigger": "on",
                "create_customers": "on",
            },
        )
    assert response.status_code == 302, response.content[:3000]
    job = ImportJob.objects.get()
    assert (job.status, job.processed, job.total) == ("done", 2, 2)
    listing = client.get("/admin/enrolment/importjob/").content.decode()
    assert '<progress value="2" max="2"></progress> 2 / 2' in listing
    detail = client.get(f"/admin/enrolment/importjob/{job.id}/change/")
    assert detail.status_code == 200 and b"big.csv" in detail.content


def test_member_care_cannot_import(admin_client_for, member_care):
    assert admin_client_for(member_care).get(IMPORT_URL).status_code == 403


# --- The previewed file belongs to its uploader ---------------------------------------------------


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def confirm_fields(response) -> dict:
    fields = hidden_inputs(response.content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    assert fields.get("import_file_name"), "the preview offers no confirmation"
    return fields


def refused(response) -> bool:
    return response.status_code == 200 and (
        "This upload is not yours or has expired" in response.content.decode()
    )


@pytest.fixture
def globex_group(other_org, other_configurer):
    from datetime import date

    from milestones.services.target_groups import target_group_create
    from tests.factories import TillFactory

    data = {
        "name": "Globex B2B",
        "till_code": TillFactory(organisation=other_org).code,
        "start": date(2026, 1, 1),
        "end": date(2026, 12, 31),
        "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 3,
                  "start": date(2026, 1, 1)},
        "enrolment": {"mode": "custom_list"},
        "target_value_mode": "per_customer",
        "targets": [{"name": "Globex target", "kpi": "quantity", "value": Decimal(100)}],
    }  # fmt: skip
    made, _ = target_group_create(
        organisation=other_org, data=data, user=other_configurer, via_api=True
    )
    return made


def test_a_file_of_the_temp_directory_is_refused_and_left_alone(
    admin_client_for, configurer, group, tmp_path
):
    """The confirm step used to read any file of the server's temp directory named in the
    form (and then delete it), its rows becoming customers of the caller's organisation."""
    import os
    import tempfile

    planted = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    planted.write("mobile,P1\n9111111111,5\n")
    planted.close()
    try:
        client = admin_client_for(configurer)
        fields = confirm_fields(preview(client, group, "mobile,P1\n9000000001,5\n"))
        for name in (os.path.basename(planted.name), planted.name, "../../" + planted.name):
            response = client.post(CONFIRM_URL, {**fields, "import_file_name": name})
            assert refused(response), name
        assert os.path.exists(planted.name)  # not deleted
        assert not Customer.objects.exists()  # not read
    finally:
        os.unlink(planted.name)


def test_another_organisation_cannot_confirm_an_upload_it_did_not_make(
    admin_client_for, configurer, other_configurer, group, globex_group
):
    client = admin_client_for(configurer)
    fields = confirm_fields(preview(client, group, "mobile,P1\n9000000001,5\n"))
    client.force_login(other_configurer)
    response = client.post(CONFIRM_URL, {**fields, "target_group": globex_group.id})
    assert refused(response)
    assert not Customer.objects.exists() and not ImportJob.objects.exists()
    client.force_login(configurer)  # the uploader's file is still there: they confirm it
    assert client.post(CONFIRM_URL, fields).status_code == 302
    assert list(Customer.objects.values_list("organisation_id", "mobile")) == [
        (group.organisation_id, "9000000001")
    ]


def test_a_colleague_cannot_confirm_someone_elses_upload(admin_client_for, configurer, group):
    from milestones.models import Role
    from tests.factories import UserFactory

    colleague = UserFactory(username="carol", organisation=group.organisation, role=Role.CONFIGURER)
    client = admin_client_for(configurer)
    fields = confirm_fields(preview(client, group, "mobile,P1\n9000000001,5\n"))
    client.force_login(colleague)
    assert refused(client.post(CONFIRM_URL, fields))
    assert not Customer.objects.exists()


def test_a_tampered_or_expired_file_name_is_refused(
    admin_client_for, configurer, group, monkeypatch
):
    from common import admin as admin_base

    client = admin_client_for(configurer)
    fields = confirm_fields(preview(client, group, "mobile,P1\n9000000001,5\n"))
    signed = fields["import_file_name"]
    for value in (signed[:-1] + ("A" if signed[-1] != "A" else "B"), signed + "x", "0" * 32):
        assert refused(client.post(CONFIRM_URL, {**fields, "import_file_name": value})), value
    monkeypatch.setattr(admin_base, "IMPORT_NAME_MAX_AGE", -1)
    assert refused(client.post(CONFIRM_URL, fields))
    assert not Customer.objects.exists()


def test_a_confirmed_upload_cannot_be_confirmed_twice(admin_client_for, configurer, group):
    client = admin_client_for(configurer)
    fields = confirm_fields(preview(client, group, "mobile,P1\n9000000001,5\n"))
    assert client.post(CONFIRM_URL, fields).status_code == 302
    assert refused(client.post(CONFIRM_URL, fields))  # its file is gone
    assert ImportJob.objects.count() == 1


def test_the_previewed_file_waits_in_the_import_storage_only(
    admin_client_for, configurer, group, settings
):
    """Nothing in the shared temp directory; a refused preview leaves no file behind."""
    folder = settings.MEDIA_ROOT / "django-import-export"
    client = admin_client_for(configurer)
    preview(client, group, "mobile,P1\nabc,5\n")  # a bad row: no confirmation offered
    assert not folder.exists() or list(folder.iterdir()) == []
    fields = confirm_fields(preview(client, group, "mobile,P1\n9000000001,5\n"))
    assert [p.name for p in folder.iterdir()] != []
    assert client.post(CONFIRM_URL, fields).status_code == 302
    assert list(folder.iterdir()) == []


# --- One import service: the admin's confirm runs the same job as the API ------------------------


def rows_of(group) -> dict:
    """What an import wrote for a milestone, without the ids and names of its organisation."""
    target = group.targets.get()

    def payload(note):
        data = dict(note.payload["data"])
        for key in ("targetGroupId", "targetId", "targetPeriodId", "eventId", "targetGroupName",
                    "targetName", "targetPeriodName"):  # fmt: skip
            data.pop(key)
        data["customerIdentifiers"] = {
            k: v for k, v in data["customerIdentifiers"].items() if k != "customerId"
        }
        data["milestoneDetails"] = [
            {k: v for k, v in d.items() if k != "milestoneName"} for d in data["milestoneDetails"]
        ]
        return note.payload["eventName"], data

    return {
        "customers": sorted(
            Customer.objects.filter(organisation_id=group.organisation_id).values_list(
                "mobile", "email", "external_id"
            )
        ),
        "values": sorted(
            CustomerTargetValue.objects.filter(target=target).values_list(
                "customer__mobile", "cycle_ordinal", "value"
            )
        ),
        "enrolments": sorted(
            Enrolment.objects.filter(target_group=group).values_list(
                "customer__mobile", "source", "is_active"
            )
        ),
        "notifications": sorted(
            (payload(n) for n in EnrolmentNotification.objects.filter(target_group=group)),
            key=lambda p: p[1]["customerIdentifiers"]["mobile"],
        ),
    }


JOB_FIELDS = ["status", "total", "processed", "error_count", "errors", "skipped_rows",
              "created_customers", "newly_enrolled", "values_written", "values_cleared",
              "notifications", "identifier_type", "identifier_column", "mapping", "send_trigger",
              "skip_bad_rows", "create_customers", "size"]  # fmt: skip


def test_the_admin_confirm_runs_an_import_job_whose_rows_equal_the_api_imports(
    admin_client_for, configurer, group, upload, other_configurer, globex_group
):
    text = "mobile,P1,P2,P3\n9000000001,150,,200\n9000000002,,120.5,\nabc,5,5,5\n"
    client = admin_client_for(configurer)
    fields = confirm_fields(preview(client, group, text, skip_bad_rows="on"))
    assert client.post(CONFIRM_URL, fields).status_code == 302
    by_admin = ImportJob.objects.get(target_group=group)
    by_api = ImportJob.objects.get(pk=upload(globex_group, text, user=other_configurer, skip_bad_rows=True)["id"])  # fmt: skip

    # the confirmed file itself was handed to the job, which ran as every import does
    by_admin.file.open("rb")
    assert by_admin.file.read() == text.encode()
    by_admin.file.close()
    assert by_admin.original_name == "list.csv" and by_admin.created_by == configurer
    assert by_admin.started_at is not None and by_admin.finished_at is not None
    assert by_admin.method == "admin"
    assert {f: getattr(by_admin, f) for f in JOB_FIELDS} == {
        f: getattr(by_api, f) for f in JOB_FIELDS
    }
    assert (by_admin.status, by_admin.newly_enrolled, by_admin.skipped_rows) == ("done", 2, 1)
    assert [e["row"] for e in by_admin.errors] == [4]

    written = rows_of(group)
    assert written == rows_of(globex_group)
    assert written["values"] == [
        ("9000000001", 1, Decimal(150)),
        ("9000000001", 3, Decimal(200)),
        ("9000000002", 2, Decimal("120.5")),
    ]
    assert len(written["notifications"]) == 2


def test_a_confirm_the_job_refuses_writes_nothing_and_says_why(admin_client_for, configurer, group):
    """The job checks the file again: a customer deleted between the preview and the confirm
    of a list that must not create customers is reported, and nothing is written."""
    ghost = Customer.objects.create(organisation=group.organisation, mobile="9000000001")
    client = admin_client_for(configurer)
    fields = confirm_fields(
        preview(client, group, "mobile,P1\n9000000001,5\n", create_customers="")
    )
    ghost.delete()
    response = client.post(CONFIRM_URL, fields, follow=True)
    job = ImportJob.objects.get()
    assert (job.status, job.method, job.error_count) == ("failed", "admin", 1)
    assert "No customer with mobile 9000000001 in this organisation." in response.content.decode()
    assert not Customer.objects.exists() and not Enrolment.objects.exists()


def test_the_resource_only_previews(group):
    import tablib

    from enrolment.resources import CustomListResource, PreviewOnly

    dataset = tablib.Dataset(["9000000001", "5"], headers=["mobile", "P1"])
    resource = CustomListResource(target_group=group)
    assert not resource.import_data(dataset, dry_run=True).has_errors()
    with pytest.raises(PreviewOnly):
        resource.import_data(dataset, dry_run=False)
    assert not Customer.objects.exists()
