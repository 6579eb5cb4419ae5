"""Settings of the web and worker processes that tests/ops/test_scale_out.py starts: the suite's settings (the same
cache and channel-layer namespace as the test, inherited through the environment), with the Celery queue of the
test's own (SCALE_OUT_QUEUE: what the web processes send to and the workers consume), and kombu looking for the
tasks of a killed worker every second."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import CELERY_BROKER_TRANSPORT_OPTIONS

CELERY_TASK_DEFAULT_QUEUE = os.environ["SCALE_OUT_QUEUE"]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
LOGGING = {  # the workers' "Task … received" lines: the test reads which worker took a task
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
