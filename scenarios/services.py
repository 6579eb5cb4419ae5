"""The only place that changes scenario state: activation, deactivation, timers, stop-all, the reset on
scheduler start, run requests, the registry sync, and the status every interface shows.

Every change of state is one transaction that locks every scenario row (pk order; the table holds tens
of rows), checks the safety rules against the state that results, writes, calls the external services
concerned (last, so that one that fails rolls the whole change back) and writes the activity log. A
refusal raises a DomainError whose message names what to do, and is logged as refused.

Safety rules, checked on what an operation would leave active:
- a scenario must be present (registered in code, or found by the last discovery) and, when external,
  able to be toggled;
- no scenario being activated may conflict with one that is or becomes active;
- at most SCENARIOS_MAX_HEAVY heavy scenarios active;
- nothing is activated while CPU or memory use is above SCENARIOS_LOAD_CEILING_CPU / _MEMORY.
Deactivating is never refused by these rules.
"""

import logging
import os
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import psutil
from django.conf import settings
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from maintenance_site import audit
from maintenance_site.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDeniedError
from maintenance_site.events.platform import publish_platform
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.actors import is_system
from maintenance_site.tenancy.models import Membership
from maintenance_site.validation import validated
from scenarios import registry, remote
from scenarios.choices import DEFAULT_EXECUTORS
from scenarios.models import (
    MAX_DURATION_MINUTES,
    PresetSchedule,
    Scenario,
    ScenarioActivity,
    ScenarioRun,
    Weight,
    Workspace,
    dependency_cycle,
)
from scenarios.remote import ExternalScenarioError

logger = logging.getLogger(__name__)

Action = ScenarioActivity.Action
Result = ScenarioActivity.Result
Via = ScenarioActivity.Via
RunStatus = ScenarioRun.Status

KIND_RUN_FAILED = "scenario:run-failed"


# --- small helpers --------------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """A moment as the API and the command line print it: ISO 8601 in UTC with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@audit.attributed
def log_activity(
    action: str,
    *,
    actor,
    via: str = Via.SYSTEM,
    scenario: Scenario | None = None,
    subject: str = "",
    reason: str = "",
    result: str = Result.OK,
    message: str = "",
    details: dict | None = None,
) -> ScenarioActivity:
    """Append a line to the activity log; it names the actor (`SYSTEM`: the system user)."""
    if not getattr(actor, "pk", None):
        actor = None
    return ScenarioActivity.objects.create(
        action=action,
        actor=actor,
        via=via,
        scenario=scenario,
        subject=(subject or (scenario.key if scenario else ""))[:200],
        reason=(reason or "")[:500],
        result=result,
        message=message,
        details=details or {},
    )


@audit.attributed
def run_logged(action: str, change: Callable, *, actor, via, subject: str = "", scenario=None, reason: str = ""):
    """Run `change()` in a transaction. Success: it returns (value, message, details), logged with the change.
    Refusal: the change rolls back, the refusal is logged (outside it), the error goes on. History and the log
    name the actor (`SYSTEM`: the system user, from `audit.attributed`)."""
    try:
        with transaction.atomic():
            value, message, details = change()
            log_activity(
                action,
                actor=actor,
                via=via,
                scenario=scenario,
                subject=subject,
                reason=reason,
                message=message,
                details=details,
            )
            return value
    except DomainError as exc:
        result = Result.FAILED if isinstance(exc, ExternalScenarioError) else Result.REFUSED
        failed_key = exc.extra.get("scenario") if isinstance(exc, ExternalScenarioError) else None
        if failed_key:  # shown on the board although the change rolled back
            Scenario.objects.filter(key=failed_key).update(last_error=exc.message[:2000], last_error_at=timezone.now())
        scenario_row = Scenario.objects.filter(pk=scenario.pk).first() if scenario is not None else None
        log_activity(
            action,
            actor=actor,
            via=via,
            scenario=scenario_row,
            subject=subject,
            reason=reason,
            result=result,
            message=exc.message,
        )
        raise


def get_scenario(key_or_scenario) -> Scenario:
    if isinstance(key_or_scenario, Scenario):
        return key_or_scenario
    scenario = Scenario.objects.filter(key=str(key_or_scenario).strip()).first()
    if scenario is None:
        raise NotFound(
            _("There is no scenario “%(key)s”; `manage.py maintenance list` shows the scenarios.")
            % {"key": key_or_scenario},
            code="unknown_scenario",
        )
    return scenario


def measure_load(interval: float = 0.1) -> dict:
    """The machine's CPU (over `interval` seconds) and memory use now, in percent, as the load ceiling and
    the board read them."""
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=interval)),
        "memory_percent": float(psutil.virtual_memory().percent),
    }


