"""Run the whole platform in one terminal: the ASGI web server (HTTP and websockets) and a Celery
worker with embedded beat. Ctrl-C stops the worker with a warm shutdown, so a task that is running
finishes instead of being killed mid-way."""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from maintenance_site import progress

SHUTDOWN_GRACE_SECONDS = 30
READY_WAIT_SECONDS = 90  # how long the banner waits for the web server and the worker's first lines
DEMO_LOGINS = [
    ("admin", "superuser: every organisation, every page"),
    ("acme-manager", "manager: the dashboard, everything in Acme"),
    ("acme-planner", "planner: work, assets, preventive schedules"),
    ("acme-storekeeper", "storekeeper: parts and stock"),
    ("acme-technician", "technician: the phone view at /t/"),
]


def default_port() -> int:
    """The port seed 001's variables name (MAINTENANCE_PORT, then SERVICE_PORT), else 8000."""
    for name in ("MAINTENANCE_PORT", "SERVICE_PORT"):
        raw = os.environ.get(name, "").strip()
        if raw:
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise CommandError(f"{name}={raw!r} is not a port (1 to 65535).", returncode=2)
            return int(raw)
    return 8000


class Command(BaseCommand):
    help = "Migrate, load demo data and run web + worker + beat together (the embedded run)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port",
            type=int,
            default=default_port(),
            help="default: MAINTENANCE_PORT or SERVICE_PORT (seed 001's names), else 8000",
        )
        parser.add_argument("--no-setup", action="store_true", help="skip migrate, collectstatic and seed_demo")
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")

    def handle(self, host, port, no_setup, concurrency, **options):
        if not no_setup:
            # the first start's slow part, with a bar per step (maintenance_site.progress)
            with progress.bars() as bars:
                with bars.step("Preparing the database (migrate)"):
                    call_command("migrate", interactive=False, verbosity=0)
                with bars.step("Collecting static files"):
                    call_command("collectstatic", interactive=False, verbosity=0)
                with bars.step("Loading the demo data"):
                    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115 (the logins come last)
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
        # PLATFORM_STARTED_AT: /health/ready says "starting" (not "beat down") while beat has not yet reported in
        # the first minute (maintenance_site.ops.views.readiness)
        environment = {**os.environ, "PLATFORM_STARTED_AT": str(time.time())}
        processes = {
            name: subprocess.Popen(cmd, start_new_session=True, env=environment)  # noqa: S603
            for name, cmd in commands.items()
        }
        url = f"http://{host}:{port}"
        self.wait_until_answering(url, processes)
        self.print_banner(url)
        self.reprint_on_enter(url)
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

    def wait_until_answering(self, url: str, processes: dict) -> None:
        """Until the web server answers and the worker's start-up lines have passed (so the banner is last)."""
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while time.monotonic() < deadline and all(process.poll() is None for process in processes.values()):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):  # noqa: S310 (our own server)
                    break
            except OSError:
                time.sleep(0.5)
        time.sleep(3)  # the worker's and beat's banners

    def print_banner(self, url: str) -> None:
        lines = [
            "",
            f"The platform runs at {url}/   (sign in there: each role lands on its own page)",
            f"  back office {url}/admin/   technician view {url}/t/   API docs {url}/api/docs/",
            "  Demo logins (password: demo):",
            *[f"    {username:<18} {what}" for username, what in DEMO_LOGINS],
            "  Press Enter to show this again; Ctrl-C stops everything.",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))

    def reprint_on_enter(self, url: str) -> None:
        if not sys.stdin or not sys.stdin.isatty():
            return

        def listen():
            for _ in sys.stdin:
                self.print_banner(url)

        threading.Thread(target=listen, daemon=True).start()
