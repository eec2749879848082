"""The permission matrix: every admin page, member-care page and API endpoint against each
role (configurer, member care, integration, anonymous) and a configurer of another
organisation, with the expected answer for each cell.

Cells: an HTTP status, "login" (a redirect to the sign-in page), "index" (a redirect to the
admin's index: what the admin answers for an object that does not exist, which is what
another organisation's object is) or "302" (any other redirect). The lists of routes are read from the running site (the URL
resolver, the admin registry, the OpenAPI schema): a new endpoint, page or admin screen
without a row here fails `test_every_*_has_an_expected_row`.

Each cell runs in a transaction that is rolled back, so a write in one cell never changes
another. Writes are sent with an empty body: a role that may write gets past the permission
check and reaches validation (400) or the action (2xx); a role that may not gets 403.
"""

from __future__ import annotations

import os

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.security.matrix_world import build_world

pytestmark = pytest.mark.django_db

ROLES = ("configurer", "member_care", "integration", "anonymous", "other_org")
PRINT = os.environ.get("MATRIX_PRINT") == "1"  # print the observed table (to review a change)


@pytest.fixture
def people(configurer, member_care, integration, other_configurer):
    return {
        "configurer": configurer,
        "member_care": member_care,
        "integration": integration,
        "anonymous": None,
        "other_org": other_configurer,
    }


@pytest.fixture
def world(org, configurer, integration):
    return build_world(org, configurer, integration)


def outcome(response):
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/admin/login/"):
            return "login"
        if location == "/admin/":
            return "index"
        return "302"
    return response.status_code


def cell(client, method: str, url: str, **kwargs):
    with transaction.atomic():
        response = getattr(client, method.lower())(url, **kwargs)
        transaction.set_rollback(True)
    return outcome(response)


def page_clients(people):
    clients = {}
    for role, user in people.items():
        client = Client()
        if user is not None:
            client.force_login(user)
        clients[role] = client
    return clients


def api_clients(people):
    clients = {}
    for role, user in people.items():
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
        clients[role] = client
    return clients


def compare(title, expected: dict, observed: dict):
    """Fail with one line per differing cell (the whole table is checked, not the first)."""
    if PRINT:
        print(f"\n# {title}")
        for key, row in observed.items():
            print(f"    {key!r}: {row!r},")
    wrong = []
    for key, row in observed.items():
        want = expected[key]
        for role, got, exp in zip(ROLES, row, want, strict=True):
            if got != exp:
                wrong.append(f"{key} as {role}: expected {exp}, got {got}")
    assert not wrong, f"{title}: {len(wrong)} cells differ:\n" + "\n".join(wrong)


# --- API ---------------------------------------------------------------------------------------

# Which object each path's {id} names (all acme's).
API_IDS = {
    "/api/v1/audience-groups/{id}/": "audience",
    "/api/v1/awards/{id}/": "award",
    "/api/v1/coupon-series/{id}/": "coupon_series",
    "/api/v1/customers/{id}/": "customer",
    "/api/v1/event-types/{id}/": "event_type",
    "/api/v1/evaluation-runs/{id}/": "evaluation_run",
    "/api/v1/imports/{id}/": "import",
    "/api/v1/promotions/{id}/": "promotion",
    "/api/v1/reprocess-runs/{id}/": "reprocess_run",
    "/api/v1/simulations/{id}/": "simulation",
    "/api/v1/stores/{id}/": "store",
    "/api/v1/target-groups/{id}/": "group",
    "/api/v1/targets/{id}/": "target",
    "/api/v1/templates/{id}/": "template",
    "/api/v1/webhook-endpoints/{id}/": "webhook_endpoint",
}


def api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    )


def api_url(path: str, ids: dict) -> str:
    url = path
    if "{id}" in path:
        prefix = next(p for p in API_IDS if path.startswith(p[: p.index("{id}")] + "{id}/"))
        url = url.replace("{id}", str(ids[API_IDS[prefix]]))
    url = url.replace("{delivery_id}", str(ids["delivery"]))
    return url.replace("{customer_id}", str(ids["customer"]))