def resource_usage() -> dict:
    """What the board shows: CPU, memory, load average, and the disk holding the data and backups."""
    usage = measure_load()
    try:
        usage["load_average"] = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        usage["load_average"] = None
    try:
        disk = psutil.disk_usage(str(settings.VAR_DIR))
        usage["disk_percent"] = float(disk.percent)
        usage["disk_free_gb"] = round(disk.free / 1024**3, 1)
    except OSError:
        usage["disk_percent"] = usage["disk_free_gb"] = None
    usage["cpu_ceiling"] = settings.SCENARIOS_LOAD_CEILING_CPU
    usage["memory_ceiling"] = settings.SCENARIOS_LOAD_CEILING_MEMORY
    return usage


def until_from(until=None, duration_minutes=None, *, now=None, use_default=True) -> datetime | None:
    """When an activation ends: `until` (a moment in the future), or `duration_minutes` from now, or the
    DEFAULT_TIMEOUT minutes when neither is given (None when that is 0: no timer)."""
    now = now or timezone.now()
    if until is not None and duration_minutes is not None:
        raise InvalidInput(
            _("Give either an end time or a duration, not both."), fields={"until": [_("Or a duration.")]}
        )
    if duration_minutes is not None:
        try:
            minutes = int(duration_minutes)
        except (TypeError, ValueError):
            minutes = 0
        if not 1 <= minutes <= MAX_DURATION_MINUTES:
            raise InvalidInput(
                _("The duration must be 1 to %(most)s minutes.") % {"most": MAX_DURATION_MINUTES},
                fields={
                    "duration_minutes": [
                        _("A whole number of minutes from 1 to %(most)s.") % {"most": MAX_DURATION_MINUTES}
                    ]
                },
            )
        return now + timedelta(minutes=minutes)
    if until is not None:
        if timezone.is_naive(until):
            until = until.replace(tzinfo=UTC)
        if until <= now:
            raise InvalidInput(
                _("The end time is in the past; give a moment in the future."), fields={"until": [_("Past.")]}
            )
        if until > now + timedelta(minutes=MAX_DURATION_MINUTES):
            raise InvalidInput(_("The end time is more than 31 days away."), fields={"until": [_("Too far.")]})
        return until
    default = settings.DEFAULT_TIMEOUT
    if use_default and default:
        return now + timedelta(minutes=default)
    return None


# --- the core: change which scenarios are active --------------------------------------------------------


def lock_all() -> dict[str, Scenario]:
    """Every scenario row, locked (pk order), by key: what every change of which scenarios are active starts
    with (the table holds tens of rows), so that the safety rules see the state the change leaves."""
    return {s.key: s for s in Scenario.objects.select_for_update().order_by("pk")}


def _conflict_pairs() -> dict[int, set[int]]:
    through = Scenario.conflicts.through
    pairs: dict[int, set[int]] = {}
    for left, right in through.objects.values_list("from_scenario_id", "to_scenario_id"):
        pairs.setdefault(left, set()).add(right)
        pairs.setdefault(right, set()).add(left)
    return pairs


def joined_names(keys: Iterable[str], *, english: bool = False) -> str:
    """Keys as a sentence names them, sorted: “a”, “a and b”, “a, b and c” — in the active language, or in English
    for a stored record (`english=True`)."""
    keys = sorted(keys)
    if len(keys) == 1:
        return keys[0]
    if english:
        return ", ".join(keys[:-1]) + " and " + keys[-1]
    return _("%(names)s and %(last)s") % {"names": ", ".join(keys[:-1]), "last": keys[-1]}


def check_activation(scenario: Scenario) -> None:
    """Raise when the scenario cannot be switched on at all (not present; external and unable to toggle)."""
    if not scenario.is_present:
        if scenario.kind == Scenario.Kind.INTERNAL:
            message = _("%(key)s is no longer registered in code, so it cannot be activated.")
        else:
            message = _(
                "%(key)s is no longer found by the last discovery, so it cannot be activated (check its "
                "service.json in the discovery folder: `manage.py maintenance logs --filter discovery`)."
            )
        raise Conflict(
            message % {"key": scenario.key},
            code="scenario_missing",
        )
    if scenario.kind == Scenario.Kind.EXTERNAL:
        if not scenario.activate_url or not scenario.deactivate_url:
            raise Conflict(
                _("%(key)s declares no activate/deactivate endpoints.") % {"key": scenario.key}, code="cannot_toggle"
            )
        if scenario.can_toggle is False:
            raise Conflict(
                _("%(key)s reports canToggle: false on its status endpoint; it cannot be switched now.")
                % {"key": scenario.key},
                code="cannot_toggle",
            )


