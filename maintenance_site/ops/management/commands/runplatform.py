"""Run the whole platform in one terminal: the ASGI web server (HTTP and websockets) and a Celery
worker with embedded beat. Ctrl-C stops the worker with a warm shutdown, so a task that is running
finishes instead of being killed mid-way."""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

SHUTDOWN_GRACE_SECONDS = 30


class Command(BaseCommand):
    help = "Migrate, load demo data and run web + worker + beat together (the embedded run)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-setup", action="store_true", help="skip migrate, collectstatic and seed_demo")
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")

    def handle(self, host, port, no_setup, concurrency, **options):
        if not no_setup:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            call_command("seed_demo")
        # Before the worker's embedded beat starts, even with --no-setup: every scenario starts inactive.
        call_command("maintenance", "scheduler-start")
        python = sys.executable
        commands = {
            # daphne, answering over-long request lines with a 414 (maintenance_site/ops/webserver.py)
            "web": [
                python,
                "-m",
                "maintenance_site.ops.webserver",
                "-b",
                host,
                "-p",
                str(port),
                "maintenance_site.asgi:application",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "maintenance_site",
                "worker",
                "-B",
                "--scheduler",
                settings.CELERY_BEAT_SCHEDULER,
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
            ],
        }
        # Own sessions: the terminal's Ctrl-C reaches only this process, which then stops the children
        # in order (a launcher that signals whole process groups kills prefork children mid-task).
        processes = {name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands.items()}  # noqa: S603
        url = f"http://{host}:{port}"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nThe platform runs at {url}/  (admin {url}/admin/, API docs {url}/api/docs/)\n"
                "Log in as acme-manager / demo (more logins above). Ctrl-C stops everything.\n"
            )
        )
        stopping = {"flag": False}

        def request_stop(signum, frame):
            stopping["flag"] = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping["flag"]:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"The {name} process stopped (exit {process.returncode}); stopping the rest.")
                    exit_code = process.returncode or 1
                    stopping["flag"] = True
            time.sleep(0.5)
        self.stdout.write("Stopping: the worker finishes its running tasks first (warm shutdown)…")
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        if exit_code:
            sys.exit(exit_code)
