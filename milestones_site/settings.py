"""One settings module; everything that differs between machines comes from the environment.

Nothing set: SQLite under var/, a filesystem Celery broker, DEBUG off.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
_INSECURE_KEY = "django-insecure-dev-only-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", "")
# A deployment is a machine given its own secret: without one we run on the embedded,
# plain-HTTP defaults (demo, tests); with one and DEBUG off, the HTTPS hardening is on.
PRODUCTION = bool(SECRET_KEY) and not DEBUG
if not SECRET_KEY:
    SECRET_KEY = _INSECURE_KEY
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "import_export",
    "django_htmx",
    "django_prometheus",
    "milestones",
    "enrolment",
    "evaluation",
    "promotions",
    "webhooks",
    "simulations",
    "membercare",
    "milestones_site.apps.SiteConfig",
    "axes",
]

MIDDLEWARE = [
    # Request rates and latencies for /metrics (first and last, as django-prometheus asks).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Every time a signed-in person reads is in their organisation's time zone.
    "milestones_site.middleware.OrganisationTimezoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as its documentation asks: turns a locked-out sign-in into the lockout answer.
    "axes.middleware.AxesMiddleware",
    # After a write, this browser reads the primary for a few seconds (read your writes).
    "common.replica.ReadYourWritesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Axes first: it refuses a locked-out username+address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "milestones_site.urls"
WSGI_APPLICATION = "milestones_site.wsgi.application"
AUTH_USER_MODEL = "milestones.User"
LOGIN_URL = "/admin/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "milestones_site.context_processors.org_timezone",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'milestones.sqlite3'}")
try:
    # Server databases keep a connection per process for a minute (checked before reuse):
    # a new PostgreSQL connection per request costs more than most requests.
    _server = not DATABASE_URL.startswith("sqlite")
    _db = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("CONN_MAX_AGE", 60 if _server else 0),
        conn_health_checks=_server,
    )
except Exception as exc:  # dj_database_url raises bare exceptions for unknown schemes
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + busy timeout: the web process, the worker and beat share one file.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _TEST_NAME = str(VAR_DIR / f"test-milestones-{os.getpid()}.sqlite3")
else:
    _TEST_NAME = f"test_{_db['NAME']}_{os.getpid()}"
# One test database per test run (the process id), so concurrent runs never share one.
_db.setdefault("TEST", {})["NAME"] = env_str("TEST_DATABASE_NAME", _TEST_NAME)
DATABASES = {"default": _db}
# A read replica (a streaming standby): read-only pages and endpoints read from it, see
# common/replica.py. In tests it mirrors the test database, which the standby replicates.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    _replica = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True
    )
    _replica.setdefault("OPTIONS", {})["connect_timeout"] = 3
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["common.replica.ReplicaRouter"]
REPLICA_STICKY_SECONDS = env_int("REPLICA_STICKY_SECONDS", 15)
REPLICA_RETRY_SECONDS = env_int("REPLICA_RETRY_SECONDS", 30)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = _db["ENGINE"].endswith("postgresql")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_TEMP_DIR = None
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
CSV_UPLOAD_MAX_BYTES = 25 * 1024 * 1024
# Big custom-list imports on PostgreSQL write their chunks on this many connections at once.
ENROLMENT_IMPORT_WORKERS = env_int("ENROLMENT_IMPORT_WORKERS", 2)
# Big set-based writes (imports, tracking) check their foreign keys with one lock per
# referenced table instead of a trigger per row, when the database role may set
# session_replication_role (common.bulk.hold_references; docs/scaling.md).
SET_BASED_REFERENCES = env_bool("SET_BASED_REFERENCES", True)
# Tracking folds additive KPIs in fixed periods with one upsert per batch (evaluation.sql_fold).
TRACKING_SQL_FOLD = env_bool("TRACKING_SQL_FOLD", True)

# --- Security (production defaults whenever DEBUG is off) ------------------------------------
HTTPS_ONLY = env_bool("HTTPS_ONLY", PRODUCTION)
SECURE_SSL_REDIRECT = HTTPS_ONLY
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = 31536000 if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_HSTS_PRELOAD = HTTPS_ONLY
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Sign-in throttling (django-axes) ---------------------------------------------------------
# After AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
# refused (even with the right password) for AXES_COOLOFF_MINUTES; a success resets the count.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be at least 1")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_COOLOFF_MESSAGE = (
    f"Too many failed sign-ins: this account is locked from your address for "
    f"{AXES_COOLOFF_MINUTES} minutes. Try again later, or ask an administrator to unlock it."
)
# Behind N reverse proxies the client is the Nth address from the right of X-Forwarded-For;
# 0 (default) means clients connect directly and REMOTE_ADDR is theirs.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "milestones.tokens.client_ip"

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token scheme; a `Bearer` header is a 401 that says to send `Token` instead
        "common.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["common.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "common.api.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Milestones API",
    # Markdown, shown on /api/docs/: what a newcomer needs for a first batch and its progress.
    "DESCRIPTION": """\
Configure milestones, send activities, read progress and awards.

## Quickstart

**1. Get a token.** An operator creates the organisation and an integration user; the
command prints the token:

```bash
python manage.py create_org acme --name "Acme" --timezone Asia/Kolkata \\
    --user acme-pos --role integration
# {"org": "acme", "user": "acme-pos", "token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}
export TOKEN=9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b BASE=http://127.0.0.1:8000
```

Every request sends it as `Authorization: Token $TOKEN`: the word `Token`, not `Bearer` (a
Bearer header is answered 401 saying so).