def check_load() -> None:
    ceiling_cpu = settings.SCENARIOS_LOAD_CEILING_CPU
    ceiling_memory = settings.SCENARIOS_LOAD_CEILING_MEMORY
    if not ceiling_cpu and not ceiling_memory:
        return
    load = measure_load()
    if ceiling_cpu and load["cpu_percent"] > ceiling_cpu:
        load = measure_load(interval=0.5)  # a 0.1 s sample may catch a spike: confirm over a longer one
    over = []
    if ceiling_cpu and load["cpu_percent"] > ceiling_cpu:
        over.append(f"CPU at {load['cpu_percent']:.0f}% (ceiling {ceiling_cpu:.0f}%)")
    if ceiling_memory and load["memory_percent"] > ceiling_memory:
        over.append(f"memory at {load['memory_percent']:.0f}% (ceiling {ceiling_memory:.0f}%)")
    if over:
        raise Conflict(
            _(
                "The machine is busy (%(over)s): no scenario is activated while load is above the "
                "ceiling (SCENARIOS_LOAD_CEILING_CPU / _MEMORY). Try again when it has calmed down."
            )
            % {"over": " and ".join(over)},
            code="load_too_high",
            load=load,
        )


@audit.attributed
def apply_states(
    locked: dict[str, Scenario],
    *,
    activate: dict[str, datetime | None],
    deactivate: set[str],
    actor,
    reason: str,
    now: datetime,
    load_check: bool = True,
    force_remote: bool = False,
) -> dict[str, list[str]]:
    """Make the keys in `activate` active (with their end time) and those in `deactivate` inactive, on
    rows locked by the caller. Raises a DomainError, changing nothing, when a rule forbids it.
    Returns {"activated": [...], "extended": [...], "deactivated": [...]}."""
    unknown = sorted((set(activate) | deactivate) - set(locked))
    if unknown:
        raise NotFound(_("Unknown scenario(s): %(names)s.") % {"names": joined_names(unknown)}, code="unknown_scenario")
    newly = {key for key in activate if not locked[key].is_active}
    for key in sorted(newly):
        check_activation(locked[key])
    final = {key for key, s in locked.items() if s.is_active and key not in deactivate} | set(activate)

    pairs = _conflict_pairs()
    by_id = {s.pk: key for key, s in locked.items()}
    for key in sorted(newly):
        clashing = {by_id[other] for other in pairs.get(locked[key].pk, ()) if by_id.get(other) in final}
        if clashing:
            already = sorted(k for k in clashing if k not in newly)
            also = sorted(k for k in clashing if k in newly)
            names = {
                "key": key,
                "active": joined_names(already) if already else "",
                "also": joined_names(also) if also else "",
                "clashing": joined_names(clashing),
            }
            if already and also:
                message = ngettext(
                    "%(key)s conflicts with %(active)s, which is active and with %(also)s, also being activated: "
                    "they must not be active together. Deactivate %(clashing)s first.",
                    "%(key)s conflicts with %(active)s, which are active and with %(also)s, also being activated: "
                    "they must not be active together. Deactivate %(clashing)s first.",
                    len(already),
                )
            elif already:
                message = ngettext(
                    "%(key)s conflicts with %(active)s, which is active: they must not be active together. "
                    "Deactivate %(clashing)s first.",
                    "%(key)s conflicts with %(active)s, which are active: they must not be active together. "
                    "Deactivate %(clashing)s first.",
                    len(already),
                )
            else:
                message = _(
                    "%(key)s conflicts with %(also)s, also being activated: they must not be active together. "
                    "Deactivate %(clashing)s first."
                )
            raise Conflict(
                message % names,
                code="scenario_conflict",
                conflicts=sorted(clashing),
            )

    max_heavy = settings.SCENARIOS_MAX_HEAVY
    heavy = sorted(key for key in final if locked[key].weight == Weight.HEAVY)
    if len(heavy) > max_heavy and any(locked[key].weight == Weight.HEAVY for key in newly):
        raise Conflict(
            ngettext(
                "At most %(limit)s heavy scenario may be active at once (SCENARIOS_MAX_HEAVY); this would make "
                "%(count)s active: %(names)s. Deactivate one first.",
                "At most %(limit)s heavy scenarios may be active at once (SCENARIOS_MAX_HEAVY); this would make "
                "%(count)s active: %(names)s. Deactivate one first.",
                max_heavy,
            )
            % {"limit": max_heavy, "count": len(heavy), "names": joined_names(heavy)},
            code="too_many_heavy",
            heavy=heavy,
        )
    if newly and load_check:
        check_load()

    changes: dict[str, list[str]] = {"activated": [], "extended": [], "deactivated": []}
    toggled_remote: list[tuple[Scenario, bool]] = []
    for key in sorted(activate):
        scenario = locked[key]
        until = activate[key]
        if until is not None and until <= now:
            raise InvalidInput(
                _("The end time of %(key)s is in the past.") % {"key": key}, fields={"until": [_("Past.")]}
            )
        if scenario.is_active:
            if until is not None and until != scenario.active_until:
                scenario.active_until = until
                audit.save_with_reason(
                    scenario, reason or "timer changed", update_fields=["active_until", "updated_at"]
                )
                changes["extended"].append(key)
            continue
        scenario.state = Scenario.State.ACTIVE
        scenario.active_since = now
        scenario.active_until = until
        scenario.activated_by = actor if getattr(actor, "pk", None) else None
        scenario.activation_reason = (reason or "")[:500]
        audit.save_with_reason(scenario, reason or "activated")
        changes["activated"].append(key)
        if scenario.kind == Scenario.Kind.EXTERNAL:
            toggled_remote.append((scenario, True))
    for key in sorted(deactivate):
        scenario = locked[key]
        if not scenario.is_active:
            continue
        mark_inactive(scenario, reason or "deactivated", now)
        changes["deactivated"].append(key)
        if scenario.kind == Scenario.Kind.EXTERNAL and scenario.is_present:
            toggled_remote.append((scenario, False))
    _call_remotes(toggled_remote, reason=reason, force=force_remote)
    for event_type, keys in (
        ("scenario:activated", changes["activated"]),
        ("scenario:updated", changes["extended"]),
        ("scenario:deactivated", changes["deactivated"]),
    ):
        for key in keys:
            _publish_state(event_type, locked[key], actor=actor, reason=reason)
    return changes


