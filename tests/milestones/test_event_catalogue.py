"""The organisation's event catalogue: learned from received activities (set-based), edited
by configurers (admin and API), warned about when a target names an event it does not know,
and optionally enforced at ingest."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evaluation.models import Activity
from milestones.models import EventType
from milestones.selectors import event_catalogue, event_types_known
from milestones.services.event_types import event_types_learn
from tests.factories import EventTypeFactory, TillFactory

pytestmark = pytest.mark.django_db

ACTIVITIES = "/api/v1/activities/"
CATALOGUE = "/api/v1/event-types/"
ADMIN = "/admin/milestones/eventtype/"
TABLE = EventType._meta.db_table


def event(i, name, *, kind="event", **attributes):
    return {
        "id": f"e-{i}",
        "type": kind,
        "customer": {"mobile": f"90000{i:05d}"},
        "occurred_at": "2026-03-04T11:00:00+00:00",
        "name": name,
        "attributes": attributes,
    }


@pytest.fixture
def send(api, integration, django_capture_on_commit_callbacks):
    """send(*activities) -> the response (tracking is not run)."""

    def post(*items):
        with django_capture_on_commit_callbacks(execute=False):
            return api(integration).post(ACTIVITIES, list(items), format="json")

    return post


def rows(org):
    return {
        (e.kind, e.name): (e.attributes, e.source)
        for e in EventType.objects.filter(organisation=org)
    }


def catalogue_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if TABLE in q["sql"] and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]


# --- the selector ------------------------------------------------------------------------------


def test_catalogue_lists_kind_then_name_with_the_customer_events_and_the_near_misses(
    org, other_org
):
    EventTypeFactory(organisation=org, name="review", attributes=["stars"])
    EventTypeFactory(organisation=org, name="AddToCart", attributes=["sku", "price"])
    EventTypeFactory(organisation=org, name="Review")
    EventTypeFactory(organisation=org, kind="customer", name="referral", attributes=["code"])
    EventTypeFactory(organisation=other_org, name="Secret")

    found = event_catalogue(org)

    behavioural = [(r["name"], r["attributes"], r["similar"]) for r in found[:3]]
    assert behavioural == [
        ("AddToCart", ["price", "sku"], []),
        ("Review", [], ["review"]),
        ("review", ["stars"], ["Review"]),
    ]
    customer = {r["name"]: r for r in found if r["kind"] == "customer"}
    assert customer["referral"]["attributes"] == ["code"]
    assert customer["points_redemption"]["source"] == "builtin"  # the fixed list, never received
    assert [r["kind"] for r in found] == sorted(r["kind"] for r in found)
    assert "Secret" not in {r["name"] for r in found}


# --- learned from activities --------------------------------------------------------------------


def test_received_events_add_their_names_and_attribute_names(send, org):
    response = send(
        event(1, "AddToCart", price=3000),
        event(2, "AddToCart", sku="P-1"),
        event(3, "points_redemption", kind="customer_event", points=20),
    )
    assert response.status_code == 202, response.content
    assert rows(org) == {
        ("behavioural", "AddToCart"): (["price", "sku"], "learned"),
        ("customer", "points_redemption"): (["points"], "learned"),
    }
    learned = EventType.objects.get(name="AddToCart")
    assert learned.first_seen is not None and learned.last_seen == learned.first_seen


def test_a_later_batch_merges_attributes_and_keeps_a_configured_entry_configured(send, org):
    EventTypeFactory(organisation=org, name="Review", attributes=["stars"])
    send(event(1, "Review", text="great"))
    send(event(2, "Review", stars=5, photo=True))
    assert rows(org) == {("behavioural", "Review"): (["photo", "stars", "text"], "configured")}


def test_a_batch_is_learned_with_one_statement_whatever_its_size(send, org):
    with CaptureQueriesContext(connection) as small:
        send(*[event(i, f"Ev{i % 3}", a=1) for i in range(3)])
    with CaptureQueriesContext(connection) as big:
        send(*[event(i, f"Ev{i % 3}", **{f"k{i % 7}": i}) for i in range(10, 400)])
    assert len(catalogue_writes(small.captured_queries)) == 1
    assert len(catalogue_writes(big.captured_queries)) == 1
    reads = [q for q in big.captured_queries if TABLE in q["sql"]]
    assert len(reads) == 2  # the read of the batch's names and the one upsert
    assert rows(org)[("behavioural", "Ev1")][0] == ["a", *(f"k{i}" for i in range(7))]


def test_a_full_batch_of_distinct_names_is_one_statement(org):
    seen = {("behavioural", f"Name{i}"): {f"a{i}", "b"} for i in range(1000)}
    with CaptureQueriesContext(connection) as queries:
        assert event_types_learn(organisation=org, seen=seen, known={}) == 1000
    assert len(queries.captured_queries) == 1
    assert EventType.objects.filter(organisation=org).count() == 1000
    assert EventType.objects.get(name="Name7").attributes == ["a7", "b"]


def test_a_batch_bringing_nothing_new_writes_nothing_to_the_catalogue(send, org):
    send(event(1, "AddToCart", price=1))
    with CaptureQueriesContext(connection) as again:
        response = send(event(2, "AddToCart", price=2))
    assert response.status_code == 202
    assert catalogue_writes(again.captured_queries) == []


def test_last_seen_moves_on_once_it_is_stale(org):
    seen = {("behavioural", "Visit"): {"store"}}
    start = timezone.now() - timedelta(hours=2)
    event_types_learn(organisation=org, seen=seen, known={}, now=start)
    later = start + timedelta(hours=1)
    known = event_types_known(org, {"Visit"})
    assert event_types_learn(organisation=org, seen=seen, known=known, now=later) == 1
    visit = EventType.objects.get(name="Visit")
    assert (visit.first_seen, visit.last_seen) == (start, later)


def test_two_batches_learning_from_the_same_stale_read_keep_both_attributes(org):
    """Concurrent batches read the row before either wrote: the merge is done in SQL on the
    row as it is when each writes, so neither loses the other's attribute."""
    EventTypeFactory(organisation=org, name="Visit", attributes=["store"])
    stale = event_types_known(org, {"Visit"})
    event_types_learn(organisation=org, seen={("behavioural", "Visit"): {"door"}}, known=stale)
    event_types_learn(organisation=org, seen={("behavioural", "Visit"): {"floor"}}, known=stale)
    assert EventType.objects.get(name="Visit").attributes == ["door", "floor", "store"]


