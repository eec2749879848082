"""The custom-list upload as the reference walks it: upload the file, map each column (the
customer identifier, a cycle of the milestone's target, or "Do not import"), preview (rows,
new customers, problems by row and column), confirm; then the import's page, which says what
to fix when it fails and offers to skip the bad rows. Nothing is written before "Confirm"."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from common.admin import import_name_unsign
from enrolment.importing import preview as preview_module
from enrolment.importing.jobs import import_job_create, import_job_run
from enrolment.importing.preview import guess_mapping
from enrolment.models import Customer, CustomerTargetValue, Enrolment, ImportJob
from enrolment.selectors import target_value_for
from milestones.models import Role
from tests.e2e import conftest as e2e
from tests.factories import (
    CustomerFactory,
    TargetGroupFactory,
    TillFactory,
    UserFactory,
    monthly_cycle,
    target_data,
)

pytestmark = pytest.mark.django_db


# --- helpers ----------------------------------------------------------------------------------


def text_of(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("&rsaquo;", "›"), ("&amp;", "&"), ("&#x27;", "'"), ("&quot;", '"')):
        text = text.replace(entity, char)
    return re.sub(r"\s+", " ", text).strip()


class _Forms(HTMLParser):
    """Selects (name -> chosen value, options as (group, value, label)) and hidden inputs."""

    def __init__(self):
        super().__init__()
        self.selects: dict[str, dict] = {}
        self.hidden: dict[str, dict[str, str]] = {}  # form id -> {name: value}
        self._select = self._option = self._group = None
        self._form = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = a.get("id", "")
        elif tag == "select":
            self._select = self.selects.setdefault(a["name"], {"value": None, "options": []})
        elif tag == "optgroup":
            self._group = a.get("label")
        elif tag == "option" and self._select is not None:
            self._option = [self._group, a.get("value"), ""]
            if "selected" in a:
                self._select["value"] = a.get("value")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden.setdefault(self._form, {})[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None:
            self._select["options"].append(tuple(self._option))
            self._option = None
        elif tag == "optgroup":
            self._group = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._option is not None:
            self._option[2] += data


def forms_of(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def between(html: str, start: str, end: str) -> str:
    begin = html.index(start)
    return html[begin : html.index(end, begin)]


def csv(text: str, name: str = "targets.csv") -> SimpleUploadedFile:
    body = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, body, content_type="text/csv")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT / "django-import-export"  # where uploads wait between steps


def waiting(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def group(org, configurer):
    """Fuel B2B: per-customer targets, a custom list, three monthly cycles of 2026 named
    "Fuel B2B P1".."Fuel B2B P3", one quantity target of 100."""
    return TargetGroupFactory(
        organisation=org,
        created_by=configurer,
        name="Fuel B2B",
        cycle=monthly_cycle(date(2026, 1, 1), count=3),
        targets=[target_data("Litres", kpi="quantity", value=100)],
        enrolment={"mode": "custom_list"},
        target_value_mode="per_customer",
        till_code=TillFactory(organisation=org).code,
    )


def client_for(user) -> Client:
    """A browser of its own, signed in as `user`."""
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def alice(configurer) -> Client:
    return client_for(configurer)


def upload(client, group, text, name="targets.csv"):
    """Step 1: the response (a redirect to the mapping step when the file is accepted)."""
    return client.post(f"/care/milestones/{group.pk}/imports/upload/", {"file": csv(text, name)})


def mapping_page(client, group, text, name="targets.csv"):
    response = upload(client, group, text, name)
    assert response.status_code == 302, text_of(response.content.decode())
    return client.get(response["Location"])


def fields_of(page) -> dict:
    """The mapping form's values as the page shows them (chosen options, ticked boxes)."""
    html = page.content.decode()
    found = forms_of(html)
    data = dict(found.hidden.get("mc-mapping-form", {}))
    data.pop("csrfmiddlewaretoken", None)
    for name, select in found.selects.items():
        data[name] = select["value"]
    for name in ("create_customers", "send_trigger"):
        if re.search(rf'<input[^>]*name="{name}"[^>]*checked', html):
            data[name] = "on"
    return data