# Reads: every role of the organisation; writes: configuration and promotions by configurers,
# activities/customers/enrolments/target values by integration (and configurers); member care
# only reads. Another organisation's configurer: its own lists, 404 for acme's objects.
API = {
    #                                                         configurer member_care integration anonymous other_org
    "GET /api/v1/org-settings/":                                    (200, 200, 200, 401, 200),
    "PATCH /api/v1/org-settings/":                                  (200, 403, 403, 401, 200),
    "GET /api/v1/stores/":                                          (200, 200, 200, 401, 200),
    "POST /api/v1/stores/":                                         (400, 403, 403, 401, 400),
    "GET /api/v1/stores/{id}/":                                     (200, 200, 200, 401, 404),
    "PATCH /api/v1/stores/{id}/":                                   (200, 403, 403, 401, 404),
    "GET /api/v1/target-groups/":                                   (200, 200, 200, 401, 200),
    "POST /api/v1/target-groups/":                                  (400, 403, 403, 401, 400),
    "GET /api/v1/target-groups/{id}/":                              (200, 200, 200, 401, 404),
    "PATCH /api/v1/target-groups/{id}/":                            (200, 403, 403, 401, 404),
    "POST /api/v1/target-groups/{id}/activate/":                    (200, 403, 403, 401, 404),
    "POST /api/v1/target-groups/{id}/deactivate/":                  (200, 403, 403, 401, 404),
    "POST /api/v1/target-groups/{id}/clone/":                       (201, 403, 403, 401, 404),
    "POST /api/v1/target-groups/{id}/save-as-template/":            (201, 403, 403, 401, 404),
    "GET /api/v1/target-groups/{id}/audit/":                        (200, 200, 200, 401, 404),
    "GET /api/v1/target-groups/{id}/enrolments/":                   (200, 200, 200, 401, 404),
    "POST /api/v1/target-groups/{id}/enrolments/":                  (400, 403, 400, 401, 404),
    "GET /api/v1/target-groups/{id}/enrolments/{customer_id}/":     (200, 200, 200, 401, 404),
    "DELETE /api/v1/target-groups/{id}/enrolments/{customer_id}/":  (200, 403, 200, 401, 404),
    "GET /api/v1/target-groups/{id}/reprocess/":                    (200, 200, 200, 401, 404),
    "POST /api/v1/target-groups/{id}/reprocess/":                   (202, 403, 403, 401, 404),
    "GET /api/v1/target-groups/{id}/target-values/sample/":         (200, 200, 200, 401, 404),
    "POST /api/v1/target-groups/{id}/target-values/upload/":        (400, 403, 400, 401, 404),
    "GET /api/v1/templates/":                                       (200, 200, 200, 401, 200),
    "GET /api/v1/templates/{id}/":                                  (200, 200, 200, 401, 404),
    "GET /api/v1/target-groups/{id}/forecast/":                     (200, 200, 200, 401, 404),
    "GET /api/v1/event-types/":                                     (200, 200, 200, 401, 200),
    "POST /api/v1/event-types/":                                    (400, 403, 403, 401, 400),
    "GET /api/v1/event-types/{id}/":                                (200, 200, 200, 401, 404),
    "PATCH /api/v1/event-types/{id}/":                              (200, 403, 403, 401, 404),
    "DELETE /api/v1/event-types/{id}/":                             (204, 403, 403, 401, 404),
    "GET /api/v1/customers/":                                       (200, 200, 200, 401, 200),
    "POST /api/v1/customers/":                                      (400, 403, 400, 401, 400),
    "GET /api/v1/customers/{id}/":                                  (200, 200, 200, 401, 404),
    "GET /api/v1/customers/{id}/milestones/":                       (200, 200, 200, 401, 404),
    "GET /api/v1/customers/{id}/ranks/":                            (200, 200, 200, 401, 404),
    "GET /api/v1/audience-groups/":                                 (200, 200, 200, 401, 200),
    "POST /api/v1/audience-groups/":                                (400, 403, 403, 401, 400),
    "GET /api/v1/audience-groups/sample-csv/":                      (200, 200, 200, 401, 200),
    "GET /api/v1/audience-groups/{id}/":                            (200, 200, 200, 401, 404),
    "POST /api/v1/audience-groups/{id}/customers/":                 (200, 403, 403, 401, 404),
    "GET /api/v1/audience-groups/{id}/members/":                    (200, 200, 200, 401, 404),
    "POST /api/v1/audience-groups/{id}/refresh/":                   (200, 403, 403, 401, 404),
    "GET /api/v1/imports/":                                         (200, 200, 200, 401, 200),
    "GET /api/v1/imports/{id}/":                                    (200, 200, 200, 401, 404),
    "POST /api/v1/activities/":                                     (400, 403, 400, 401, 400),
    "GET /api/v1/target-events/":                                   (200, 200, 200, 401, 200),
    "GET /api/v1/targets/{id}/leaderboard/":                        (200, 200, 200, 401, 404),
    "GET /api/v1/evaluation-runs/":                                 (200, 200, 200, 401, 200),
    "GET /api/v1/evaluation-runs/{id}/":                            (200, 200, 200, 401, 404),
    "GET /api/v1/reprocess-runs/{id}/":                             (200, 200, 200, 401, 404),
    "GET /api/v1/targets/{id}/near-miss/":                          (200, 200, 200, 401, 404),
    "PUT /api/v1/targets/{id}/near-miss/":                          (400, 403, 403, 401, 404),
    "DELETE /api/v1/targets/{id}/near-miss/":                       (204, 403, 403, 401, 404),
    "GET /api/v1/promotions/":                                      (200, 200, 200, 401, 200),
    "POST /api/v1/promotions/":                                     (400, 403, 403, 401, 400),
    "GET /api/v1/promotions/{id}/":                                 (200, 200, 200, 401, 404),
    "PATCH /api/v1/promotions/{id}/":                               (200, 403, 403, 401, 404),
    "GET /api/v1/awards/":                                          (200, 200, 200, 401, 200),
    "GET /api/v1/awards/{id}/":                                     (200, 200, 200, 401, 404),
    "GET /api/v1/coupon-series/":                                   (200, 200, 200, 401, 200),
    "POST /api/v1/coupon-series/":                                  (400, 403, 403, 401, 400),
    "GET /api/v1/coupon-series/{id}/":                              (200, 200, 200, 401, 404),
    # Webhooks: configurers and integrations manage them; member care neither reads nor writes.
    "GET /api/v1/webhook-endpoints/":                               (200, 403, 200, 401, 200),
    "POST /api/v1/webhook-endpoints/":                              (400, 403, 400, 401, 400),
    "GET /api/v1/webhook-endpoints/{id}/":                          (200, 403, 200, 401, 404),
    "PATCH /api/v1/webhook-endpoints/{id}/":                        (200, 403, 200, 401, 404),
    "DELETE /api/v1/webhook-endpoints/{id}/":                       (204, 403, 204, 401, 404),
    "GET /api/v1/webhook-endpoints/{id}/deliveries/":               (200, 403, 200, 401, 404),
    "POST /api/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/resend/": (202, 403, 202, 401, 404),
    # Simulations: configurers only.
    "POST /api/v1/simulations/":                                    (400, 403, 403, 401, 400),
    "GET /api/v1/simulations/{id}/":                                (200, 403, 403, 401, 404),
    "POST /api/v1/auth/token/revoke/":                              (204, 204, 204, 401, 204),
}  # fmt: skip
# Bodies where an empty one would stop at validation before the object is looked up.
API_BODIES = {
    "POST /api/v1/target-groups/{id}/clone/": {"name": "Spend copy"},
    "POST /api/v1/target-groups/{id}/save-as-template/": {"name": "Spend template 2"},
}


