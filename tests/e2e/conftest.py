"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`.ci/run` installs
it with apt-get when missing). Screenshots go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import atexit
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


_SHARED: dict = {}


def _shared_chromium():
    """One Playwright and one Chromium for the whole run, whichever module asks first.

    Several test modules re-export this file's fixtures, and each re-export is a fixture of
    its own: two Playwright instances in one thread refuse to run ("Sync API inside the
    asyncio loop"). So every `browser` fixture hands out this one, stopped at exit."""
    if "chromium" not in _SHARED:
        if not os.path.exists(CHROMIUM):
            pytest.fail(
                f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium)."
            )
        from playwright.sync_api import sync_playwright

        # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests
        # make between browser steps are ordinary synchronous code.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        playwright = sync_playwright().start()
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        _SHARED.update(playwright=playwright, chromium=chromium)

        def stop():
            try:
                chromium.close()
                playwright.stop()
            except Exception:  # noqa: BLE001 - the process is ending anyway
                pass

        atexit.register(stop)
    return _SHARED["chromium"]


@pytest.fixture(scope="session")
def browser():
    return _shared_chromium()


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


# --- accessibility ---------------------------------------------------------------------------

BLOCKING_IMPACTS = ("serious", "critical")
MAX_NODES = 15  # per rule, in a failure message


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in BLOCKING_IMPACTS]


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v.get('helpUrl', '')}]")
        for node in v["nodes"][:MAX_NODES]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = (node.get("failureSummary") or "").strip().splitlines()
            lines.append(f"    at {target}: {summary[-1].strip() if summary else ''}")
        if len(v["nodes"]) > MAX_NODES:
            lines.append(f"    ... and {len(v['nodes']) - MAX_NODES} more nodes")
    return "\n".join(lines)


def axe_check(page, name: str) -> Path:
    """Run axe-core on the page, save a full-page screenshot as
    test-artifacts/screenshots/<name>.png, and fail listing every serious or critical
    violation (rule id, impact, help, target nodes)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    violations = axe_violations(page)
    if violations:
        pytest.fail(
            f"axe: {len(violations)} serious/critical violation(s) on {name} ({page.url}):\n"
            + describe_violations(violations),
            pytrace=False,
        )
    return path


# --- one live server and one data set per module ---------------------------------------------
#
# pytest-django's `live_server` makes every test transactional: the database is flushed after
# each test, so each would have to build its data again. Read-mostly browser modules use these
# instead: one server thread and the demo data for the whole module, one signed-in browser
# context per person, and the database flushed once when the module ends.


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    """Database access for a whole module (committed, not rolled back); flushed at its end."""
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        # pytest-django creates the test database only when a collected test asks for `db`,
        # `transactional_db` or `live_server`; a run of these modules alone asks for none.
        own = None
        if connection.settings_dict["NAME"] != connection.settings_dict["TEST"]["NAME"]:
            own = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        migration = importlib.import_module("milestones.migrations.0003_builtin_templates")
        migration.create(apps, None)  # a transactional test's flush may have removed them
        try:
            yield
        finally:
            call_command("flush", interactive=False, verbosity=0)
            if own is not None:
                teardown_databases(own, verbosity=0)


@pytest.fixture(scope="module")
def module_server(module_db):
    """A live server for the module (not pytest-django's: that one flushes after each test)."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer(os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost")
    server._live_server_modified_settings.enable()
    yield server
    server._live_server_modified_settings.disable()
    server.stop()


@pytest.fixture(scope="module")
def demo(module_db):
    """milestones.demo.load_demo(): organisation "demo" (Asia/Kolkata), users configurer /
    care / integrator, five live milestones, activities, and promotions that paid."""
    from milestones.demo import load_demo
    from milestones.models import Organisation

    load_demo()
    return Organisation.objects.get(slug="demo")


DEMO_PASSWORDS = {"configurer": "configurer-demo-pass", "care": "care-demo-pass"}


@pytest.fixture(scope="module")
def signed_in(browser, module_server):
    """signed_in(username) -> a browser context signed in as that user (once per module).

    Demo users sign in with their demo password, others with tests.conftest.PASSWORD."""
    contexts = {}

    def get(username: str):
        if username not in contexts:
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
            context.set_default_timeout(15_000)
            page = context.new_page()
            page.goto(f"{module_server.url}/admin/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", DEMO_PASSWORDS.get(username, PASSWORD))
            page.click("input[type=submit]")
            page.wait_for_load_state()
            assert "/login/" not in page.url, f"{username} could not sign in"
            page.close()
            contexts[username] = context
        return contexts[username]

    yield get
    for context in contexts.values():
        context.close()


@pytest.fixture
def page_as(signed_in):
    """page_as(username) -> a new page of that user's shared context, closed after the test."""
    pages = []

    def make(username: str):
        page = signed_in(username).new_page()
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()