**2. Send a first batch of activities** (one object, or a list of up to 1,000; every type
has an example under `POST /api/v1/activities/`):

```bash
curl -sS -X POST "$BASE/api/v1/activities/" \\
  -H "Authorization: Token $TOKEN" -H "Content-Type: application/json" \\
  -d '[{"id": "txn-1001", "type": "transaction", "customer": {"mobile": "9000000001"},
        "occurred_at": "2026-03-04T11:00:00+05:30", "bill_number": "B-1001",
        "gross": 1200, "discount": 200, "net": 1000},
       {"id": "evt-1001", "type": "event", "customer": {"mobile": "9000000001"},
        "occurred_at": "2026-03-04T11:05:00+05:30", "name": "AddToCart",
        "attributes": {"price": 3000}}]'
# 202 {"accepted": 2, "duplicates": 0, "ids": ["txn-1001", "evt-1001"], "duplicate_ids": []}
```

**Tracking is asynchronous.** `202 Accepted` means the batch was validated and stored, not
yet counted: background workers fold it into each customer's progress, which follows within
seconds. `id` is your idempotency key: the same `id` sent again (a retry after a timeout, a
replayed file) is answered as a duplicate and counted once, so a batch can always be re-sent.
A batch is all or nothing: a bad item is a 400 naming it, and nothing of the batch is stored.
Unknown customers are created on their first activity, unless the organisation turned that
off.

**3. Read progress.** Find the customer's id by any identifier, then read every milestone
they are in, cycle by cycle:

```bash
curl -sS "$BASE/api/v1/customers/?mobile=9000000001" -H "Authorization: Token $TOKEN"
# [{"id": 42, "mobile": "9000000001", ...}]
curl -sS "$BASE/api/v1/customers/42/milestones/" -H "Authorization: Token $TOKEN"
# [{"target_group": "Monthly spend", "target": "Spend 1000", "cycles": [{"name": "Mar 2026",
#   "status": "ongoing", "target": 1000.0, "achieved": 1000.0, "sub_targets": [...]}]}]
```

## Conventions

- JSON everywhere; dates in ISO 8601 (`2026-03-01`, `2026-03-01T10:00:00+05:30`); amounts
  are decimal numbers.
- Lists are JSON arrays: `?limit=&offset=` page them and the `X-Total-Count` header gives
  the total.
- A token sees its own organisation only: another organisation's id answers 404.

## Errors

- 400 `{"field": ["message", ...]}` for a bad object, `{"detail": "..."}` for a request
  that is wrong as a whole.
- 400 for bad items of a batch (activities, enrolments, audience lists):
  `{"items": {"2": {"store": ["Unknown store code 'S9'."]}}}`: the item's 0-based position
  in the list, then the field, then its messages. Nothing of the batch was stored. The older
  one-line-per-item list (`activities`, `customers`) is still sent alongside.
- 401 no token, an unknown or revoked one, or a `Bearer` header; 403 the role may not do
  this; 404 no such object in your organisation; 413 the body is too large.
""",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Document the error answers (400/401/403/404/413) of every operation too.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "milestones.openapi.document_error_responses",
    ],
}

# --- Celery -----------------------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if env_str("CELERY_KEY_PREFIX", ""):
        # Several deployments (or benchmark runs) sharing one Redis keep apart.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env_str("CELERY_KEY_PREFIX", "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One queue per kind of work, so more workers is configuration, not code.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "evaluation.tasks.track_*": {"queue": "tracking"},
    "evaluation.tasks.evaluate_*": {"queue": "evaluation"},
    "evaluation.tasks.reprocess_*": {"queue": "evaluation"},
    "enrolment.tasks.*": {"queue": "ingest"},
    "promotions.tasks.*": {"queue": "promotions"},
}
CELERY_QUEUES_ALL = "default,tracking,evaluation,ingest,promotions"

# Live ranks in Redis sorted sets: the Redis broker's server unless RANKS_REDIS_URL says
# otherwise; empty (embedded default) means ranks are counted in SQL.
RANKS_REDIS_URL = env_str(
    "RANKS_REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""
)
RANKS_KEY_PREFIX = env_str("RANKS_KEY_PREFIX", env_str("CELERY_KEY_PREFIX", "milestones:"))

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "milestones@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        # Two choice sets under one field name would both get a hashed name (Kind295Enum):
        # the event catalogue's `kind` and `source` are named here, and the audience groups'
        # `kind` keeps the name it had.
        "ENUM_NAME_OVERRIDES": {
            "KindEnum": "enrolment.models.AudienceKind",
            "EventKindEnum": "milestones.models.EventKind",
            "EventSourceEnum": "milestones.models.EventSource",
        },
    }
)
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = ["rest_framework.permissions.AllowAny"]

# Any export through django-import-export escapes formula-like cells (CSV injection).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
# An admin import's previewed file waits for its confirmation in the media storage (every web
# process sees it), in a folder of its own, under a random name signed for its uploader: no
# other name is read or deleted (common.admin.ImportTempStorage, UploaderBoundImport).
IMPORT_EXPORT_TMP_STORAGE_CLASS = "common.admin.ImportTempStorage"

# --- Operations: /metrics and /health/ (see milestones_site/metrics.py) -----------------------
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = tuple(env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"]))
HEALTH_MAX_TRACKING_LAG_SECONDS = env_int("HEALTH_MAX_TRACKING_LAG_SECONDS", 600)

# Webhook endpoints may not point at private/loopback/link-local addresses unless this is on
# (a private network of receivers you trust; the tests' loopback receivers).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
