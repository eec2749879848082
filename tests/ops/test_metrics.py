"""/metrics for operations and a /health/ that knows about tracking lag."""

from datetime import timedelta

import pytest
from django.utils import timezone

from evaluation.models import Activity
from tests.factories import ActivityFactory

pytestmark = pytest.mark.django_db


def _gauge(body: str, name: str) -> float:
    line = next(
        ln for ln in body.splitlines() if ln.startswith(name + " ") or ln.startswith(name + "{")
    )
    return float(line.rsplit(" ", 1)[1])


def test_the_gauges_move_after_a_batch_is_received_then_tracked(
    client, api, integration, org, settings
):
    from evaluation.tracking import activities_track

    settings.METRICS_ALLOWED_IPS = ("127.0.0.1",)
    before = client.get("/metrics").content.decode()
    assert _gauge(before, "milestones_activities_waiting") == 0
    assert _gauge(before, "milestones_tracking_lag_seconds") == 0
    items = [{"id": f"m-{i}", "type": "event", "customer": {"mobile": f"90000005{i:02d}"},
              "occurred_at": timezone.now().isoformat(), "name": "Review"} for i in range(3)]  # fmt: skip
    assert api(integration).post("/api/v1/activities/", items, format="json").status_code == 202
    Activity.objects.update(received_at=timezone.now() - timedelta(seconds=90))
    waiting = client.get("/metrics").content.decode()
    assert _gauge(waiting, "milestones_activities_waiting") == 3
    assert 89 <= _gauge(waiting, "milestones_tracking_lag_seconds") <= 200
    assert 'milestones_runs_in_progress{kind="evaluation"} 0.0' in waiting
    assert "django_http_requests_total_by_method_total" in waiting  # request metrics too
    activities_track(activity_ids=list(Activity.objects.values_list("id", flat=True)))
    after = client.get("/metrics").content.decode()
    assert _gauge(after, "milestones_activities_waiting") == 0
    assert _gauge(after, "milestones_tracking_lag_seconds") == 0


def test_metrics_need_the_token_or_an_allowed_address(client, settings):
    settings.METRICS_ALLOWED_IPS = ()
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert ok.status_code == 200 and "milestones_target_events_waiting" in ok.content.decode()


def test_health_answers_503_when_tracking_lags_past_the_limit(client, org, settings):
    settings.HEALTH_MAX_TRACKING_LAG_SECONDS = 60
    assert client.get("/health/").json()["status"] == "ok"
    activity = ActivityFactory(organisation=org)
    Activity.objects.filter(pk=activity.pk).update(
        status="pending", received_at=timezone.now() - timedelta(minutes=5)
    )
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "lagging" and response.json()["tracking_lag_seconds"] >= 300


def test_the_grafana_dashboard_charts_only_metrics_the_endpoint_exposes(client, settings):
    import json
    import re
    from pathlib import Path

    settings.METRICS_ALLOWED_IPS = ("127.0.0.1",)
    client.get("/admin/login/")  # one request, so the request metrics have samples
    body = client.get("/metrics").content.decode()
    exposed = {ln.split("{")[0].split(" ")[0] for ln in body.splitlines() if ln and ln[0] != "#"}
    dashboard = json.loads(Path("docs/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    names = {n for e in exprs for n in re.findall(r"\b((?:milestones|django)_[a-z_]+)", e)}
    assert names and names <= exposed, names - exposed
