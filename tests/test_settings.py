"""Settings come from the environment, fail loudly on bad values, and pass check --deploy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'name': s.DATABASES['default']['NAME'], 'broker': s.CELERY_BROKER_URL, "
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
    "'secret': s.SECRET_KEY, 'ssl': s.SECURE_SSL_REDIRECT}))"
)


def run_python(code, **env):
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    base.update({"DJANGO_SETTINGS_MODULE": "milestones_site.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def test_defaults_are_sqlite_under_var_and_a_serverless_broker(tmp_path):
    out = run_python(PRINT_SETTINGS, VAR_DIR=str(tmp_path))
    values = json.loads(out.stdout)
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(tmp_path / "milestones.sqlite3")
    assert values["broker"] == "filesystem://"
    assert values["eager"] is False
    assert values["debug"] is False
    assert values["ssl"] is False  # no secret given: embedded, plain-HTTP defaults


def test_every_setting_is_read_from_the_environment(tmp_path):
    out = run_python(
        PRINT_SETTINGS,
        VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://u:p@db.example:5433/milestones",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
        CELERY_TASK_ALWAYS_EAGER="1",
        DEBUG="true",
        ALLOWED_HOSTS="a.example, b.example",
        SECRET_KEY="s" * 60,
    )
    values = json.loads(out.stdout)
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "milestones"
    assert values["broker"] == "redis://127.0.0.1:6379/3"
    assert values["eager"] is True
    assert values["debug"] is True
    assert values["hosts"] == ["a.example", "b.example"]
    assert values["secret"] == "s" * 60


def test_bad_boolean_fails_loudly(tmp_path):
    out = run_python(PRINT_SETTINGS, VAR_DIR=str(tmp_path), DEBUG="maybe")
    assert out.returncode != 0
    assert "DEBUG must be a boolean" in out.stderr


def test_check_deploy_is_clean_with_debug_off_and_a_real_secret(tmp_path):
    # A clean deployment environment (the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE is not one).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        VAR_DIR=str(tmp_path),
        DEBUG="0",
        SECRET_KEY="k3y-" + "x9Y!" * 16,
        ALLOWED_HOSTS="milestones.example",
        DJANGO_SETTINGS_MODULE="milestones_site.settings",
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_check_deploy_complains_without_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
    env.update(VAR_DIR=str(tmp_path), DEBUG="0", DJANGO_SETTINGS_MODULE="milestones_site.settings")
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "SECRET_KEY" in out.stdout + out.stderr


@pytest.mark.django_db
@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"), reason="SQLite only"
)
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 30000
