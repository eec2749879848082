"""Every input limit answers a clear error (never a 500): request body size, activities per
request, CSV upload size, rule and condition length."""

import json

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from enrolment.models import ImportJob
from evaluation.models import Activity
from milestones.models import Target
from promotions.models import Promotion
from rules import MAX_RULE_LENGTH
from tests.factories import TillFactory

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def event(i, **extra):
    return {
        "id": f"e-{i}",
        "type": "event",
        "customer": {"mobile": "9000000001"},
        "occurred_at": "2026-03-04T11:00:00+00:00",
        "name": "AddToCart",
        **extra,
    }


def test_a_json_body_over_the_limit_is_a_413_json_error(api, integration):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 5 * MB
    body = json.dumps([event(0, attributes={"pad": "x" * (5 * MB)})])
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api(integration).post("/api/v1/activities/", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The request body is too large: the limit is 5,242,880 bytes."
    }
    assert not Activity.objects.exists()


def test_a_body_within_the_limit_is_read(api, integration, django_capture_on_commit_callbacks):
    body = json.dumps([event(0, attributes={"pad": "x" * (4 * MB)})])
    with django_capture_on_commit_callbacks(execute=False):
        response = api(integration).post(
            "/api/v1/activities/", body, content_type="application/json"
        )
    assert response.status_code == 202, response.content[:300]


def test_the_body_limit_comes_from_the_environment_setting(api, configurer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api(configurer).post(
        "/api/v1/stores/", {"code": "S1", "name": "n" * 2000}, format="json"
    )
    assert response.status_code == 413
    assert response.json()["detail"].endswith("the limit is 1,000 bytes.")


def test_more_than_1000_activities_in_one_request_is_a_400(
    api, integration, django_capture_on_commit_callbacks
):
    client = api(integration)
    with django_capture_on_commit_callbacks(execute=False):
        refused = client.post("/api/v1/activities/", [event(i) for i in range(1001)], format="json")
        assert refused.status_code == 400
        assert refused.json() == {"detail": "At most 1000 activities per request, got 1001."}
        assert not Activity.objects.exists()
        accepted = client.post(
            "/api/v1/activities/", [event(i) for i in range(1000)], format="json"
        )
    assert accepted.status_code == 202
    assert accepted.json()["accepted"] == 1000


def _upload(client, group, size):
    header = b"mobile,P1\n"
    body = header + b"9" * (size - len(header))
    data = {
        "file": SimpleUploadedFile("values.csv", body, content_type="text/csv"),
        "identifier_type": "mobile",
    }
    return client.post(
        f"/api/v1/target-groups/{group.id}/target-values/upload/", data, format="multipart"
    )


@pytest.mark.parametrize("size", [25 * MB + 1, 26 * MB], ids=["just-over", "well-over"])
def test_a_csv_over_25_mb_is_refused_with_its_size(api, configurer, group, size):
    assert settings.CSV_UPLOAD_MAX_BYTES == 25 * MB
    response = _upload(api(configurer), group, size)
    assert response.status_code == 400
    (message,) = response.json()["file"]
    assert "files over 25 MB are refused" in message
    assert not ImportJob.objects.exists()


def _group_body(rule):
    return {
        "name": "Ruled",
        "till_code": "T1",
        "start": "2026-01-01",
        "end": "2026-12-31",
        "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": "2026-01-01",
                  "count": 12},
        "targets": [{"name": "Ruled", "kpi": "gross_sales", "value": 1000, "rule": rule}],
    }  # fmt: skip


def _long_rule(length):
    rule = "currentTxn.value >= 100"
    while len(rule) < length:
        rule += " && currentTxn.value >= 100"
    return rule[:length] if length <= len("currentTxn.value >= 100") else rule


def test_a_target_rule_over_the_length_limit_is_a_400(api, configurer, org):
    assert MAX_RULE_LENGTH == 2000
    rule = _long_rule(MAX_RULE_LENGTH + 1)
    response = api(configurer).post("/api/v1/target-groups/", _group_body(rule), format="json")
    assert response.status_code == 400
    assert response.json() == {
        "targets": {"0": {"rule": ["Ensure this field has no more than 2000 characters."]}}
    }
    assert not Target.objects.exists()


def test_a_target_rule_within_the_limit_is_accepted(api, configurer, org):
    TillFactory(organisation=org, code="T1")
    rule = _long_rule(MAX_RULE_LENGTH - 30)
    assert len(rule) <= MAX_RULE_LENGTH
    response = api(configurer).post("/api/v1/target-groups/", _group_body(rule), format="json")
    assert response.status_code == 201, response.content


def test_a_promotion_condition_over_the_length_limit_is_a_400(api, configurer, org):
    condition = "true" + " && true" * 300
    assert len(condition) > MAX_RULE_LENGTH
    response = api(configurer).post(
        "/api/v1/promotions/",
        {"name": "Long", "activity": "target_period_elapsed", "start": "2026-01-01",
         "end": "2026-12-31", "condition": condition, "actions": []},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    (message,) = response.json()["condition"]
    assert str(MAX_RULE_LENGTH) in message
    assert not Promotion.objects.exists()