def test_every_api_endpoint_has_an_expected_row():
    operations = {f"{method} {path}" for method, path in api_operations()}
    assert operations - set(API) == set(), "API operations without an expected row"
    assert set(API) - operations == set(), "expected rows for operations that do not exist"


def test_every_api_route_is_in_the_schema():
    """A view outside DRF under /api/v1/ would escape the schema and so the table above."""

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    for route, callback in walk(get_resolver().url_patterns):
        if route.startswith("api/v1/"):
            assert hasattr(callback, "cls"), f"{route} is not a DRF view"


def test_api_permission_matrix(people, world):
    ids = world.ids()
    clients = api_clients(people)
    observed = {}
    for method, path in api_operations():
        url = api_url(path, ids)
        kwargs = {}
        if method in ("POST", "PATCH", "PUT"):
            body = API_BODIES.get(f"{method} {path}", {})
            kwargs = {"data": body, "format": "multipart" if "upload" in path else "json"}
        observed[f"{method} {path}"] = tuple(
            cell(clients[role], method, url, **kwargs) for role in ROLES
        )
    compare("API", API, {k: observed[k] for k in sorted(observed)})


# --- Admin -------------------------------------------------------------------------------------


def admin_models() -> list[str]:
    return sorted(f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry)


ADMIN = {
    #                                                             configurer member_care integration anonymous other_org
    "changelist auth.group":                                      (403, 403, "login", "login", 403),
    "add auth.group":                                             (403, 403, "login", "login", 403),
    "changelist authtoken.tokenproxy":                            (200, 403, "login", "login", 200),
    "add authtoken.tokenproxy":                                   (403, 403, "login", "login", 403),
    "change authtoken.tokenproxy":                                ("index", 403, "login", "login", "index"),
    "history authtoken.tokenproxy":                               ("index", "index", "login", "login", "index"),
    "changelist axes.accessattempt":                              (403, 403, "login", "login", 403),
    "add axes.accessattempt":                                     (403, 403, "login", "login", 403),
    "changelist axes.accessfailurelog":                           (403, 403, "login", "login", 403),
    "add axes.accessfailurelog":                                  (403, 403, "login", "login", 403),
    "changelist axes.accesslog":                                  (403, 403, "login", "login", 403),
    "add axes.accesslog":                                         (403, 403, "login", "login", 403),
    "changelist django_celery_beat.clockedschedule":              (403, 403, "login", "login", 403),
    "add django_celery_beat.clockedschedule":                     (403, 403, "login", "login", 403),
    "changelist django_celery_beat.crontabschedule":              (403, 403, "login", "login", 403),
    "add django_celery_beat.crontabschedule":                     (403, 403, "login", "login", 403),
    "changelist django_celery_beat.intervalschedule":             (403, 403, "login", "login", 403),
    "add django_celery_beat.intervalschedule":                    (403, 403, "login", "login", 403),
    "changelist django_celery_beat.periodictask":                 (403, 403, "login", "login", 403),
    "add django_celery_beat.periodictask":                        (403, 403, "login", "login", 403),
    "changelist django_celery_beat.solarschedule":                (403, 403, "login", "login", 403),
    "add django_celery_beat.solarschedule":                       (403, 403, "login", "login", 403),
    "changelist enrolment.audiencegroup":                         (200, 403, "login", "login", 200),
    "add enrolment.audiencegroup":                                (200, 403, "login", "login", 200),
    "change enrolment.audiencegroup":                             (200, 403, "login", "login", "index"),
    "history enrolment.audiencegroup":                            (200, 403, "login", "login", "index"),
    "changelist enrolment.customer":                              (200, 200, "login", "login", 200),
    "add enrolment.customer":                                     (200, 403, "login", "login", 200),
    "change enrolment.customer":                                  (200, 200, "login", "login", "index"),
    "history enrolment.customer":                                 (200, 200, "login", "login", "index"),
    "changelist enrolment.customertargetvalue":                   (200, 200, "login", "login", 200),
    "add enrolment.customertargetvalue":                          (200, 403, "login", "login", 200),
    "changelist enrolment.enrolment":                             (200, 200, "login", "login", 200),
    "add enrolment.enrolment":                                    (200, 403, "login", "login", 200),
    "changelist enrolment.enrolmentnotification":                 (200, 200, "login", "login", 200),
    "add enrolment.enrolmentnotification":                        (403, 403, "login", "login", 403),
    "changelist enrolment.importjob":                             (200, 403, "login", "login", 200),
    "add enrolment.importjob":                                    (200, 403, "login", "login", 200),
    "change enrolment.importjob":                                 (200, 403, "login", "login", "index"),
    "history enrolment.importjob":                                (200, 403, "login", "login", "index"),
    "changelist evaluation.activity":                             (200, 200, "login", "login", 200),
    "add evaluation.activity":                                    (403, 403, "login", "login", 403),
    "changelist evaluation.evaluationrun":                        (200, 200, "login", "login", 200),
    "add evaluation.evaluationrun":                               (403, 403, "login", "login", 403),
    "change evaluation.evaluationrun":                            (200, 200, "login", "login", "index"),
    "history evaluation.evaluationrun":                           (200, 200, "login", "login", "index"),
    "changelist evaluation.progress":                             (200, 200, "login", "login", 200),
    "add evaluation.progress":                                    (403, 403, "login", "login", 403),
    "changelist evaluation.reprocessrun":                         (200, 403, "login", "login", 200),
    "add evaluation.reprocessrun":                                (403, 403, "login", "login", 403),
    "change evaluation.reprocessrun":                             (200, 403, "login", "login", "index"),
    "history evaluation.reprocessrun":                            (200, 403, "login", "login", "index"),
    "changelist evaluation.nearmissrule":                         (200, 403, "login", "login", 200),
    "add evaluation.nearmissrule":                                (200, 403, "login", "login", 200),
    "change evaluation.nearmissrule":                             (200, 403, "login", "login", "index"),
    "history evaluation.nearmissrule":                            (200, 403, "login", "login", "index"),
    "changelist evaluation.targetevent":                          (200, 200, "login", "login", 200),
    "add evaluation.targetevent":                                 (403, 403, "login", "login", 403),
    "changelist milestones.auditentry":                           (200, 403, "login", "login", 200),
    "add milestones.auditentry":                                  (403, 403, "login", "login", 403),
    "changelist milestones.eventtype":                            (200, 403, "login", "login", 200),
    "add milestones.eventtype":                                   (200, 403, "login", "login", 200),
    "change milestones.eventtype":                                (200, 403, "login", "login", "index"),
    "history milestones.eventtype":                               (200, 403, "login", "login", "index"),
    "changelist milestones.heartbeat":                            (403, 403, "login", "login", 403),
    "add milestones.heartbeat":                                   (403, 403, "login", "login", 403),
    "changelist milestones.organisation":                         (200, 403, "login", "login", 200),
    "add milestones.organisation":                                (403, 403, "login", "login", 403),
    "change milestones.organisation":                             (200, 403, "login", "login", "index"),
    "history milestones.organisation":                            (200, 403, "login", "login", "index"),
    "changelist milestones.store":                                (200, 200, "login", "login", 200),
    "add milestones.store":                                       (200, 403, "login", "login", 200),
    "change milestones.store":                                    (200, 200, "login", "login", "index"),
    "history milestones.store":                                   (200, 200, "login", "login", "index"),
    "changelist milestones.targetgroup":                          (200, 403, "login", "login", 200),
    "add milestones.targetgroup":                                 (200, 403, "login", "login", 200),
    "change milestones.targetgroup":                              (200, 403, "login", "login", 404),
    "history milestones.targetgroup":                             ("302", 403, "login", "login", 404),
    "changelist milestones.template":                             (200, 403, "login", "login", 200),
    "add milestones.template":                                    (403, 403, "login", "login", 403),
    "change milestones.template":                                 (200, 403, "login", "login", "index"),
    "history milestones.template":                                (200, 403, "login", "login", "index"),
    "changelist milestones.user":                                 (403, 403, "login", "login", 403),
    "add milestones.user":                                        (403, 403, "login", "login", 403),
    "changelist promotions.award":                                (200, 200, "login", "login", 200),
    "add promotions.award":                                       (403, 403, "login", "login", 403),
    "change promotions.award":                                    (200, 200, "login", "login", "index"),
    "history promotions.award":                                   (200, 200, "login", "login", "index"),
    "changelist promotions.communication":                        (200, 403, "login", "login", 200),
    "add promotions.communication":                               (200, 403, "login", "login", 200),
    "changelist promotions.consumefailure":                       (200, 200, "login", "login", 200),
    "add promotions.consumefailure":                              (403, 403, "login", "login", 403),
    "change promotions.consumefailure":                           (200, 200, "login", "login", "index"),
    "history promotions.consumefailure":                          (200, 200, "login", "login", "index"),
    "changelist promotions.couponseries":                         (200, 403, "login", "login", 200),
    "add promotions.couponseries":                                (200, 403, "login", "login", 200),
    "change promotions.couponseries":                             (200, 403, "login", "login", "index"),
    "history promotions.couponseries":                            (200, 403, "login", "login", "index"),
    "changelist promotions.deliverysettings":                     (200, 403, "login", "login", 200),
    "add promotions.deliverysettings":                            (200, 403, "login", "login", 200),
    "change promotions.deliverysettings":                         (200, 403, "login", "login", "index"),
    "history promotions.deliverysettings":                        (200, 403, "login", "login", "index"),
    "changelist promotions.message":                              (200, 200, "login", "login", 200),
    "add promotions.message":                                     (403, 403, "login", "login", 403),
    "changelist promotions.promotion":                            (200, 403, "login", "login", 200),
    "add promotions.promotion":                                   (200, 403, "login", "login", 200),
    "change promotions.promotion":                                (200, 403, "login", "login", "index"),
    "history promotions.promotion":                               (200, 403, "login", "login", "index"),
    "changelist promotions.sender":                               (200, 403, "login", "login", 200),
    "add promotions.sender":                                      (200, 403, "login", "login", 200),
    "change promotions.sender":                                   (200, 403, "login", "login", "index"),
    "history promotions.sender":                                  (200, 403, "login", "login", "index"),
    # The delivery log is configurers' (its bodies carry customers' data); nobody adds one.
    "changelist webhooks.webhookdelivery":                        (200, 403, "login", "login", 200),
    "add webhooks.webhookdelivery":                               (403, 403, "login", "login", 403),
    "change webhooks.webhookdelivery":                            (200, 403, "login", "login", "index"),
    "history webhooks.webhookdelivery":                           (200, 403, "login", "login", "index"),
    "changelist webhooks.webhookendpoint":                        (200, 403, "login", "login", 200),
    "add webhooks.webhookendpoint":                               (200, 403, "login", "login", 200),
    "change webhooks.webhookendpoint":                            (200, 403, "login", "login", "index"),
    "history webhooks.webhookendpoint":                           (200, 403, "login", "login", "index"),
}  # fmt: skip

