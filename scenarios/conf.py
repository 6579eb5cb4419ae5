"""The scenario settings, each read as `getattr(settings, NAME, default)` so that the app works before
settings.py lists them (the README's configuration table names them all).

A value of the wrong type fails loudly, naming the setting, like settings.py's own helpers.
"""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS = {
    # How often the folder of external scenarios is scanned and their status endpoints polled (seconds).
    "DISCOVERY_INTERVAL": 60,
    # The folder scanned for service.json files tagged "maintenance"; empty: no external scenarios.
    "SCENARIO_DISCOVERY_DIR": "",
    # Every scenario inactive when the scheduler starts (`manage.py maintenance scheduler-start`).
    "SCENARIOS_RESET_ON_START": True,
    # At most this many heavy scenarios active at once.
    "SCENARIOS_MAX_HEAVY": 3,
    # Activation is refused while the machine's CPU or memory use (percent) is above these; 0 disables.
    "SCENARIOS_LOAD_CEILING_CPU": 85.0,
    "SCENARIOS_LOAD_CEILING_MEMORY": 90.0,
    # Auto-deactivate timer in minutes for an activation that names none; 0 disables (the default).
    "DEFAULT_TIMEOUT": 0,
    # backup-manager: the folder, and how many backups it keeps.
    "BACKUP_DIR": "",  # empty: VAR_DIR/backups
    "BACKUP_RETENTION": 7,
    # log-rotation: the platform's log file (empty when logging goes to the console only) and how many
    # rotated files it keeps.
    "LOG_FILE": "",
    "LOG_ROTATION_KEEP": 7,
    # How often the scheduler and runner ticks run (seconds).
    "SCENARIO_TICK_INTERVAL": 15,
    # Timeout of one call to an external scenario's endpoints (seconds).
    "EXTERNAL_SCENARIO_TIMEOUT": 5.0,
    # A running run with no sign of life for this long belongs to a dead worker: it is marked failed.
    "SCENARIO_RUN_LEASE_MINUTES": 60,
    # log-cleanup retention (days).
    "SCENARIO_RUN_RETENTION_DAYS": 90,
    "SCENARIO_ACTIVITY_RETENTION_DAYS": 365,
    "NOTIFICATION_RETENTION_DAYS": 180,
    # stale-work-order-escalation: an open work order untouched this long is escalated (days).
    "STALE_WORK_ORDER_DAYS": 14,
    # security-audit thresholds (days).
    "API_KEY_UNUSED_DAYS": 90,
    "API_KEY_MAX_AGE_DAYS": 365,
    "MEMBER_INACTIVE_DAYS": 90,
    # query-analyzer: statements slower than this on average are reported (milliseconds).
    "SLOW_QUERY_MS": 200.0,
    # performance-monitor: a sample this many times worse than the median of the previous ones is a
    # regression; SCENARIO_PROBE_URL, when set, is fetched to sample request latency.
    "PERFORMANCE_REGRESSION_FACTOR": 2.0,
    "SCENARIO_PROBE_URL": "",
    # The automated-task runner: at most this many runs at once; a task failing this many times in a row
    # alerts the operators (once per streak); a retry waits this long, doubled per attempt (seconds).
    "SCENARIO_MAX_CONCURRENT": 2,
    "SCENARIO_FAILURE_ALERT_THRESHOLD": 3,
    "SCENARIO_RETRY_BACKOFF_SECONDS": 60,
    # Rollback points: at most this many per task, none older than this (days).
    "SCENARIO_ROLLBACK_MAX": 20,
    "SCENARIO_ROLLBACK_DAYS": 30,
}

# Weights of the priority score (scenarios.priority); SCENARIO_PRIORITY_WEIGHTS overrides any of them.
PRIORITY_WEIGHTS = {"impact": 0.4, "urgency": 0.3, "effort": 0.2, "success_rate": 0.1}


def priority_weights() -> dict:
    configured = getattr(settings, "SCENARIO_PRIORITY_WEIGHTS", None) or {}
    unknown = set(configured) - set(PRIORITY_WEIGHTS)
    if unknown:
        raise ImproperlyConfigured(
            f"SCENARIO_PRIORITY_WEIGHTS: unknown terms {sorted(unknown)}; use {sorted(PRIORITY_WEIGHTS)}."
        )
    return {**PRIORITY_WEIGHTS, **{k: float(v) for k, v in configured.items()}}


def get(name: str):
    if name not in DEFAULTS:
        raise KeyError(f"{name} is not a scenario setting")
    default = DEFAULTS[name]
    value = getattr(settings, name, default)
    if value is None:
        return default
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int):
            value = int(value)
            if value < 0:
                raise ValueError
            return value
        if isinstance(default, float):
            value = float(value)
            if value < 0:
                raise ValueError
            return value
        return str(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not valid: expected a {'non-negative ' if default is not True else ''}"
            f"{type(default).__name__}."
        ) from None


def backup_dir() -> Path:
    configured = get("BACKUP_DIR")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "backups"
