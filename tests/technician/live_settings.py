"""Settings of the ASGI server (daphne) that the browser tests start in a subprocess: the test settings on
the browser tests' own database (named in TECHNICIAN_LIVE_DATABASE), with Celery tasks run in-process (the
event dispatcher numbers and delivers right after each commit) and static files served by WhiteNoise."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

_database = os.environ.get("TECHNICIAN_LIVE_DATABASE")
if not _database:  # never fall back to the development database
    raise RuntimeError("TECHNICIAN_LIVE_DATABASE is not set: these settings are for the browser tests only.")
DATABASES = {"default": {**DATABASES["default"], **json.loads(_database)}}

DEBUG = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
EVENTS_POLL_INTERVAL = 0.2
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