def _publish_state(event_type: str, scenario: Scenario, *, actor, reason: str = "") -> None:
    """Tell the platform's administrators (the scenario board) about a scenario's new state, after commit: a
    platform event (maintenance_site/events/platform.py), never an organisation's."""
    publish_platform(
        event_type,
        {
            "scenario": scenario.key,
            **scenario_summary(scenario),
            "actor": "system" if is_system(actor) else getattr(actor, "username", None),
            "reason": reason or "",
        },
    )


def mark_inactive(scenario: Scenario, reason: str, now: datetime) -> None:
    """Switch a locked scenario row off (history with `reason`) and cancel its pending scheduled runs; the
    caller holds the rows' lock (`lock_all`) and logs the change."""
    scenario.state = Scenario.State.INACTIVE
    scenario.active_since = None
    scenario.active_until = None
    scenario.activated_by = None
    scenario.activation_reason = ""
    audit.save_with_reason(scenario, reason)
    ScenarioRun.objects.filter(
        scenario=scenario, status=RunStatus.PENDING, trigger=ScenarioRun.Trigger.SCHEDULE
    ).update(status=RunStatus.CANCELLED, finished_at=now, summary="cancelled: the scenario was deactivated")


def _call_remotes(toggles: list[tuple[Scenario, bool]], *, reason: str, force: bool) -> None:
    """Switch external services, after the database rows are written (same transaction). On a failure the
    services already switched are switched back and the error raised, so the transaction rolls back:
    all or nothing. With `force` (stop-all, timers, the reset) failures are recorded on the scenario
    (its board shows the drift) and nothing is rolled back."""
    done: list[tuple[Scenario, bool]] = []
    for scenario, active in toggles:
        try:
            remote.toggle_remote(scenario, active, reason=reason)
        except ExternalScenarioError as exc:
            if force:
                remote.record_error(scenario, exc.message)
                continue
            for undo_scenario, undo_active in reversed(done):
                try:
                    remote.toggle_remote(undo_scenario, not undo_active, reason=f"undo: {exc.message}")
                except ExternalScenarioError as undo_exc:
                    remote.record_error(undo_scenario, f"could not be switched back: {undo_exc.message}")
            raise
        done.append((scenario, active))


def describe_changes(changes: dict[str, list[str]]) -> str:
    """What `apply_states` did, in a sentence (“activated a and b; deactivated c”, or “nothing to change”), in English:
    the record stored in the activity log and the presets' results (`changes_text` is the person's sentence)."""
    parts = [f"{what} {joined_names(keys, english=True)}" for what, keys in changes.items() if keys]
    return "; ".join(parts) if parts else "nothing to change"


