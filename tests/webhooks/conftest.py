"""A real HTTP receiver on loopback (http.server in a thread, port 0), and a milestone whose
target a customer can reach through the real tracking path."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evaluation.ingest import activities_ingest
from evaluation.models import Activity, ActivityStatus
from evaluation.tracking import activities_track
from tests.factories import StoreFactory, TargetGroupFactory, monthly_cycle, target_data
from tests.webhooks.factories import WebhookEndpointFactory


@dataclass
class Received:
    headers: dict
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Records every POST (before answering); answers `status` after `delay` seconds.
    `stop()` takes it down (connections are refused), `start()` brings it back on its port."""

    status: int = 200
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = b"ok" if receiver.status < 300 else b"receiver says no"
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the sender gave up (timeout) and closed
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?source=milestones"

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.requests]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def endpoint(org, receiver):
    """Acme's endpoint at the receiver, subscribed to every event type."""
    from webhooks.models import WebhookEventType

    return WebhookEndpointFactory(
        organisation=org, url=receiver.url, events=list(WebhookEventType.values)
    )


MARCH = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def spend_milestone(org, configurer):
    """'Spend' (2026, monthly), one gross-sales target of 1000 with a sub-target at 50 %,
    all customers, till T1."""
    StoreFactory(organisation=org, code="T1", is_till=True)
    return TargetGroupFactory(
        organisation=org,
        created_by=configurer,
        name="Spend",
        till_code="T1",
        cycle=monthly_cycle(datetime(2026, 1, 1).date(), count=12),
        targets=[
            target_data(
                "Spend 1000",
                value=1000,
                sub_targets=[{"name": "Half way", "criteria": "percentage", "value": 50}],
            )
        ],
    )


def spend(org, amount, *, mobile="9000000001", at=MARCH, key="t-1"):
    """One transaction in, tracked as the worker would a minute later."""
    activities_ingest(
        organisation=org,
        items=[{"id": key, "type": "transaction", "customer": {"mobile": mobile},
                "occurred_at": at, "gross": Decimal(amount)}],
    )  # fmt: skip
    pending = Activity.objects.filter(status=ActivityStatus.PENDING).values_list("id", flat=True)
    return activities_track(activity_ids=list(pending), now=at + timedelta(minutes=1))


@pytest.fixture(autouse=True)
def _loopback_receivers_allowed(settings):
    """The receivers of these tests run on loopback, which the product refuses by default."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
