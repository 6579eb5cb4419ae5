"""Presets: named sets of scenarios to have active, applied in one transaction; saving the current state,
JSON import and export; and preset windows (a preset applied at cron times for a duration, the previous
state restored afterwards).

Applying a preset makes exactly its scenarios active: those not active yet are activated (with the
apply's timer, else DEFAULT_TIMEOUT), those already active keep their timer, every other is deactivated.
The safety rules of `scenarios.services` apply to the result; one refusal leaves everything as it was.
"""

import json
import re
from datetime import datetime, timedelta
from itertools import pairwise

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site import audit
from maintenance_site.errors import Conflict, DomainError, InvalidInput, NotFound
from maintenance_site.validation import parse_duration, validated
from scenarios.models import KEY_PATTERN, RESERVED_KEYS, Preset, PresetSchedule, Scenario, cron_next, cron_previous
from scenarios.services import (
    Action,
    Result,
    Via,
    apply_states,
    describe_changes,
    iso,
    joined_names,
    lock_all,
    log_activity,
    run_logged,
    until_from,
)

EXPORT_FORMAT = "maintenance-preset/1"

# The five built-in presets, each a set of this platform's scenarios.
BUILTIN_PRESETS = [
    {
        "key": "full",
        "name": "Full maintenance",
        "description": "Every available scenario (internal ones, and external services that answer and can be "
        "toggled). Use with caution: the heavy-scenario limit and conflicts still apply.",
        "includes_all": True,
        "scenario_keys": [],
    },
    {
        "key": "security",
        "name": "Security",
        "description": "Security audit (deploy checks, stale API keys, inactive members) and backups.",
        "scenario_keys": ["security-audit", "backup-manager"],
    },
    {
        "key": "performance",
        "name": "Performance",
        "description": "Optimisation and monitoring: performance monitor, cache optimiser, query analyser.",
        "scenario_keys": ["performance-monitor", "cache-optimizer", "query-analyzer"],
    },
    {
        "key": "off-hours",
        "name": "Off hours",
        "description": "Heavy maintenance for quiet hours: database vacuum, log rotation, backups.",
        "scenario_keys": ["database-vacuum", "log-rotation", "backup-manager"],
    },
    {
        "key": "minimal",
        "name": "Minimal",
        "description": "Essential maintenance only: health checks and log cleanup.",
        "scenario_keys": ["health-checker", "log-cleanup"],
    },
]


