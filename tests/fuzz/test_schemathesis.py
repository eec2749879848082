"""Schemathesis against the project's own OpenAPI schema (drf-spectacular, /api/schema/):
every operation, called in-process through the WSGI app with a token whose role may do it,
must never answer a 5xx and every answer must match the schema (status code, content type,
body).

Path ids are drawn either from the seeded rows of org acme (so detail and action endpoints
do real work) or at random (so the 404 path is exercised too). Bounded for CI: a few
examples per operation, derandomized, no deadline.
"""

from __future__ import annotations

from datetime import date

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from evaluation import config_cache

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 12

# The same document /api/schema/ serves (test_served_schema_is_the_one_fuzzed checks that).
SCHEMA_DICT = SchemaGenerator().get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(SCHEMA_DICT)

# Who calls each operation: integrators send activities, customers, enrolments and uploads;
# everything else (configuration, promotions, reads) is the configurer's.
INTEGRATION_WRITES = (
    "/api/v1/activities/",
    "/api/v1/customers/",
    "/api/v1/target-groups/{id}/enrolments/",
    "/api/v1/target-groups/{id}/enrolments/{customer_id}/",
    "/api/v1/target-groups/{id}/target-values/upload/",
)


@pytest.fixture
def wsgi_app():
    """Django's WSGI app sharing the test's transaction: like django.test.Client, it must
    not close the connection at the end of each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(api, configurer, integration):
    """Org acme with one of everything, made through the API; returns the ids per path
    parameter, so the fuzzer can hit real rows."""
    config_cache.invalidate()
    conf, integ = api(configurer), api(integration)

    def ok(response):
        assert response.status_code < 300, response.content
        return response.json()

    store = ok(conf.post("/api/v1/stores/", {"code": "S1", "name": "Store 1"}, format="json"))
    ok(conf.post("/api/v1/stores/", {"code": "T1", "name": "Till", "is_till": True}))
    group = ok(
        conf.post(
            "/api/v1/target-groups/",
            {
                "name": "Spend",
                "start": "2026-01-01",
                "end": "2026-12-31",
                "till_code": "T1",
                "leaderboard_enabled": True,
                "cycle": {
                    "type": "fixed_calendar",
                    "frequency": "monthly",
                    "start": "2026-01-01",
                    "count": 12,
                },
                "targets": [{"name": "Spend 1000", "kpi": "gross_sales", "value": 1000}],
            },
            format="json",
        )
    )
    customer = ok(integ.post("/api/v1/customers/", {"mobile": "9000000001", "name": "Asha"}))
    ok(
        integ.post(
            f"/api/v1/target-groups/{group['id']}/enrolments/",
            {"customers": [{"mobile": "9000000001"}]},
            format="json",
        )
    )
    ok(
        integ.post(
            "/api/v1/activities/",
            {
                "id": "txn-1",
                "type": "transaction",
                "customer": {"mobile": "9000000001"},
                "occurred_at": "2026-03-04T11:00:00+00:00",
                "store": "S1",
                "gross": 120,
                "net": 100,
            },
            format="json",
        )
    )
    series = ok(conf.post("/api/v1/coupon-series/", {"code": "SUMMER10"}, format="json"))
    promotion = ok(
        conf.post(
            "/api/v1/promotions/",
            {
                "name": "Bonus",
                "activity": "target_period_elapsed",
                "start": str(date(2026, 1, 1)),
                "end": str(date(2026, 12, 31)),
                "condition": 'currentEvent.targetAchieved("Spend 1000") >= 1000',
                "actions": [{"type": "award_points", "points": 100, "basis": "fixed"}],
            },
            format="json",
        )
    )
    audience = ok(conf.post("/api/v1/audience-groups/", {"name": "VIP", "kind": "list"}))
    return {
        "/api/v1/stores/{id}/": store["id"],
        "/api/v1/target-groups/": group["id"],
        "/api/v1/targets/": group["targets"][0]["id"],
        "/api/v1/customers/": customer["id"],
        "/api/v1/promotions/": promotion["id"],
        "/api/v1/coupon-series/": series["id"],
        "/api/v1/audience-groups/": audience["id"],
        "customer_id": customer["id"],
    }


def _real_id(path: str, seeded: dict) -> int | None:
    for prefix, value in seeded.items():
        if path.startswith(prefix.removesuffix("{id}/")):
            return value
    return None


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # Generated cases only: schemathesis cannot feed the schema's own request examples (the
    # activity types') to a test with `@schema.given()`; tests/test_api_docs.py sends each.
    phases=[Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
def test_api_conforms_to_its_schema(case, data, seeded, wsgi_app, configurer, integration):
    path = case.operation.path
    writer = case.method.upper() != "GET" and (
        path in INTEGRATION_WRITES or path.startswith("/api/v1/customers/{id}")
    )
    token = (integration if writer else configurer).auth_token.key
    params = case.path_parameters or {}
    if "id" in params and data.draw(st.booleans(), label="real id"):
        real = _real_id(path, seeded)
        if real is not None:
            params["id"] = real
    if "customer_id" in params and data.draw(st.booleans(), label="real customer"):
        params["customer_id"] = seeded["customer_id"]
    case.call_and_validate(app=wsgi_app, headers={"Authorization": f"Token {token}"}, checks=CHECKS)


def test_served_schema_is_the_one_fuzzed(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response.json()["paths"].keys() == SCHEMA_DICT["paths"].keys()


def test_every_operation_documents_its_error_answers():
    """milestones.openapi.document_error_responses is in SPECTACULAR_SETTINGS'
    POSTPROCESSING_HOOKS: without it every 400/403/404 is an undocumented status code."""
    for path, operations in SCHEMA_DICT["paths"].items():
        for method, operation in operations.items():
            assert {"400", "401", "403"} <= operation["responses"].keys(), (method, path)
