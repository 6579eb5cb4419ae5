"""Settings, read from the environment.

With no environment at all the platform runs embedded: SQLite, a filesystem Celery broker, a file cache
and the in-memory channel layer. DATABASE_URL and REDIS_URL switch it to PostgreSQL and Redis.
Every variable is listed in the README's configuration table.
"""

import json
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from maintenance_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_parsed,
    env_rate,
    env_str,
    env_url,
    read_or_create_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()

VERSION = "0.1.0"

# Runtime data of the embedded mode (SQLite file, broker folders, cache, media) lives under VAR_DIR.
for _folder in ("", "cache", "broker/queue", "broker/control", "media", "static"):
    (VAR_DIR / _folder).mkdir(parents=True, exist_ok=True)

# Off unless asked for (`DEBUG=1 make run`): Django's debug pages show settings and source to whoever gets one.
DEBUG = env_bool("DEBUG", False)
# Without SECRET_KEY, a key generated once into VAR_DIR: the embedded run needs no configuration, and web and
# worker (same VAR_DIR) share it. Several machines need one SECRET_KEY: `check --deploy` warns while it is unset.
SECRET_KEY_FILE = VAR_DIR / "secret_key"
SECRET_KEY = env_str("SECRET_KEY") or read_or_create_secret(SECRET_KEY_FILE)
SECRET_KEY_GENERATED = not env_str("SECRET_KEY")

_LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", _LOOPBACK_HOSTS)
# Reachable from this machine only (the embedded run's default): plain HTTP is all there is, so the HTTPS
# hardening below defaults off; naming any other host, or BEHIND_TLS_PROXY, turns it on.
_LOOPBACK_ONLY = all(host in _LOOPBACK_HOSTS or host.endswith(".localhost") for host in ALLOWED_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Browser origins allowed to call the API and open the event socket.
ALLOWED_ORIGINS = env_list("ALLOWED_ORIGINS")
CORS_ALLOWED_ORIGINS = ALLOWED_ORIGINS
CORS_URLS_REGEX = r"^/api/.*$"

INSTALLED_APPS = [
    "daphne",
    # the back office's theme (django-unfold) and its integrations, before the admin and the apps they restyle
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.import_export",
    "unfold.contrib.simple_history",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "import_export",
    "django_celery_beat",
    "django_celery_results",
    "channels",
    "axes",
    "csp",
    "maintenance_site.security",
    "maintenance_site.tenancy",
    "maintenance_site.api",
    "maintenance_site.ops",
    "maintenance_site.events",
    "maintenance_site.notifications",
    "maintenance_site.webhooks",
    "maintenance_site.analytics",
    "maintenance_site.reports",
    "assets",
    "workorders",
    "inventory",
    "scheduling",
    "scenarios",
    "sla",
]

MIDDLEWARE = [
    "maintenance_site.ops.middleware.RequestMetricsMiddleware",  # first: times the whole chain
    "maintenance_site.ops.middleware.CorrelationIdMiddleware",
    "maintenance_site.ops.http_errors.UnsupportedMethodMiddleware",  # TRACE, CONNECT…: 405 on every route
    "django.middleware.security.SecurityMiddleware",
    "maintenance_site.security.csp.PathPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "maintenance_site.tenancy.middleware.ActiveOrganizationMiddleware",
    "maintenance_site.i18n.UserLanguageMiddleware",  # the person's language → Accept-Language → the organisation's
    "maintenance_site.tenancy.middleware.BackOfficeTimeZoneMiddleware",
    "scheduling.windows.middleware.MaintenanceModeMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "maintenance_site.security.logins.LoginLockoutMiddleware",  # last, as django-axes wants
]

ROOT_URLCONF = "maintenance_site.urls"
WSGI_APPLICATION = "maintenance_site.wsgi.application"
ASGI_APPLICATION = "maintenance_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "maintenance_site.tenancy.context_processors.active_organization",
                "scheduling.windows.context_processors.maintenance_mode",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
# DATABASE_URL (and DATABASE_REPLICA_URL) point at PgBouncer in transaction mode (README, "Scaling out"): a server
# connection belongs to a client for one transaction only, so nothing may outlive a transaction on it.
DATABASE_PGBOUNCER = env_bool("DATABASE_PGBOUNCER", False)
# A replica (streaming replication of the primary) for replica-safe reads: analytics, reports, exports
# (maintenance_site/db_routing.py). Unset: they read from the primary.
DATABASE_REPLICA_URL = env_url("DATABASE_REPLICA_URL", schemes=("postgres", "postgresql"))
DATABASE_ROUTERS = ["maintenance_site.db_routing.ReplicaRouter"]
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
    _postgres = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    if _postgres and env_bool("DATABASE_POOL", False):
        if DATABASE_PGBOUNCER:
            raise ImproperlyConfigured(
                "DATABASE_POOL and DATABASE_PGBOUNCER are both set: PgBouncer is the pool. Unset DATABASE_POOL "
                "where the processes connect through PgBouncer."
            )
        # The pool lives in web processes only: it does not survive a fork, so Celery's prefork workers
        # keep persistent connections with health checks instead.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # The pool checks a connection before handing it out only when it has been idle a few seconds (Django's
        # check would cost a round trip per request): maintenance_site.ops.db_pool.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
        }
    if _postgres and DATABASE_PGBOUNCER:
        # A server-side cursor (`.iterator()`) lives past the statement that opened it; in transaction mode the
        # next FETCH may reach another server connection. Django then fetches in chunks from a client cursor.
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        # psycopg prepares a statement run 5 times on a connection; PgBouncer (before 1.21) cannot follow it
        # to another server connection. Django's default client-side binding prepares nothing already: this
        # keeps it so if binding is ever switched.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
    if _postgres and DATABASE_REPLICA_URL:
        DATABASES["replica"] = {
            **dj_database_url.parse(
                DATABASE_REPLICA_URL,
                conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
                conn_health_checks=True,
            ),
            "DISABLE_SERVER_SIDE_CURSORS": DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", False),
            "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
            # A test run does not create a test database on the replica: its reads go to the primary's.
            "TEST": {"MIRROR": "default"},
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                # Without IMMEDIATE, concurrent web and worker writes fail with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, channel layer ------------------------------------------------------------------------
# How often an event socket re-joins its channel-layer groups (and looks in the database for anything a dropped
# message hid); the groups' expiry is 5 times this (below).
EVENTS_GROUP_REJOIN_SECONDS = env_float("EVENTS_GROUP_REJOIN_SECONDS", 60.0, minimum=1.0)
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # bounded waits: the websocket consumer and health checks call the cache from the event loop
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
    # Long-lived sockets (maintenance_site/events/layer.py): a read timeout above the 5 s blocking wait, health checks,
    # a bounded pool that waits for a free connection instead of failing (a thousand sockets closing at once), and
    # short retries. A socket re-joins its groups every EVENTS_GROUP_REJOIN_SECONDS; group_expiry is 5 times that, so
    # the channel of a socket that died without its group_discard leaves the groups within 5 minutes (default).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "maintenance_site.events.layer.LongLivedRedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "socket_timeout": 15,
                "socket_connect_timeout": 5,
                "health_check_interval": 30,
                "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 200, minimum=4),
                # a starved process (the bench's 1,000 sockets on a loaded machine) held all 100 connections for
                # over 10 s: "No connection available" closed sockets
                "pool_timeout": 30,
                "retries": 3,
                "capacity": 1000,
                "group_expiry": int(5 * EVENTS_GROUP_REJOIN_SECONDS),
            },
        }
    }
