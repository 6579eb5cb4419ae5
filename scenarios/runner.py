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
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site import audit
from maintenance_site.errors import Conflict
from maintenance_site.tenancy import SYSTEM
from scenarios import backups, priority, registry
from scenarios.models import Scenario, ScenarioActivity, ScenarioRun, Weight, cron_previous
from scenarios.registry import RunCancelled, RunContext, RunResult, RunTimedOut
from scenarios.services import iso, log_activity, notify_operators, publish_run, worker_name

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
    lease = timedelta(minutes=settings.SCENARIO_RUN_LEASE_MINUTES)
    stale = ScenarioRun.objects.running().filter(heartbeat_at__lt=now - lease)
    count = 0
    for run in stale.select_related("scenario"):
        with transaction.atomic():
            ended = ScenarioRun.objects.filter(pk=run.pk, status=Status.RUNNING, heartbeat_at=run.heartbeat_at).update(
                status=Status.FAILED,
                finished_at=now,
                summary=f"abandoned: no sign of life since {iso(run.heartbeat_at)} (did the worker {run.worker} stop?)",
            )
            _remember_last_run(run.scenario_id, Status.FAILED, now, "abandoned by its worker")
            if ended:
                publish_run("scenario:run-finished", run.pk)
        count += ended
    return count


def expire_timed_out_runs(now: datetime | None = None) -> int:
    """Mark timed out the running runs past their deadline, and set their cancel flag so that the executor
    stops at its next checkpoint (whatever the worker pool; Celery's time limit is only a second line)."""
    now = now or timezone.now()
    count = 0
    for run in ScenarioRun.objects.running().filter(deadline_at__lt=now).select_related("scenario"):
        with transaction.atomic():
            ended = ScenarioRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
                status=Status.TIMED_OUT,
                finished_at=now,
                cancel_requested_at=now,
                duration_ms=round((now - (run.started_at or now)).total_seconds() * 1000),
                summary=f"timed out: still running at its deadline {iso(run.deadline_at)}",
            )
            if ended:
                _remember_last_run(run.scenario_id, Status.TIMED_OUT, now, "timed out")
                publish_run("scenario:run-finished", run.pk)
        if ended:
            count += 1
            run.refresh_from_db()
            _after_failure(run)
    return count


def _in_window(scenario: Scenario, now: datetime) -> bool:
    """Whether `now` is inside the task's execution window: its hours and weekdays in the platform's time zone
    (settings.TIME_ZONE)."""
    local = timezone.localtime(now)
    if scenario.allowed_hours and local.hour not in scenario.allowed_hours:
        return False
    return not (scenario.allowed_weekdays and local.weekday() not in scenario.allowed_weekdays)


