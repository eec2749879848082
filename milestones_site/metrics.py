"""Metrics for operations: a Prometheus endpoint and a health check that knows about lag.

`/metrics` (prometheus-client's exposition format) carries django-prometheus's request rates
and latencies and the product's own gauges, read at scrape time with a handful of indexed
queries (no table scan: each reads a partial index or a small table):

- `milestones_tracking_lag_seconds`: age of the oldest activity waiting to be tracked;
- `milestones_activities_waiting` / `milestones_activities_failed`;
- `milestones_target_events_waiting`: target events not yet consumed by promotions;
- `milestones_webhook_deliveries_waiting`: webhook deliveries pending (when the app has them);
- `milestones_runs_in_progress{kind=evaluation|reprocess|import|simulation}`.

Access: a request with `Authorization: Bearer <METRICS_TOKEN>` (when the setting is set), or
from an address in METRICS_ALLOWED_IPS (loopback by default; behind TRUSTED_PROXY_COUNT
proxies, the client's address as for sign-in throttling). Anything else is a 403.

`/health/` answers 503 when the tracking lag passes HEALTH_MAX_TRACKING_LAG_SECONDS (600 by
default), so a load balancer or an alert sees a stalled worker.
"""

from __future__ import annotations

import hmac

from django.apps import apps
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily

from milestones.tokens import client_ip

RUNS = {
    # kind -> (app label, model, field, values that mean "in progress")
    "evaluation": ("evaluation", "EvaluationRun", "status", ("pending", "running")),
    "reprocess": ("evaluation", "ReprocessRun", "status", ("pending", "running")),
    "import": ("enrolment", "ImportJob", "status", ("pending", "running")),
    "simulation": ("simulations", "Simulation", "status", ("pending", "running")),
}


def _model(label: str, name: str):
    try:
        return apps.get_model(label, name)
    except LookupError:
        return None


def tracking_lag_seconds(now=None) -> float:
    """Seconds since the oldest activity still waiting to be tracked arrived; 0 if none."""
    from evaluation.models import Activity, ActivityStatus

    now = now or timezone.now()
    oldest = (
        Activity.objects.filter(status=ActivityStatus.PENDING)
        .order_by("id")
        .values_list("received_at", flat=True)
        .first()
    )
    return max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


def gauges() -> dict[str, float | dict[str, float]]:
    from evaluation.models import Activity, ActivityStatus, TargetEvent

    out: dict = {
        "tracking_lag_seconds": tracking_lag_seconds(),
        "activities_waiting": Activity.objects.filter(status=ActivityStatus.PENDING).count(),
        "activities_failed": Activity.objects.filter(status=ActivityStatus.FAILED).count(),
        "target_events_waiting": TargetEvent.objects.filter(consumed_at__isnull=True).count(),
    }
    delivery = _model("webhooks", "WebhookDelivery")
    if delivery is not None:
        out["webhook_deliveries_waiting"] = delivery.objects.filter(status="pending").count()
    runs = {}
    for kind, (label, name, field, values) in RUNS.items():
        model = _model(label, name)
        if model is not None:
            runs[kind] = model.objects.filter(**{f"{field}__in": values}).count()
    out["runs_in_progress"] = runs
    return out


HELP = {
    "tracking_lag_seconds": "Age of the oldest activity waiting to be tracked, in seconds.",
    "activities_waiting": "Activities received and not yet tracked.",
    "activities_failed": "Activities whose tracking failed (poison pills, see the admin).",
    "target_events_waiting": "Target events not yet consumed by promotions.",
    "webhook_deliveries_waiting": "Webhook deliveries not yet delivered.",
    "runs_in_progress": "Long runs pending or running, by kind.",
}


class ProductCollector:
    """The product's gauges, read at each scrape."""

    def collect(self):
        for name, value in gauges().items():
            if isinstance(value, dict):
                family = GaugeMetricFamily(f"milestones_{name}", HELP[name], labels=["kind"])
                for kind, count in value.items():
                    family.add_metric([kind], count)
            else:
                family = GaugeMetricFamily(f"milestones_{name}", HELP[name], value=value)
            yield family


_registered = False


def register_collector() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(ProductCollector())
        _registered = True


def _allowed(request) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    # the client's address, not a local reverse proxy's (which would let anyone in)
    return (client_ip(request) or "") in getattr(settings, "METRICS_ALLOWED_IPS", ())


def metrics_view(request):
    if not _allowed(request):
        return JsonResponse(
            {"detail": "Metrics need 'Authorization: Bearer <METRICS_TOKEN>' or an allowed "
             "address (METRICS_ALLOWED_IPS)."},
            status=403,
        )  # fmt: skip
    register_collector()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def health_view(request):
    limit = float(getattr(settings, "HEALTH_MAX_TRACKING_LAG_SECONDS", 600))
    lag = tracking_lag_seconds()
    ok = lag <= limit
    return JsonResponse(
        {"status": "ok" if ok else "lagging", "tracking_lag_seconds": round(lag, 1),
         "max_tracking_lag_seconds": limit},
        status=200 if ok else 503,
    )  # fmt: skip
