"""List filters and paging parameters tell nothing about another organisation (issue 15,
finding 8; finding 7 for paging).

Every list endpoint's reference filter (`?customer=`, `?target=`, `?target_group=`, ...)
answers another organisation's id exactly as it answers an id that does not exist (200, no
rows); `?limit=` and `?offset=` out of range or not whole numbers are a 400 naming the
parameter. The endpoints and their reference filters are read from the OpenAPI schema and
the views' FilterSets, so a new list filter is walked without editing this file.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Max
from django.urls import resolve
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.generators import SchemaGenerator

from enrolment.models import Customer
from milestones.models import TargetGroup
from tests.factories import (
    AwardFactory,
    CustomerFactory,
    EvaluationRunFactory,
    ImportJobFactory,
    PeriodFactory,
    PromotionFactory,
    TargetEventFactory,
    TargetGroupFactory,
    target_data,
)

pytestmark = pytest.mark.django_db

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
# Reference parameters parsed by hand (not a FilterSet): path -> {parameter: model}
HAND_PARSED = {"/api/v1/evaluation-runs/": {"target_group": TargetGroup}}


def list_paths() -> list[str]:
    """GET endpoints without path parameters: the organisation's lists."""
    return sorted(p for p, ops in SCHEMA["paths"].items() if "get" in ops and "{" not in p)


def view_class(path: str):
    func = resolve(path).func
    return getattr(func, "cls", None) or func.view_class


def reference_filters(path: str) -> dict[str, type]:
    """{query parameter: the model it names} for the path's reference filters."""
    found = dict(HAND_PARSED.get(path, {}))
    view = view_class(path)()
    queryset = getattr(view, "queryset", None)
    if queryset is None:
        return found
    filterset = DjangoFilterBackend().get_filterset_class(view, queryset)
    if filterset is None:
        return found
    model = filterset._meta.model or queryset.model
    for name, flt in filterset.base_filters.items():
        try:
            field = model._meta.get_field(flt.field_name)
        except Exception:  # noqa: BLE001 - a method filter or an annotation: not a reference
            continue
        if field.is_relation and field.many_to_one:
            found[name] = field.related_model
    return found


def build_rows(org, user) -> dict[type, object]:
    """One row of each kind a reference filter can name, in `org`."""
    group = TargetGroupFactory(
        organisation=org,
        created_by=user,
        name=f"{org.slug} spend",
        targets=[target_data(f"{org.slug} 1000")],
    )
    target = group.targets.get()
    period = PeriodFactory(target_group=group)
    customer = CustomerFactory(organisation=org, mobile="9000000001")
    event = TargetEventFactory(
        target=target, customer=customer, dedupe_key=f"{org.slug}-1", achieved=Decimal(1200)
    )
    promotion = PromotionFactory(organisation=org, created_by=user, name=f"{org.slug} bonus")
    award = AwardFactory(event=event, promotion=promotion)
    job = ImportJobFactory(target_group=group, created_by=user)
    run = EvaluationRunFactory(period=period)
    rows = [group, target, period, customer, event, promotion, award, job, run]
    return {type(row): row for row in rows}


@pytest.fixture
def theirs(other_org, other_configurer):
    return build_rows(other_org, other_configurer)


@pytest.fixture
def ours(org, configurer):
    return build_rows(org, configurer)


def missing_id(model) -> int:
    return (model.objects.aggregate(top=Max("pk"))["top"] or 0) + 10_000


def answer(client, url):
    response = client.get(url)
    return response.status_code, response.json(), response.headers.get("X-Total-Count")


def test_every_reference_filter_is_walked():
    walked = {(path, name) for path in list_paths() for name in reference_filters(path)}
    assert {
        ("/api/v1/target-events/", "customer"),
        ("/api/v1/target-events/", "target"),
        ("/api/v1/target-events/", "target_group"),
        ("/api/v1/imports/", "target_group"),
        ("/api/v1/awards/", "customer"),
        ("/api/v1/awards/", "promotion"),
        ("/api/v1/awards/", "target"),
        ("/api/v1/awards/", "target_group"),
        ("/api/v1/awards/", "event"),
        ("/api/v1/evaluation-runs/", "target_group"),
    } <= walked


