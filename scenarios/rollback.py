"""Rollback points: what a run changed, found through the history rows it wrote (change reason
"scenario-run:<id>", set by the runner for everything a run saves), and the rollback that restores it.

A run offers a rollback point when its task is reversible (the registry's `reversible=False` marks vacuum,
backup and pruning, whose work cannot be undone), it finished, it wrote history rows, it was not rolled back
already, it is not older than SCENARIO_ROLLBACK_DAYS and it is among the task's SCENARIO_ROLLBACK_MAX latest
such runs.

`rollback(run, reason)` restores, for every record the run touched, the state the record had before the run:
a record the run created is deleted, one it deleted is recreated, one it changed gets its earlier field values
back, each through a save (or delete) whose history row says "rollback of run <id>: <reason>". It is refused,
listing the records, when any of them changed after the run (unless `force`), and when the integrity check
finds a record that cannot be restored (no earlier state, or a foreign key pointing at a row that is gone).

A workspace run's rollback point also covers files (`scenarios.backups`): their checksums are verified first (a
file changed since the run, or a damaged backup copy, refuses the rollback with the files named; `force` does not
override it), then the exact bytes are put back and the files the run created are deleted.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput
from scenarios import backups, registry
from scenarios.models import ScenarioActivity, ScenarioRun, WorkspaceBackup
from scenarios.services import log_activity


def run_reason(run_id: int) -> str:
    return f"scenario-run:{run_id}"


def history_models() -> list:
    """(model, its historical model) for every model that keeps history."""
    found = []
    for model in apps.get_models():
        attribute = getattr(model._meta, "simple_history_manager_attribute", None)
        if attribute and hasattr(model, attribute):
            found.append((model, getattr(model, attribute).model))
    return found


@dataclass
class Change:
    """One record a run touched: the history rows before, during and after the run."""

    model: type
    history_model: type
    pk: object
    first: object  # the run's first history row of this record
    last: object  # the run's last one
    before: object | None  # the history row before the run (None: the run created it)
    later: list = field(default_factory=list)  # history rows written after the run

    @property
    def label(self) -> str:
        return f"{self.model._meta.label} #{self.pk}"

    @property
    def created(self) -> bool:
        return self.first.history_type == "+"

    @property
    def deleted(self) -> bool:
        return self.last.history_type == "-"


def changes(run: ScenarioRun) -> list[Change]:
    """Every record the run wrote history for, in model then pk order."""
    reason = run_reason(run.pk)
    found = []
    for model, history_model in history_models():
        pk_name = model._meta.pk.attname
        rows = list(history_model.objects.filter(history_change_reason=reason).order_by("history_date", "history_id"))
        by_pk: dict = {}
        for row in rows:
            by_pk.setdefault(getattr(row, pk_name), []).append(row)
        for pk, own in sorted(by_pk.items(), key=lambda item: str(item[0])):
            others = history_model.objects.filter(**{pk_name: pk}).exclude(history_change_reason=reason)
            before = others.filter(history_id__lt=own[0].history_id).order_by("-history_date", "-history_id").first()
            later = list(others.filter(history_id__gt=own[-1].history_id).order_by("history_date", "history_id"))
            found.append(Change(model, history_model, pk, own[0], own[-1], before, later))
    return found


def _is_reversible(run: ScenarioRun) -> bool:
    definition = registry.get(run.scenario.executor_key)
    return definition is not None and definition.reversible


def file_backup(run: ScenarioRun) -> WorkspaceBackup | None:
    """The run's file backup (a workspace run that may change files), or None."""
    try:
        return run.backup
    except ObjectDoesNotExist:
        return None


def points(scenario=None):
    """The runs that offer a rollback point now, newest first (the limits applied). A workspace run offers
    one while its file backup is kept (not evicted by the size limit, not restored)."""
    oldest = timezone.now() - timedelta(days=settings.SCENARIO_ROLLBACK_DAYS)
    runs = (
        ScenarioRun.objects.finished()
        .filter(rolled_back_at__isnull=True, rollback_expired_at__isnull=True, finished_at__gte=oldest, changed__gt=0)
        .exclude(status=ScenarioRun.Status.SKIPPED)
        .select_related("scenario", "backup", "backup__workspace")
        .order_by("-finished_at", "-pk")
    )
    if scenario is not None:
        runs = runs.filter(scenario=scenario)
    limit, per_task, found = settings.SCENARIO_ROLLBACK_MAX, {}, []
    for run in runs:
        if not _is_reversible(run):
            continue
        backup = file_backup(run)
        if backup is not None and not backup.is_available:
            continue
        per_task[run.scenario_id] = per_task.get(run.scenario_id, 0) + 1
        if per_task[run.scenario_id] <= limit:
            found.append(run)
    return found


