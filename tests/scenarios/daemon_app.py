"""A Celery application with nothing to do, for the daemon test (`maintenance start --daemon --app ...`): an
in-memory broker and beat's file scheduler, so the detached worker touches neither Redis nor the database."""

from celery import Celery

app = Celery("daemon-test", broker="memory://")
app.conf.beat_schedule = {}
app.conf.worker_hijack_root_logger = False