def test_learning_is_per_organisation(send, org, other_org):
    EventTypeFactory(organisation=other_org, name="AddToCart", attributes=["secret"])
    send(event(1, "AddToCart", price=1))
    assert EventType.objects.get(organisation=org, name="AddToCart").attributes == ["price"]
    assert EventType.objects.get(organisation=other_org).attributes == ["secret"]


# --- refusing events outside the catalogue ------------------------------------------------------


def test_by_default_an_unknown_event_is_accepted(send, org):
    assert send(event(1, "Brand new")).status_code == 202
    assert ("behavioural", "Brand new") in rows(org)


def test_refusing_org_answers_400_naming_the_item_and_the_near_miss_and_writes_nothing(send, org):
    org.refuse_unknown_events = True
    org.save()
    EventTypeFactory(organisation=org, name="Review", attributes=["stars"])

    response = send(
        event(1, "Review", stars=4, photo=1),
        event(2, "points_redemption", kind="customer_event"),
        event(3, "review", stars=5),
    )

    assert response.status_code == 400
    (message,) = response.json()["items"]["2"]["name"]
    assert "'review'" in message and "Did you mean 'Review'?" in message
    assert set(response.json()["items"]) == {"2"}
    assert Activity.objects.count() == 0
    assert rows(org) == {("behavioural", "Review"): (["stars"], "configured")}


def test_refusing_org_accepts_known_and_builtin_customer_events(send, org):
    org.refuse_unknown_events = True
    org.save()
    EventTypeFactory(organisation=org, name="Review")
    response = send(event(1, "Review"), event(2, "referral", kind="customer_event"))
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 2


def test_the_setting_is_read_and_changed_through_the_org_settings_api(api, configurer, org):
    client = api(configurer)
    assert client.get("/api/v1/org-settings/").json()["refuse_unknown_events"] is False
    response = client.patch("/api/v1/org-settings/", {"refuse_unknown_events": True}, format="json")
    assert response.status_code == 200 and response.json()["refuse_unknown_events"] is True
    org.refresh_from_db()
    assert org.refuse_unknown_events is True


# --- a target naming an event the catalogue does not know ---------------------------------------


def milestone(name, **target):
    return {
        "name": name,
        "start": "2099-01-01",
        "end": "2099-12-31",
        "till_code": "T1",
        "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": "2099-01-01"},
        "targets": [{"name": f"{name} target", "value": 3, **target}],
    }