def ensure_builtin_presets() -> None:
    """Create the built-in presets, and bring their definition back to the code's (called by the sync)."""
    for spec in BUILTIN_PRESETS:
        fields = {
            "name": spec["name"],
            "description": spec["description"],
            "includes_all": spec.get("includes_all", False),
            "scenario_keys": list(spec["scenario_keys"]),
            "builtin": True,
        }
        preset = Preset.objects.filter(key=spec["key"]).first()
        if preset is None:
            Preset.objects.create(key=spec["key"], **fields)
        elif any(getattr(preset, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(preset, name, value)
            audit.save_with_reason(preset, "built-in preset definition")


def get_preset(key_or_preset) -> Preset:
    if isinstance(key_or_preset, Preset):
        return key_or_preset
    preset = Preset.objects.filter(key=str(key_or_preset).strip()).first()
    if preset is None:
        raise NotFound(
            _("There is no preset “%(key)s”; `manage.py maintenance preset list` shows them.") % {"key": key_or_preset},
            code="unknown_preset",
        )
    return preset


def available_for_all(scenarios: dict[str, Scenario]) -> list[str]:
    """What the “full” preset means now: present internal scenarios, and external ones whose last poll
    succeeded and which say they can be toggled."""
    return sorted(
        key
        for key, s in scenarios.items()
        if s.is_present
        and (s.kind == Scenario.Kind.INTERNAL or (s.can_toggle and not s.last_error and s.last_polled_at))
    )


def preset_keys(preset: Preset, scenarios: dict[str, Scenario] | None = None) -> list[str]:
    if preset.includes_all:
        scenarios = scenarios if scenarios is not None else {s.key: s for s in Scenario.objects.all()}
        return available_for_all(scenarios)
    return list(preset.scenario_keys)


def _apply_locked(preset: Preset, *, actor, reason: str, now: datetime, until=None, duration_minutes=None):
    locked = lock_all()
    wanted = preset_keys(preset, locked)
    unknown = sorted(set(wanted) - set(locked))
    if unknown:
        raise InvalidInput(
            _(
                "Preset %(key)s names scenario(s) that do not exist here: %(names)s. "
                "Edit the preset or wait for their discovery."
            )
            % {"key": preset.key, "names": joined_names(unknown)},
            code="unknown_scenario",
        )
    end = until_from(until, duration_minutes, now=now)
    activate = {key: (end if not locked[key].is_active else None) for key in wanted}
    deactivate = {key for key, s in locked.items() if s.is_active and key not in wanted}
    return apply_states(locked, activate=activate, deactivate=deactivate, actor=actor, reason=reason, now=now)


@audit.attributed
def apply_preset(
    preset, *, actor, via: str = Via.SYSTEM, reason: str = "", until=None, duration_minutes=None
) -> dict[str, list[str]]:
    """Make exactly the preset's scenarios active, in one transaction: all or nothing."""
    preset = get_preset(preset)
    now = timezone.now()

    def change():
        changes = _apply_locked(
            preset,
            actor=actor,
            reason=reason or f"preset {preset.key}",
            now=now,
            until=until,
            duration_minutes=duration_minutes,
        )
        return changes, f"preset {preset.key}: {describe_changes(changes)}", changes

    return run_logged(Action.PRESET_APPLY, change, actor=actor, via=via, subject=preset.key, reason=reason)


# --- custom presets ------------------------------------------------------------------------------------


def _check_key(key: str, field: str = "key") -> str:
    key = (key or "").strip()
    if not re.match(KEY_PATTERN, key) or key in RESERVED_KEYS:
        raise InvalidInput(
            (
                _(
                    "“%(key)s” cannot name a preset: use lower-case letters, digits and hyphens (e.g. “night-shift”), "
                    "and not a reserved word."
                )
                if key in RESERVED_KEYS
                else _(
                    "“%(key)s” cannot name a preset: use lower-case letters, digits and hyphens (e.g. “night-shift”)."
                )
            )
            % {"key": key},
            fields={field: [_("Lower-case letters, digits and hyphens.")]},
        )
    return key


def _store(key: str, *, name: str, description: str, scenario_keys: list[str], actor, replace: bool) -> Preset:
    existing = Preset.objects.select_for_update().filter(key=key).first()
    if existing is not None and existing.builtin:
        raise Conflict(_("“%(key)s” is a built-in preset; choose another name.") % {"key": key}, code="builtin_preset")
    if existing is not None and not replace:
        raise Conflict(
            _('A preset “%(key)s” already exists; choose another name or replace it (--replace, "replace": true).')
            % {"key": key},
            code="preset_exists",
        )
    preset = existing or Preset(key=key, created_by=actor if getattr(actor, "pk", None) else None)
    preset.name = name or key
    preset.description = description
    preset.scenario_keys = scenario_keys
    preset.includes_all = False
    validated(preset).save()
    return preset


@audit.attributed
def save_preset(
    key: str, *, name: str = "", description: str = "", actor, via: str = Via.SYSTEM, replace: bool = False
) -> Preset:
    """Save the scenarios active now as a preset."""
    key = _check_key(key)

    def change():
        active = sorted(Scenario.objects.active().values_list("key", flat=True))
        preset = _store(key, name=name, description=description, scenario_keys=active, actor=actor, replace=replace)
        return preset, f"saved {key} with {joined_names(active) if active else 'no scenario'}", {"scenarios": active}

    return run_logged(Action.PRESET_SAVE, change, actor=actor, via=via, subject=key)


@audit.attributed
def define_preset(
    key: str,
    *,
    scenario_keys: list[str],
    name: str = "",
    description: str = "",
    actor,
    via: str = Via.SYSTEM,
    replace: bool = False,
) -> Preset:
    """Create (or with `replace`, redefine) a custom preset from a list of scenarios (the admin's form)."""
    parsed = parse_preset_document(
        {"key": key, "name": name, "description": description, "scenarios": list(scenario_keys)}
    )

    def change():
        preset = _store(
            parsed["key"],
            name=parsed["name"],
            description=parsed["description"],
            scenario_keys=parsed["scenario_keys"],
            actor=actor,
            replace=replace,
        )
        return (
            preset,
            f"saved {preset.key} with {joined_names(preset.scenario_keys) if preset.scenario_keys else 'no scenario'}",
            {},
        )

    return run_logged(Action.PRESET_SAVE, change, actor=actor, via=via, subject=parsed["key"])


def export_preset(preset) -> dict:
    """The preset as JSON-ready data, in the format `import_preset` reads."""
    preset = get_preset(preset)
    data = {
        "format": EXPORT_FORMAT,
        "key": preset.key,
        "name": preset.name,
        "description": preset.description,
        "scenarios": list(preset.scenario_keys),
    }
    if preset.includes_all:
        data["all"] = True
    return data


def parse_preset_document(document) -> dict:
    """Validate an imported preset (a dict, or JSON text); raises InvalidInput naming each problem."""
    if isinstance(document, bytes | str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            where = {"problem": exc.msg, "line": exc.lineno, "column": exc.colno}
            raise InvalidInput(
                _("The preset is not valid JSON: %(problem)s at line %(line)s, column %(column)s.") % where,
                fields={"document": [_("Invalid JSON: %(problem)s (line %(line)s, column %(column)s).") % where]},
            ) from None
    if not isinstance(document, dict):
        raise InvalidInput(
            _('A preset is a JSON object such as {"key": "night", "name": "Night", "scenarios": ["log-cleanup"]}.'),
            fields={"document": [_("Expected a JSON object.")]},
        )
    problems: dict[str, list[str]] = {}
    allowed = {"format", "key", "name", "description", "scenarios", "all", "replace"}
    unknown = sorted(set(document) - allowed)
    if unknown:
        problems["document"] = [
            _("Unknown field(s): %(unknown)s; allowed: %(allowed)s.")
            % {"unknown": ", ".join(unknown), "allowed": ", ".join(sorted(allowed))}
        ]
    if document.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        problems["format"] = [
            _("Expected “%(expected)s”, got “%(got)s”.") % {"expected": EXPORT_FORMAT, "got": document.get("format")}
        ]
    key = document.get("key")
    if not isinstance(key, str) or not key.strip():
        problems["key"] = [_("Required: the preset's name in lower-case letters, digits and hyphens.")]
    else:
        try:
            _check_key(key)
        except InvalidInput as exc:
            problems["key"] = [exc.message]
    for field in ("name", "description"):
        if field in document and not isinstance(document[field], str):
            problems[field] = [_("Must be a string.")]
    if document.get("all"):
        problems["all"] = [_("Only the built-in “full” preset includes every scenario; list them instead.")]
    scenarios = document.get("scenarios")
    if not isinstance(scenarios, list) or not all(isinstance(item, str) for item in scenarios):
        problems["scenarios"] = [_('Required: a list of scenario keys, e.g. ["log-cleanup", "health-checker"].')]
    else:
        duplicates = sorted({item for item in scenarios if scenarios.count(item) > 1})
        known = set(Scenario.objects.filter(key__in=scenarios).values_list("key", flat=True))
        unknown_keys = sorted(set(scenarios) - known)
        messages = []
        if duplicates:
            messages.append(_("Listed twice: %(keys)s.") % {"keys": ", ".join(duplicates)})
        if unknown_keys:
            messages.append(
                _("No such scenario here: %(keys)s (`manage.py maintenance list` shows them).")
                % {"keys": ", ".join(unknown_keys)}
            )
        if messages:
            problems["scenarios"] = messages
    if problems:
        summary = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in problems.items())
        raise InvalidInput(_("The preset cannot be imported — %(problems)s") % {"problems": summary}, fields=problems)
    return {
        "key": key.strip(),
        "name": (document.get("name") or "").strip(),
        "description": (document.get("description") or "").strip(),
        "scenario_keys": list(scenarios),
    }


@audit.attributed
def import_preset(document, *, actor, via: str = Via.SYSTEM, replace: bool = False) -> Preset:
    """Create (or with `replace`, overwrite) a custom preset from its JSON export."""
    try:
        parsed = parse_preset_document(document)
    except InvalidInput as exc:
        log_activity(
            Action.PRESET_IMPORT, actor=actor, via=via, subject="preset", result=Result.REFUSED, message=exc.message
        )
        raise
    replace = replace or bool(isinstance(document, dict) and document.get("replace"))

    def change():
        preset = _store(
            parsed["key"],
            name=parsed["name"],
            description=parsed["description"],
            scenario_keys=parsed["scenario_keys"],
            actor=actor,
            replace=replace,
        )
        return preset, f"imported {preset.key}", {"scenarios": parsed["scenario_keys"]}

    return run_logged(Action.PRESET_IMPORT, change, actor=actor, via=via, subject=parsed["key"])


@audit.attributed
def delete_preset(preset, *, actor, via: str = Via.SYSTEM) -> None:
    preset = get_preset(preset)

    def change():
        if preset.builtin:
            raise Conflict(
                _("%(key)s is a built-in preset; it cannot be deleted.") % {"key": preset.key}, code="builtin_preset"
            )
        schedules = preset.schedules.count()
        if schedules:
            raise Conflict(
                _("%(key)s has %(count)s window schedule(s); delete them first.")
                % {"key": preset.key, "count": schedules},
                code="preset_scheduled",
            )
        preset.delete()
        return None, f"deleted {preset.key}", {}

    return run_logged(Action.PRESET_DELETE, change, actor=actor, via=via, subject=preset.key)


# --- preset windows ------------------------------------------------------------------------------------


def _occurrences(cron: str, time_zone: str, start: datetime, count: int) -> list[datetime]:
    return cron_next(cron, time_zone, start, count)


def previous_occurrence(schedule: PresetSchedule, now: datetime) -> datetime:
    return cron_previous(schedule.cron, schedule.time_zone, now)


def next_occurrence(schedule: PresetSchedule, now: datetime | None = None) -> datetime:
    return _occurrences(schedule.cron, schedule.time_zone, now or timezone.now(), 1)[0]


def check_schedule(schedule: PresetSchedule, now: datetime | None = None) -> list[datetime]:
    """Validate a window schedule (cron, time zone, duration shorter than the gap between two occurrences);
    returns its next occurrences. Raises InvalidInput keyed by field."""
    validated(schedule, exclude=["preset"])
    upcoming = _occurrences(schedule.cron, schedule.time_zone, now or timezone.now(), 50)
    gap = min((later - earlier for earlier, later in pairwise(upcoming)), default=None)
    minutes = schedule.duration_minutes
    if gap is not None and timedelta(minutes=minutes) > gap:
        raise InvalidInput(
            _(
                "A %(minutes)s-minute window would overlap the next one: “%(cron)s” comes round every %(gap)s "
                "minutes at the shortest. Shorten the duration."
            )
            % {"minutes": minutes, "cron": schedule.cron, "gap": int(gap.total_seconds() // 60)},
            fields={"duration_minutes": [_("Longer than the gap between two occurrences.")]},
        )
    return upcoming


@audit.attributed
def create_schedule(
    preset, *, cron: str, duration, time_zone: str = "UTC", enabled: bool = True, actor, via: str = Via.SYSTEM
) -> PresetSchedule:
    """Schedule a preset window: applied at each cron time (in `time_zone`) for `duration` (minutes, or
    “2h”), the state before it restored at the end. A window already under way when the schedule is
    created is not applied: the first is the next occurrence. A schedule created disabled opens no window
    until it is enabled."""
    preset = get_preset(preset)
    minutes = duration if isinstance(duration, int) else parse_duration(duration)
    subject = f"{preset.key} at “{cron}”"

    def change():
        now = timezone.now()
        schedule = PresetSchedule(
            preset=preset,
            cron=(cron or "").strip(),
            duration_minutes=minutes,
            time_zone=(time_zone or "UTC").strip(),
            enabled=enabled,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        upcoming = check_schedule(schedule, now)
        schedule.last_occurrence = previous_occurrence(schedule, now)
        schedule.save()
        message = f"window {schedule.pk}: {preset.key} at “{schedule.cron}” ({schedule.time_zone}) for {minutes} min, next {iso(upcoming[0])}"  # noqa: E501
        return schedule, message, {"schedule": schedule.pk, "next": iso(upcoming[0])}

    return run_logged(Action.SCHEDULE, change, actor=actor, via=via, subject=subject)


@audit.attributed
def set_schedule_enabled(schedule: PresetSchedule, *, enabled: bool, actor, via: str = Via.SYSTEM) -> PresetSchedule:
    """Switch a window schedule on or off: off, it opens no further window (one open now ends at its time)."""

    def change():
        locked = PresetSchedule.objects.select_for_update().get(pk=schedule.pk)
        locked.enabled = enabled
        locked.save()  # with its history row, naming the actor
        state = "enabled" if enabled else "disabled"
        return locked, f"window schedule {locked.pk} {state}", {"schedule": locked.pk, "enabled": enabled}

    return run_logged(
        Action.SCHEDULE, change, actor=actor, via=via, subject=f"{schedule.preset_id} schedule {schedule.pk}"
    )


@audit.attributed
def delete_schedule(schedule: PresetSchedule, *, actor, via: str = Via.SYSTEM) -> None:
    """Delete a window schedule; a window that is open is closed first, restoring the state before it."""
    if schedule.is_open:
        _close_window(schedule, timezone.now(), why="its schedule was deleted")

    def change():
        PresetSchedule.objects.filter(pk=schedule.pk).delete()
        return None, f"window schedule {schedule.pk} deleted", {}

    run_logged(Action.SCHEDULE, change, actor=actor, via=via, subject=f"{schedule.preset_id} schedule {schedule.pk}")


def _snapshot(locked: dict[str, Scenario]) -> dict:
    return {"active": {key: iso(s.active_until) for key, s in locked.items() if s.is_active}}


def _open_window(schedule: PresetSchedule, start: datetime, now: datetime) -> None:
    end = start + timedelta(minutes=schedule.duration_minutes)
    actor = audit.system_user()
    preset = schedule.preset
    reason = f"preset window {schedule.pk} ({preset.key}) until {iso(end)}"
    with transaction.atomic():
        schedule = PresetSchedule.objects.select_for_update().get(pk=schedule.pk)
        if schedule.is_open or (schedule.last_occurrence and schedule.last_occurrence >= start):
            return  # another tick got here first
        try:
            with transaction.atomic():
                locked = lock_all()
                snapshot = _snapshot(locked)
                changes = _apply_locked(preset, actor=actor, reason=reason, now=now)
        except DomainError as exc:
            PresetSchedule.objects.filter(pk=schedule.pk).update(
                last_occurrence=start, last_result=f"not applied at {iso(start)}: {exc.message}"[:500]
            )
            log_activity(
                Action.WINDOW_START,
                actor=actor,
                via=Via.SCHEDULER,
                subject=preset.key,
                reason=reason,
                result=Result.REFUSED,
                message=exc.message,
                details={"schedule": schedule.pk},
            )
            return
        PresetSchedule.objects.filter(pk=schedule.pk).update(
            window_start=start,
            window_end=end,
            snapshot=snapshot,
            last_occurrence=start,
            last_result=f"applied at {iso(now)}: {describe_changes(changes)}"[:500],
        )
        log_activity(
            Action.WINDOW_START,
            actor=actor,
            via=Via.SCHEDULER,
            subject=preset.key,
            reason=reason,
            message=f"preset {preset.key} applied until {iso(end)}: {describe_changes(changes)}",
            details={"schedule": schedule.pk, "snapshot": snapshot, **changes},
        )


def _close_window(schedule: PresetSchedule, now: datetime, *, why: str = "the window ended") -> None:
    """Restore the state from before the window: the snapshot's scenarios active (with their timers, those
    whose timer ran out meanwhile stay off), every other inactive. Restoring skips the load ceiling (it
    returns to a state that ran before); if it is refused anyway, the window's scenarios are switched off."""
    actor = audit.system_user()
    with transaction.atomic():
        schedule = PresetSchedule.objects.select_for_update().select_related("preset").get(pk=schedule.pk)
        if not schedule.is_open:
            return
        snapshot = (schedule.snapshot or {}).get("active", {})
        reason = f"preset window {schedule.pk} ({schedule.preset.key}) ended: {why}"
        result, message = Result.OK, ""
        try:
            with transaction.atomic():
                locked = lock_all()
                activate = {}
                for key, until in snapshot.items():
                    end = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
                    if key in locked and (end is None or end > now):
                        activate[key] = end
                deactivate = {key for key, s in locked.items() if s.is_active and key not in activate}
                changes = apply_states(
                    locked,
                    activate=activate,
                    deactivate=deactivate,
                    actor=actor,
                    reason=reason,
                    now=now,
                    load_check=False,
                    force_remote=True,
                )
                message = f"state before the window restored: {describe_changes(changes)}"
        except DomainError as exc:
            locked = lock_all()
            off = {key for key, s in locked.items() if s.is_active}
            changes = apply_states(
                locked, activate={}, deactivate=off, actor=actor, reason=reason, now=now, force_remote=True
            )
            result = Result.FAILED
            message = f"could not restore the state before the window ({exc.message}); switched everything off"
        PresetSchedule.objects.filter(pk=schedule.pk).update(
            window_start=None, window_end=None, snapshot=None, last_result=message[:500]
        )
        log_activity(
            Action.WINDOW_END,
            actor=actor,
            via=Via.SCHEDULER,
            subject=schedule.preset.key,
            reason=reason,
            result=result,
            message=message,
            details={"schedule": schedule.pk, **changes},
        )


def tick_windows(now: datetime | None = None) -> dict:
    """The scheduler tick's part: close windows whose time is up, open those whose occurrence has come.

    Idempotent: each occurrence is handled once (`last_occurrence`, under a row lock), so a second tick
    or a second beat does nothing. Catch-up policy: an occurrence missed while the scheduler was down is
    applied late if its window has not ended yet, else skipped (and said so). With ENABLE_CALENDAR off, open
    windows still close (restoring the state before them) but none opens."""
    now = now or timezone.now()
    opened, closed = [], []
    for schedule in PresetSchedule.objects.filter(window_start__isnull=False, window_end__lte=now):
        _close_window(schedule, now)
        closed.append(schedule.pk)
    if not settings.ENABLE_CALENDAR:
        return {"opened": opened, "closed": closed}
    for schedule in PresetSchedule.objects.filter(enabled=True, window_start__isnull=True).select_related("preset"):
        start = previous_occurrence(schedule, now)
        if schedule.last_occurrence and start <= schedule.last_occurrence:
            continue
        end = start + timedelta(minutes=schedule.duration_minutes)
        if end <= now:
            PresetSchedule.objects.filter(pk=schedule.pk).update(
                last_occurrence=start, last_result=f"window of {iso(start)} missed: the scheduler was not running"
            )
            continue
        _open_window(schedule, start, now)
        opened.append(schedule.pk)
    return {"opened": opened, "closed": closed}