else:
    # Shared by every process of the embedded run (web and worker), unlike local memory.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            # the default 300 would evict shared counters (metrics, throttles) at random
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"  # kombu warns without a host
# Redis keeps a delivered, unacknowledged task aside and gives it to a worker again this many seconds later:
# how long the task of a killed worker waits (kombu's default is an hour). One value per transport, so a task
# running longer than it would be delivered twice: the short tasks acknowledge late (below) and the long
# scenario runner acknowledges early and relies on its run lease (scenarios/tasks.py).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=1)
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.1,
    }
CELERY_RESULT_BACKEND = "django-db"
# What a task prints (the console e-mail backend of the embedded run) is logged at INFO, not as WARNING
CELERY_WORKER_REDIRECTS_STDOUTS_LEVEL = "INFO"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = timedelta(days=env_int("CELERY_RESULT_DAYS", 7, minimum=1))
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Ticks, dispatch, deliveries, sweeps and generation are short and safe to run twice: acknowledged when done,
# so a worker that dies mid-task leaves it to be delivered again (a lost child at once, a killed worker after
# CELERY_VISIBILITY_TIMEOUT).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = False  # only the unit tests turn this on
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# How often the core periodic jobs run (seconds).
HEARTBEAT_INTERVAL = env_int("HEARTBEAT_INTERVAL", 30, minimum=1)