def changes_text(changes: dict[str, list[str]]) -> str:
    """`describe_changes` in the active language, each part a whole sentence, for the person who asked."""
    sentences = {
        "activated": lambda names, n: ngettext("activated %(names)s", "activated %(names)s", n) % {"names": names},
        "extended": lambda names, n: ngettext("extended %(names)s", "extended %(names)s", n) % {"names": names},
        "deactivated": lambda names, n: (
            ngettext("deactivated %(names)s", "deactivated %(names)s", n) % {"names": names}
        ),
    }
    parts = [
        sentences[what](joined_names(keys), len(keys)) if what in sentences else f"{what} {joined_names(keys)}"
        for what, keys in changes.items()
        if keys
    ]
    return "; ".join(parts) if parts else _("nothing to change")


# --- one scenario ---------------------------------------------------------------------------------------


@audit.attributed
def activate_scenario(
    scenario, *, actor, via: str = Via.SYSTEM, until=None, duration_minutes=None, reason: str = ""
) -> Scenario:
    """Switch one scenario on, until `until` or for `duration_minutes` (default DEFAULT_TIMEOUT minutes,
    none when 0). Activating an active scenario only changes its timer."""
    scenario = get_scenario(scenario)
    now = timezone.now()

    def change():
        end = until_from(until, duration_minutes, now=now)
        locked = lock_all()
        changes = apply_states(
            locked, activate={scenario.key: end}, deactivate=set(), actor=actor, reason=reason, now=now
        )
        message = describe_changes(changes) if any(changes.values()) else f"{scenario.key} was already active"
        return locked[scenario.key], message, {"until": iso(end)}

    return run_logged(Action.ACTIVATE, change, actor=actor, via=via, scenario=scenario, reason=reason)


@audit.attributed
def deactivate_scenario(scenario, *, actor, via: str = Via.SYSTEM, reason: str = "") -> Scenario:
    """Switch one scenario off; its pending scheduled runs are cancelled (a running one finishes)."""
    scenario = get_scenario(scenario)
    now = timezone.now()

    def change():
        locked = lock_all()
        changes = apply_states(locked, activate={}, deactivate={scenario.key}, actor=actor, reason=reason, now=now)
        message = describe_changes(changes) if any(changes.values()) else f"{scenario.key} was already inactive"
        return locked[scenario.key], message, {}

    return run_logged(Action.DEACTIVATE, change, actor=actor, via=via, scenario=scenario, reason=reason)


@audit.attributed
def set_states(
    *,
    activate: Iterable[str] = (),
    deactivate: Iterable[str] = (),
    actor,
    via: str = Via.SYSTEM,
    reason: str = "",
    until=None,
    duration_minutes=None,
    action: str = Action.ACTIVATE,
    subject: str = "",
) -> dict[str, list[str]]:
    """Several scenarios at once (the admin's bulk actions), all or nothing."""
    now = timezone.now()
    activate, deactivate = list(activate), set(deactivate)

    def change():
        end = until_from(until, duration_minutes, now=now) if activate else None
        locked = lock_all()
        changes = apply_states(
            locked, activate=dict.fromkeys(activate, end), deactivate=deactivate, actor=actor, reason=reason, now=now
        )
        return changes, describe_changes(changes), changes

    return run_logged(
        action, change, actor=actor, via=via, subject=subject or joined_names(activate or deactivate), reason=reason
    )


@audit.attributed
def update_schedule(
    scenario, *, interval_seconds=None, cron: str = "", time_zone: str = "UTC", actor, via: str = Via.SYSTEM
) -> Scenario:
    """Change when an internal scenario runs while active: every `interval_seconds`, or at `cron` times."""

    scenario = get_scenario(scenario)

    def change():
        locked = Scenario.objects.select_for_update().get(pk=scenario.pk)
        if locked.kind != Scenario.Kind.INTERNAL:
            raise InvalidInput(_("%(key)s is an external service: it schedules itself.") % {"key": locked.key})
        locked.interval_seconds = interval_seconds or None
        locked.cron = (cron or "").strip()
        locked.time_zone = (time_zone or "UTC").strip()
        validated(locked)
        audit.save_with_reason(locked, "schedule changed")
        return locked, f"{locked.key} now runs {locked.schedule_display}", {}

    return run_logged(Action.RESCHEDULE, change, actor=actor, via=via, scenario=scenario)


