"""Production settings: with a secret from the environment and DEBUG off, cookies are secure,
HSTS and the HTTPS redirect are on, and `manage.py check --deploy` has nothing to say."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k) for k in ("
    "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
    "'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
    "'SECURE_HSTS_PRELOAD', 'SECURE_CONTENT_TYPE_NOSNIFF', 'X_FRAME_OPTIONS', 'DEBUG', "
    "'ALLOWED_HOSTS', 'SECRET_KEY', 'AXES_FAILURE_LIMIT', 'AXES_COOLOFF_MINUTES')}))"
)
SECRET = secrets.token_urlsafe(50)


def clean_env(tmp_path, **extra):
    """A deployment's environment: nothing of the test run's (database, broker, async flag)."""
    drop = {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "SECRET_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AXES_")}
    env.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="milestones_site.settings", **extra)
    return env


def production(tmp_path, **extra):
    return clean_env(
        tmp_path, SECRET_KEY=SECRET, DEBUG="false", ALLOWED_HOSTS="example.com", **extra
    )


def settings_in(env):
    out = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def check_deploy(env):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_check_deploy_is_clean_in_production(tmp_path):
    out = check_deploy(production(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "System check identified no issues (0 silenced)." in out.stdout


def test_production_cookies_are_secure_and_hsts_is_on(tmp_path):
    values = settings_in(production(tmp_path))
    assert values["SECRET_KEY"] == SECRET  # the secret is the environment's, as given
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["example.com"]
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"


def test_without_a_secret_the_plain_http_defaults_stay_and_check_deploy_complains(tmp_path):
    env = clean_env(tmp_path, DEBUG="false", ALLOWED_HOSTS="example.com")
    values = settings_in(env)
    assert values["SESSION_COOKIE_SECURE"] is False and values["SECURE_HSTS_SECONDS"] == 0
    out = check_deploy(env)
    assert out.returncode != 0
    assert "security.W009" in out.stdout + out.stderr  # the embedded key is not a secret


def test_throttling_limits_come_from_the_environment(tmp_path):
    values = settings_in(production(tmp_path, AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="60"))
    assert (values["AXES_FAILURE_LIMIT"], values["AXES_COOLOFF_MINUTES"]) == (3, 60)


def test_a_zero_failure_limit_fails_loudly(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=production(tmp_path, AXES_FAILURE_LIMIT="0"),
    )  # fmt: skip
    assert out.returncode != 0
    assert "AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be at least 1" in out.stderr