# --- Auth -----------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins are counted per (username, client address) in the database (axes' database handler: it keeps
# working while Redis is down); the pair is refused for LOGIN_COOLOFF_MINUTES after LOGIN_FAILURE_LIMIT failures.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not kept (an ever-growing table); failures are
AXES_CLIENT_IP_CALLABLE = "maintenance_site.security.addresses.client_ip"
AXES_LOCKOUT_CALLABLE = "maintenance_site.security.logins.lockout_response"
SILENCED_SYSTEM_CHECKS = ["axes.W002"]  # its middleware is there, as LoginLockoutMiddleware (a subclass)
# Reverse proxies in front of the web server that append the client's address to X-Forwarded-For; the client is
# that many entries from the right (0: the header is ignored). Throttles, lockouts and public reports use it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 30, minimum=60)  # phones stay logged in

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "maintenance_site.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "maintenance_site.api.permissions.RolePermission",
        "scheduling.windows.permissions.NotInMaintenanceMode",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "maintenance_site.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "maintenance_site.api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "maintenance_site.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "maintenance_site.api.filters.FilterBackend",
        "maintenance_site.api.filters.UpdatedAfterFilter",
        "maintenance_site.api.search.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "maintenance_site.api.throttling.OrganizationRateThrottle",
        "maintenance_site.api.throttling.PrincipalRateThrottle",
        "maintenance_site.api.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "organization": env_rate("THROTTLE_ORGANIZATION_RATE", "3000/min"),
        "principal": env_rate("THROTTLE_PRINCIPAL_RATE", "1200/min"),
        "anon": env_rate("THROTTLE_ANON_RATE", "60/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "maintenance_site.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "maintenance_site.api.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "PAGE_SIZE": 50,
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 200, minimum=1)
# Lists and admin change lists count exactly up to this many rows, when the planner's cost of reading them is at
# most EXACT_COUNT_COST; else they give PostgreSQL's estimate (and say so).
EXACT_COUNT_LIMIT = env_int("EXACT_COUNT_LIMIT", 10_000, minimum=0)
EXACT_COUNT_COST = env_int("EXACT_COUNT_COST", 10_000, minimum=0)
# The import's confirm step finds the uploaded file in the shared cache, whichever web process answers.
IMPORT_EXPORT_TMP_STORAGE_CLASS = "import_export.tmp_storages.CacheStorage"
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24, minimum=1)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "SIGNING_KEY": env_str("JWT_SECRET") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": True,
}
API_KEY_CUSTOM_HEADER = None  # keys arrive as "Authorization: Api-Key <key>"

SPECTACULAR_SETTINGS = {
    "TITLE": "Maintenance platform API",
    "DESCRIPTION": (
        "Work orders, assets, inventory, preventive maintenance, SLAs, maintenance windows and scenarios. "
        "Authenticate with `Authorization: Bearer <JWT>` or `Authorization: Api-Key <key>`; "
        "choose the organisation with `X-Organization: <slug>` when you belong to several."
    ),
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from the installed package, no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # OpenAPI 3.1: the event types are published as `webhooks` (schema.py), and the schemas are JSON Schema 2020-12
    # (`type: [..., "null"]`; a hand-written `nullable` is rewritten by schema.postprocess).
    "OAS_VERSION": "3.1.0",
    # Operations grouped by resource (`work-orders`, `webhooks`, …): the first path segment after /api/v1.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "maintenance_site.api.schema.postprocess",
    ],
    # Several models have a "status" or "kind": each choice set gets its own, stable component name.
    "ENUM_NAME_OVERRIDES": {
        "NotificationDeliveryStatusEnum": "maintenance_site.notifications.models.NotificationDelivery.Status",
        "WebhookDeliveryStatusEnum": "maintenance_site.webhooks.models.WebhookDelivery.Status",
        "LocationKindEnum": "assets.models.Location.Kind",
        "AssetCriticalityEnum": "assets.models.Asset.Criticality",
        "AssetStatusEnum": "assets.models.Asset.Status",
        "MeterKindEnum": "assets.models.Meter.Kind",
        "MeterReadingSourceEnum": "assets.models.MeterReading.Source",
        "ChecklistItemKindEnum": "workorders.models.ItemKind",
        "WorkOrderStatusEnum": "workorders.models.WorkOrder.Status",
        "WorkOrderSourceEnum": "workorders.models.WorkOrder.Source",
        "WorkRequestStatusEnum": "workorders.models.WorkRequest.Status",
        "StockLocationKindEnum": "inventory.models.StockLocation.Kind",
        "StockMovementKindEnum": "inventory.models.MovementKind",
        "ReservationStatusEnum": "inventory.models.Reservation.Status",
        "PurchaseOrderStatusEnum": "inventory.models.PurchaseOrder.Status",
        "PreventiveScheduleStatusEnum": "scheduling.preventive.models.PreventiveSchedule.Status",
        "PreventiveOccurrenceStatusEnum": "scheduling.preventive.models.PreventiveOccurrence.Status",
        "MaintenanceWindowStatusEnum": "scheduling.windows.models.MaintenanceWindow.Status",
        "ScenarioKindEnum": "scenarios.models.Scenario.Kind",
        "ScenarioRunStatusEnum": "scenarios.models.ScenarioRun.Status",
        "EscalationStepKindEnum": "sla.models.EscalationStep.Kind",
        "SLATargetEnum": "sla.models.Target",
        "ReportKindEnum": "maintenance_site.reports.models.KIND_CHOICES",
        "ReportFormatEnum": "maintenance_site.reports.models.Format",
        "ReportScheduleFormatEnum": "maintenance_site.reports.models.SCHEDULE_FORMATS",
        "GeneratedReportStatusEnum": "maintenance_site.reports.models.GeneratedReport.Status",
    },
}