def _waits(run: ScenarioRun, scenario: Scenario, now: datetime) -> str:
    """Why the run must wait now ("" when it may start): backoff, window, cooldown, dependencies, the
    concurrency limit."""
    if run.not_before and run.not_before > now:
        return f"retry waits until {iso(run.not_before)}"
    if not _in_window(scenario, now):
        return "outside its execution window"
    if scenario.cooldown_minutes:
        last = (
            ScenarioRun.objects.filter(scenario=scenario, started_at__isnull=False)
            .exclude(pk=run.pk)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        if last and now - last < timedelta(minutes=scenario.cooldown_minutes):
            return f"cooling down until {iso(last + timedelta(minutes=scenario.cooldown_minutes))}"
    dependencies = list(scenario.depends_on.values_list("pk", flat=True))
    if (
        dependencies
        and ScenarioRun.objects.filter(
            scenario_id__in=dependencies, slot=run.slot, status__in=[Status.PENDING, Status.RUNNING]
        ).exists()
    ):
        return "waiting for its dependencies' runs of the same slot"
    if ScenarioRun.objects.running().count() >= settings.SCENARIO_MAX_CONCURRENT:
        return "the concurrency limit is reached"
    return ""


def _claim(run: ScenarioRun, now: datetime) -> bool:
    """Claim one pending run if the rules allow it now; False when it must wait or another runner won."""
    with transaction.atomic():
        scenario_id = run.scenario_id
        # Lock every scenario row (tens of rows, pk order as state changes do): claims are serialised, so the
        # heavy gate, SCENARIO_MAX_CONCURRENT and the dependency wait count running runs no other claim races.
        rows = Scenario.objects.select_for_update().order_by("pk")
        locked = {s.pk: s for s in rows}
        scenario = locked.get(scenario_id)
        if scenario is None:
            return False
        # A scheduled run needs its scenario still active; a retry of a scheduled run too (a retry of a
        # run asked for by hand goes ahead like the run it repeats).
        scheduled = run_origin(run) == Trigger.SCHEDULE
        if scheduled and not (scenario.is_active and scenario.is_present):
            ScenarioRun.objects.filter(pk=run.pk, status=Status.PENDING).update(
                status=Status.CANCELLED, finished_at=now, summary="cancelled: the scenario is no longer active"
            )
            return False
        running = ScenarioRun.objects.running()
        if running.filter(scenario_id=scenario_id).exists():
            return False  # the same scenario is still running: wait
        if scenario.weight == Weight.HEAVY and running.filter(scenario__weight=Weight.HEAVY).exists():
            return False  # another heavy scenario is running: wait
        if _waits(run, scenario, now):
            return False
        claimed = ScenarioRun.objects.filter(pk=run.pk, status=Status.PENDING).update(
            status=Status.RUNNING,
            claimed_at=now,
            started_at=now,
            heartbeat_at=now,
            worker=worker_name(),
            deadline_at=now + timedelta(seconds=scenario.timeout_seconds),
        )
        if claimed:
            publish_run("scenario:run-started", run.pk)
        return bool(claimed)


def _checker(run_id: int):
    def check():
        now = timezone.now()
        ScenarioRun.objects.filter(pk=run_id, status=Status.RUNNING).update(heartbeat_at=now)
        state = ScenarioRun.objects.filter(pk=run_id).values("status", "cancel_requested_at", "deadline_at").first()
        if state is None:
            raise RunCancelled("the run was deleted")
        if state["status"] == Status.TIMED_OUT or (state["deadline_at"] and state["deadline_at"] < now):
            raise RunTimedOut("deadline passed")
        if state["cancel_requested_at"] is not None:
            raise RunCancelled("cancel requested")

    return check


def _remember_last_run(scenario_id: int, status: str, at: datetime, summary: str) -> None:
    Scenario.objects.filter(pk=scenario_id).update(
        last_run_at=at, last_run_status=status, last_run_summary=(summary or "")[:500]
    )


def _prepare_workspace(run: ScenarioRun, definition, context: RunContext):
    """A workspace executor's run: its workspace's path in the context and, when the executor may change files,
    their backup (the run's file rollback point). Returns the backup, or None."""
    scenario = run.scenario
    if scenario.workspace is None:
        raise LookupError(f"{scenario.key} runs {definition.key}, which needs a workspace: the task has none")
    root = Path(scenario.workspace.path).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"the workspace {scenario.workspace.key} ({root}) is not a directory")
    context.workspace = root
    paths = definition.touches(root, context.config) if definition.touches else None
    if paths is None:
        return None
    return backups.create(run, scenario.workspace, paths)


