"""The registry of internal scenarios: functions decorated with `@scenario(...)`.

    @scenario(key="log-cleanup", category=Category.HOUSEKEEPING, default_interval=3600)
    def log_cleanup(context: RunContext) -> RunResult:
        \"\"\"Deletes events, notifications, run records and activity past their retention.\"\"\"
        ...
        return RunResult(f"deleted {n} rows", changed=n)

The docstring's first paragraph is the scenario's description. `sync_registry()` (scenarios.sync)
copies the registry into Scenario rows. A scenario's function does real work, calls
`context.checkpoint()` between steps (that is where a cancel request stops it) and returns a RunResult.
"""

import inspect
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from scenarios.choices import KEY_PATTERN, Category, Weight

logger = logging.getLogger(__name__)


class RunCancelled(Exception):
    """Raised by `RunContext.checkpoint()` when the run was asked to stop (stop-all, cancel)."""


class RunTimedOut(RunCancelled):
    """Raised by `RunContext.checkpoint()` when the run passed its deadline (the task's timeout)."""


Cancelled = RunCancelled


@dataclass
class RunResult:
    """What a scenario's run produced.

    `summary`: one line for the board. `ok=False`: the run failed (the summary says why). `skipped`:
    nothing to do, or the job is unavailable here (the summary says why, e.g. "unavailable: …").
    `data`: the details (per-organisation results under "organizations"). `changed`: records changed or
    deleted, files written.
    """

    summary: str
    ok: bool = True
    skipped: bool = False
    data: dict = field(default_factory=dict)
    changed: int = 0

    @classmethod
    def unavailable(cls, why: str, **data) -> "RunResult":
        return cls(f"unavailable: {why}", skipped=True, data={"unavailable": why, **data})

    @classmethod
    def nothing_to_do(cls, why: str, **data) -> "RunResult":
        return cls(why, skipped=True, data=data)


@dataclass
class RunContext:
    """What a scenario's function gets: the run (None when called directly), the time it started, a
    log, and the cooperative cancel check."""

    scenario_key: str
    now: datetime
    run_id: int | None = None
    config: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    # Called by checkpoint(): raises RunCancelled when a cancel was requested, records a heartbeat.
    _check: Callable[[], None] | None = None
    _last_check: float = 0.0
    check_every_seconds: float = 1.0
    # A workspace executor's workspace (its resolved path), and the run's deadline (time.monotonic()).
    workspace: Path | None = None
    deadline: float | None = None

    def seconds_left(self, default: float = 3600.0) -> float:
        """Time left before the run's deadline (`default` when it has none): a subprocess's timeout."""
        if self.deadline is None:
            return default
        return max(0.1, self.deadline - time.monotonic())

    def log(self, message: str) -> None:
        self.lines.append(message)
        logger.info("scenario %s: %s", self.scenario_key, message)

    def checkpoint(self, *, force: bool = False) -> None:
        """Stop here if the run was cancelled (raises RunCancelled); cheap to call often."""
        if self._check is None:
            return
        now = time.monotonic()
        if force or now - self._last_check >= self.check_every_seconds:
            self._last_check = now
            self._check()


@dataclass(frozen=True)
class Definition:
    key: str
    name: str
    description: str
    category: str
    weight: str
    conflicts: tuple[str, ...]
    default_interval: int | None
    default_cron: str
    tags: tuple[str, ...]
    func: Callable[[RunContext], RunResult]
    # {"key": type or (types,)}, keys ending in "?" optional; e.g. {"days": int, "paths?": list}.
    schema: dict = field(default_factory=dict)
    # False for work that cannot be undone (vacuum, backup, pruning): its runs offer no rollback point.
    reversible: bool = True
    # A function tasks run (`create-task`), not a scenario of its own: the registry sync creates no row for it.
    template: bool = False
    # Runs against the task's workspace (context.workspace); a task without one is refused.
    needs_workspace: bool = False
    # (workspace root, config) -> the workspace files (relative paths) a run may change, backed up before it
    # (scenarios.backups); None: the run changes no file.
    touches: Callable[[Path, dict], list[str] | None] | None = None


_REGISTRY: dict[str, Definition] = {}


def _description(func) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def scenario(
    *,
    key: str,
    category: str,
    name: str = "",
    weight: str = Weight.LIGHT,
    conflicts: list[str] | tuple[str, ...] = (),
    default_interval: int | None = None,
    default_cron: str = "",
    tags: list[str] | tuple[str, ...] = (),
    schema: dict | None = None,
    reversible: bool = True,
    template: bool = False,
    needs_workspace: bool = False,
    touches: Callable[[Path, dict], list[str] | None] | None = None,
):
    """Register the decorated `run(context) -> RunResult` function as the internal scenario `key`."""
    if not re.match(KEY_PATTERN, key):
        raise ValueError(f"Scenario key {key!r} must be lower-case letters, digits and hyphens.")
    if category not in Category.values:
        raise ValueError(f"Scenario {key}: category {category!r} is not one of {Category.values}.")
    if weight not in Weight.values:
        raise ValueError(f"Scenario {key}: weight {weight!r} is not one of {Weight.values}.")
    if bool(default_interval) == bool(default_cron):
        raise ValueError(f"Scenario {key}: give exactly one of default_interval (seconds) or default_cron.")
    if key in conflicts:
        raise ValueError(f"Scenario {key} cannot conflict with itself.")

    def register(func):
        definition = Definition(
            key=key,
            name=name or key.replace("-", " ").capitalize(),
            description=_description(func),
            category=str(category),
            weight=str(weight),
            conflicts=tuple(conflicts),
            default_interval=default_interval,
            default_cron=default_cron,
            tags=tuple(tags),
            func=func,
            schema=dict(schema or {}),
            reversible=reversible,
            template=template,
            needs_workspace=needs_workspace,
            touches=touches,
        )
        existing = _REGISTRY.get(key)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"Scenario {key!r} is already registered by {existing.func.__module__}.")
        _REGISTRY[key] = definition
        func.scenario_key = key
        return func

    return register


_TYPE_NAMES = {
    int: "a whole number",
    float: "a number",
    str: "a text",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}


def validate_config(config, schema: dict) -> list[str]:
    """Check a task's JSON configuration against its function's schema: `{"days": int, "paths?": list}`
    (a trailing "?" marks an optional key; a tuple of types allows any of them). Returns the problems, each a
    sentence; unknown keys are refused too, so a typo does not pass silently."""
    if not isinstance(config, dict):
        return ['The configuration must be a JSON object, e.g. {"days": 30}.']
    problems, known = [], set()
    for raw, expected in schema.items():
        name, optional = raw.rstrip("?"), raw.endswith("?")
        known.add(name)
        types = expected if isinstance(expected, tuple) else (expected,)
        if name not in config:
            if not optional:
                problems.append(f"“{name}” is required.")
            continue
        value = config[name]
        # bool is an int in Python: only accept it where bool is asked for.
        wrong = isinstance(value, bool) and bool not in types
        if wrong or not isinstance(value, types):
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            problems.append(f"“{name}” must be {wanted}.")
    unknown = sorted(set(config) - known)
    if unknown:
        problems.append(f"Unknown keys: {', '.join(unknown)} (allowed: {', '.join(sorted(known)) or 'none'}).")
    return problems


def unregister(key: str) -> None:
    """Remove a scenario from the registry (tests that register their own)."""
    _REGISTRY.pop(key, None)


def get(key: str) -> Definition | None:
    return _REGISTRY.get(key)


def definitions() -> list[Definition]:
    return sorted(_REGISTRY.values(), key=lambda definition: definition.key)