# --- Internationalisation, static, media ----------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
# The languages the platform speaks (maintenance_site.i18n chooses one per person); named in their own language.
LANGUAGES = [("en-gb", "English"), ("es", "Español")]
# django.po and djangojs.po committed; .mo compiled from them (manage.py compiletranslations, Babel)
LOCALE_PATHS = [BASE_DIR / "maintenance_site" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date/time format everywhere ("Sat 5 Dec 2026, 19:04"; ISO YYYY-MM-DD in date inputs): maintenance_site.formats
FORMAT_MODULE_PATH = ["maintenance_site.locale_formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
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
WHITENOISE_USE_FINDERS = DEBUG
# Front-end libraries that no Python package ships come from the npm registry (README "Front-end dependencies"):
# package.json pins them, package-lock.json holds each tarball's integrity hash, `npm ci` (make install) fetches
# them into node_modules/; only their built files are served, under static/vendor/.
NODE_MODULES_DIR = Path(env_str("NODE_MODULES_DIR", str(BASE_DIR / "node_modules")))
NODE_STATIC = {  # static prefix: the package's folder of built files
    "vendor/barcode-detector": NODE_MODULES_DIR / "barcode-detector" / "dist" / "iife",
    "vendor/zxing-wasm": NODE_MODULES_DIR / "zxing-wasm" / "dist" / "reader",
}
STATICFILES_DIRS = [(prefix, str(folder)) for prefix, folder in NODE_STATIC.items() if folder.is_dir()]
# Uploaded files are never served from a public URL: views check permission and stream them.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# --- E-mail ---------------------------------------------------------------------------------------------
EMAIL_HOST = env_str("SMTP_HOST")
EMAIL_PORT = env_int("SMTP_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("SMTP_USER")
EMAIL_HOST_PASSWORD = env_str("SMTP_PASS")
EMAIL_USE_TLS = env_bool("SMTP_TLS", True)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "maintenance@localhost")

# --- Preventive maintenance ----------------------------------------------------------------------------
PREVENTIVE_GENERATION_INTERVAL = env_int("PREVENTIVE_GENERATION_INTERVAL", 60, minimum=10)  # seconds between ticks
PREVENTIVE_MISFIRE_GRACE = env_int("PREVENTIVE_MISFIRE_GRACE", 3600, minimum=60)  # later than this is a misfire
PREVENTIVE_GENERATION_CHUNK = env_int("PREVENTIVE_GENERATION_CHUNK", 5000, minimum=100)  # rows per transaction

SLA_MONITOR_INTERVAL = env_int("SLA_MONITOR_INTERVAL", 60, minimum=1)  # seconds between SLA monitor runs

# --- Maintenance windows ----------------------------------------------------------------------------------
MAINTENANCE_CHECK_INTERVAL = env_int("MAINTENANCE_CHECK_INTERVAL", 60, minimum=1)  # seconds between ticks
MAINTENANCE_MAX_HISTORY = env_int("MAINTENANCE_MAX_HISTORY", 1000, minimum=1)  # finished windows kept per org
MAINTENANCE_REMINDER_MINUTES = env_int("MAINTENANCE_REMINDER_MINUTES", 60, minimum=0)  # "starting soon" lead
MAINTENANCE_RECURRENCE_DAYS = env_int("MAINTENANCE_RECURRENCE_DAYS", 60, minimum=1)  # occurrences created ahead

# --- Maintenance scenarios (platform-wide, superusers only) ----------------------------------------------
DISCOVERY_INTERVAL = env_int("DISCOVERY_INTERVAL", 60, minimum=5)  # seconds between scans for service.json
SCENARIO_DISCOVERY_DIR = env_str("SCENARIO_DISCOVERY_DIR")  # folder scanned for external scenarios
SCENARIOS_RESET_ON_START = env_bool("SCENARIOS_RESET_ON_START", True)  # every scenario inactive at scheduler start
SCENARIOS_MAX_HEAVY = env_int("SCENARIOS_MAX_HEAVY", 3, minimum=0)
ENABLE_CALENDAR = env_bool("ENABLE_CALENDAR", True)  # seed 001's name: preset windows (cron schedules) open
SCENARIOS_LOAD_CEILING_CPU = env_float("SCENARIOS_LOAD_CEILING_CPU", 85.0, minimum=0.0)  # percent
SCENARIOS_LOAD_CEILING_MEMORY = env_float("SCENARIOS_LOAD_CEILING_MEMORY", 90.0, minimum=0.0)  # percent
# The board's resource charts: CPU, memory, disk and load sampled by a core job every this many seconds (one row
# per host and slot), kept this many hours.
RESOURCE_SAMPLE_INTERVAL = env_int("RESOURCE_SAMPLE_INTERVAL", 60, minimum=5)
RESOURCE_SAMPLE_RETENTION_HOURS = env_int("RESOURCE_SAMPLE_RETENTION_HOURS", 168, minimum=1)
DEFAULT_TIMEOUT = env_int("DEFAULT_TIMEOUT", 0, minimum=0)  # minutes until auto-deactivation; 0: none
BACKUP_DIR = env_str("BACKUP_DIR") or str(VAR_DIR / "backups")  # backup-manager's folder
BACKUP_RETENTION = env_int("BACKUP_RETENTION", 7, minimum=1)  # backups kept
LOG_FILE = env_str("LOG_FILE")  # file logging (rotated by the log-rotation scenario) when set
LOG_ROTATION_KEEP = env_int("LOG_ROTATION_KEEP", 7, minimum=0)  # rotated log files kept; 0: all
# log-cleanup: notifications whose deliveries are done, finished scenario runs, the scenario activity log (days)
NOTIFICATION_RETENTION_DAYS = env_int("NOTIFICATION_RETENTION_DAYS", 180, minimum=1)
SCENARIO_RUN_RETENTION_DAYS = env_int("SCENARIO_RUN_RETENTION_DAYS", 90, minimum=1)
SCENARIO_ACTIVITY_RETENTION_DAYS = env_int("SCENARIO_ACTIVITY_RETENTION_DAYS", 365, minimum=1)
STALE_WORK_ORDER_DAYS = env_int("STALE_WORK_ORDER_DAYS", 14, minimum=1)  # stale-work-order-escalation
# security-audit: API keys unused this long or older than this, members not logged in this long (days)
API_KEY_UNUSED_DAYS = env_int("API_KEY_UNUSED_DAYS", 90, minimum=1)
API_KEY_MAX_AGE_DAYS = env_int("API_KEY_MAX_AGE_DAYS", 365, minimum=1)
MEMBER_INACTIVE_DAYS = env_int("MEMBER_INACTIVE_DAYS", 90, minimum=1)
SLOW_QUERY_MS = env_float("SLOW_QUERY_MS", 200.0, minimum=0.0)  # query-analyzer: mean time reported above this
# performance-monitor: a sample this many times worse than the median of the previous ones is a regression
PERFORMANCE_REGRESSION_FACTOR = env_float("PERFORMANCE_REGRESSION_FACTOR", 2.0, minimum=1.0)
SCENARIO_TICK_INTERVAL = env_int("SCENARIO_TICK_INTERVAL", 15, minimum=1)
# A running run with no sign of life for this long belongs to a dead worker: it is marked failed (minutes).
SCENARIO_RUN_LEASE_MINUTES = env_int("SCENARIO_RUN_LEASE_MINUTES", 60, minimum=1)
EXTERNAL_SCENARIO_TIMEOUT = env_float("EXTERNAL_SCENARIO_TIMEOUT", 5.0, minimum=0.1)
SCENARIO_PROBE_URL = env_url("SCENARIO_PROBE_URL", schemes=("http", "https"))  # performance-monitor's probe
SCENARIO_MAX_CONCURRENT = env_int("SCENARIO_MAX_CONCURRENT", 2, minimum=1)  # runs at once
SCENARIO_FAILURE_ALERT_THRESHOLD = env_int("SCENARIO_FAILURE_ALERT_THRESHOLD", 3, minimum=1)  # failures in a row
SCENARIO_RETRY_BACKOFF_SECONDS = env_int("SCENARIO_RETRY_BACKOFF_SECONDS", 60, minimum=1)  # doubled per attempt
SCENARIO_ROLLBACK_MAX = env_int("SCENARIO_ROLLBACK_MAX", 20, minimum=0)  # rollback points kept per task
SCENARIO_ROLLBACK_DAYS = env_int("SCENARIO_ROLLBACK_DAYS", 30, minimum=1)  # age limit of rollback points
# Workspace runs: file backups before each run (rollback points), their size limit (oldest evicted first), and
# the timeout of a task created without one (minutes).
SCENARIO_BACKUP_ROOT = env_str("SCENARIO_BACKUP_ROOT") or str(VAR_DIR / "rollbacks")
SCENARIO_MAX_BACKUP_SIZE_MB = env_int("SCENARIO_MAX_BACKUP_SIZE_MB", 1000, minimum=1)
SCENARIO_TASK_TIMEOUT_MINUTES = env_int("SCENARIO_TASK_TIMEOUT_MINUTES", 30, minimum=1)
# Priority score weights overriding scenarios.priority.WEIGHTS (impact 0.4, urgency 0.3, effort 0.2,
# success_rate 0.1), e.g. {"impact": 0.6}.
_PRIORITY_TERMS = ("impact", "urgency", "effort", "success_rate")


def _priority_weights(raw: str) -> dict:
    weights = json.loads(raw)
    if not isinstance(weights, dict):
        raise ValueError("not an object")
    unknown = sorted(set(weights) - set(_PRIORITY_TERMS))
    if unknown:
        raise ValueError(f"unknown terms {unknown}; use {list(_PRIORITY_TERMS)}")
    return {term: float(weight) for term, weight in weights.items()}


SCENARIO_PRIORITY_WEIGHTS = env_parsed("SCENARIO_PRIORITY_WEIGHTS", {}, _priority_weights, "a JSON object of weights")

# --- Notification channels; a channel is enabled when its URL is set -----------------------------------
SLACK_WEBHOOK_URL = env_url("SLACK_WEBHOOK_URL", schemes=("http", "https"))
SMS_API_URL = env_url("SMS_API_URL", schemes=("http", "https"))
SMS_API_KEY = env_str("SMS_API_KEY")
PUSH_SERVICE_URL = env_url("PUSH_SERVICE_URL", schemes=("http", "https"))
PUSH_API_KEY = env_str("PUSH_API_KEY")
# The platform's address as people reach it: e-mails carry absolute links (maintenance_site.notifications.senders)
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
NOTIFICATION_HTTP_TIMEOUT = env_float("NOTIFICATION_HTTP_TIMEOUT", 5.0, minimum=0.1)
# Web Push (the `webpush` channel) to the technicians' phones. The VAPID key pair signs what we send; without
# WEBPUSH_VAPID_PRIVATE_KEY (a PEM, or its path) a key generated once into VAR_DIR, like SECRET_KEY: several
# machines need one key (a subscription is bound to the public key it was made with).
WEBPUSH_VAPID_PRIVATE_KEY_FILE = VAR_DIR / "vapid_private_key.pem"
WEBPUSH_VAPID_PRIVATE_KEY = env_str("WEBPUSH_VAPID_PRIVATE_KEY").replace("\\n", "\n")
WEBPUSH_VAPID_SUBJECT = env_str("WEBPUSH_VAPID_SUBJECT", "mailto:maintenance@localhost")
WEBPUSH_TTL_SECONDS = env_int("WEBPUSH_TTL_SECONDS", 12 * 3600, minimum=0)
# Offline work: a queued step older than this (days) or dated beyond the clock skew (seconds) is refused.
OFFLINE_MAX_AGE_DAYS = env_int("OFFLINE_MAX_AGE", 7, minimum=1)
OFFLINE_MAX_SKEW_SECONDS = env_int("OFFLINE_MAX_SKEW_SECONDS", 300, minimum=0)
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 5, minimum=1)

# --- Webhooks (Standard Webhooks; README "Webhooks") ------------------------------------------------------
# Fernet keys (comma-separated; the first encrypts, all decrypt) for the stored whsec_ secrets; unset: derived
# from SECRET_KEY (then changing SECRET_KEY makes the secrets unreadable: set this in production).
WEBHOOK_ENCRYPTION_KEYS = env_list("WEBHOOK_ENCRYPTION_KEYS")
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0, minimum=0.1)  # seconds per attempt
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 256 * 1024, minimum=1024)
WEBHOOK_MAX_IN_FLIGHT = env_int("WEBHOOK_MAX_IN_FLIGHT", 100, minimum=1)  # per subscription, claimed and unanswered
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 64, minimum=1)  # POSTs on their way at once per job
WEBHOOK_CLAIM_BATCH = env_int("WEBHOOK_CLAIM_BATCH", 500, minimum=1)  # deliveries a job holds claimed at once
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 5.0, minimum=0.0)  # doubled per attempt
WEBHOOK_RETRY_HOURS = env_float("WEBHOOK_RETRY_HOURS", 24.0, minimum=0.0)  # a delivery is retried this long
WEBHOOK_DISABLE_AFTER_DAYS = env_float("WEBHOOK_DISABLE_AFTER_DAYS", 5.0, minimum=0.0)  # failing with no success
WEBHOOK_LOG_DAYS = env_int("WEBHOOK_LOG_DAYS", 30, minimum=1)
WEBHOOK_SECRET_GRACE_HOURS = env_float("WEBHOOK_SECRET_GRACE_HOURS", 24.0, minimum=0.0)  # both secrets sign
WEBHOOK_CLAIM_LEASE_SECONDS = env_int("WEBHOOK_CLAIM_LEASE_SECONDS", 60, minimum=1)  # a dead worker's claims
WEBHOOK_SWEEP_INTERVAL = env_int("WEBHOOK_SWEEP_INTERVAL", 10, minimum=1)
WEBHOOK_JOB_SECONDS = env_float("WEBHOOK_JOB_SECONDS", 50.0, minimum=1.0)  # one job's sending time
# Targets on loopback/private/link-local addresses (on-premises receivers; the test suite's local server).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)