def integrity_problems(found: list[Change]) -> list[str]:
    """What would make a restore fail: a changed record with no earlier state, a record that should exist
    but is gone, a foreign key of the earlier state pointing at a row that no longer exists."""
    problems = []
    for change in found:
        exists = change.model._default_manager.filter(pk=change.pk).exists()
        if not change.created and change.before is None:
            problems.append(f"{change.label}: no state before the run is recorded")
            continue
        if not change.deleted and not exists and not change.later:
            problems.append(f"{change.label}: the record is gone")
        if change.before is not None:
            for model_field in change.model._meta.concrete_fields:
                if isinstance(model_field, models.ForeignKey):
                    value = getattr(change.before, model_field.attname, None)
                    target = model_field.related_model
                    if value is not None and not target._default_manager.filter(pk=value).exists():
                        problems.append(
                            f"{change.label}: {model_field.name} points at {target.__name__} #{value}, gone"
                        )
    return problems


@audit.attributed
def rollback(run: ScenarioRun, reason: str, *, force: bool = False, actor, via=ScenarioActivity.Via.SYSTEM) -> dict:
    """Restore the records the run changed to their state before it. Returns what was restored. History and the
    log name the actor (`SYSTEM`: the system user)."""
    if not reason or not reason.strip():
        raise InvalidInput(_("Give a reason for the rollback."), fields={"reason": _("Say why you roll back.")})
    run = ScenarioRun.objects.select_related("scenario").get(pk=run.pk)
    if not _is_reversible(run):
        raise Conflict(
            _("%(key)s is irreversible (its work cannot be undone): no rollback point.") % {"key": run.scenario.key}
        )
    if run.rolled_back_at is not None:
        raise Conflict(
            _("Run #%(run)s was already rolled back on %(moment)s.")
            % {"run": run.pk, "moment": f"{run.rolled_back_at:%Y-%m-%d %H:%M}"}
        )
    if run.status not in ScenarioRun.FINISHED:
        raise Conflict(
            _("Run #%(run)s is still %(status)s: roll it back when it has finished.")
            % {"run": run.pk, "status": run.status}
        )
    backup = file_backup(run)
    if backup is not None and backup.evicted_at is not None:
        raise Conflict(
            _(
                "Run #%(run)s offers no rollback point: its file backup was evicted on %(moment)s "
                "(SCENARIO_MAX_BACKUP_SIZE_MB or --rollback-days)."
            )
            % {"run": run.pk, "moment": f"{backup.evicted_at:%Y-%m-%d %H:%M}"}
        )
    if run not in points(run.scenario):
        raise Conflict(
            _(
                "Run #%(run)s offers no rollback point: it changed nothing, or it is older than %(days)s days or "
                "than the task's %(limit)s latest rollback points."
            )
            % {"run": run.pk, "days": settings.SCENARIO_ROLLBACK_DAYS, "limit": settings.SCENARIO_ROLLBACK_MAX}
        )
    text = f"rollback of run {run.pk}: {reason.strip()}"
    if backup is not None:
        problems = backups.verify(backup)
        if problems:
            raise Conflict(
                _("Refused: the files of run #%(run)s cannot be restored: %(problems)s.")
                % {"run": run.pk, "problems": "; ".join(problems)},
                code="files_changed",
            )
    with transaction.atomic():
        found = changes(run)
        if not found and backup is None:
            raise Conflict(_("Run #%(run)s wrote no history rows: nothing to roll back.") % {"run": run.pk})
        changed_later = [change.label for change in found if change.later]
        if changed_later and not force:
            raise Conflict(
                _(
                    "Refused: these records changed after run #%(run)s: %(records)s. "
                    "Check them, then force the rollback to overwrite those changes."
                )
                % {"run": run.pk, "records": ", ".join(changed_later)},
                code="changed_after_run",
            )
        problems = integrity_problems(found)
        if problems:
            raise Conflict(
                _("Refused by the integrity check: %(problems)s.") % {"problems": "; ".join(problems)}, code="integrity"
            )
        restored, deleted, recreated = [], [], []
        with audit.acting_as(actor, reason=text):
            for change in found:
                current = change.model._default_manager.filter(pk=change.pk).first()
                if change.created:
                    if current is not None:
                        current._change_reason = text
                        current.delete()
                        deleted.append(change.label)
                    continue
                instance = change.before.instance
                instance._change_reason = text
                instance.save()
                (recreated if current is None else restored).append(change.label)
        files = backups.restore(backup) if backup is not None else {"files_restored": [], "files_deleted": []}
        ScenarioRun.objects.filter(pk=run.pk).update(rolled_back_at=timezone.now(), rollback_reason=text[:500])
        outcome = {
            "run": run.pk,
            "restored": restored,
            "deleted": deleted,
            "recreated": recreated,
            "forced": force,
            **files,
        }
        log_activity(
            ScenarioActivity.Action.ROLLBACK,
            via=via,
            actor=actor,
            scenario=run.scenario,
            reason=reason.strip()[:500],
            message=f"rolled back run #{run.pk}: {len(restored)} restored, {len(deleted)} deleted, "
            f"{len(recreated)} recreated; files: {len(files['files_restored'])} restored, "
            f"{len(files['files_deleted'])} deleted" + (" (forced)" if force else ""),
            details=outcome,
        )
    return outcome
