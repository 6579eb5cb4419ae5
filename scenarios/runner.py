"""The scenario runner: records due runs (the scheduler tick) and executes them (the runner tick).

Recording: for every active internal scenario, the latest moment its schedule has reached since it was
activated is its due slot; `ScenarioRun(scenario, slot)` is created once under a unique constraint, so a
second beat, a tick that runs twice or two machines add nothing. Activation does not run a scenario at
once: with an interval the first slot is one interval after activation, with cron the first cron time
after it ("run now" is an explicit request). Catch-up policy: only the latest slot is recorded; an
older run still pending is skipped as superseded, so a stopped runner does not come back to a backlog.

Executing: a run is claimed with a conditional UPDATE (pending → running, one winner), executed outside
any transaction as the system user, with history rows it writes carrying the change reason
"scenario-run:<id>", and finished with a conditional UPDATE. Heavy scenarios never run two at a time;
one scenario never runs twice at once. A running run that shows no sign of life (heartbeat, refreshed
at each checkpoint) for SCENARIO_RUN_LEASE_MINUTES is marked failed.
"""

import logging
import math
import time
import traceback
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from maintenance_site import audit
from scenarios import conf, registry
from scenarios.models import Scenario, ScenarioActivity, ScenarioRun, Weight, cron_previous
from scenarios.registry import RunCancelled, RunContext, RunResult
from scenarios.services import iso, log_activity, notify_operators, worker_name

logger = logging.getLogger(__name__)

Status = ScenarioRun.Status
Trigger = ScenarioRun.Trigger

# The run being executed in this thread, for code that wants to tag what it writes.
current_run: ContextVar[int | None] = ContextVar("current_scenario_run", default=None)

OUTPUT_LIMIT = 100_000
RUNNER_BUDGET_SECONDS = 240  # a tick stops claiming new runs after this long (the next tick continues)


def change_reason(run_id: int) -> str:
    """The change reason of history rows written by a run (what a rollback looks for)."""
    return f"scenario-run:{run_id}"


# --- recording due runs --------------------------------------------------------------------------------


def due_slot(scenario: Scenario, now: datetime) -> datetime | None:
    """The latest moment the scenario's schedule has reached since its activation, or None."""
    if not scenario.is_active or scenario.active_since is None or scenario.kind != Scenario.Kind.INTERNAL:
        return None
    since = scenario.active_since
    if scenario.interval_seconds:
        periods = math.floor((now - since).total_seconds() / scenario.interval_seconds)
        if periods < 1:
            return None
        return since + timedelta(seconds=periods * scenario.interval_seconds)
    if scenario.cron:
        previous = cron_previous(scenario.cron, scenario.time_zone, now)
        return previous if previous > since else None
    return None


def record_due_runs(now: datetime | None = None) -> list[ScenarioRun]:
    """Record the runs that are due; returns those created (duplicates add nothing)."""
    now = now or timezone.now()
    created = []
    for scenario in Scenario.objects.active().internal().present():
        slot = due_slot(scenario, now)
        if slot is None:
            continue
        run, made = ScenarioRun.objects.get_or_create(
            scenario=scenario, slot=slot, defaults={"trigger": Trigger.SCHEDULE}
        )
        if not made:
            continue
        created.append(run)
        ScenarioRun.objects.filter(
            scenario=scenario, status=Status.PENDING, trigger=Trigger.SCHEDULE, slot__lt=slot
        ).update(status=Status.SKIPPED, finished_at=now, summary=f"superseded by the run due at {iso(slot)}")
    return created


# --- executing -----------------------------------------------------------------------------------------


def expire_abandoned_runs(now: datetime | None = None) -> int:
    """Mark failed the running runs whose worker stopped giving signs of life."""
    now = now or timezone.now()
    lease = timedelta(minutes=conf.get("SCENARIO_RUN_LEASE_MINUTES") or 60)
    stale = ScenarioRun.objects.running().filter(heartbeat_at__lt=now - lease)
    count = 0
    for run in stale.select_related("scenario"):
        count += ScenarioRun.objects.filter(pk=run.pk, status=Status.RUNNING, heartbeat_at=run.heartbeat_at).update(
            status=Status.FAILED,
            finished_at=now,
            summary=f"abandoned: no sign of life since {iso(run.heartbeat_at)} (did the worker {run.worker} stop?)",
        )
        _remember_last_run(run.scenario_id, Status.FAILED, now, "abandoned by its worker")
    return count


def _claim(run: ScenarioRun, now: datetime) -> bool:
    """Claim one pending run if the rules allow it now; False when it must wait or another runner won."""
    with transaction.atomic():
        scenario_id = run.scenario_id
        # Lock the run's scenario, and every heavy one when it is heavy (pk order, as state changes do).
        rows = Scenario.objects.select_for_update().filter(Q(pk=scenario_id) | Q(weight=Weight.HEAVY)).order_by("pk")
        locked = {s.pk: s for s in rows}
        scenario = locked.get(scenario_id)
        if scenario is None:
            return False
        if run.trigger == Trigger.SCHEDULE and not (scenario.is_active and scenario.is_present):
            ScenarioRun.objects.filter(pk=run.pk, status=Status.PENDING).update(
                status=Status.CANCELLED, finished_at=now, summary="cancelled: the scenario is no longer active"
            )
            return False
        running = ScenarioRun.objects.running()
        if running.filter(scenario_id=scenario_id).exists():
            return False  # the same scenario is still running: wait
        if scenario.weight == Weight.HEAVY and running.filter(scenario__weight=Weight.HEAVY).exists():
            return False  # another heavy scenario is running: wait
        return bool(
            ScenarioRun.objects.filter(pk=run.pk, status=Status.PENDING).update(
                status=Status.RUNNING, claimed_at=now, started_at=now, heartbeat_at=now, worker=worker_name()
            )
        )