# --- Reports (issue 22; README "Reports") ------------------------------------------------------------------
# Daily rollups of the KPI sums (maintenance_site.analytics.rollups): organisation-wide figures read them; the beat
# task refreshes them this often (seconds). Off: every figure is computed live (as on SQLite).
ANALYTICS_ROLLUPS = env_bool("ANALYTICS_ROLLUPS", True)
ANALYTICS_ROLLUP_INTERVAL = env_int("ANALYTICS_ROLLUP_INTERVAL", 300, minimum=10)
REPORTS_RETENTION_DAYS = env_int("REPORTS_RETENTION_DAYS", 365, minimum=1)  # the archive keeps a report this long
REPORTS_SEND_LEASE_SECONDS = env_int("REPORTS_SEND_LEASE_SECONDS", 900, minimum=60)  # a dead sender's claim
REPORTS_SEND_ATTEMPTS = env_int("REPORTS_SEND_ATTEMPTS", 5, minimum=1)  # a scheduled send is tried this often
REPORTS_MAX_ATTACHMENT_BYTES = env_int("REPORTS_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024, minimum=0)  # else a link

# --- Security (production values when DEBUG is off, unless the site is plain HTTP on loopback) ------------
_BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
_HARDENED = not DEBUG and (_BEHIND_TLS_PROXY or not _LOOPBACK_ONLY)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HARDENED)
SECURE_REDIRECT_EXEMPT = [r"^health", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _HARDENED else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _HARDENED)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _HARDENED)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _HARDENED)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _HARDENED)
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4.x): strict on every page; CONTENT_SECURITY_POLICY_PATHS adds sources for
# one path's pages only. README "Security headers" says why each addition is there.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],  # the event websocket too: CSP 3 lets 'self' match ws(s) on our own host
        "worker-src": [SELF],
        "manifest-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
