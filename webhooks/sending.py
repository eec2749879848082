"""Sending the outbox: claim due deliveries, POST them (a few at once), record each attempt.

At least once, never lost:

1. **Claim.** In a short transaction, take the oldest due pending deliveries of active
   endpoints (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent senders take
   different rows; SQLite's write lock serialises the claim) and push their
   `next_attempt_at` forward by a lease. Another sender skips them until the lease ends; a
   sender killed mid-send leaves them to be taken again when it does.
2. **Send**, outside any transaction, on a small thread pool: the same `webhook-id` and body
   on every attempt, signed with the Standard Webhooks library, with a per-attempt timeout
   (`WEBHOOK_TIMEOUT_SECONDS`). Once an endpoint fails to connect or times out in a batch,
   its other deliveries in that batch wait for the next round instead of each waiting out
   its own timeout.
3. **Record**, in one transaction per batch: an attempt row each; a 2xx is delivered;
   anything else waits `backoff(n)` with jitter, until the retry budget
   (`WEBHOOK_MAX_ATTEMPTS`) is spent, then it is failed. An endpoint with no success since
   its first failure `WEBHOOK_DISABLE_AFTER` ago (default a day) is disabled, once (a
   conditional update), and its organisation's configurers get one email.

The receiver may therefore see a delivery twice (a timeout after it did answer, a sender
killed before recording, a resend): it de-duplicates on `webhook-id`.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from common import retry as retry_policy
from common.bulk import insert_rows
from milestones.models import Role, User

from .models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)

log = logging.getLogger(__name__)

USER_AGENT = "Milestones-Webhooks/1.0"
RESPONSE_KEEP = 500  # characters of a failed answer's body kept in the log
RESPONSE_READ = 64 * 1024  # bytes of an answer read at most


def timeout_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 5))


def parallel() -> int:
    return max(1, int(getattr(settings, "WEBHOOK_PARALLEL", 8)))


def max_attempts() -> int:
    return max(1, int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 30)))


def disable_after() -> timedelta:
    value = getattr(settings, "WEBHOOK_DISABLE_AFTER", timedelta(hours=24))
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def max_delay() -> timedelta:
    value = getattr(settings, "WEBHOOK_RETRY_MAX_DELAY", timedelta(hours=1))
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def lease() -> timedelta:
    """How long a claimed delivery is left alone: the longest a batch can take to send."""
    return timedelta(seconds=max(60.0, timeout_seconds() * 4))


def retry_delay(attempt: int, rand: random.Random | None = None) -> timedelta:
    """The wait after the `attempt`-th failed attempt of a round: the project's backoff
    (1, 4, 16, 64 minutes...), capped at `WEBHOOK_RETRY_MAX_DELAY` (an hour), times a jitter
    of ±25 % so that deliveries failed together do not come back together."""
    base = min(retry_policy.backoff(min(attempt, 10)), max_delay())  # 4**9 minutes: past any cap
    factor = (rand or random).uniform(0.75, 1.25)
    return timedelta(seconds=base.total_seconds() * factor)


# --- one attempt --------------------------------------------------------------------------------


@dataclass
class Claimed:
    id: int
    endpoint_id: int
    webhook_id: str
    body: dict
    url: str
    secret: str
    attempts: int
    attempts_before_resend: int
    event_type: str = ""
    fact_key: str = ""


@dataclass
class Outcome:
    delivery: Claimed
    attempted_at: datetime | None = None  # None: not attempted (its endpoint was down)
    status_code: int | None = None
    response_ms: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def unreachable(self) -> bool:
        """No answer at all (refused, timed out): the endpoint, not this delivery."""
        return self.attempted_at is not None and self.status_code is None


def encode(body: dict) -> str:
    """The exact text POSTed and signed (the same for every attempt of a delivery)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def signed_headers(*, secret: str, webhook_id: str, payload: str, at: datetime) -> dict:
    """The Standard Webhooks headers. `at` is the time of sending (the receiver checks it
    against its clock); the library's sign() drops the tzinfo, so it gets UTC."""
    at = at.astimezone(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, payload),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


_local = threading.local()  # each sending thread's open connections, per (scheme, host, port)
# what a kept-alive connection the receiver closed meanwhile raises on reuse
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def _connection(key: tuple, timeout: float) -> http.client.HTTPConnection:
    conns = getattr(_local, "conns", None)
    if conns is None or len(conns) > 64:
        for old in (conns or {}).values():
            old.close()
        conns = _local.conns = {}
    conn = conns.get(key)
    if conn is None:
        scheme, host, port = key
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = conns[key] = cls(host, port, timeout=timeout)
    conn.timeout = timeout  # for the next connect
    return conn