def preview(client, group, data, **headers):
    return client.post(f"/care/milestones/{group.pk}/imports/map/", data, **headers)


def confirm_fields(page) -> dict:
    fields = dict(forms_of(page.content.decode()).hidden["mc-confirm-form"])
    fields.pop("csrfmiddlewaretoken", None)
    return fields


def values_of(group, mobile) -> list[Decimal]:
    customer = Customer.objects.get(mobile=mobile)
    target = group.targets.get()
    return [target_value_for(target=target, customer_id=customer.id, cycle_ordinal=n) for n in (1, 2, 3)]  # fmt: skip


def nothing_imported() -> bool:
    return not (
        ImportJob.objects.exists()
        or CustomerTargetValue.objects.exists()
        or Enrolment.objects.exists()
    )


# --- where the pages sit ----------------------------------------------------------------------


def test_the_upload_page_sits_under_the_milestone_and_links_back_to_it(alice, group):
    html = alice.get(f"/care/milestones/{group.pk}/imports/").content.decode()
    crumbs = text_of(between(html, '<div class="breadcrumbs">', "</div>"))
    assert crumbs == "Home › Milestones › Fuel B2B › Upload targets"
    view_url = f"/admin/milestones/targetgroup/{group.pk}/view/"
    assert f'<a href="{view_url}">Fuel B2B</a>' in html
    assert f'<a href="{view_url}">Back to Fuel B2B</a>' in html
    assert "Member care" not in crumbs
    assert "Uploaded (Asia/Kolkata)" in text_of(html)


def test_the_mapping_step_and_the_import_page_keep_the_milestone_breadcrumbs(alice, group):
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n")
    crumbs = text_of(between(page.content.decode(), '<div class="breadcrumbs">', "</div>"))
    assert crumbs == "Home › Milestones › Fuel B2B › Upload targets › Map fields"
    job = import_job_create(target_group=group, file=csv("mobile,P1\n9000000001,10\n"), run=False)
    html = alice.get(f"/care/imports/{job.pk}/").content.decode()
    crumbs = text_of(between(html, '<div class="breadcrumbs">', "</div>"))
    assert crumbs == f"Home › Milestones › Fuel B2B › Upload targets › Import #{job.pk}"
    assert f'href="/admin/milestones/targetgroup/{group.pk}/view/"' in html


# --- step 1: upload ---------------------------------------------------------------------------


def test_an_accepted_file_waits_for_its_mapping_signed_for_its_uploader(alice, group, media, configurer):  # fmt: skip
    response = upload(alice, group, "mobile,P1\n9000000001,10\n", name="march.csv")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == f"/care/milestones/{group.pk}/imports/map/"
    query = parse_qs(location.query)
    (stored,) = waiting(media)
    assert import_name_unsign(query["upload"][0], configurer) == stored
    assert query["name"] == ["march.csv"]
    assert nothing_imported() and not Customer.objects.exists()


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            "mobile,P1\n9000000001,10\n".encode("utf-16"),
            "The file is UTF-16 text: save it as CSV UTF-8 (comma-separated).",
        ),  # fmt: skip
        (
            b"PK\x03\x04\x00\x00binary\n",
            "This line has NUL bytes: the file is not CSV text (save it as CSV UTF-8).",
        ),  # fmt: skip
        (b"mobile,P1\n", "The file has a header row but no customer rows."),
        (
            b"\xff\xfamobile,P1\n9000000001,10\n",
            "This row is not UTF-8 text: save the file as CSV UTF-8 (comma-separated).",
        ),  # fmt: skip
    ],
    ids=["utf16", "binary", "header-only", "not-utf8"],
)
def test_a_malformed_csv_is_refused_at_the_file_field_and_nothing_is_kept(alice, group, media, body, shown):  # fmt: skip
    response = upload(alice, group, body)
    assert response.status_code == 200
    html = response.content.decode()
    assert shown in text_of(between(html, '<div class="form-row errors">', "</div>"))
    assert '<a href="#id_file">CSV file: ' in html  # the summary links to the field
    assert "<title>Error: " in html
    assert waiting(media) == [] and nothing_imported()