@pytest.fixture
def configure(api, configurer, org):
    TillFactory(organisation=org)
    return api(configurer)


def test_a_target_on_an_unknown_event_is_saved_with_a_warning_naming_the_closest(configure, org):
    EventTypeFactory(organisation=org, name="Review")
    response = configure.post(
        "/api/v1/target-groups/",
        milestone("Reviews", kpi="event_count", event_name="review"),
        format="json",
    )
    assert response.status_code == 201, response.content
    (warning,) = response.json()["warnings"]
    assert "Target 1 (Reviews target)" in warning
    assert "'review' has never been received" in warning and "Did you mean 'Review'?" in warning


def test_a_target_on_a_known_event_saves_without_a_warning(configure, org):
    EventTypeFactory(organisation=org, name="Review", attributes=["stars"])
    response = configure.post(
        "/api/v1/target-groups/",
        milestone("Stars", kpi="event_sum", event_name="Review", attribute="stars"),
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["warnings"] == []


def test_an_attribute_never_seen_on_the_event_is_warned_about(configure, org):
    EventTypeFactory(organisation=org, name="Purchase", attributes=["price", "sku"])
    response = configure.post(
        "/api/v1/target-groups/",
        milestone("Spend", kpi="event_sum", event_name="Purchase", attribute="prices"),
        format="json",
    )
    assert response.status_code == 201
    (warning,) = response.json()["warnings"]
    assert "'prices' has not been seen on 'Purchase'" in warning and "'price'" in warning


def test_an_edit_naming_an_unknown_event_is_warned_about_too(configure, org):
    EventTypeFactory(organisation=org, name="Visit")
    created = configure.post(
        "/api/v1/target-groups/",
        milestone("Visits", kpi="event_count", event_name="Visit"),
        format="json",
    )
    assert created.status_code == 201 and created.json()["warnings"] == []
    target = created.json()["targets"][0]
    response = configure.patch(
        f"/api/v1/target-groups/{created.json()['id']}/",
        {"targets": [{"id": target["id"], "event_name": "Visti"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    (warning,) = response.json()["warnings"]
    assert "'Visti'" in warning and "Did you mean 'Visit'?" in warning


# --- the API ------------------------------------------------------------------------------------


def test_api_lists_the_organisations_entries_only(api, member_care, org, other_org):
    EventTypeFactory(organisation=org, name="Review", attributes=["stars"])
    EventTypeFactory(organisation=other_org, name="Secret")
    body = api(member_care).get(CATALOGUE).json()
    assert [(e["kind"], e["name"], e["attributes"], e["source"]) for e in body] == [
        ("behavioural", "Review", ["stars"], "configured")
    ]


def test_api_filters_by_kind_and_search(api, configurer, org):
    EventTypeFactory(organisation=org, name="Review")
    EventTypeFactory(organisation=org, kind="customer", name="referral")
    client = api(configurer)
    assert [e["name"] for e in client.get(CATALOGUE, {"kind": "customer"}).json()] == ["referral"]
    assert [e["name"] for e in client.get(CATALOGUE, {"search": "VIEW"}).json()] == ["Review"]


def test_a_configurer_adds_edits_and_deletes_an_entry(api, configurer, org):
    client = api(configurer)
    created = client.post(
        CATALOGUE, {"kind": "behavioural", "name": " Review ", "attributes": ["stars", "stars", " photo"]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["attributes"], body["source"]) == (
        "Review",
        ["photo", "stars"],
        "configured",
    )
    assert body["warnings"] == [] and body["last_seen"] is None

    url = f"{CATALOGUE}{body['id']}/"
    edited = client.patch(url, {"attributes": ["stars"]}, format="json")
    assert edited.status_code == 200 and edited.json()["attributes"] == ["stars"]
    assert EventType.objects.get().attributes == ["stars"]

    assert client.delete(url).status_code == 204
    assert not EventType.objects.exists()


def test_api_warns_about_a_name_differing_only_in_case(api, configurer, org):
    EventTypeFactory(organisation=org, name="Review")
    response = api(configurer).post(
        CATALOGUE, {"kind": "behavioural", "name": "review"}, format="json"
    )
    assert response.status_code == 201
    (warning,) = response.json()["warnings"]
    assert "'review' and 'Review' differ only in case" in warning


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "behavioural", "name": "Review"}, "name", "already in the catalogue"),
        ({"kind": "customer", "name": "dancing"}, "name", "fixed list"),
        ({"kind": "behavioural", "name": "   "}, "name", ""),
        ({"kind": "sideways", "name": "X"}, "kind", ""),
        ({"kind": "behavioural", "name": "X", "attributes": "price"}, "attributes", ""),
    ],
)
def test_api_refuses_bad_entries_at_the_field_and_writes_nothing(api, configurer, org, body, field, words):  # fmt: skip
    EventTypeFactory(organisation=org, name="Review")
    response = api(configurer).post(CATALOGUE, body, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert EventType.objects.count() == 1


def test_api_writes_are_for_configurers_and_other_organisations_see_404(
    api, member_care, other_configurer, org
):
    entry = EventTypeFactory(organisation=org, name="Review")
    body = {"kind": "behavioural", "name": "Visit"}
    assert api(member_care).post(CATALOGUE, body, format="json").status_code == 403
    url = f"{CATALOGUE}{entry.pk}/"
    assert api(other_configurer).get(url).status_code == 404
    assert api(other_configurer).delete(url).status_code == 404
    assert EventType.objects.filter(pk=entry.pk).exists()


# --- the admin screen ---------------------------------------------------------------------------


def test_admin_lists_kind_attributes_and_last_seen_in_the_organisations_time_zone(
    admin_client_for, configurer, org, other_org
):
    seen = datetime(2026, 3, 4, 11, 0, tzinfo=UTC)
    EventTypeFactory(
        organisation=org, name="Review", attributes=["photo", "stars"], source="learned",
        first_seen=seen, last_seen=seen,
    )  # fmt: skip
    EventTypeFactory(organisation=org, name="review")
    EventTypeFactory(organisation=other_org, name="Secret")

    page = admin_client_for(configurer).get(ADMIN).content.decode()

    assert '<td class="field-attribute_list">photo, stars</td>' in page
    assert '<td class="field-kind">Behavioural event</td>' in page
    # Acme is in Asia/Kolkata: 11:00 UTC is 16:30 IST
    assert '<td class="field-last_seen_at">2026-03-04 16:30 IST</td>' in page
    assert '<td class="field-last_seen_at">never received</td>' in page
    # the near-miss column: each spelling names the other
    assert '<td class="field-similar">review</td>' in page
    assert '<td class="field-similar">Review</td>' in page
    assert "Secret" not in page


def test_admin_add_saves_through_the_service_and_shows_the_near_miss(
    admin_client_for, configurer, org
):
    EventTypeFactory(organisation=org, name="Review")
    client = admin_client_for(configurer)
    response = client.post(
        ADMIN + "add/", {"kind": "behavioural", "name": "review", "attributes": "stars, photo"},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    entry = EventType.objects.get(name="review")
    assert (entry.organisation, entry.attributes, entry.source) == (
        org,
        ["photo", "stars"],
        "configured",
    )
    assert "differ only in case" in response.content.decode()


def test_admin_refuses_a_duplicate_at_the_name_field_and_writes_nothing(
    admin_client_for, configurer, org
):
    EventTypeFactory(organisation=org, name="Review")
    response = admin_client_for(configurer).post(
        ADMIN + "add/", {"kind": "behavioural", "name": "Review", "attributes": ""}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == [
        "'Review' is already in the catalogue."
    ]
    assert EventType.objects.count() == 1


def test_admin_edit_shows_the_attributes_as_text_and_saves_them(admin_client_for, configurer, org):
    entry = EventTypeFactory(organisation=org, name="Review", attributes=["stars"])
    client = admin_client_for(configurer)
    page = client.get(f"{ADMIN}{entry.pk}/change/").content.decode()
    assert 'value="stars"' in page
    client.post(
        f"{ADMIN}{entry.pk}/change/",
        {"kind": "behavioural", "name": "Review", "attributes": "stars,photo"},
    )
    entry.refresh_from_db()
    assert entry.attributes == ["photo", "stars"]


def test_another_organisations_entry_is_not_found_in_the_admin(
    admin_client_for, other_configurer, org
):
    entry = EventTypeFactory(organisation=org, name="Review")
    response = admin_client_for(other_configurer).get(f"{ADMIN}{entry.pk}/change/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_the_organisation_screen_edits_the_refusal_setting(admin_client_for, configurer, org):
    client = admin_client_for(configurer)
    url = f"/admin/milestones/organisation/{org.pk}/change/"
    page = client.get(url).content.decode()
    assert "Refuse events outside the catalogue" in page
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(refuse_unknown_events="on", name=org.name)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    org.refresh_from_db()
    assert org.refuse_unknown_events is True