def _drop(key: tuple) -> None:
    conn = getattr(_local, "conns", {}).pop(key, None)
    if conn is not None:
        conn.close()


def post(url: str, payload: str, headers: dict, timeout: float) -> tuple[int | None, str, int]:
    """POST `payload`; (status code or None, error text, milliseconds). `timeout` bounds the
    whole exchange (connecting, sending, the answer), not each read. Redirects are not
    followed (a 3xx is a failure: the endpoint's URL should be the final one).

    Connections are kept alive per sending thread and endpoint (no TCP and TLS handshake per
    delivery); one the receiver closed meanwhile is replaced once, at once."""
    parts = urlsplit(url)
    key = (parts.scheme, parts.hostname, parts.port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    deadline = started + timeout

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    for attempt in (1, 2):
        conn = _connection(key, timeout)
        reused = conn.sock is not None
        try:
            if reused:
                conn.sock.settimeout(left())
            conn.request("POST", path, body=payload.encode(), headers=headers)
            conn.sock.settimeout(left())
            response = conn.getresponse()
            sock = conn.sock or getattr(getattr(response.fp, "raw", None), "_sock", None)
            if sock is not None:  # the answer's body gets what is left of the timeout
                sock.settimeout(left())
            text = response.read(RESPONSE_READ)
            if not response.isclosed():  # an answer longer than we read: not reusable
                _drop(key)
            status = response.status
            break
        except STALE as exc:
            _drop(key)
            if reused and attempt == 1:
                continue
            return (
                None,
                f"Could not deliver: {exc.__class__.__name__}: {exc}"[:RESPONSE_KEEP],
                (elapsed_ms()),
            )
        except TimeoutError:
            _drop(key)
            return None, f"Timed out after {timeout:g} s.", elapsed_ms()
        except (OSError, http.client.HTTPException) as exc:
            _drop(key)
            return (
                None,
                f"Could not deliver: {exc.__class__.__name__}: {exc}"[:RESPONSE_KEEP],
                (elapsed_ms()),
            )
    if 200 <= status < 300:
        return status, "", elapsed_ms()
    snippet = text.decode("utf-8", "replace").strip()[:RESPONSE_KEEP]
    return status, f"HTTP {status}" + (f": {snippet}" if snippet else ""), elapsed_ms()


# --- a batch ------------------------------------------------------------------------------------


def claim(*, now: datetime, limit: int) -> list[Claimed]:
    """Take up to `limit` due deliveries and lease them (see the module's docstring)."""
    with transaction.atomic():
        qs = WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        ).order_by("next_attempt_at", "id")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        rows = list(
            qs.values_list(
                "id", "endpoint_id", "webhook_id", "body", "endpoint__url", "endpoint__secret",
                "attempts", "attempts_before_resend", "event_type", "fact_key",
            )[:limit]
        )  # fmt: skip
        if not rows:
            return []
        WebhookDelivery.objects.filter(pk__in=[r[0] for r in rows]).update(
            next_attempt_at=now + lease()
        )
    return [Claimed(*row) for row in rows]


