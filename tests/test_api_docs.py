"""The API docs a newcomer integrator reads (issue 18, item 11): a quickstart that runs as
written, one request shape and example per activity type, a description on every field,
typed progress, one error shape for a bad batch item, and a clear answer to `Bearer`."""

import json
import re
import shlex
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from common.auth import BEARER_MESSAGE
from evaluation.models import Activity, ActivityStatus
from evaluation.tracking import activities_track
from milestones.models import Organisation
from tests.factories import CustomerFactory, TargetGroupFactory, TillFactory, monthly_cycle

pytestmark = pytest.mark.django_db
ACTIVITY_TYPES = {"transaction", "return", "event", "customer_event", "points"}
# Components whose properties the framework writes, not this project (none today: lists are
# plain arrays, so there are no paginated wrappers; enum components have no properties).
FRAMEWORK_MADE: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _component(schema, ref_or_schema) -> dict:
    ref = ref_or_schema if isinstance(ref_or_schema, str) else ref_or_schema.get("$ref")
    if ref is None and "allOf" in ref_or_schema:  # a $ref with a description beside it
        ref = ref_or_schema["allOf"][0]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _bash_blocks(description: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", description, re.DOTALL)


def _track_pending(now):
    """What a tracking worker does after the 202 (tracking is asynchronous)."""
    ids = list(Activity.objects.filter(status=ActivityStatus.PENDING).values_list("id", flat=True))
    activities_track(activity_ids=ids, now=now)


# --- the quickstart --------------------------------------------------------------------------


def test_the_description_has_a_quickstart_with_curl_and_says_tracking_is_asynchronous(schema):
    description = schema["info"]["description"]
    assert "## Quickstart" in description
    assert "manage.py create_org" in description
    assert "curl" in description and "/api/v1/activities/" in description
    assert "/api/v1/customers/42/milestones/" in description
    assert "asynchronous" in description
    assert "idempotency key" in description and "202" in description
    assert "Authorization: Token" in description


def test_the_quickstart_runs_as_written():
    """The command, the curl body and the progress read of the quickstart, as printed."""
    description = Client().get("/api/schema/", {"format": "json"}).json()["info"]["description"]
    token_block, activities_block, progress_block = _bash_blocks(description)
    command = shlex.split(token_block.split("\n#")[0].replace("\\\n", " "))
    assert command[:3] == ["python", "manage.py", "create_org"]
    out = StringIO()
    call_command(*command[2:], stdout=out)
    printed = json.loads(out.getvalue())
    org = Organisation.objects.get(slug=printed["org"])
    TargetGroupFactory(
        organisation=org, name="Monthly spend", till_code=TillFactory(organisation=org).code,
        cycle=monthly_cycle(datetime(2026, 1, 1).date(), count=12),
    )  # fmt: skip
    client = Client(HTTP_AUTHORIZATION=f"Token {printed['token']}")

    body = re.search(r"-d '(.*?)'", activities_block, re.DOTALL)[1]
    response = client.post("/api/v1/activities/", body, content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "ids": ["txn-1001", "evt-1001"],
        "duplicate_ids": [],
    }
    again = client.post("/api/v1/activities/", body, content_type="application/json")
    assert again.status_code == 202 and again.json()["duplicates"] == 2  # the idempotency key
    _track_pending(now=datetime(2026, 3, 5, tzinfo=UTC))

    lookup = re.search(r'curl -sS "\$BASE(/api/v1/customers/\?mobile=[0-9]+)"', progress_block)
    found = client.get(lookup[1]).json()
    assert len(found) == 1
    progress = client.get(f"/api/v1/customers/{found[0]['id']}/milestones/")
    assert progress.status_code == 200
    march = [c for c in progress.json()[0]["cycles"] if c["start"] == "2026-03-01"]
    assert march[0]["achieved"] == 1200.0  # gross sales of the quickstart's bill


# --- activities: one shape and one example per type ------------------------------------------


def test_the_activities_request_is_a_oneof_of_the_five_types_each_with_an_example(schema):
    body = schema["paths"]["/api/v1/activities/"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    one, listed = body["schema"]["oneOf"]  # one activity, or a list of them
    assert listed["type"] == "array" and listed["items"] == one and listed["maxItems"] == 1000
    activity = _component(schema, one)
    assert activity["discriminator"]["propertyName"] == "type"
    assert set(activity["discriminator"]["mapping"]) == ACTIVITY_TYPES
    assert len(activity["oneOf"]) == 5
    for kind, ref in activity["discriminator"]["mapping"].items():
        shape = _component(schema, ref)
        assert {"id", "type", "customer", "occurred_at"} <= set(shape["required"])
        assert _component(schema, shape["properties"]["type"])["enum"] == [kind]
    assert "name" in _component(schema, activity["discriminator"]["mapping"]["event"])["required"]

    examples = [e["value"] for e in body["examples"].values()]
    singles = [e for e in examples if isinstance(e, dict)]
    assert sorted(e["type"] for e in singles) == sorted(ACTIVITY_TYPES)  # one each, no merging
    for example in singles:
        shape = _component(schema, activity["discriminator"]["mapping"][example["type"]])
        assert set(example) <= set(shape["properties"]), example["type"]


@pytest.mark.parametrize("kind", sorted(ACTIVITY_TYPES))
def test_every_activity_example_is_accepted(kind, schema, api, integration, org):
    """The examples are real requests: each answers 202 (its store exists)."""
    TillFactory(organisation=org, code="S1")
    body = schema["paths"]["/api/v1/activities/"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    example = next(e["value"] for e in body["examples"].values() if e["value"] and
                   isinstance(e["value"], dict) and e["value"]["type"] == kind)  # fmt: skip
    response = api(integration).post("/api/v1/activities/", example, format="json")
    assert response.status_code == 202, response.content


# --- descriptions and types ------------------------------------------------------------------


def test_every_property_of_every_component_has_a_description(schema):
    missing = [
        f"{name}.{prop}"
        for name, component in schema["components"]["schemas"].items()
        if name not in FRAMEWORK_MADE
        for prop, spec in (component.get("properties") or {}).items()
        if not (spec.get("description") or "").strip()
    ]
    assert missing == []


def test_the_customer_milestones_cycles_are_typed_objects(schema):
    ok = schema["paths"]["/api/v1/customers/{id}/milestones/"]["get"]["responses"]["200"]
    entry = _component(schema, ok["content"]["application/json"]["schema"]["items"])
    cycle = _component(schema, entry["properties"]["cycles"]["items"])
    assert cycle["type"] == "object"
    types = {name: spec.get("type") for name, spec in cycle["properties"].items()}
    assert types["target"] == types["achieved"] == "number"
    assert types["start"] == "string" and cycle["properties"]["start"]["format"] == "date"
    assert cycle["properties"]["achieved_at"]["format"] == "date-time"
    sub = _component(schema, cycle["properties"]["sub_targets"]["items"])
    assert {"name", "criteria", "value", "achieved_at", "actions"} <= set(sub["properties"])
    action = _component(schema, sub["properties"]["actions"]["items"])
    assert {"type", "promotion", "status", "points", "coupon_code"} <= set(action["properties"])


def test_the_customer_milestones_answer_has_only_documented_keys(schema, api, integration, org):
    group = TargetGroupFactory(
        organisation=org,
        targets=[{"name": "Spend 1000", "kpi": "gross_sales", "value": 1000,
                  "sub_targets": [{"name": "Half", "criteria": "percentage", "value": 50}]}],
    )  # fmt: skip
    customer = CustomerFactory(organisation=org)
    client = api(integration)
    assert client.post(
        f"/api/v1/target-groups/{group.id}/enrolments/",
        {"customers": [{"mobile": customer.mobile}]},
        format="json",
    ).status_code == 200  # fmt: skip
    answer = client.get(f"/api/v1/customers/{customer.id}/milestones/").json()
    ok = schema["paths"]["/api/v1/customers/{id}/milestones/"]["get"]["responses"]["200"]
    entry = _component(schema, ok["content"]["application/json"]["schema"]["items"])
    cycle = _component(schema, entry["properties"]["cycles"]["items"])
    sub = _component(schema, cycle["properties"]["sub_targets"]["items"])
    assert answer and set(answer[0]) <= set(entry["properties"])
    assert set(answer[0]["cycles"][0]) <= set(cycle["properties"])
    assert set(answer[0]["cycles"][0]["sub_targets"][0]) <= set(sub["properties"])


# --- one error shape for a bad item of a batch -----------------------------------------------


def test_a_bad_activity_in_a_batch_answers_items_by_position_then_field(api, integration, org):
    good = {"id": "a-1", "type": "event", "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-03-04T11:00:00+00:00", "name": "Visit"}  # fmt: skip
    unknown_store = {**good, "id": "a-2", "store": "S9"}
    response = api(integration).post(
        "/api/v1/activities/", [good, good | {"id": "a-0"}, unknown_store], format="json"
    )
    assert response.status_code == 400
    assert response.json()["items"] == {"2": {"store": ["Unknown store code 'S9'."]}}

    bad_date = {**good, "id": "a-3", "occurred_at": "1990-01-01T00:00:00Z"}
    response = api(integration).post("/api/v1/activities/", [good, bad_date], format="json")
    items = response.json()["items"]
    assert list(items) == ["1"] and isinstance(items["1"]["occurred_at"], list)
    assert all(isinstance(m, str) for m in items["1"]["occurred_at"])
    assert not Activity.objects.exists()


def test_a_bad_customer_in_an_enrolment_batch_answers_items_by_position_then_field(
    api, integration, org
):
    group = TargetGroupFactory(organisation=org)
    url = f"/api/v1/target-groups/{group.id}/enrolments/"
    response = api(integration).post(
        url, {"customers": [{"mobile": "9000000001"}, {"mobile": "abc"}]}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["items"] == {"1": {"mobile": ["'abc' is not a mobile number: it has no digits."]}}
    assert body["customers"] == ["Item 2: 'abc' is not a mobile number: it has no digits."]

    not_an_object = api(integration).post(url, {"customers": ["9000000001"]}, format="json")
    assert list(not_an_object.json()["items"]["0"]) == ["non_field_errors"]

    org.auto_create_customers = False
    org.save(update_fields=["auto_create_customers"])
    unknown = api(integration).post(url, {"customers": [{"email": "x@example.com"}]}, format="json")
    assert list(unknown.json()["items"]) == ["0"]
    assert list(unknown.json()["items"]["0"]) == ["non_field_errors"]


def test_an_unknown_customer_in_an_audience_list_answers_items(api, configurer, org):
    CustomerFactory(organisation=org, mobile="9000000001")
    response = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "VIP", "kind": "list", "customers": [{"mobile": "9000000001"}, {"mobile": "9000000002"}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["items"] == {
        "1": {"non_field_errors": ["no such customer in this organisation."]}
    }


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("/api/v1/activities/", "ActivityBatchError"),
        ("/api/v1/target-groups/{id}/enrolments/", "CustomerBatchError"),
        ("/api/v1/audience-groups/", "AudienceListError"),
    ],
)
def test_the_batch_400_is_documented_with_items(schema, path, component):
    bad = schema["paths"][path]["post"]["responses"]["400"]["content"]["application/json"]
    assert bad["schema"]["$ref"].endswith(f"/{component}")
    items = schema["components"]["schemas"][component]["properties"]["items"]
    per_item = items["additionalProperties"]
    assert per_item["type"] == "object"
    assert {"type": "array", "items": {"type": "string"}} in per_item["additionalProperties"][
        "anyOf"
    ]


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_a_bearer_header_is_a_401_that_says_to_send_token(api, integration, scheme):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {integration.auth_token.key}")
    response = client.get("/api/v1/customers/")
    assert response.status_code == 401
    assert response.json() == {"detail": BEARER_MESSAGE}
    assert BEARER_MESSAGE == "Use 'Authorization: Token <key>' (not Bearer)."


def test_the_token_scheme_still_works_and_no_header_is_still_a_plain_401(api, integration):
    assert api(integration).get("/api/v1/customers/").status_code == 200
    missing = api().get("/api/v1/customers/")
    assert missing.status_code == 401 and "Bearer" not in missing.json()["detail"]


def test_the_schema_tells_how_to_authenticate(schema):
    assert "not `Bearer`" in schema["info"]["description"]
    token = schema["components"]["securitySchemes"]["tokenAuth"]
    assert "Token KEY" in token["description"] and "Bearer" in token["description"]
