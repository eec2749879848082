"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`.ci/run` installs
it with apt-get when missing). Screenshots go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import importlib
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.apps import apps

from milestones_site.celery import app as celery_app
from tests.conftest import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ALL_QUEUES = ["default", "tracking", "evaluation", "ingest", "promotions"]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium)."
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # between browser steps are ordinary synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser):
    """new_page() -> a page in a fresh browser context (its own cookies: one person each)."""
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, name) -> the path written: test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def builtin_templates(transactional_db):
    """The built-in templates written by a data migration (a transactional test's flush
    removes them; put them back the same way)."""
    migration = importlib.import_module("milestones.migrations.0003_builtin_templates")
    migration.create(apps, None)


@pytest.fixture
def worker():
    """worker() -> a context manager running a real Celery worker on the configured broker.

    Messages other tests of this run left on the broker (in its private namespace) name rows
    that do not exist here: they are dropped when the test starts, before it queues its own.
    """
    with celery_app.connection_for_write() as connection:
        for queue in ALL_QUEUES:
            with connection.channel() as channel:
                try:
                    channel.queue_purge(queue)
                except Exception:  # noqa: BLE001 - a queue never declared holds nothing
                    pass

    def run():
        return start_worker(
            celery_app, perform_ping_check=False, pool="solo", concurrency=1, queues=ALL_QUEUES
        )

    return run


def log_in(page, base_url: str, username: str, next_url: str = "/care/") -> None:
    page.goto(f"{base_url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()


def api_post(base_url: str, path: str, token: str, body) -> tuple[int, dict]:
    """POST JSON to the live server as an integrator would (token authentication)."""
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our live server)
        return response.status, json.loads(response.read() or b"{}")


def wait_until(condition, timeout: float = 30.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False
