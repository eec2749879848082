"""Helpers for the enrolment tests: milestones built through the configuration service
(`tests.factories.TargetGroupFactory`)."""

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from enrolment.signals import customers_enrolled
from tests.factories import TargetGroupFactory, TillFactory, monthly_cycle, target_data


@pytest.fixture
def make_group(org, configurer):
    """make_group(name, per_customer=, mode=, cycle=, targets=, **overrides): 2026, three
    monthly cycles from January, one quantity target of 100, enrolling all customers (a
    custom list when per customer)."""

    def make(name="Fuel 1", *, per_customer=False, mode=None, cycle=None, targets=None, **extra):
        extra.setdefault("till_code", TillFactory(organisation=org).code)
        extra.setdefault(
            "enrolment", {"mode": mode or ("custom_list" if per_customer else "all_customers")}
        )
        if per_customer:
            extra["target_value_mode"] = "per_customer"
        return TargetGroupFactory(
            organisation=org,
            created_by=configurer,
            name=name,
            cycle=cycle or monthly_cycle(date(2026, 1, 1), count=3),
            targets=targets or [target_data(f"{name} target", kpi="quantity", value=100)],
            **extra,
        )

    return make


@pytest.fixture
def csv_file():
    def make(text, name="list.csv", encoding="utf-8"):
        body = text.encode(encoding) if isinstance(text, str) else text
        return SimpleUploadedFile(name, body, content_type="text/csv")

    return make


@pytest.fixture
def enrolled_signals():
    received = []

    def listener(sender, target_group, customer_ids, source, **kwargs):
        received.append((target_group.id, sorted(customer_ids), source))

    customers_enrolled.connect(listener, dispatch_uid="test-listener")
    yield received
    customers_enrolled.disconnect(dispatch_uid="test-listener")


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from milestones_site.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def upload(api, configurer, eager, django_capture_on_commit_callbacks):
    """upload(group, text, **fields) -> the import's status JSON, after the task ran."""

    def run(group, text, user=None, expect=202, **fields):
        body = text.encode() if isinstance(text, str) else text
        data = {"file": SimpleUploadedFile("values.csv", body, content_type="text/csv")}
        for key, value in fields.items():
            data[key] = value if not isinstance(value, bool) else ("true" if value else "false")
        client = api(user or configurer)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/api/v1/target-groups/{group.id}/target-values/upload/", data, format="multipart"
            )
        assert response.status_code == expect, response.content
        if expect != 202:
            return response.json()
        status = client.get(f"/api/v1/imports/{response.json()['import']}/")
        assert status.status_code == 200
        return status.json()

    return run