def test_a_file_over_the_limit_is_refused_before_it_is_kept(alice, group, media, settings):
    settings.CSV_UPLOAD_MAX_BYTES = 20
    response = upload(alice, group, "mobile,P1\n9000000001,10\n9000000002,20\n")
    assert "files over 0 MB are refused" in text_of(response.content.decode())
    assert waiting(media) == []


def test_a_milestone_not_enrolled_by_list_takes_no_upload(alice, org, configurer, media):
    same = TargetGroupFactory(organisation=org, created_by=configurer, name="Everyone",
                              till_code=TillFactory(organisation=org).code)  # fmt: skip
    response = upload(alice, same, "mobile\n9000000001\n")
    assert "custom lists are uploaded only to milestones enrolled by custom list" in text_of(response.content.decode())  # fmt: skip
    assert waiting(media) == []


# --- step 2: map fields -----------------------------------------------------------------------


def test_the_columns_are_guessed_from_the_headers(alice, group):
    page = mapping_page(alice, group, "Mobile Number,Fuel B2B P2,notes,target\n9000000001,20,vip,5\n")  # fmt: skip
    data = fields_of(page)
    assert data["identifier_type"] == "mobile"
    # by name: identifier and the period "Fuel B2B P2"; "notes" is text: not imported;
    # "target" is numeric: the first free cycle
    assert [data[f"column_{i}"] for i in range(4)] == ["identifier", "P2", "do_not_import", "P1"]
    assert data["create_customers"] == "on" and data["send_trigger"] == "on"
    assert nothing_imported()


def test_columns_past_the_milestones_cycles_default_to_do_not_import(group):
    kind, mapping = guess_mapping(
        group=group,
        header=["email", "a", "b", "c", "d"],
        rows=[["asha@example.com", "1", "2", "3", "4"]],
    )
    assert kind == "email"
    assert mapping == {"email": "identifier", "a": "P1", "b": "P2", "c": "P3", "d": "do_not_import"}


def test_each_column_maps_to_the_identifier_a_cycle_by_name_and_dates_or_do_not_import(alice, group):  # fmt: skip
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n")
    options = forms_of(page.content.decode()).selects["column_1"]["options"]
    assert options == [
        (None, "identifier", "Customer identifier"),
        ("Target value of Litres", "P1", "P1 · Fuel B2B P1 (01 Jan 2026 – 31 Jan 2026)"),
        ("Target value of Litres", "P2", "P2 · Fuel B2B P2 (01 Feb 2026 – 28 Feb 2026)"),
        ("Target value of Litres", "P3", "P3 · Fuel B2B P3 (01 Mar 2026 – 31 Mar 2026)"),
        (None, "do_not_import", "Do not import"),
    ]
    html = page.content.decode()
    assert '<label for="id_column_1">P1</label>' in html  # every select has its label
    assert "9000000001" in text_of(between(html, "<tbody>", "</tbody>"))  # first values shown


def test_a_milestone_with_one_target_for_everyone_maps_no_value_column(alice, org, configurer):
    same = TargetGroupFactory(organisation=org, created_by=configurer, name="Listed",
                              enrolment={"mode": "custom_list"},
                              till_code=TillFactory(organisation=org).code)  # fmt: skip
    page = mapping_page(alice, same, "mobile,P1\n9000000001,10\n")
    options = forms_of(page.content.decode()).selects["column_1"]["options"]
    assert [value for _, value, _ in options] == ["identifier", "do_not_import"]
    assert fields_of(page)["column_1"] == "do_not_import"


