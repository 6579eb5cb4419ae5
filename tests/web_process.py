"""The platform's web process started by a test: `maintenance_site.asgi` served on 127.0.0.1 in a subprocess."""

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_SERVER = [sys.executable, "-m", "maintenance_site.ops.webserver"]  # daphne as docker-compose.yml runs it
DAPHNE = [sys.executable, "-m", "daphne"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """The DATABASE_URL of a Django connection's settings (the test database), for a server started apart."""
    credentials = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else "")
    return f"postgres://{credentials}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


@contextlib.contextmanager
def web_process(
    env: dict,
    log_path: Path,
    *,
    command=COMPOSE_SERVER,
    port: int | None = None,
    timeout: float = 90,
    ready_path: str = "/health",
):
    """Serve the platform with `command` and `env` (its output in `log_path`); yields the port once `ready_path`
    answers 200, and stops the process after (terminate, then kill after 15 s). A process that exits, or is not ready
    within `timeout` seconds, fails the test with its output."""
    port = port or free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own server)
            [*command, "-b", "127.0.0.1", "-p", str(port), "maintenance_site.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=5) as answer:  # noqa: S310
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
                time.sleep(0.2)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