_pool: ThreadPoolExecutor | None = None
_pool_key: tuple = ()
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's sending threads (kept, so their connections are kept); a new pool
    after a fork (Celery's prefork children) or a change of `WEBHOOK_PARALLEL`."""
    global _pool, _pool_key
    key = (os.getpid(), parallel())
    with _pool_lock:
        if _pool is None or _pool_key != key:
            _pool = ThreadPoolExecutor(max_workers=key[1], thread_name_prefix="webhooks")
            _pool_key = key
        return _pool


def send_batch(batch: list[Claimed], *, timeout: float | None = None) -> list[Outcome]:
    """POST each claimed delivery, `WEBHOOK_PARALLEL` at once. No database work here."""
    timeout = timeout_seconds() if timeout is None else timeout
    down: set[int] = set()
    lock = threading.Lock()

    def one(item: Claimed) -> Outcome:
        with lock:
            if item.endpoint_id in down:
                return Outcome(item)
        payload = encode(item.body)
        at = datetime.now(UTC)
        headers = signed_headers(
            secret=item.secret, webhook_id=item.webhook_id, payload=payload, at=at
        )
        status, error, ms = post(item.url, payload, headers, timeout)
        outcome = Outcome(item, at, status, ms, error)
        if outcome.unreachable:
            with lock:
                down.add(item.endpoint_id)
        return outcome

    if len(batch) == 1 or parallel() == 1:
        return [one(item) for item in batch]
    return list(_executor().map(one, batch))


def record(outcomes: list[Outcome], *, now: datetime, rand: random.Random | None = None) -> None:
    """Write what a batch did: attempts, delivery states, endpoint failure state (and the
    disabling of endpoints failing for too long)."""
    attempts: list[WebhookAttempt] = []
    changes: list[tuple[int, dict]] = []  # (delivery id, the fields it sets)
    ok_endpoints, failed_endpoints = set(), set()
    budget = max_attempts()
    for o in outcomes:
        d = o.delivery
        if o.attempted_at is None:  # its endpoint was down in this batch: next round
            changes.append((d.id, {"next_attempt_at": now + retry_delay(1, rand)}))
            continue
        number = d.attempts + 1
        attempts.append(
            WebhookAttempt(
                delivery_id=d.id,
                number=number,
                attempted_at=o.attempted_at,
                status_code=o.status_code,
                response_ms=o.response_ms,
                error=o.error,
            )
        )
        fields = {
            "attempts": number,
            "last_attempt_at": o.attempted_at,
            "last_status_code": o.status_code,
            "last_response_ms": o.response_ms,
            "last_error": o.error,
        }
        if o.ok:
            fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now, next_attempt_at=None)
            ok_endpoints.add(d.endpoint_id)
        else:
            in_round = number - d.attempts_before_resend
            if in_round >= budget:
                fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
            else:
                fields.update(
                    status=DeliveryStatus.PENDING, next_attempt_at=now + retry_delay(in_round, rand)
                )
            failed_endpoints.add(d.endpoint_id)
        changes.append((d.id, fields))
    with transaction.atomic():
        # a delivery deleted meanwhile (its endpoint was): nothing of it to record
        alive = set(
            WebhookDelivery.objects.select_for_update()
            .filter(pk__in=[o.delivery.id for o in outcomes])
            .values_list("pk", flat=True)
        )
        insert_rows(WebhookAttempt, [a for a in attempts if a.delivery_id in alive])
        _update([(pk, fields) for pk, fields in changes if pk in alive])
        if ok_endpoints:
            WebhookEndpoint.objects.filter(pk__in=ok_endpoints, failing_since__isnull=False).update(
                failing_since=None
            )
        failing = failed_endpoints - ok_endpoints
        if failing:
            WebhookEndpoint.objects.filter(pk__in=failing, failing_since__isnull=True).update(
                failing_since=now
            )
            endpoints_disable_failing(endpoint_ids=failing, now=now)
        _mark_enrolment_notifications_sent(
            [o.delivery.fact_key for o in outcomes if o.ok and o.delivery.id in alive and
             o.delivery.event_type == WebhookEventType.CUSTOMER_ENROLLED],
            now,
        )  # fmt: skip