# An acme object for each admin that has a change page to visit (another org's: "index"/404).
ADMIN_OBJECTS = {
    "authtoken.tokenproxy": "user",
    "enrolment.audiencegroup": "audience",
    "enrolment.customer": "customer",
    "enrolment.importjob": "import",
    "evaluation.evaluationrun": "evaluation_run",
    "evaluation.nearmissrule": "near_miss",
    "evaluation.reprocessrun": "reprocess_run",
    "milestones.eventtype": "event_type",
    "milestones.organisation": "org",
    "milestones.store": "store",
    "milestones.targetgroup": "group",
    "milestones.template": "template",
    "promotions.award": "award",
    "promotions.consumefailure": "consume_failure",
    "promotions.couponseries": "coupon_series",
    "promotions.deliverysettings": "delivery_settings",
    "promotions.promotion": "promotion",
    "promotions.sender": "sender",
    "webhooks.webhookdelivery": "delivery",
    "webhooks.webhookendpoint": "webhook_endpoint",
}

# The admin's own pages and the custom screens, by URL ({group}: acme's milestone). Every
# admin route other than a model's standard pages needs a row (or a reason in ADMIN_UNCHECKED).
ADMIN_PAGES = {
    #                                                             configurer member_care integration anonymous other_org
    "GET /admin/":                                                (200, "302", "login", "login", 200),
    "GET /admin/login/":                                          ("index", "index", 200, 200, "index"),
    "GET /admin/password_change/":                                (200, 200, "login", "login", 200),
    "GET /admin/password_change/done/":                           (200, 200, "login", "login", 200),
    "GET /admin/jsi18n/":                                         (200, 200, "login", "login", 200),
    "GET /admin/autocomplete/?app_label=enrolment&model_name=enrolment&field_name=customer&term=Asha": (200, 200, "login", "login", 200),  # member care reads customers
    "GET /admin/r/{group_type}/{group}/":                         (404, 404, "login", "login", 404),  # no model has a page on the site
    "GET /admin/milestones/":                                     (200, 200, "login", "login", 200),  # member care: the stores
    "GET /admin/milestones/user/{user}/password/":                (403, 403, "login", "login", 403),
    "GET /admin/milestones/targetgroup/{group}/view/":            (200, 403, "login", "login", 404),
    "GET /admin/milestones/targetgroup/{group}/clone/":           (200, 403, "login", "login", 404),
    "GET /admin/milestones/targetgroup/{group}/save-as-template/": (200, 403, "login", "login", 404),
    "POST /admin/milestones/targetgroup/{group}/set-active/":     (200, 403, "login", "login", 404),  # deactivation asks first
    "POST /admin/milestones/targetgroup/{group}/reprocess/":      ("302", 403, "login", "login", 404),
    # the milestone form's htmx fragments (a part redrawn from the posted values, see ADMIN_BODIES)
    "POST /admin/milestones/targetgroup/add/":                    (200, 403, "login", "login", 200),
    "POST /admin/milestones/targetgroup/{group}/change/":         (200, 403, "login", "login", 404),
    "GET /admin/enrolment/audiencegroup/condition/?group={audience}": (200, 403, "login", "login", 404),
    "POST /admin/enrolment/audiencegroup/{audience}/refresh/":    ("302", 403, "login", "login", 404),
    "GET /admin/enrolment/audiencegroup/{audience}/members/":     (200, 403, "login", "login", 404),
    "POST /admin/enrolment/importjob/process_import/":            (200, 403, "login", "login", 200),
    "POST /admin/promotions/promotion/check-condition/":          (200, 403, "login", "login", 200),
    "POST /admin/promotions/promotion/action-fields/":            (400, 403, "login", "login", 400),  # no action named
    "POST /admin/webhooks/webhookdelivery/{delivery}/resend/":    ("302", 403, "login", "login", 404),
    "GET /admin/enrolment/importjob/import/":                     (200, 403, "login", "login", 200),
    "GET /admin/promotions/award/liability/":                     (200, 200, "login", "login", 200),
}  # fmt: skip
# Bodies of the POSTs above that would otherwise do something else than the row says.
ADMIN_BODIES = {
    "POST /admin/milestones/targetgroup/add/": {"_part": "cycles"},
    "POST /admin/milestones/targetgroup/{group}/change/": {"_part": "cycles"},
    "POST /admin/promotions/promotion/check-condition/": {
        "condition": "currentEvent.isTargetAchievedEvent"
    },
}
# Admin routes without a row, and why.
ADMIN_UNCHECKED = {
    "logout": "signs the client out: the clients are shared by every cell",
}
STANDARD_ADMIN_PAGES = ("changelist", "add", "change", "history", "delete")