def test_mapping_problems_are_shown_at_their_columns_all_at_once_with_a_summary(alice, group):
    page = mapping_page(alice, group, "mobile,first,second,phone\n9000000001,1,2,9000000002\n")
    data = fields_of(page) | {"column_1": "P1", "column_2": "P1", "column_3": "identifier"}
    response = preview(alice, group, data)
    html = response.content.decode()
    summary = between(html, 'id="mc-error-summary"', "</div>")
    assert '<a href="#id_column_0">mobile: Only one column identifies the customer' in summary
    assert '<a href="#id_column_3">phone: Only one column identifies the customer' in summary
    assert '<a href="#id_column_2">second: The columns &#x27;first&#x27; and &#x27;second&#x27; are both mapped to cycle P1.</a>' in summary  # fmt: skip
    row = between(
        html, '<tr class="errors">\n          <th scope="row"><label for="id_column_2">', "</tr>"
    )
    assert "are both mapped to cycle P1" in text_of(row)  # at the column's select
    assert "<title>Error: " in html and 'id="mc-confirm-form"' not in html
    assert nothing_imported()


def test_no_identifier_column_is_a_problem_of_the_mapping(alice, group):
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n")
    response = preview(alice, group, fields_of(page) | {"column_0": "do_not_import"})
    summary = between(response.content.decode(), 'id="mc-error-summary"', "</div>")
    assert "No column is mapped to the customer identifier" in text_of(summary)
    assert 'href="#mc-mapping"' in summary


# --- step 3: preview --------------------------------------------------------------------------


def test_the_preview_counts_rows_and_new_customers_and_writes_nothing(alice, group, org):
    CustomerFactory(organisation=org, mobile="9000000002")
    page = mapping_page(alice, group, "mobile,P1,P2\n9000000001,1500,\n9000000002,2000.50,300\n9000000003,,\n")  # fmt: skip
    html = page.content.decode()
    counts = text_of(between(html, '<ul class="mc-counts">', "</ul>"))
    assert counts == ("3 rows in the file 2 new customers will be created "
                      "1 customer already in the organisation 0 rows with problems")  # fmt: skip
    first = between(html, '<table class="mc-first-rows">', "</table>")
    assert text_of(between(first, "<thead>", "</thead>")) == (
        "Row Mobile (“mobile”) P1 · Fuel B2B P1 (01 Jan 2026 – 31 Jan 2026) from “P1”, default 100 "
        "P2 · Fuel B2B P2 (01 Feb 2026 – 28 Feb 2026) from “P2”, default 100 Customer"
    )
    assert text_of(between(first, "<tbody>", "</tbody>")) == (
        "2 9000000001 1,500 default New customer "
        "3 9000000002 2,000.5 300 Already a customer "
        "4 9000000003 default default New customer"
    )
    assert "Confirm &amp; upload" in html
    assert Customer.objects.count() == 1 and nothing_imported()


def test_unticking_create_customers_reports_the_new_ones_as_problems(alice, group, org):
    CustomerFactory(organisation=org, mobile="9000000002")
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n9000000002,20\n")
    data = fields_of(page)
    del data["create_customers"]
    html = preview(alice, group, data).content.decode()
    counts = text_of(between(html, '<ul class="mc-counts">', "</ul>"))
    assert "will be created" not in counts and "1 row with problems" in counts
    problems = text_of(between(html, '<table class="mc-problems">', "</table>"))
    assert (
        "2 mobile 9000000001 No customer with mobile 9000000001 in this organisation." in problems
    )


def test_problems_are_listed_by_row_column_and_value_with_skip_bad_rows_offered(alice, group):
    page = mapping_page(alice, group, "mobile,P1,P2\n9000000001,10,ten\nabc,5,6\n9000000003,7,8\n")
    html = page.content.decode()
    problems = text_of(between(html, '<table class="mc-problems">', "</table>"))
    assert problems.startswith(
        "Problems by row and column Row Column Value Why "
        "2 P2 ten 'ten' is not a number. "
        "3 mobile abc 'abc' is not a mobile number"
    )
    assert "4 " not in problems and "2 rows with problems" in text_of(html)
    button = re.search(r'<button[^>]*name="skip_bad_rows" value="1"[^>]*>([^<]*)</button>', html)
    assert button and button.group(1) == "Skip bad rows: import the other 1 row"
    # the bad cell is marked in the first rows, the row says it is not imported
    first = text_of(between(html, '<table class="mc-first-rows">', "</table>"))
    assert "2 9000000001 10 ten 'ten' is not a number. Not imported" in first
    assert nothing_imported()