@pytest.mark.parametrize("path", list_paths())
def test_another_orgs_id_answers_like_an_id_that_does_not_exist(
    api, configurer, ours, theirs, path
):
    client = api(configurer)
    for name, model in reference_filters(path).items():
        other = answer(client, f"{path}?{name}={theirs[model].pk}")
        nowhere = answer(client, f"{path}?{name}={missing_id(model)}")
        assert other == nowhere, (path, name, other, nowhere)
        assert other[0] == 200 and other[1] == [], (path, name, other)
        mine = answer(client, f"{path}?{name}={ours[model].pk}")
        assert mine[0] == 200 and mine[1] != [], (path, name, mine)  # the filter does filter


@pytest.mark.parametrize("path", list_paths())
@pytest.mark.parametrize("value", ["abc", "1.5", "0", "-1", "1e20", str(2**63)])
def test_a_malformed_reference_is_a_400_whoever_it_would_name(api, configurer, path, value):
    client = api(configurer)
    for name in reference_filters(path):
        response = client.get(f"{path}?{name}={value}")
        assert response.status_code == 400, (path, name, value, response.content)
        assert list(response.json()) == [name]


# --- paging ---------------------------------------------------------------------------------


def paginated_paths() -> list[str]:
    """The lists whose schema offers `?limit=` (the paginated ones)."""
    return [
        p for p in list_paths()
        if any(q["name"] == "limit" for q in SCHEMA["paths"][p]["get"].get("parameters", []))
    ]  # fmt: skip


@pytest.mark.parametrize("path", paginated_paths())
@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=5001", "limit=abc", "limit=1.5", "limit=1e3", "offset=-1", "offset=1e20",
     "offset=100000000000000000000", "offset=1000000001", "offset=x"],
)  # fmt: skip
def test_limit_and_offset_out_of_range_are_a_400_naming_them(api, configurer, path, query):
    response = api(configurer).get(f"{path}?{query}")
    assert response.status_code == 400, (path, query, response.content)
    name = query.split("=")[0]
    [message] = response.json()[name]
    assert message.startswith(f"{name} must be a whole number between")


def test_paging_within_range_pages(api, configurer, org, ours):
    CustomerFactory(organisation=org, mobile="9000000002")
    client = api(configurer)
    first = client.get("/api/v1/customers/?limit=1&offset=0")
    second = client.get("/api/v1/customers/?limit=1&offset=1")
    assert first.status_code == second.status_code == 200
    assert first.headers["X-Total-Count"] == "2"
    assert first.json()[0]["id"] != second.json()[0]["id"]
    assert client.get("/api/v1/customers/?limit=5000&offset=1000000000").json() == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("offset=1e20", "offset must be a whole number between 0 and 1000000000"),
        ("offset=100000000000000000000", "offset must be a whole number between 0 and"),
        ("offset=-5", "offset must be a whole number between 0 and"),
        ("limit=0", "limit must be a whole number between 1 and 100"),
        ("limit=abc", "limit must be a whole number between 1 and 100"),
    ],
)
def test_the_leaderboard_refuses_bad_paging_by_name(api, configurer, ours, query, message):
    target = ours[TargetGroup].targets.get()
    TargetGroup.objects.filter(pk=target.target_group_id).update(leaderboard_enabled=True)
    response = api(configurer).get(f"/api/v1/targets/{target.id}/leaderboard/?{query}")
    assert response.status_code == 400
    assert message in response.json()["detail"]
    ranks = api(configurer).get(f"/api/v1/customers/{ours[Customer].id}/ranks/?{query}")
    assert ranks.status_code == 400