def admin_resolver() -> URLResolver:
    return URLResolver(RoutePattern("admin/"), admin.site.get_urls())


def admin_route_names() -> set[str]:
    """Every named admin route except the standard pages of a registered model."""
    standard = {
        f"{label.replace('.', '_')}_{page}"
        for label in admin_models()
        for page in STANDARD_ADMIN_PAGES
    }

    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns)
            elif p.name:
                yield p.name

    return set(walk(admin_resolver().url_patterns)) - standard


def admin_cells(people, world):
    ids = world.ids()
    clients = page_clients(people)
    observed = {}
    for label in admin_models():
        app, model = label.split(".")
        for page, suffix in (("changelist", ""), ("add", "add/")):
            url = f"/admin/{app}/{model}/{suffix}"
            observed[f"{page} {label}"] = tuple(cell(clients[r], "GET", url) for r in ROLES)
        if label in ADMIN_OBJECTS:
            url = f"/admin/{app}/{model}/{ids[ADMIN_OBJECTS[label]]}/change/"
            observed[f"change {label}"] = tuple(cell(clients[r], "GET", url) for r in ROLES)
            url = f"/admin/{app}/{model}/{ids[ADMIN_OBJECTS[label]]}/history/"
            observed[f"history {label}"] = tuple(cell(clients[r], "GET", url) for r in ROLES)
    for key in ADMIN_PAGES:
        method, url = key.split(" ", 1)
        url = url.format(**ids)
        kwargs = {"data": ADMIN_BODIES[key]} if key in ADMIN_BODIES else {}
        observed[key] = tuple(cell(clients[r], method, url, **kwargs) for r in ROLES)
    return observed


