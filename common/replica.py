"""Reads from a read replica, where a page or endpoint says it may.

`DATABASE_REPLICA_URL` adds the database alias "replica" (see milestones_site.settings) and
this router. Reads go to the replica only inside `replica_reads(request)`, which the
read-only pages and endpoints use (member care, a customer's milestones, ranks,
leaderboards, insights); everything else - writes, tasks, services, the admin - reads and
writes the primary, because nothing else ever enters that block.

- **Read your writes:** after a request that changes something (POST, PUT, PATCH, DELETE),
  the `ReadYourWritesMiddleware` sets a short-lived cookie; while it lives, that browser's
  reads stay on the primary, so the page after a save shows the save.
- **Transactions:** a read inside a transaction on the primary stays on the primary.
- **Fallback:** if the replica does not answer (stopped, unreachable), reads fall back to
  the primary with a logged warning, and the replica is not tried again for
  REPLICA_RETRY_SECONDS.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.utils import ConnectionDoesNotExist

log = logging.getLogger(__name__)
REPLICA = "replica"
PRIMARY_COOKIE = "ms_primary_until"
_wanted: ContextVar[bool] = ContextVar("replica_reads", default=False)
_down_until = 0.0


def replica_configured() -> bool:
    try:
        connections[REPLICA]
    except ConnectionDoesNotExist:
        return False
    return True


def replica_available() -> bool:
    """The replica answers (checked once per connection; a failure is remembered)."""
    global _down_until
    if not replica_configured() or time.monotonic() < _down_until:
        return False
    try:
        connections[REPLICA].ensure_connection()
        return True
    except DatabaseError as exc:
        _down_until = time.monotonic() + getattr(settings, "REPLICA_RETRY_SECONDS", 30)
        log.warning("read replica unavailable, reading from the primary: %s", exc)
        try:
            connections[REPLICA].close()
        except DatabaseError:
            pass
        return False


def reset_replica_state() -> None:
    """Forget a remembered failure (tests; an operator after bringing the replica back)."""
    global _down_until
    _down_until = 0.0


def _sticky(request) -> bool:
    try:
        return float(request.COOKIES.get(PRIMARY_COOKIE, "0")) > time.time()
    except ValueError:
        return False


@contextmanager
def replica_reads(request=None):
    """Reads inside go to the replica (if configured, up, and the user did not just write)."""
    token = _wanted.set(request is None or not _sticky(request))
    try:
        yield
    finally:
        _wanted.reset(token)


def reads_from_replica(view):
    """A function view whose reads may come from the replica."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with replica_reads(request):
            return view(request, *args, **kwargs)

    return wrapped


class ReplicaReadsMixin:
    """A DRF view whose safe (GET/HEAD) requests read from the replica."""

    def dispatch(self, request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return super().dispatch(request, *args, **kwargs)
        with replica_reads(request):
            return super().dispatch(request, *args, **kwargs)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        # Inside a transaction on the primary, its reads stay there (they may need its writes).
        if _wanted.get() and not connections["default"].in_atomic_block and replica_available():
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA


class ReadYourWritesMiddleware:
    """After a request that may have written, keep this browser on the primary for
    REPLICA_STICKY_SECONDS (replication lag is far below that on a healthy standby)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if replica_configured() and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            seconds = getattr(settings, "REPLICA_STICKY_SECONDS", 15)
            response.set_cookie(
                PRIMARY_COOKIE, str(time.time() + seconds), max_age=seconds, httponly=True,
                samesite="Lax", secure=request.is_secure(),
            )  # fmt: skip
        return response