CONTENT_SECURITY_POLICY_PATHS = {
    # The back office's theme (django-unfold): Alpine.js's standard build evaluates its x-data/x-bind expressions
    # with `new Function` ('unsafe-eval'); the theme writes its colour variables and a change-list rule as <style>
    # blocks and style="…" attributes (style-src-elem/-attr; style-src keeps its nonce for everything else).
    # django-import-export's export page and simple-history's history page write style="…" too. Still no inline
    # script: every script is a file.
    "/admin/": {
        "script-src": [UNSAFE_EVAL],
        "style-src-elem": [SELF, UNSAFE_INLINE],
        "style-src-attr": [UNSAFE_INLINE],
    },
    # the technician's view: Scan's fallback decoder is ZXing compiled to WebAssembly (static/vendor/zxing-wasm),
    # which needs 'wasm-unsafe-eval' to be compiled; it allows WebAssembly only, never eval() of JavaScript
    "/t/": {"script-src": ["'wasm-unsafe-eval'"]},
    # the one sign-in page (LOGIN_URL) is drawn by the same theme
    "/accounts/": {
        "script-src": [UNSAFE_EVAL],
        "style-src-elem": [SELF, UNSAFE_INLINE],
        "style-src-attr": [UNSAFE_INLINE],
    },
}