def test_every_admin_screen_has_an_expected_row():
    pages = {f"{p} {label}" for label in admin_models() for p in ("changelist", "add")}
    pages |= {f"{p} {label}" for label in ADMIN_OBJECTS for p in ("change", "history")}
    assert pages - set(ADMIN) == set(), "admin screens without an expected row"
    assert set(ADMIN) - pages - set(ADMIN_PAGES) == set(), "rows for screens that do not exist"


def test_every_other_admin_page_has_an_expected_row(world):
    """The custom screens (a milestone's clone page, an htmx fragment, ...) and the admin
    site's own pages: each has a row in ADMIN_PAGES."""
    ids = world.ids()
    resolver = admin_resolver()
    covered = {
        resolver.resolve(key.split(" ", 1)[1].split("?")[0].format(**ids).lstrip("/")).url_name
        for key in ADMIN_PAGES
    }
    missing = admin_route_names() - covered - set(ADMIN_UNCHECKED)
    assert missing == set(), "admin pages without an expected row"
    assert set(ADMIN_BODIES) - set(ADMIN_PAGES) == set()


def test_admin_permission_matrix(people, world):
    observed = admin_cells(people, world)
    compare("Admin", {**ADMIN, **ADMIN_PAGES}, observed)


# --- Admin isolation: nothing of acme's reaches another organisation's screens ---------------
#
# Every page of the admin that takes another row's id from the query string, generated from
# the admin registry: the add form pre-filled with each foreign key (the raw-id widget prints
# the row's label, a select marks it), the changelist filtered on each foreign key (and its
# filter choices), the autocomplete of each foreign key. Globex's configurer and member care
# open them with acme's ids; none of acme's labels, names or mobiles may be in the answer. A
# new admin class, field or filter that forgets the organisation fails here.