@audit.attributed
def create_task(
    *,
    name: str,
    executor: str = "",
    category: str = "other",
    priority: str = "medium",
    timeout_seconds: int | None = None,
    key: str = "",
    interval_seconds: int | None = None,
    cron: str = "",
    config: dict | None = None,
    workspace=None,
    actor,
    via: str = Via.SYSTEM,
    **settings,
) -> Scenario:
    """Create a maintenance task (an internal scenario, inactive) that runs the function registered as
    `executor` (default: its category's built-in executor, for the workspace categories) with its own settings
    and configuration (checked against that function's schema). A workspace executor needs `workspace` (a
    Workspace or its key), and only superusers create such tasks: they run the workspace's code. The timeout
    defaults to SCENARIO_TASK_TIMEOUT_MINUTES."""

    if not executor:
        executor = DEFAULT_EXECUTORS.get(category, "")
        if not executor:
            raise InvalidInput(
                _("The category “%(category)s” has no built-in executor: name a registered function with --executor.")
                % {"category": category},
                fields={"executor": _("Required for this category.")},
            )
    if timeout_seconds is None:
        timeout_seconds = django_settings.SCENARIO_TASK_TIMEOUT_MINUTES * 60
    definition = registry.get(executor)
    if definition is None:
        known = ", ".join(d.key for d in registry.definitions())
        raise InvalidInput(
            _("No function is registered as “%(executor)s”; use one of: %(known)s.")
            % {"executor": executor, "known": known}
        )
    key = key or slugify(name)[:80]
    if isinstance(workspace, str):
        found = Workspace.objects.filter(key=workspace).first()
        if found is None:
            raise InvalidInput(
                _("No workspace “%(workspace)s”.") % {"workspace": workspace},
                fields={"workspace": _("Not a registered workspace.")},
            )
        workspace = found
    if definition.needs_workspace and workspace is None:
        raise InvalidInput(
            _("%(executor)s runs against a workspace: give one (--workspace KEY).") % {"executor": executor},
            fields={"workspace": _("Required for this executor.")},
        )
    if workspace is not None and not definition.needs_workspace:
        raise InvalidInput(
            _("%(executor)s does not use a workspace.") % {"executor": executor},
            fields={"workspace": _("Not used by this executor.")},
        )
    if workspace is not None and not (is_system(actor) or getattr(actor, "is_superuser", False)):
        raise PermissionDeniedError(_("Only platform administrators create tasks that run a workspace's code."))

    def change():
        if Scenario.objects.filter(key=key).exists():
            raise Conflict(
                _("A task with the key “%(key)s” exists already; choose another name or --key.") % {"key": key}
            )
        scenario = Scenario(
            key=key,
            name=name,
            description=definition.description,
            kind=Scenario.Kind.INTERNAL,
            executor="" if executor == key else executor,
            category=category,
            priority=priority,
            timeout_seconds=timeout_seconds,
            interval_seconds=interval_seconds if interval_seconds or cron else definition.default_interval,
            cron=cron or ("" if interval_seconds else definition.default_cron),
            config=config or {},
            weight=definition.weight,
            workspace=workspace,
            **settings,
        )
        validated(scenario)
        audit.save_with_reason(scenario, "task created")
        return scenario, f"task {key} created (runs {executor})", {"executor": executor}

    return run_logged(Action.TASK_CREATE, change, actor=actor, via=via, subject=key)


TASK_SETTINGS = (
    "config",
    "priority",
    "timeout_seconds",
    "max_retries",
    "allowed_hours",
    "allowed_weekdays",
    "cooldown_minutes",
    "impact_code_quality",
    "impact_security",
    "impact_performance",
    "impact_maintainability",
    "impact_user_experience",
    "estimated_minutes",
    "complexity",
    "risk",
)


@audit.attributed
def update_task_settings(scenario, *, actor, via: str = Via.SYSTEM, depends_on=None, **values) -> Scenario:
    """Change a task's run settings (TASK_SETTINGS) and, when given, the tasks it depends on (a cycle is
    refused, named)."""

    scenario = get_scenario(scenario)
    unknown = set(values) - set(TASK_SETTINGS)
    if unknown:
        raise InvalidInput(_("Not task settings: %(names)s.") % {"names": ", ".join(sorted(unknown))})

    def change():
        locked = Scenario.objects.select_for_update().get(pk=scenario.pk)
        for name, value in values.items():
            setattr(locked, name, value)
        validated(locked)
        audit.save_with_reason(locked, "task settings changed")
        if depends_on is not None:
            wanted = {get_scenario(other).pk for other in depends_on}
            cycle = dependency_cycle(locked, wanted) if wanted else None
            if cycle:
                raise InvalidInput(
                    _("These dependencies form a cycle: %(cycle)s. Remove one of them.") % {"cycle": " → ".join(cycle)},
                    fields={"depends_on": _("forms a cycle")},
                )
            locked.depends_on.set(wanted)
        return locked, f"{locked.key}: task settings changed", {"changed": sorted(values)}

    return run_logged(Action.RESCHEDULE, change, actor=actor, via=via, scenario=scenario)