# --- The back office's theme (django-unfold; README "Back office") --------------------------------------------
UNFOLD = {
    "SITE_TITLE": "Maintenance",
    "SITE_HEADER": "Maintenance back office",
    "SITE_SYMBOL": "build",
    # "View site": the technician's view (the root URL would bring staff back here)
    "SITE_URL": "/t/",
    "SITE_DROPDOWN": [
        {"icon": "smartphone", "title": "Technician view", "link": "/t/"},
        {"icon": "api", "title": "API documentation", "link": "/api/docs/"},
    ],
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": True,
    "DASHBOARD_CALLBACK": "maintenance_site.dashboard.dashboard_callback",
    "COLORS": {
        "primary": {  # Tailwind's blue, instead of the theme's purple
            "50": "oklch(97% .014 254.604)",
            "100": "oklch(93.2% .032 255.585)",
            "200": "oklch(88.2% .059 254.128)",
            "300": "oklch(80.9% .105 251.813)",
            "400": "oklch(70.7% .165 254.624)",
            "500": "oklch(62.3% .214 259.815)",
            "600": "oklch(54.6% .245 262.881)",
            "700": "oklch(48.8% .243 264.376)",
            "800": "oklch(42.4% .199 265.638)",
            "900": "oklch(37.9% .146 265.522)",
            "950": "oklch(28.2% .091 267.935)",
        },
    },
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        # by job, filtered by role (maintenance_site.tenancy.navigation)
        "navigation": "maintenance_site.tenancy.navigation.sidebar",
    },
}

