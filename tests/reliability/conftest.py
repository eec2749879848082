"""Fault tests: a private Redis that can be stopped, a real worker process that can be
killed, a milestone to count into, and batches of activities whose sums are known."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from kombu import pools as kombu_pools

from milestones_site.celery import app as celery_app
from tests.factories import TargetGroupFactory, TillFactory, monthly_cycle, target_data

ROOT = Path(__file__).resolve().parents[2]
MARCH = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def make_group(org, configurer):
    """A milestone over 2026 in twelve monthly cycles with one gross-sales target (named as
    the milestone, of `value`: a billion unless told), API-shaped overrides."""

    def make(name="Spend", *, value=Decimal(10**9), **over):
        over.setdefault("till_code", TillFactory(organisation=org).code)
        over.setdefault("cycle", monthly_cycle(date(2026, 1, 1), count=12))
        over.setdefault("targets", [target_data(name, value=value)])
        return TargetGroupFactory(organisation=org, created_by=configurer, name=name, **over)

    return make


def batch(n, *, prefix, customers=50, start=MARCH, step=timedelta(minutes=1), json=True):
    """n transactions over `customers` customers; gross 1..9. JSON-ready unless json=False."""
    items = []
    for i in range(n):
        at = start + i * step
        items.append(
            {
                "id": f"{prefix}-{i}",
                "type": "transaction",
                "customer": {"mobile": f"9{i % customers:09d}"},
                "occurred_at": at.isoformat() if json else at,
                "gross": i % 9 + 1 if json else Decimal(i % 9 + 1),
                "bill_number": f"B-{prefix}-{i}",
            }
        )
    return items


def gross_by_mobile(*batches) -> dict[str, Decimal]:
    """The expected progress per customer: the sum of the distinct activities posted."""
    seen, totals = set(), {}
    for items in batches:
        for item in items:
            if item["id"] in seen:
                continue
            seen.add(item["id"])
            mobile = item["customer"]["mobile"]
            totals[mobile] = totals.get(mobile, Decimal(0)) + Decimal(str(item["gross"]))
    return totals


def progress_by_mobile(target) -> dict[str, Decimal]:
    from evaluation.models import Progress

    totals: dict[str, Decimal] = {}
    for mobile, achieved in Progress.objects.filter(target=target).values_list(
        "customer__mobile", "achieved"
    ):
        totals[mobile] = totals.get(mobile, Decimal(0)) + achieved
    return totals


def wait_for(predicate, seconds=30.0, every=0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a free port, which the test may stop and start again."""

    def __init__(self, exe: str):
        self.exe = exe
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_for(self.ping, seconds=10):
            raise RuntimeError("private redis-server did not start")

    def ping(self) -> bool:
        import redis

        try:
            return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def private_redis():
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(exe)
    server.start()
    yield server
    server.stop()


def _reset_producer_pool() -> None:
    """Forget every pooled broker connection and producer, so the next publish connects to
    the broker now configured. kombu also keeps producer pools in a process-wide registry
    keyed by connection: without its reset, a later test would be handed a pool whose
    connections were closed here ("Acquire on closed pool")."""
    celery_app.amqp._producer_pool = None
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    kombu_pools.reset()


@pytest.fixture
def use_broker(monkeypatch):
    """use_broker(url): this process's Celery app publishes to (and test workers read) url.
    Celery reads CELERY_BROKER_URL from the environment before its configuration."""

    saved = (celery_app.conf.broker_url, dict(celery_app.conf.broker_transport_options or {}))

    def switch(url: str, prefix: str = "") -> None:
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        celery_app.conf.broker_url = url
        options = {"visibility_timeout": 3600}
        if prefix:
            options["global_keyprefix"] = prefix
        celery_app.conf.broker_transport_options = options
        _reset_producer_pool()

    yield switch
    monkeypatch.undo()
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved
    _reset_producer_pool()


def database_url() -> str:
    """The URL of the test database, for processes started by a test."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """`celery worker` in its own process group, so SIGKILL takes the pool children too."""

    def __init__(self, *, broker_url: str, prefix: str, queues: str, log: Path, **env):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_KEY_PREFIX": prefix,
            "FAULT_VISIBILITY_TIMEOUT": str(env.pop("visibility_timeout", 3600)),
            **{k: str(v) for k, v in env.items()},
        }
        self.queues = queues
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, concurrency: int = 2) -> None:
        self.starts += 1
        out = open(self.log, "a")  # noqa: SIM115 - closed with the process
        out.write(f"--- start {self.starts}\n")
        out.flush()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("worker.py")), "-c", str(concurrency),
             "-Q", self.queues, "--loglevel", "warning", "-n", f"fault{self.starts}-{os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        out.close()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (no warm shutdown, no acks)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # warm shutdown: the parent lets the children finish
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