def _checker(run_id: int):
    def check():
        now = timezone.now()
        ScenarioRun.objects.filter(pk=run_id, status=Status.RUNNING).update(heartbeat_at=now)
        if ScenarioRun.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists():
            raise RunCancelled("cancel requested")

    return check


def _remember_last_run(scenario_id: int, status: str, at: datetime, summary: str) -> None:
    Scenario.objects.filter(pk=scenario_id).update(
        last_run_at=at, last_run_status=status, last_run_summary=(summary or "")[:500]
    )


def execute(run: ScenarioRun) -> ScenarioRun:
    """Execute a run this runner has claimed, and record how it ended."""
    run = ScenarioRun.objects.select_related("scenario").get(pk=run.pk)
    scenario = run.scenario
    definition = registry.get(scenario.key)
    context = RunContext(scenario_key=scenario.key, now=run.started_at or timezone.now(), run_id=run.pk)
    context._check = _checker(run.pk)
    started = time.perf_counter()
    error, data, changed = "", {}, 0
    token = current_run.set(run.pk)
    try:
        if definition is None:
            raise LookupError(f"{scenario.key} is no longer registered in code")
        with audit.acting_as(audit.system_user(), reason=change_reason(run.pk)):
            result = definition.func(context)
        if not isinstance(result, RunResult):
            raise TypeError(f"{scenario.key} returned {type(result).__name__}, not a RunResult")
        status = Status.SKIPPED if result.skipped else Status.SUCCEEDED if result.ok else Status.FAILED
        summary, data, changed = result.summary, result.data, result.changed
    except RunCancelled:
        status, summary = Status.CANCELLED, "cancelled: stopped at a checkpoint after a cancel request"
    except Exception as exc:  # a scenario's failure of any kind is recorded on its run, never raised
        status, summary = Status.FAILED, f"{type(exc).__name__}: {exc}"
        error = traceback.format_exc()
        logger.exception("scenario run %s (%s) failed", run.pk, scenario.key)
    finally:
        current_run.reset(token)
    finished = timezone.now()
    output = "\n".join(context.lines)
    ScenarioRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
        status=status,
        finished_at=finished,
        duration_ms=round((time.perf_counter() - started) * 1000),
        summary=summary[:500],
        output=output[-OUTPUT_LIMIT:],
        error=error[-OUTPUT_LIMIT:],
        result=data,
        changed=changed,
    )
    run.refresh_from_db()
    _remember_last_run(scenario.pk, run.status, finished, run.summary)
    if run.status == Status.FAILED:
        _report_failure(run)
    return run


def _report_failure(run: ScenarioRun) -> None:
    """Tell the operators when a scenario starts failing (not again while it keeps failing)."""
    previous = (
        ScenarioRun.objects.finished()
        .filter(scenario_id=run.scenario_id, finished_at__lt=run.finished_at)
        .exclude(pk=run.pk)
        .exclude(status=Status.CANCELLED)
        .order_by("-finished_at")
        .values_list("status", flat=True)
        .first()
    )
    log_activity(
        ScenarioActivity.Action.RUN_FAILED,
        via=ScenarioActivity.Via.SCHEDULER,
        scenario=run.scenario,
        result=ScenarioActivity.Result.FAILED,
        message=f"run #{run.pk}: {run.summary}",
        details={"run": run.pk},
    )
    if previous == Status.FAILED:
        return
    with transaction.atomic():
        notify_operators(
            f"Maintenance scenario {run.scenario.key} failed",
            f"Run #{run.pk} of {run.scenario.key} failed: {run.summary}",
            url=f"/admin/scenarios/scenariorun/{run.pk}/change/",
            scenario=run.scenario.key,
            run=run.pk,
        )


def run_due(now: datetime | None = None, *, limit: int = 50, budget_seconds: float = RUNNER_BUDGET_SECONDS) -> list:
    """The runner tick: expire abandoned runs, then claim and execute due runs one after the other, oldest
    slot first, until none is left, `limit` ran or `budget_seconds` passed. Returns the runs executed."""
    expire_abandoned_runs(now)
    started = time.monotonic()
    executed, waiting = [], set()
    while len(executed) < limit and time.monotonic() - started < budget_seconds:
        moment = now or timezone.now()
        candidates = (
            ScenarioRun.objects.pending().filter(slot__lte=moment).exclude(pk__in=waiting).order_by("slot", "pk")[:20]
        )
        claimed = None
        for run in candidates:
            if _claim(run, moment):
                claimed = run
                break
            waiting.add(run.pk)
        if claimed is None:
            break
        executed.append(execute(claimed))
    return executed


def run_now(run: ScenarioRun) -> ScenarioRun:
    """Claim and execute one run in this process (the command line's `run KEY --wait`). Raises Conflict
    when it cannot start now."""
    from maintenance_site.errors import Conflict

    if not _claim(run, timezone.now()):
        run.refresh_from_db()
        raise Conflict(
            f"Run #{run.pk} cannot start now ({run.status}): the scenario, or another heavy one, is running; "
            "the runner will start it when it can.",
            code="run_waiting",
        )
    return execute(run)