ATTEMPTED_COLUMNS = (
    # (column, PostgreSQL type of its VALUES cell)
    ("id", "bigint"),
    ("status", "varchar"),
    ("attempts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("last_attempt_at", "timestamptz"),
    ("last_status_code", "smallint"),
    ("last_response_ms", "integer"),
    ("last_error", "text"),
    ("delivered_at", "timestamptz"),
)


def _update(changes: list[tuple[int, dict]]) -> None:
    """The batch's new states in two statements whatever its size: the attempted rows with
    one `UPDATE ... FROM (VALUES ...)`, the rows not attempted (their endpoint was down)
    with one `UPDATE ... WHERE id IN`. (Django's bulk_update builds a CASE per row and
    field: at a hundred rows it cost more than sending them.)"""
    adapt = connection.ops.adapt_datetimefield_value
    table = WebhookDelivery._meta.db_table
    attempted = [(pk, f) for pk, f in changes if "attempts" in f]
    skipped = [(pk, f) for pk, f in changes if "attempts" not in f]
    if skipped:
        later = max(f["next_attempt_at"] for _, f in skipped)
        WebhookDelivery.objects.filter(pk__in=[pk for pk, _ in skipped]).update(
            next_attempt_at=later
        )
    if not attempted:
        return
    pg = connection.vendor == "postgresql"
    names = [name for name, _ in ATTEMPTED_COLUMNS]
    cell = "({})".format(", ".join(f"%s::{kind}" if pg else "%s" for _, kind in ATTEMPTED_COLUMNS))
    params: list = []
    for pk, f in attempted:
        params += [
            pk, f["status"], f["attempts"], adapt(f["next_attempt_at"]),
            adapt(f["last_attempt_at"]), f["last_status_code"], f["last_response_ms"],
            f["last_error"], adapt(f.get("delivered_at")),
        ]  # fmt: skip
    sets = (
        ", ".join(f"{n} = v.{n}" for n in names[1:] if n != "delivered_at")
        + f", delivered_at = COALESCE(v.delivered_at, {table}.delivered_at)"
    )
    sql = (
        f"WITH v ({', '.join(names)}) AS (VALUES {', '.join([cell] * len(attempted))}) "
        f"UPDATE {table} SET {sets} FROM v WHERE {table}.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _mark_enrolment_notifications_sent(fact_keys: list[str], now: datetime) -> None:
    """A delivered `customer.enrolled` marks its enrolment notification sent (the first
    endpoint to take it): the outbox of reference 004 is finally emptied. The fact key is
    the notification's own unique key, `enrolled:<target>:<customer>`."""
    if not fact_keys:
        return
    from enrolment.models import EnrolmentNotification

    by_target: dict[int, list[int]] = {}
    for key in fact_keys:
        _, target_id, customer_id = key.split(":")
        by_target.setdefault(int(target_id), []).append(int(customer_id))
    for target_id, customer_ids in by_target.items():
        EnrolmentNotification.objects.filter(
            target_id=target_id, customer_id__in=customer_ids, sent_at__isnull=True
        ).update(sent_at=now)


# --- disabling ----------------------------------------------------------------------------------


def endpoints_disable_failing(*, endpoint_ids, now: datetime) -> list[int]:
    """Disable the endpoints among `endpoint_ids` that have failed without a success for
    `WEBHOOK_DISABLE_AFTER`; each is disabled once (a conditional update) and its
    organisation's configurers get one email. Returns the ids disabled."""
    since = now - disable_after()
    due = WebhookEndpoint.objects.filter(
        pk__in=list(endpoint_ids), is_active=True, failing_since__lte=since
    )
    disabled = []
    for endpoint in due:
        hours = (now - endpoint.failing_since).total_seconds() / 3600
        reason = (
            f"Disabled automatically: every attempt failed for {int(hours)} hours "
            f"(since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC). "
            "Fix the receiver, then re-activate the endpoint: what waited is sent then."
        )
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=reason
        )
        if changed:
            disabled.append(endpoint.pk)
            _email_configurers(endpoint, reason)
    return disabled


def _email_configurers(endpoint: WebhookEndpoint, reason: str) -> None:
    recipients = list(
        User.objects.filter(
            organisation_id=endpoint.organisation_id, role=Role.CONFIGURER, is_active=True
        )
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        return
    last = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .exclude(last_error="")
        .order_by("-last_attempt_at")
        .values_list("last_error", flat=True)
        .first()
    )
    subject = f"Webhook endpoint {endpoint.url} was disabled"
    body = (
        f"The webhook endpoint {endpoint.url} ({endpoint.description or 'no description'}) "
        f"was disabled.\n\n{reason}\n"
        + (f"\nThe last error: {last}\n" if last else "")
        + "\nIts events are kept: re-activate it (admin: Webhook endpoints, or PATCH "
        '/api/v1/webhook-endpoints/{id}/ {"is_active": true}) and they are sent.'
    )

    def send():
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception:  # noqa: BLE001 - a mail outage must not undo the disabling
            log.warning("could not email the disabling of webhook endpoint %s", endpoint.pk)

    transaction.on_commit(send)


# --- the loop -----------------------------------------------------------------------------------


@dataclass
class SendSummary:
    attempted: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    batches: int = 0
    outcomes: list = field(default_factory=list)


def deliveries_send(
    *,
    now: datetime | None = None,
    batch_size: int = 100,
    max_batches: int | None = None,
    time_budget: float | None = None,
    rand: random.Random | None = None,
) -> SendSummary:
    """Send what is due, batch after batch, until nothing is due, `max_batches` or
    `time_budget` seconds. `now` fixes the clock of scheduling (tests drive time with it);
    the signature's timestamp is always the real time of sending."""
    summary = SendSummary()
    started = time.monotonic()
    while True:
        if max_batches is not None and summary.batches >= max_batches:
            break
        if time_budget is not None and time.monotonic() - started > time_budget:
            break
        batch = claim(now=now or timezone.now(), limit=batch_size)
        if not batch:
            break
        outcomes = send_batch(batch)
        record(outcomes, now=now or timezone.now(), rand=rand)
        summary.batches += 1
        for o in outcomes:
            if o.attempted_at is not None:
                summary.attempted += 1
                summary.delivered += o.ok
                summary.failed_attempts += not o.ok
        summary.outcomes.extend(outcomes)
    return summary