def execute(run: ScenarioRun) -> ScenarioRun:
    """Execute a run this runner has claimed, and record how it ended."""
    run = ScenarioRun.objects.select_related("scenario", "scenario__workspace").get(pk=run.pk)
    scenario = run.scenario
    definition = registry.get(scenario.executor_key)
    context = RunContext(
        scenario_key=scenario.key, now=run.started_at or timezone.now(), run_id=run.pk, config=dict(scenario.config)
    )
    context._check = _checker(run.pk)
    if run.deadline_at is not None:
        context.deadline = time.monotonic() + (run.deadline_at - timezone.now()).total_seconds()
    started = time.perf_counter()
    error, data, changed = "", {}, 0
    backup, diff = None, {}
    token = current_run.set(run.pk)
    try:
        if definition is None:
            raise LookupError(f"{scenario.key} is no longer registered in code")
        if definition.needs_workspace:
            backup = _prepare_workspace(run, definition, context)
        with audit.acting_as(audit.system_user(), reason=change_reason(run.pk)):
            result = definition.func(context)
        if not isinstance(result, RunResult):
            raise TypeError(f"{scenario.key} returned {type(result).__name__}, not a RunResult")
        status = Status.SKIPPED if result.skipped else Status.SUCCEEDED if result.ok else Status.FAILED
        summary, data, changed = result.summary, result.data, result.changed
    except RunTimedOut:
        status, summary = (
            Status.TIMED_OUT,
            f"timed out after {scenario.timeout_seconds} seconds (stopped at a checkpoint)",
        )
    except RunCancelled:
        status, summary = Status.CANCELLED, "cancelled: stopped at a checkpoint after a cancel request"
    except Exception as exc:  # a scenario's failure of any kind is recorded on its run, never raised
        status, summary = Status.FAILED, f"{type(exc).__name__}: {exc}"
        error = traceback.format_exc()
        logger.exception("scenario run %s (%s) failed", run.pk, scenario.key)
    finally:
        current_run.reset(token)
        if backup is not None:
            try:
                diff = backups.finish(backup)
            except OSError:
                logger.exception("run %s: the workspace's diff could not be taken", run.pk)
            else:
                changed = max(changed, diff["files_modified"])
                if isinstance(data, dict):
                    data = {**data, "files_changed": diff["files"][:200]}
    finished = timezone.now()
    output = "\n".join(context.lines)
    with transaction.atomic():  # the run's end and its event commit together
        ended = ScenarioRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=status,
            finished_at=finished,
            duration_ms=round((time.perf_counter() - started) * 1000),
            summary=summary[:500],
            output=output[-OUTPUT_LIMIT:],
            error=error[-OUTPUT_LIMIT:],
            result=data,
            changed=changed,
            issues_fixed=int(data.get("issues_fixed", 0) or 0) if isinstance(data, dict) else 0,
            files_modified=diff.get("files_modified", 0),
            lines_added=diff.get("lines_added", 0),
            lines_removed=diff.get("lines_removed", 0),
        )
        if ended:
            _remember_last_run(scenario.pk, status, finished, summary)
            publish_run("scenario:run-finished", run.pk)
    if diff:  # the files it changed, whoever recorded its end (a rollback point needs them)
        ScenarioRun.objects.filter(pk=run.pk).update(
            changed=changed,
            files_modified=diff["files_modified"],
            lines_added=diff["lines_added"],
            lines_removed=diff["lines_removed"],
        )
    if status == Status.TIMED_OUT:  # the tick may have marked it already: keep its record, add the output
        ScenarioRun.objects.filter(pk=run.pk, status=Status.TIMED_OUT, output="").update(output=output[-OUTPUT_LIMIT:])
    run.refresh_from_db()
    _remember_last_run(scenario.pk, run.status, finished, run.summary)
    if run.status == Status.FAILED:
        _report_failure(run)
    # A run the tick marked timed out was followed up there; one this execution finished is followed up here.
    finished_here = run.finished_at == finished
    if finished_here and run.status in (Status.FAILED, Status.TIMED_OUT):
        _after_failure(run)
    return run


def run_origin(run: ScenarioRun) -> str:
    """How the first attempt of a chain of retries was triggered (schedule or manual): a retry of a scheduled
    run needs its scenario still active, a retry of a run asked for by hand does not."""
    trigger, previous = run.trigger, run.retry_of_id
    for _attempt in range(20):  # max_retries is at most 10
        if trigger != Trigger.RETRY:
            return trigger
        found = ScenarioRun.objects.filter(pk=previous).values_list("trigger", "retry_of_id").first()
        if found is None:
            return Trigger.MANUAL
        trigger, previous = found
    return Trigger.MANUAL