def test_a_file_where_every_row_is_bad_offers_no_import(alice, group):
    page = mapping_page(alice, group, "mobile,P1\nabc,1\nxyz,2\n")
    html = page.content.decode()
    assert "Every row checked has a problem" in text_of(html)
    assert 'id="mc-confirm"' not in html


def test_a_big_file_is_checked_in_its_first_rows_and_counted_whole(alice, group, monkeypatch):
    monkeypatch.setattr(preview_module, "PREVIEW_CHECK_ROWS", 2)
    rows = "".join(f"90000000{n:02d},{n}\n" for n in range(10, 15))
    html = mapping_page(alice, group, "mobile,P1\n" + rows).content.decode()
    assert "The first 2 of 5 rows were checked here; the import checks every row." in text_of(html)
    assert "5 rows in the file 2 new customers will be created" in text_of(html)


def test_a_change_of_mapping_returns_the_step_for_htmx_to_swap(alice, group):
    page = mapping_page(alice, group, "mobile,P1,P2\n9000000001,10,20\n")
    data = fields_of(page) | {"column_2": "do_not_import"}
    response = preview(alice, group, data, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="mc-import-step">') and "<html" not in html
    first = text_of(between(html, '<table class="mc-first-rows">', "</table>"))
    assert "P2 ·" not in first and "P1 · Fuel B2B P1" in first
    assert 'hx-post="/care/milestones/' in html and 'hx-trigger="change, submit"' in html


# --- step 4: confirm --------------------------------------------------------------------------


def test_confirm_runs_the_previewed_mapping_as_an_import_job(alice, group, media, configurer, django_capture_on_commit_callbacks):  # fmt: skip
    page = mapping_page(alice, group, "phone,second,first,notes\n9000000001,20,10,vip\n", name="b2b.csv")  # fmt: skip
    data = fields_of(page) | {"column_1": "P2", "column_2": "P1"}
    fields = confirm_fields(preview(alice, group, data))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = alice.post(f"/care/milestones/{group.pk}/imports/confirm/", fields)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/care/imports/{job.pk}/"
    assert len(queued) == 1  # the import task, after commit
    assert (job.original_name, job.identifier_column, job.created_by) == ("b2b.csv", "phone", configurer)  # fmt: skip
    assert job.mapping == {"second": "P2", "first": "P1", "notes": "do_not_import"}
    assert waiting(media) == []  # the waiting file became the job's
    import_job_run(import_id=job.pk)
    assert values_of(group, "9000000001") == [Decimal(10), Decimal(20), Decimal(100)]


def test_confirm_with_skip_bad_rows_imports_the_good_ones(alice, group):
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\nabc,5\n")
    fields = confirm_fields(page) | {"skip_bad_rows": "1"}
    alice.post(f"/care/milestones/{group.pk}/imports/confirm/", fields)
    job = import_job_run(import_id=ImportJob.objects.get().pk)
    assert (job.status, job.skipped_rows, job.newly_enrolled) == ("done", 1, 1)


def test_a_confirm_with_a_mapping_that_no_longer_fits_writes_nothing(alice, group, media):
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n")
    fields = confirm_fields(page) | {"column_1": "P9"}
    response = alice.post(f"/care/milestones/{group.pk}/imports/confirm/", fields, follow=True)
    assert "The mapping changed or is incomplete" in text_of(response.content.decode())
    assert nothing_imported() and len(waiting(media)) == 1  # still there to map again


def test_cancel_deletes_the_waiting_file(alice, group, media):
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n")
    token = fields_of(page)["upload"]
    response = alice.post(f"/care/milestones/{group.pk}/imports/confirm/", {"upload": token, "cancel": "1"}, follow=True)  # fmt: skip
    assert "The upload was cancelled: nothing was imported." in text_of(response.content.decode())
    assert waiting(media) == [] and nothing_imported()


# --- the waiting file is the uploader's -------------------------------------------------------


def test_a_colleague_cannot_map_preview_or_confirm_someone_elses_upload(alice, group, org, media):  # fmt: skip
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n")
    fields = confirm_fields(page)
    colleague = client_for(UserFactory(username="carol", organisation=org, role=Role.CONFIGURER))  # fmt: skip
    base = f"/care/milestones/{group.pk}/imports"
    for response in (
        colleague.get(f"{base}/map/", {"upload": fields["upload"]}, follow=True),
        colleague.post(f"{base}/map/", fields, follow=True),
        colleague.post(f"{base}/confirm/", fields, follow=True),
        colleague.post(
            f"{base}/confirm/", {"upload": fields["upload"], "cancel": "1"}, follow=True
        ),
    ):
        assert "This upload is not yours or has expired: upload the file again." in text_of(response.content.decode())  # fmt: skip
    assert nothing_imported() and len(waiting(media)) == 1


def test_another_organisation_gets_404_and_a_tampered_name_is_refused(alice, group, other_configurer, media):  # fmt: skip
    page = mapping_page(alice, group, "mobile,P1\n9000000001,10\n")
    fields = confirm_fields(page)
    (stored,) = waiting(media)
    for bad in ("../../settings.py", stored, fields["upload"] + "x"):
        response = alice.get(f"/care/milestones/{group.pk}/imports/map/", {"upload": bad})
        assert response.status_code == 302 and response["Location"] == f"/care/milestones/{group.pk}/imports/"  # fmt: skip
    other = client_for(other_configurer)
    assert other.post(f"/care/milestones/{group.pk}/imports/confirm/", fields).status_code == 404
    assert nothing_imported() and waiting(media) == [stored]


def test_an_expired_upload_in_an_htmx_request_sends_the_browser_back_to_the_upload(alice, group):
    response = alice.post(f"/care/milestones/{group.pk}/imports/map/", {"upload": "nonsense"}, HTTP_HX_REQUEST="true")  # fmt: skip
    assert response["HX-Redirect"] == f"/care/milestones/{group.pk}/imports/"


def test_member_care_cannot_reach_the_steps(member_care, group):
    job = import_job_create(target_group=group, file=csv("mobile,P1\n9000000001,10\n"), run=False)
    agent = client_for(member_care)
    base = f"/care/milestones/{group.pk}/imports"
    assert agent.post(f"{base}/upload/", {"file": csv("mobile\n1\n")}).status_code == 403
    assert agent.get(f"{base}/map/").status_code == 403
    assert agent.post(f"{base}/confirm/").status_code == 403
    assert agent.get(f"/care/imports/{job.pk}/outcome/").status_code == 403
    assert agent.post(f"/care/imports/{job.pk}/rerun/").status_code == 403
    assert ImportJob.objects.count() == 1


# --- after confirm: the import's page ---------------------------------------------------------


def failed_import(group, text="mobile,P1,P2\n9000000001,10,ten\n9000000002,5,6\n", **options):
    job = import_job_create(target_group=group, file=csv(text, "bad.csv"), run=False, **options)
    return import_job_run(import_id=job.pk)


def test_a_failed_import_says_what_to_fix_by_row_column_and_value(alice, group):
    job = failed_import(group)
    assert job.status == "failed"
    html = alice.get(f"/care/imports/{job.pk}/").content.decode()
    outcome = between(html, '<section id="mc-import-outcome"', "</section>")
    assert "Nothing was imported" in outcome
    assert "1 row of 2 has problems." in text_of(outcome)
    fix = text_of(between(outcome, '<table class="mc-problems">', "</table>"))
    assert fix == "What to fix Row Column Value Why 2 P2 ten 'ten' is not a number."
    assert "Skip bad rows: import the other 1 row" in text_of(outcome)
    assert "Upload a corrected file" in text_of(outcome)
    assert "mc-progress-errors" not in html  # listed once, with their values, in the outcome


def test_skip_bad_rows_reruns_the_file_as_a_new_import(alice, group, django_capture_on_commit_callbacks):  # fmt: skip
    job = failed_import(group, send_trigger=False)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = alice.post(f"/care/imports/{job.pk}/rerun/")
    again = ImportJob.objects.exclude(pk=job.pk).get()
    assert response["Location"] == f"/care/imports/{again.pk}/" and len(queued) == 1
    assert (again.skip_bad_rows, again.send_trigger, again.original_name) == (
        True,
        False,
        "bad.csv",
    )
    again = import_job_run(import_id=again.pk)
    assert (again.status, again.skipped_rows, again.newly_enrolled) == ("done", 1, 1)
    assert values_of(group, "9000000002") == [Decimal(5), Decimal(6), Decimal(100)]
    html = alice.get(f"/care/imports/{again.pk}/").content.decode()
    outcome = text_of(between(html, '<section id="mc-import-outcome"', "</section>"))
    assert "1 row with problems was left out: fix it and upload just that row again." in outcome
    assert "2 P2 ten 'ten' is not a number." in outcome


def test_a_refused_file_offers_no_skip_and_a_rerun_is_refused(alice, group):
    job = failed_import(group, text="mobile,P1,extra\n9000000001,10,x\n")  # "extra" is unmapped
    html = alice.get(f"/care/imports/{job.pk}/").content.decode()
    outcome = text_of(between(html, '<section id="mc-import-outcome"', "</section>"))
    assert "The file was refused before its rows were written" in outcome
    assert "1 (header) extra — The column 'extra' is not mapped" in outcome
    assert "Skip bad rows" not in outcome
    response = alice.post(f"/care/imports/{job.pk}/rerun/", follow=True)
    assert "skipping rows cannot fix it" in text_of(response.content.decode())
    assert ImportJob.objects.count() == 1


def test_a_running_import_fetches_its_outcome_when_the_bar_finishes(alice, group):
    job = import_job_create(target_group=group, file=csv("mobile,P1\n9000000001,10\n"), run=False)
    html = alice.get(f"/care/imports/{job.pk}/").content.decode()
    placeholder = re.search(r'<div id="mc-import-outcome"[^>]*>', html).group(0)
    assert f'hx-get="/care/imports/{job.pk}/outcome/"' in placeholder
    assert 'hx-trigger="mc-progress:finished from:body"' in placeholder
    import_job_run(import_id=job.pk)
    fragment = alice.get(f"/care/imports/{job.pk}/outcome/").content.decode()
    assert fragment.lstrip().startswith('<section id="mc-import-outcome"')
    assert "1 row read: 1 customer newly enrolled, 1 created, 1 target value written." in text_of(fragment)  # fmt: skip


def test_the_import_page_shows_its_time_in_the_organisations_zone(alice, group, configurer, other_configurer):  # fmt: skip
    job = import_job_create(
        target_group=group, file=csv("mobile,P1\n9000000001,10\n"), run=False, user=configurer
    )
    ImportJob.objects.filter(pk=job.pk).update(created_at=datetime(2026, 3, 1, 20, 0, tzinfo=UTC))
    html = alice.get(f"/care/imports/{job.pk}/").content.decode()
    assert "Uploaded 02 Mar 2026, 01:30 (Asia/Kolkata) by alice" in text_of(html)
    listing = text_of(alice.get(f"/care/milestones/{group.pk}/imports/").content.decode())
    assert "02 Mar 2026, 01:30" in listing
    other = client_for(other_configurer)
    assert other.get(f"/care/imports/{job.pk}/").status_code == 404
    assert other.get(f"/care/imports/{job.pk}/outcome/").status_code == 404
    assert other.post(f"/care/imports/{job.pk}/rerun/").status_code == 404


def test_user_text_is_escaped_on_every_step(alice, group, org):
    page = mapping_page(alice, group, "mobile,<b>x</b>\n9000000001,<i>1</i>\n", name="<script>.csv")
    html = page.content.decode()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<i>1</i>" not in html and "<script>.csv" not in html


# --- in a real browser ------------------------------------------------------------------------

# Chromium and screenshots as the browser tests have them (tests/e2e/conftest.py).
browser, new_page, screenshot = e2e.browser, e2e.new_page, e2e.screenshot


@pytest.mark.django_db(transaction=True)
def test_in_a_browser_upload_map_preview_and_confirm_skipping_the_bad_row(
    live_server, new_page, screenshot, group, media, tmp_path
):
    from playwright.sync_api import expect

    url = live_server.url
    page = new_page()
    e2e.log_in(page, url, "alice", f"/care/milestones/{group.pk}/imports/")
    expect(page.locator(".breadcrumbs")).to_have_text(re.compile(r"Home\s+›\s+Milestones\s+›\s+Fuel B2B\s+›\s+Upload targets"))  # fmt: skip
    e2e.axe_check(page, "import-01-upload")
    path = tmp_path / "b2b.csv"
    path.write_text("mobile,target,notes\n9000000001,150,vip\n9000000002,ten,\n")
    page.set_input_files("#id_file", str(path))
    page.get_by_role("button", name="Next: map the columns").click()

    expect(page.locator("h1")).to_have_text("Map fields: Fuel B2B")
    expect(page.locator("#id_column_0")).to_have_value("identifier")
    expect(page.locator("#id_column_1")).to_have_value("P1")  # a numeric column: the first cycle
    expect(page.locator("#id_column_2")).to_have_value("do_not_import")
    expect(page.locator("#mc-count-new")).to_have_text("1 new customer will be created")
    expect(page.locator("#mc-count-bad")).to_have_text("1 row with problems")
    expect(page.locator(".mc-problems tbody td")).to_have_text(["3", "target", "ten", "'ten' is not a number."])  # fmt: skip
    e2e.axe_check(page, "import-02-map-and-preview")

    # a new choice is previewed at once (htmx swaps the step), focus stays on the select
    page.focus("#id_column_1")
    page.select_option("#id_column_1", "P2")
    header = page.locator(".mc-first-rows thead")
    expect(header).to_contain_text("P2 · Fuel B2B P2 (01 Feb 2026 – 28 Feb 2026)")
    expect(page.locator("#id_column_1")).to_be_focused()
    assert Customer.objects.count() == 0 and not ImportJob.objects.exists()
    screenshot(page, "import-03-mapping-changed")

    page.get_by_role("button", name="Skip bad rows: import the other 1 row").click()
    job = ImportJob.objects.get()
    expect(page).to_have_url(f"{url}/care/imports/{job.pk}/")
    expect(page.locator(".breadcrumbs")).to_contain_text(f"Upload targets › Import #{job.pk}")
    import_job_run(import_id=job.pk)  # as the worker would
    outcome = page.locator("#mc-import-outcome")  # fetched by htmx when the bar finishes
    expect(outcome).to_contain_text("1 row with problems was left out")
    expect(outcome.locator("tbody td")).to_have_text(
        ["3", "target", "ten", "'ten' is not a number."]
    )
    assert values_of(group, "9000000001") == [Decimal(100), Decimal(150), Decimal(100)]
    e2e.axe_check(page, "import-04-imported")

    # a failed import says what to fix and reruns the file without its bad rows
    failed = failed_import(group)
    page.goto(f"{url}/care/imports/{failed.pk}/")
    outcome = page.locator("#mc-import-outcome")
    expect(outcome.locator("h2")).to_have_text("Nothing was imported")
    expect(outcome.locator("tbody td")).to_have_text(["2", "P2", "ten", "'ten' is not a number."])
    e2e.axe_check(page, "import-05-failed-what-to-fix")
    outcome.get_by_role("button", name="Skip bad rows: import the other 1 row").click()
    again = ImportJob.objects.latest("pk")
    expect(page).to_have_url(f"{url}/care/imports/{again.pk}/")
    assert again.skip_bad_rows and again.pk != failed.pk
    page.get_by_role("link", name="Back to Fuel B2B").click()
    expect(page).to_have_url(f"{url}/admin/milestones/targetgroup/{group.pk}/view/")
