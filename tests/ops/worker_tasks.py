"""A task and a scenario for the worker-death tests, loaded by the workers they start (tests/ops/worker_settings.py).
Both write what happens to files in WORKER_DEATH_DIR, which the test reads.

- `hold(name)`: a short task that, on its first delivery, blocks (until the test kills the worker); delivered
  again, it finishes at once. Its acknowledgement settings are the site's defaults (not set here).
- `slow_run`: a scenario lasting SLOW_RUN_SECONDS (longer than the test's visibility timeout), checking in at
  every checkpoint like a real run."""

import os
import time
from pathlib import Path

from celery import shared_task

from scenarios import registry
from scenarios.models import Category
from scenarios.registry import RunContext, RunResult

SLOW_RUN_KEY = "test-slow-run"
SLOW_RUN_SECONDS = 10


def _note(name: str, line: str) -> list[str]:
    """Append `line` to WORKER_DEATH_DIR/name; return the file's lines before it."""
    path = Path(os.environ["WORKER_DEATH_DIR"]) / name
    before = path.read_text().splitlines() if path.exists() else []
    with open(path, "a") as handle:
        handle.write(line + "\n")
    return before


@shared_task(name="tests.ops.worker_tasks.hold", ignore_result=True)
def hold(name: str) -> None:
    if _note(name, f"start {os.getpid()}") == []:  # first delivery: wait to be killed
        time.sleep(600)
    _note(name, "end")


def slow_run(context: RunContext) -> RunResult:
    """Stands for a long scenario run."""
    _note("slow-run", f"start {os.getpid()}")
    deadline = time.monotonic() + SLOW_RUN_SECONDS
    while time.monotonic() < deadline:
        context.checkpoint()
        time.sleep(0.2)
    _note("slow-run", "end")
    return RunResult("slow run done")


def register() -> None:
    registry.scenario(key=SLOW_RUN_KEY, category=Category.OTHER, default_interval=3600)(slow_run)


if os.environ.get("WORKER_DEATH_DIR"):  # in the test's workers only; the test registers it for itself
    register()