# --- timers, stop-all, the reset on scheduler start -----------------------------------------------------


def _switch_everything_off(locked: dict[str, Scenario], *, reason: str, now: datetime) -> list[str]:
    active = {key for key, s in locked.items() if s.is_active}
    changes = apply_states(
        locked, activate={}, deactivate=active, actor=SYSTEM, reason=reason, now=now, force_remote=True
    )
    return changes["deactivated"]


def _cancel_runs(now: datetime, why: str) -> tuple[int, int]:
    """Cancel pending runs; ask running ones to stop (they do at their next checkpoint)."""
    cancelled = ScenarioRun.objects.pending().update(
        status=RunStatus.CANCELLED, finished_at=now, summary=f"cancelled: {why}"
    )
    asked = ScenarioRun.objects.running().filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now)
    return cancelled, asked


def _close_windows(why: str) -> int:
    return PresetSchedule.objects.filter(window_start__isnull=False).update(
        window_start=None, window_end=None, snapshot=None, last_result=f"window closed by {why}; nothing restored"
    )


@audit.attributed
def stop_all(*, actor, via: str = Via.SYSTEM, reason: str = "") -> dict:
    """Emergency stop: every scenario inactive, pending runs cancelled, running runs asked to stop, open
    preset windows closed without restoring. Never refused: an external service that cannot be reached
    is marked inactive anyway and its error shown on the board."""
    now = timezone.now()

    def change():
        locked = lock_all()
        cancelled, asked = _cancel_runs(now, "emergency stop")
        deactivated = _switch_everything_off(locked, reason=reason or "stop-all", now=now)
        windows = _close_windows("stop-all")
        summary = {
            "deactivated": deactivated,
            "runs_cancelled": cancelled,
            "runs_asked_to_stop": asked,
            "windows_closed": windows,
        }
        message = (
            f"deactivated {len(deactivated)} scenario(s), cancelled {cancelled} pending run(s), "
            f"asked {asked} running run(s) to stop"
        )
        return summary, message, summary

    return run_logged(Action.STOP_ALL, change, actor=actor, via=via, subject="all scenarios", reason=reason)


def reset_on_start() -> dict:
    """Safe by default: what the scheduler start does when SCENARIOS_RESET_ON_START is on (the default).
    Like stop-all, logged as the reset."""
    now = timezone.now()
    actor = audit.system_user()

    def change():
        locked = lock_all()
        cancelled, asked = _cancel_runs(now, "the scheduler restarted")
        deactivated = _switch_everything_off(locked, reason="scheduler start: every scenario starts inactive", now=now)
        windows = _close_windows("the scheduler restart")
        summary = {
            "deactivated": deactivated,
            "runs_cancelled": cancelled,
            "runs_asked_to_stop": asked,
            "windows_closed": windows,
        }
        return summary, f"every scenario inactive ({len(deactivated)} deactivated)", summary

    return run_logged(Action.RESET, change, actor=actor, via=Via.SCHEDULER, subject="all scenarios")


def expire_timers(now: datetime | None = None) -> list[str]:
    """Deactivate the scenarios whose timer ran out (the scheduler tick). Returns their keys."""
    now = now or timezone.now()
    expired = list(Scenario.objects.active().filter(active_until__lte=now).values_list("key", flat=True))
    done = []
    actor = audit.system_user()
    for key in expired:
        with transaction.atomic():
            locked = lock_all()
            scenario = locked.get(key)
            if scenario is None or not scenario.is_active or not scenario.active_until or scenario.active_until > now:
                continue
            until = scenario.active_until
            apply_states(
                locked, activate={}, deactivate={key}, actor=SYSTEM, reason="timer ran out", now=now, force_remote=True
            )
            log_activity(
                Action.EXPIRE,
                actor=actor,
                via=Via.SCHEDULER,
                scenario=scenario,
                reason="timer ran out",
                message=f"{key} deactivated: it was active until {iso(until)}",
            )
            done.append(key)
    return done


# --- runs -----------------------------------------------------------------------------------------------


def publish_run(event_type: str, run_id: int) -> None:
    """Tell the platform's administrators (the scenario board) that a run started or ended
    (`scenario:run-started`, `scenario:run-finished`), after commit, on the platform stream. Call it in the
    transaction that changed the run's status."""
    run = ScenarioRun.objects.select_related("scenario").filter(pk=run_id).first()
    if run is None:
        return
    publish_platform(
        event_type,
        {
            "run": run.pk,
            "scenario": run.scenario.key,
            "status": run.status,
            "trigger": run.trigger,
            "attempt": run.attempt,
            "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at),
            "duration_ms": run.duration_ms,
            "summary": run.summary,
        },
    )