# --- Logging --------------------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
# JSON for log collectors in a deployment; readable lines in a terminal (DEBUG, or the embedded run).
LOG_FORMAT = env_choice("LOG_FORMAT", "text" if DEBUG or not DATABASE_URL else "json", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "maintenance_site.ops.logging.CorrelationIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
        "json": {"()": "maintenance_site.ops.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["correlation"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

if LOG_FILE:  # append mode, so the log-rotation scenario's copy-and-truncate is safe
    LOGGING["handlers"]["file"] = {
        "class": "logging.FileHandler",
        "filename": LOG_FILE,
        "formatter": LOG_FORMAT,
        "filters": ["correlation"],
    }
    LOGGING["root"]["handlers"].append("file")

# --- Platform behaviour ---------------------------------------------------------------------------------
# Public problem reports (no login): submissions per client address and per organisation, "N/seconds".
PUBLIC_REPORT_RATE = env_str("PUBLIC_REPORT_RATE", "5/600")
PUBLIC_REPORT_ORGANIZATION_RATE = env_str("PUBLIC_REPORT_ORGANIZATION_RATE", "60/600")
DEFAULT_ORGANIZATION_TIME_ZONE = env_str("DEFAULT_ORGANIZATION_TIME_ZONE", "UTC")
EVENTS_RETENTION_DAYS = env_int("EVENTS_RETENTION_DAYS", 30, minimum=1)
# IoT telemetry (assets.telemetry): a point this far in the server's future is refused (seconds); a late point up to
# this much older than its series' newest analysed point is re-analysed (seconds); at most this many points or
# buckets in one response of /api/v1/iot/devices/{id}/metrics; monthly partitions created this many months ahead.
TELEMETRY_MAX_CLOCK_SKEW = env_int("TELEMETRY_MAX_CLOCK_SKEW", 300, minimum=0)
TELEMETRY_REANALYSE_WINDOW = env_int("TELEMETRY_REANALYSE_WINDOW", 24 * 3600, minimum=0)
TELEMETRY_MAX_POINTS_PER_RESPONSE = env_int("TELEMETRY_MAX_POINTS_PER_RESPONSE", 5000, minimum=10)
TELEMETRY_PARTITIONS_AHEAD = env_int("TELEMETRY_PARTITIONS_AHEAD", 3, minimum=1)
EVENTS_SWEEP_INTERVAL = env_int("EVENTS_SWEEP_INTERVAL", 15, minimum=1)
# Websocket: how often a socket polls the database in embedded mode (in-memory layer). Permission: a membership
# changed through the ORM (services, admin) closes that user's sockets at once (a push to the user's group); as a
# safety net each web process re-checks all its sockets in one query every EVENTS_PERMISSION_RECHECK_SECONDS, the
# bound for a change made behind the ORM's back. Nothing is checked per event.
EVENTS_POLL_INTERVAL = env_float("EVENTS_POLL_INTERVAL", 1.0, minimum=0.1)
EVENTS_PERMISSION_RECHECK_SECONDS = env_float("EVENTS_PERMISSION_RECHECK_SECONDS", 30.0, minimum=0.0)
# Under daphne, the event sockets' frames are encoded for the wire once per process and written to each socket
# at once (events/consumers.py, _write_direct); false sends each one through daphne's ASGI send instead.
EVENTS_DAPHNE_DIRECT_WRITES = env_bool("EVENTS_DAPHNE_DIRECT_WRITES", True)
# Socket.IO (/socket.io/, seed 004 clients): the Redis pub/sub channel its web processes share rooms through.
SOCKETIO_REDIS_CHANNEL = env_str("SOCKETIO_REDIS_CHANNEL", "maintenance-socketio")
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Business metrics (maintenance_site/ops/business_metrics.py), with the outbox and heartbeat readings: computed at
# most once per this many seconds (the scrape interval); by organisation (slug label) only when
# METRICS_PER_ORGANIZATION is on.
METRICS_CACHE_SECONDS = env_int("METRICS_CACHE_SECONDS", 15, minimum=0)
METRICS_PER_ORGANIZATION = env_bool(
    "METRICS_PER_ORGANIZATION", False
)  # when set, /metrics wants "Authorization: Bearer <token>"
HEALTH_BEAT_STALE_SECONDS = env_float("HEALTH_BEAT_STALE_SECONDS", 180.0, minimum=1.0)

# Asset health (workorders.health): an asset's score is recomputed at most once per HEALTH_RECOMPUTE_INTERVAL
# seconds when its inputs changed, and at least every HEALTH_MAX_AGE seconds (time-based terms); failures and
# downtime count over HEALTH_WINDOW_DAYS; the health job runs every HEALTH_JOB_INTERVAL seconds and then the
# predictive check; a telemetry series silent this long fails the stale-data diagnostic (seconds).
HEALTH_RECOMPUTE_INTERVAL = env_int("HEALTH_RECOMPUTE_INTERVAL", 300, minimum=1)
HEALTH_MAX_AGE = env_int("HEALTH_MAX_AGE", 3600, minimum=60)
HEALTH_WINDOW_DAYS = env_int("HEALTH_WINDOW_DAYS", 90, minimum=1)
HEALTH_JOB_INTERVAL = env_int("HEALTH_JOB_INTERVAL", 60, minimum=1)
HEALTH_STALE_SECONDS = env_int("HEALTH_STALE_SECONDS", 3600, minimum=60)
