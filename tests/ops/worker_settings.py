"""Settings of the Celery workers that tests/ops/test_worker_death.py starts and kills: the site's settings (the
visibility timeout comes from CELERY_VISIBILITY_TIMEOUT, shortened by the test), with kombu sweeping for
abandoned tasks every second instead of every ~100 s, and the test's own tasks and scenario loaded."""

from maintenance_site.settings import *  # noqa: F403
from maintenance_site.settings import CELERY_BROKER_TRANSPORT_OPTIONS

CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
CELERY_IMPORTS = ["tests.ops.worker_tasks"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