@audit.attributed
def request_run(scenario, *, actor, via: str = Via.SYSTEM, reason: str = "") -> ScenarioRun:
    """Ask for a run now (whatever the scenario's state): the next runner tick executes it."""
    scenario = get_scenario(scenario)

    def change():
        if scenario.kind != Scenario.Kind.INTERNAL:
            raise InvalidInput(
                _("%(key)s is an external service: it runs itself; activate it instead.") % {"key": scenario.key}
            )
        check_activation(scenario)
        run = ScenarioRun.objects.create(
            scenario=scenario,
            slot=timezone.now(),
            trigger=ScenarioRun.Trigger.MANUAL,
            requested_by=actor if getattr(actor, "pk", None) else None,
        )
        return run, f"run #{run.pk} of {scenario.key} requested", {"run": run.pk}

    return run_logged(Action.RUN, change, actor=actor, via=via, scenario=scenario, reason=reason)


@audit.attributed
def cancel_run(run: ScenarioRun, *, actor, via: str = Via.SYSTEM, reason: str = "") -> ScenarioRun:
    """Cancel a pending run, or ask a running one to stop at its next checkpoint."""

    def change():
        now = timezone.now()
        if ScenarioRun.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(
            status=RunStatus.CANCELLED, finished_at=now, summary="cancelled by an operator"
        ):
            message = f"run #{run.pk} cancelled"
            publish_run("scenario:run-finished", run.pk)
        elif ScenarioRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(cancel_requested_at=now):
            message = f"run #{run.pk} asked to stop"
        else:
            raise Conflict(_("Run #%(run)s has already finished.") % {"run": run.pk}, code="run_finished")
        run.refresh_from_db()
        return run, message, {"run": run.pk}

    return run_logged(Action.RUN_CANCEL, change, actor=actor, via=via, scenario=run.scenario, reason=reason)


# --- notifications to the platform's operators -----------------------------------------------------------


def notify_operators(title: str, body: str, **data) -> int:
    """Tell the platform's administrators (active superusers): in-app (and their channels) in the first
    organisation they belong to, by e-mail for those who belong to none. Runs in the caller's transaction;
    mail goes after commit. Returns how many people were told."""

    operators = list(get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk"))
    first_org = {}
    for membership in Membership.objects.active().filter(user__in=operators).order_by("user_id", "organization_id"):
        first_org.setdefault(membership.user_id, membership.organization)
    emails = []
    for user in operators:
        organization = first_org.get(user.pk)
        if organization is not None:
            notify(organization, [user], KIND_RUN_FAILED, {"title": title, "body": body, **data})
        elif user.email:
            emails.append(user.email)
    if emails:

        def mail_operators():
            send_mail(f"[maintenance] {title}", body, None, emails, fail_silently=True)

        transaction.on_commit(mail_operators)
    return len([u for u in operators if u.pk in first_org]) + len(emails)


# --- what the status endpoint, the command line and the board show --------------------------------------


def scenario_summary(scenario: Scenario) -> dict:
    return {
        "key": scenario.key,
        "name": scenario.name,
        "kind": scenario.kind,
        "category": scenario.category,
        "weight": scenario.weight,
        "state": scenario.state,
        "present": scenario.is_present,
        "active_since": iso(scenario.active_since),
        "active_until": iso(scenario.active_until),
        "last_run_status": scenario.last_run_status or None,
        "last_run_at": iso(scenario.last_run_at),
        "remote_health": scenario.remote_health or None if scenario.kind == Scenario.Kind.EXTERNAL else None,
    }


def scenarios_status() -> dict:
    """The scenarios' part of GET /api/v1/status and of `manage.py maintenance status --json` (the same
    dict, so the two always agree). One query."""
    try:
        scenarios = list(Scenario.objects.order_by("key"))
    except DatabaseError as exc:
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    active = [s for s in scenarios if s.is_active]
    return {
        "available": True,
        "active": [s.key for s in active],
        "active_count": len(active),
        "heavy_active": sum(1 for s in active if s.weight == Weight.HEAVY),
        "max_heavy": settings.SCENARIOS_MAX_HEAVY,
        "reset_on_start": settings.SCENARIOS_RESET_ON_START,
        "scenarios": [scenario_summary(s) for s in scenarios],
    }


__all__ = [
    "activate_scenario",
    "cancel_run",
    "deactivate_scenario",
    "expire_timers",
    "measure_load",
    "notify_operators",
    "request_run",
    "reset_on_start",
    "scenarios_status",
    "set_states",
    "stop_all",
]