def relation_fields(model):
    return [
        f
        for f in model._meta.get_fields()
        if f.concrete and f.is_relation and (f.many_to_one or f.one_to_one or f.many_to_many)
    ]


def org_scoped(model) -> bool:
    """Rows of this model belong to one organisation (directly or through a parent row)."""
    from common.admin import org_lookup

    return org_lookup(model) is not None


def admin_probes(world) -> dict[str, str]:
    rows = world.by_model()
    probes = {}
    for model in admin.site._registry:
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        probes[f"changelist {label}"] = base
        for field in relation_fields(model):
            row = rows.get(field.related_model)
            if row is None:
                continue
            to_field = (
                field.target_field if not field.many_to_many else field.related_model._meta.pk
            )
            value = getattr(row, to_field.attname)
            name = field.name
            probes[f"add {label} ?{name}="] = f"{base}add/?{name}={value}"
            param = f"{name}__{to_field.name}__exact"
            probes[f"changelist {label} ?{param}="] = f"{base}?{param}={value}"
            probes[f"autocomplete {label}.{name}"] = (
                f"/admin/autocomplete/?app_label={model._meta.app_label}"
                f"&model_name={model._meta.model_name}&field_name={name}&term="
            )
    return probes


def test_every_foreign_key_of_an_admin_model_is_probed(world):
    """A foreign key to an organisation's model without an acme row to point at would not be
    checked below: add the row to matrix_world."""
    rows = world.by_model()
    missing = sorted(
        f"{model._meta.label}.{field.name} -> {field.related_model._meta.label}"
        for model in admin.site._registry
        for field in relation_fields(model)
        if org_scoped(field.related_model) and field.related_model not in rows
    )
    assert missing == []


def leaks(client, probes: dict[str, str], labels: set[str]) -> dict[str, list[str]]:
    found = {}
    for key, url in probes.items():
        with transaction.atomic():
            response = client.get(url)
            transaction.set_rollback(True)
        assert response.status_code < 500, f"{key}: {response.status_code}"
        body = response.content.decode(errors="replace")
        shown = sorted(label for label in labels if label in body)
        if shown:
            found[key] = shown
    return found


def test_the_probes_find_the_labels_on_the_owners_screens(configurer, world):
    """The probes do read labels: acme's configurer sees acme's rows on these very pages."""
    client = Client()
    client.force_login(configurer)
    found = leaks(client, admin_probes(world), world.labels())
    assert "Asha Acmeson" in found["add enrolment.enrolment ?customer="]
    assert "Acme spend" in found["add enrolment.enrolment ?target_group="]
    assert "Acme spend 1000" in found["add enrolment.customertargetvalue ?target="]
    assert "Acme spend" in found["changelist evaluation.progress"]  # the milestone filter
    assert "Asha Acmeson" in found["autocomplete enrolment.enrolment.customer"]


@pytest.mark.parametrize("who", ["other_configurer", "other_member_care"])
def test_another_organisation_reads_nothing_of_acme_through_the_admin(who, request, world):
    client = Client()
    client.force_login(request.getfixturevalue(who))
    found = leaks(client, admin_probes(world), world.labels())
    assert found == {}, "acme's labels on another organisation's screens:\n" + "\n".join(
        f"{key}: {shown}" for key, shown in sorted(found.items())
    )


def test_an_add_form_keeps_no_pre_filled_id_of_another_organisation(other_configurer, world):
    client = Client()
    client.force_login(other_configurer)
    url = f"/admin/enrolment/enrolment/add/?customer={world.customer.pk}&target_group={world.group.pk}"
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert "customer" not in form.initial and "target_group" not in form.initial


# --- Member-care pages -------------------------------------------------------------------------