def consecutive_failures(scenario_id: int) -> int:
    """Failed or timed-out runs since the task's last success (skipped and cancelled runs aside)."""
    count = 0
    statuses = (
        ScenarioRun.objects.filter(
            scenario_id=scenario_id, status__in=[Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT]
        )
        .order_by("-finished_at", "-pk")
        .values_list("status", flat=True)
    )
    for status in statuses.iterator():
        if status == Status.SUCCEEDED:
            break
        count += 1
    return count


def _after_failure(run: ScenarioRun) -> None:
    """A failed or timed-out run: schedule its retry (exponential backoff) while the task allows more, and
    alert the operators once per streak when consecutive failures reach SCENARIO_FAILURE_ALERT_THRESHOLD."""
    scenario = run.scenario
    if run.attempt <= scenario.max_retries:
        delay = settings.SCENARIO_RETRY_BACKOFF_SECONDS * 2 ** (run.attempt - 1)
        not_before = (run.finished_at or timezone.now()) + timedelta(seconds=delay)
        ScenarioRun.objects.get_or_create(
            scenario=scenario,
            slot=not_before,
            defaults={
                "trigger": Trigger.RETRY,
                "attempt": run.attempt + 1,
                "not_before": not_before,
                "retry_of": run,
                "requested_by": run.requested_by,
            },
        )
    threshold = settings.SCENARIO_FAILURE_ALERT_THRESHOLD
    streak = consecutive_failures(scenario.pk)
    if threshold and streak == threshold:
        with transaction.atomic():
            log_activity(
                ScenarioActivity.Action.FAILURE_ALERT,
                via=ScenarioActivity.Via.SCHEDULER,
                scenario=scenario,
                result=ScenarioActivity.Result.FAILED,
                message=f"{scenario.key} failed {streak} times in a row (last: run #{run.pk}: {run.summary})",
                details={"run": run.pk, "consecutive_failures": streak},
                actor=SYSTEM,
            )
            notify_operators(
                f"Maintenance task {scenario.key} failed {streak} times in a row",
                f"{scenario.key} failed {streak} times in a row; the last run #{run.pk}: {run.summary}",
                url=f"/admin/scenarios/scenariorun/{run.pk}/change/",
                scenario=scenario.key,
                run=run.pk,
                consecutive_failures=streak,
            )


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
        actor=SYSTEM,
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
    expire_timed_out_runs(now)
    started = time.monotonic()
    executed, waiting = [], set()
    while len(executed) < limit and time.monotonic() - started < budget_seconds:
        moment = now or timezone.now()
        candidates = list(
            ScenarioRun.objects.pending()
            .filter(slot__lte=moment)
            .exclude(pk__in=waiting)
            .select_related("scenario")
            .order_by("slot", "pk")[:50]
        )
        # Highest priority score first (scenarios.priority), the oldest slot breaking ties.
        candidates.sort(key=lambda run: -priority.score(run.scenario, run, moment))
        claimed = None
        for run in candidates:
            if _claim(run, moment):
                claimed = run
                break
            waiting.add(run.pk)
        if claimed is None:
            break
        executed.append(execute(claimed))
        waiting = set()  # a finished run may free those that waited (dependencies, the concurrency limit)
    return executed


def run_now(run: ScenarioRun) -> ScenarioRun:
    """Claim and execute one run in this process (the command line's `run KEY --wait`). Raises Conflict
    when it cannot start now."""
    if not _claim(run, timezone.now()):
        run.refresh_from_db()
        raise Conflict(
            _(
                "Run #%(run)s cannot start now (%(status)s): the scenario, or another heavy one, is running; "
                "the runner will start it when it can."
            )
            % {"run": run.pk, "status": run.status},
            code="run_waiting",
        )
    return execute(run)
