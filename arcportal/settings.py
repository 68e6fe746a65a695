"""The only settings module. Every difference between environments comes from environment variables.

See ``.env.example`` for every variable with a safe development value, and ``docs/configuration.md``.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from arcportal.files import private_dir, private_file

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the installation keeps (SQLite database, secret key, PKI, broker, cache) lives here, readable by the
# owner only: the database holds session keys, the PKI the CA's private key.
VAR_DIR = private_dir(Path(environ.Env().str("ARC_VAR_DIR", default=str(BASE_DIR / "var"))))
# Written once by `make run` / `make demo` (mode 0600); read when DJANGO_SECRET_KEY is unset, so every
# `python manage.py …` of that installation uses the same key without exporting it.
SECRET_KEY_FILE = VAR_DIR / "secret_key"

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

# --- Django core -------------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY and SECRET_KEY_FILE.is_file():
    SECRET_KEY = private_file(SECRET_KEY_FILE).read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is required unless DJANGO_DEBUG is true (or a key in {SECRET_KEY_FILE}, "
            "which `make run` creates)."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-DJANGO_DEBUG-is-true"  # noqa: S105

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Behind a TLS-terminating proxy (docs/security.md): trust its X-Forwarded-Proto / X-Forwarded-Host, and since every
# client then speaks https: Secure cookies, HSTS, http redirected to https (docs/configuration.md, "Production").
BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # The proxy's health check may ask gunicorn directly over http.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)

DJANGO_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = ["rest_framework", "django_filters", "drf_spectacular", "drf_spectacular_sidecar", "django_htmx"]
# Lowest layer first (docs/architecture.md): a package imports only itself and the ones before it.
LOCAL_APPS = ["arcportal", "arcportal.activity", "identity", "machines", "machines.locks", "onboarding", "agentplane"]
# A development tool outside the layers (it may import any app and the agent); installed for `simulate_fleet`.
TOOL_APPS = ["simulator"]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS + TOOL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "arcportal.middleware.InputGuardMiddleware",
    # A correlation id per request (x-ms-correlation-request-id), recorded with its activity events.
    "arcportal.activity.middleware.CorrelationIdMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "identity.middleware.RoleAssignmentMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "arcportal.middleware.VaryOnHtmxMiddleware",
    "arcportal.middleware.LoginRequiredByDefaultMiddleware",
    "arcportal.scopeguard.ScopeGuardMiddleware",
]

if BEHIND_TLS_PROXY:
    # The client's address from the proxy's X-Forwarded-For, before anything reads REMOTE_ADDR (arcportal/proxy.py).
    MIDDLEWARE.insert(0, "arcportal.proxy.ForwardedForMiddleware")

ROOT_URLCONF = "arcportal.urls"
WSGI_APPLICATION = "arcportal.wsgi.application"
# ARM paths never end in a slash and must never be redirected (API-CONTRACT.md §8.3).
APPEND_SLASH = False

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
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'arcportal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _sqlite = Path(DATABASES["default"]["NAME"])
    if DATABASES["default"]["NAME"] not in ("", ":memory:") and _sqlite.parent.is_dir():
        # Created 0600 before SQLite opens it; its -wal and -shm files take the database file's mode.
        private_file(_sqlite, create=True)
        for _suffix in ("-wal", "-shm", "-journal"):
            private_file(_sqlite.with_name(_sqlite.name + _suffix))
    # Web, worker and beat share the file: WAL lets readers run beside the writer, IMMEDIATE transactions
    # avoid "database is locked" upgrades, and the timeout waits for the writer instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
    # A kept connection is checked before its first use in each request: after a database restart (or a backend
    # killed by an administrator) the request reconnects instead of failing with a 500.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ----------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "machines:machine-list"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True

# --- I18N / time ---------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files --------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Cache ---------------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Keys carry the database name, like the heartbeat buffer's: installations, test runs and benches that share a
    # Redis never read each other's rate limits or beat liveness.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"arc:cache:{{{DATABASES['default']['NAME']}}}",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(private_dir(VAR_DIR / "cache")),
        }
    }

# --- Celery --------------------------------------------------------------------------------------------------
ARC_STATUS_SWEEP_SECONDS = env.int("ARC_STATUS_SWEEP_SECONDS", default=60)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    # The embedded broker (DESIGN.md §1): kombu's filesystem transport, no server needed.
    _broker_dir = private_dir(VAR_DIR / "broker")
    for _sub in ("queue", "processed", "control"):
        private_dir(_broker_dir / _sub)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery-results'}"
    private_dir(VAR_DIR / "celery-results")
    # The filesystem transport has no fan-out exchange, so remote control (broadcast) is off.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_TIME_LIMIT = 5 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 60 * 4
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# One installation per queue: integration tests (and side-by-side installs sharing a Redis) set their own.
CELERY_TASK_DEFAULT_QUEUE = env.str("ARC_CELERY_QUEUE", default="celery")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "machine-status-sweep": {
        "task": "machines.tasks.machine_status_sweep_task",
        "schedule": float(ARC_STATUS_SWEEP_SECONDS),
        "options": {"expires": float(ARC_STATUS_SWEEP_SECONDS)},
    },
    "beat-heartbeat": {
        # Proves beat and a worker are alive: writes a timestamp that /healthz and the tests read.
        "task": "arcportal.tasks.beat_liveness_task",
        "schedule": float(env.int("ARC_BEAT_LIVENESS_SECONDS", default=30)),
        "options": {"expires": 30.0},
    },
    "device-code-purge-expired": {
        "task": "identity.tasks.device_code_purge_expired_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "onboarding-failure-purge": {
        # PUT /his/log is public: its reports are kept ARC_ONBOARDING_LOG_RETENTION_DAYS, at most _MAX_ROWS of them.
        "task": "onboarding.tasks.onboarding_failure_purge_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "async-operation-housekeeping": {
        # Extension and run-command operations: overdue ones end Failed, ended ones go after a week.
        "task": "machines.tasks.async_operation_housekeeping_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "activity-log-purge": {
        # Activity events are kept ARC_ACTIVITY_LOG_RETENTION_DAYS (docs/governance.md).
        "task": "arcportal.activity.tasks.activity_purge_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "webhook-requeue-stale": {
        # Deliveries written with a transition but never attempted (lost between commit and enqueue) go out again.
        "task": "machines.tasks.webhook_requeue_stale_task",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
}
# Steady-state heartbeats are buffered in Redis and written in bulk this often (machines/heartbeats.py); 0 writes
# each heartbeat directly. Without Redis there is nothing to flush, so no beat entry.
ARC_HEARTBEAT_FLUSH_SECONDS = env.float("ARC_HEARTBEAT_FLUSH_SECONDS", default=2.0)
# The heartbeat endpoint's one query runs as a prepared statement on PostgreSQL; off behind a transaction-pooling
# proxy that cannot keep prepared statements (PgBouncer before 1.21).
ARC_HEARTBEAT_PREPARED_STATEMENTS = env.bool("ARC_HEARTBEAT_PREPARED_STATEMENTS", default=True)
# PostgreSQL's JIT compiler, off for the portal's sessions by default (arcportal/database.py, docs/decisions.md 126).
ARC_POSTGRES_JIT = env.bool("ARC_POSTGRES_JIT", default=False)
if ARC_HEARTBEAT_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django connects with prepare_threshold=None, which makes psycopg ignore even an explicit prepare=True. A
    # threshold never reached means: prepare only what a cursor asks for (the heartbeat query); Django's own cursors
    # bind client-side and never prepare anything.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)
if REDIS_URL and ARC_HEARTBEAT_FLUSH_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["machine-heartbeat-flush"] = {
        "task": "machines.tasks.machine_heartbeat_flush_task",
        "schedule": ARC_HEARTBEAT_FLUSH_SECONDS,
        "options": {"expires": ARC_HEARTBEAT_FLUSH_SECONDS},
    }

# --- REST framework / OpenAPI --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["identity.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["arcportal.arm.parsers.GuardedJSONParser"],
    "EXCEPTION_HANDLER": "arcportal.arm.errors.arm_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ArcPortal ARM API",
    "DESCRIPTION": "Azure Resource Manager compatible API for resource groups and Microsoft.HybridCompute machines.",
    "VERSION": "2026-07-15",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # The ARM plane's dispatchers expand to one operation per method under ARM path templates (arcportal/arm/schema.py).
    "DEFAULT_GENERATOR_CLASS": "arcportal.arm.schema.ArmSchemaGenerator",
    "SCHEMA_PATH_PREFIX": "",
    "COMPONENT_SPLIT_REQUEST": True,
    # ARM leaves out absent optional members, so computed (read-only) members are not "required" in responses.
    "COMPONENT_NO_READ_ONLY_REQUIRED": True,
    # Swagger UI served from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- ArcPortal -----------------------------------------------------------------------------------------------
ARC_TENANT_ID = env.str("ARC_TENANT_ID", default="")
ARC_PUBLIC_BASE_URL = env.str("ARC_PUBLIC_BASE_URL", default="https://127.0.0.1:8443")
ARC_PUBLIC_HOSTS = env.list("ARC_PUBLIC_HOSTS", default=[])
ARC_HEARTBEAT_INTERVAL_SECONDS = env.int("ARC_HEARTBEAT_INTERVAL_SECONDS", default=300)
# The goal-state channel (docs/extensions.md): how often agents poll, how long an extension operation may wait.
ARC_GOAL_STATE_SECONDS = env.int("ARC_GOAL_STATE_SECONDS", default=30)
ARC_EXTENSION_TIMEOUT_SECONDS = env.int("ARC_EXTENSION_TIMEOUT_SECONDS", default=900)
ARC_OPERATION_RETENTION_DAYS = env.int("ARC_OPERATION_RETENTION_DAYS", default=7)
ARC_OFFLINE_AFTER_SECONDS = env.int("ARC_OFFLINE_AFTER_SECONDS", default=1500)
ARC_EXPIRED_AFTER_DAYS = env.int("ARC_EXPIRED_AFTER_DAYS", default=45)
ARC_DEVICE_CODE_TTL_SECONDS = env.int("ARC_DEVICE_CODE_TTL_SECONDS", default=900)
ARC_LIST_REFRESH_SECONDS = env.int("ARC_LIST_REFRESH_SECONDS", default=15)
ARC_PORTAL_PAGE_SIZE = env.int("ARC_PORTAL_PAGE_SIZE", default=50)
ARM_PAGE_SIZE = env.int("ARM_PAGE_SIZE", default=100)
# Resource Graph: a query (count and page together) running longer than this is stopped (docs/resource-graph.md).
ARC_GRAPH_TIMEOUT_SECONDS = env.float("ARC_GRAPH_TIMEOUT_SECONDS", default=10.0)
# Files the portal creates at bootstrap: CA, server certificate, token-signing key.
ARC_PKI_DIR = Path(env.str("ARC_PKI_DIR", default=str(VAR_DIR / "pki")))
# Fernet key for extension protectedSettings at rest; derived from SECRET_KEY when unset (docs/security.md).
ARC_FERNET_KEY = env.str("ARC_FERNET_KEY", default="")
# Failure reports of PUT /his/log: kept this many days, at most this many rows (purged hourly by beat).
ARC_ONBOARDING_LOG_RETENTION_DAYS = env.int("ARC_ONBOARDING_LOG_RETENTION_DAYS", default=30)
ARC_ONBOARDING_LOG_MAX_ROWS = env.int("ARC_ONBOARDING_LOG_MAX_ROWS", default=10000)
# Activity-log events are kept this many days (purged hourly by beat).
ARC_ACTIVITY_LOG_RETENTION_DAYS = env.int("ARC_ACTIVITY_LOG_RETENTION_DAYS", default=90)

# The web servers (arcportal/serving.py, arcportal/asgi_buffered.py): Python threads per web process, and the limits
# under which a request is read whole before one of them sees it (413 beyond the size, 408 after a read stalls).
ARC_WEB_THREADS = env.int("ARC_WEB_THREADS", default=4)
ARC_WEB_MAX_BODY_BYTES = env.int("ARC_WEB_MAX_BODY_BYTES", default=2 * 1024 * 1024)
ARC_WEB_BODY_TIMEOUT_SECONDS = env.float("ARC_WEB_BODY_TIMEOUT_SECONDS", default=10.0)

# --- Abuse limits (arcportal/ratelimits.py, django-ratelimit; rates are "count/[n]period", e.g. 10/10m) ----------
# Failed sign-ins (token endpoint and portal sign-in page) per client IP and per client id / user name; requests
# to /devicecode per IP. Counted in the default cache; refused with 503 while it does not answer.
ARC_RATE_LIMIT_SIGNIN_PER_IP = env.str("ARC_RATE_LIMIT_SIGNIN_PER_IP", default="30/10m")
ARC_RATE_LIMIT_SIGNIN_PER_ACCOUNT = env.str("ARC_RATE_LIMIT_SIGNIN_PER_ACCOUNT", default="10/10m")
ARC_RATE_LIMIT_DEVICECODE_PER_IP = env.str("ARC_RATE_LIMIT_DEVICECODE_PER_IP", default="30/10m")
RATELIMIT_USE_CACHE = "default"
RATELIMIT_CACHE_PREFIX = "rl:"
# Webhook receivers that may be internal (loopback, private, link-local …): host names, ".example.com" suffixes,
# IP addresses or networks. Every other webhook URL must resolve to public addresses only (machines/egress.py).
ARC_WEBHOOK_ALLOWED_HOSTS = env.list("ARC_WEBHOOK_ALLOWED_HOSTS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