CARE = {
    #                                                    configurer member_care integration anonymous other_org
    "GET /care/":                                           (200, 200, 403, "login", 200),
    # One match goes straight to the customer; another organisation finds nothing.
    "GET /care/?q=9000000001":                              ("302", "302", 403, "login", 200),
    "GET /care/customers/{customer}/milestones/":           (200, 200, 403, "login", 404),
    "GET /care/customers/{customer}/milestones/{target}/":  (200, 200, 403, "login", 404),
    "GET /care/milestones/{group}/insights/":               (200, 403, 403, "login", 404),
    "GET /care/milestones/{group}/imports/":                (200, 403, 403, "login", 404),
    "POST /care/milestones/{group}/imports/":               (200, 403, 403, "login", 404),
    "POST /care/milestones/{group}/imports/upload/":        (200, 403, 403, "login", 404),  # no file: the form's error
    "GET /care/milestones/{group}/imports/map/":            ("302", 403, 403, "login", 404),  # no upload: back to step 1
    "POST /care/milestones/{group}/imports/confirm/":       ("302", 403, 403, "login", 404),
    "GET /care/imports/{import}/":                          (200, 403, 403, "login", 404),
    "GET /care/imports/{import}/outcome/":                  (200, 403, 403, "login", 404),
    "POST /care/imports/{import}/rerun/":                   ("302", 403, 403, "login", 404),  # not failed: nothing to re-run
    "GET /care/runs/evaluation/{evaluation_run}/":          (200, 403, 403, "login", 404),
    "GET /care/runs/reprocess/{reprocess_run}/":            (200, 403, 403, "login", 404),
}  # fmt: skip


def care_route_names() -> set[str]:
    resolver = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == "care"
    )
    return {p.name for p in resolver.url_patterns}


def test_every_member_care_page_has_an_expected_row(world):
    ids = world.ids()
    urls = [key.split(" ", 1)[1].split("?")[0].format(**ids) for key in CARE]
    covered = {resolve(url).url_name for url in urls}
    assert care_route_names() - covered == set(), "member-care pages without an expected row"


def test_member_care_permission_matrix(people, world):
    ids = world.ids()
    clients = page_clients(people)
    observed = {}
    for key in CARE:
        method, url = key.split(" ", 1)
        observed[key] = tuple(cell(clients[r], method, url.format(**ids)) for r in ROLES)
    compare("Member care", CARE, observed)


def test_another_organisation_searching_a_customer_finds_nothing(other_configurer, world):
    client = Client()
    client.force_login(other_configurer)
    page = client.get("/care/?q=9000000001")
    assert page.status_code == 200
    assert b"Asha" not in page.content
    assert f"/care/customers/{world.customer.pk}/".encode() not in page.content


# --- Everything else the site serves -----------------------------------------------------------

SITE = {
    #                                           configurer member_care integration anonymous other_org
    "GET /":                                    ("index", "302", "302", "index", "index"),  # agents land on member care, integrations on the API docs
    "GET /health/":                             (200, 200, 200, 200, 200),
    "GET /metrics":                             (403, 403, 403, 403, 403),  # for operations, by token or address, whoever signed in (see SITE_REQUEST)
    "GET /api/schema/":                         (200, 200, 200, 200, 200),  # the API's description is public
    "GET /api/docs/":                           (200, 200, 200, 200, 200),
    "GET /simulations/new/?target_group={group}": (200, 403, 403, "login", 404),
    "POST /simulations/new/?target_group={group}": (200, 403, 403, "login", 404),  # nothing chosen: the form's errors
    "GET /simulations/{simulation}/":           (200, 403, 403, "login", 404),
}  # fmt: skip
# What else a row's request carries.
SITE_REQUEST = {
    "GET /metrics": {"REMOTE_ADDR": "203.0.113.7"},  # not an allowed address, no token
}


def site_routes(patterns=None, prefix=""):
    """Every route of the site outside the admin, the API and member care (tables above)."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(p.pattern)
        if route.startswith(("admin/", "api/v1/", "care/")):
            continue
        if isinstance(p, URLResolver):
            yield from site_routes(p.url_patterns, route)
        else:
            yield route


def test_every_other_route_has_an_expected_row(world):
    ids = world.ids()
    listed = {resolve(key.split(" ", 1)[1].split("?")[0].format(**ids)).route for key in SITE}
    missing = sorted(f"/{route}" for route in site_routes() if route not in listed)
    assert missing == [], "routes without an expected row"


def test_site_permission_matrix(people, world):
    ids = world.ids()
    clients = page_clients(people)
    observed = {}
    for key in SITE:
        method, url = key.split(" ", 1)
        extra = SITE_REQUEST.get(key, {})
        observed[key] = tuple(cell(clients[r], method, url.format(**ids), **extra) for r in ROLES)
    compare("Site", SITE, observed)


def test_metrics_behind_a_local_proxy_answer_by_the_clients_address(settings, client):
    """Behind a reverse proxy on the same machine every request comes from loopback: the
    allowed addresses are checked against the client's, as sign-in throttling reads it."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.METRICS_ALLOWED_IPS = ("127.0.0.1",)
    settings.METRICS_TOKEN = ""
    outside = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert outside.status_code == 403
    local = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert local.status_code == 200
    assert b"milestones_tracking_lag_seconds" in local.content
