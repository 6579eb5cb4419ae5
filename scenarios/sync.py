"""The registry in the database: `sync_registry()` copies the internal scenarios registered in code (and the
built-in presets) into the database. Called on post_migrate (`scenarios.apps`), by the scheduler start and by
`manage.py maintenance sync`. Above `scenarios.services` and `scenarios.presets`, whose machinery it uses."""

import logging

from django.db import connections, transaction
from django.utils import timezone

from maintenance_site import audit
from maintenance_site.tenancy import SYSTEM
from scenarios import presets, registry
from scenarios.models import Scenario, ScenarioActivity
from scenarios.services import lock_all, log_activity, mark_inactive

logger = logging.getLogger(__name__)

Action = ScenarioActivity.Action
Via = ScenarioActivity.Via


def sync_registry() -> dict:
    """Copy the code's registry into Scenario rows: new ones created inactive with their default schedule,
    descriptions and weights updated (an operator's schedule kept), scenarios no longer in code marked not
    present (and switched off); conflicts between internal scenarios as the code declares them; the
    built-in presets. Never activates anything. Called on post_migrate and by the scheduler start."""
    definitions = {d.key: d for d in registry.definitions()}
    created, updated, missing = [], [], []
    now = timezone.now()
    with transaction.atomic():
        locked = lock_all()
        for key, definition in definitions.items():
            if definition.template:
                continue  # a function tasks run (create-task), not a scenario of its own
            scenario = locked.get(key)
            if scenario is not None and scenario.kind != Scenario.Kind.INTERNAL:
                logger.warning("scenario %s: an external service uses the key of an internal scenario", key)
                continue
            fields = {
                "name": definition.name,
                "description": definition.description,
                "category": definition.category,
                "weight": definition.weight,
                "tags": list(definition.tags),
                "is_present": True,
            }
            if scenario is None:
                scenario = Scenario(
                    key=key,
                    kind=Scenario.Kind.INTERNAL,
                    interval_seconds=definition.default_interval,
                    cron=definition.default_cron,
                    **fields,
                )
                scenario.save()
                locked[key] = scenario
                created.append(key)
            elif any(getattr(scenario, name) != value for name, value in fields.items()):
                for name, value in fields.items():
                    setattr(scenario, name, value)
                audit.save_with_reason(scenario, "registry sync")
                updated.append(key)
        for key, scenario in locked.items():
            if (
                scenario.kind == Scenario.Kind.INTERNAL
                and key not in definitions
                and scenario.executor not in definitions
                and scenario.is_present
            ):
                if scenario.is_active:
                    mark_inactive(scenario, "no longer registered in code", now)
                scenario.is_present = False
                audit.save_with_reason(scenario, "no longer registered in code")
                missing.append(key)
        _sync_internal_conflicts(locked, definitions)
        presets.ensure_builtin_presets()
        if created or missing:
            log_activity(
                Action.SYNC,
                via=Via.SYSTEM,
                subject="registry",
                message=f"registered {len(created)} new, {len(missing)} no longer in code",
                details={"created": created, "updated": updated, "missing": missing},
                actor=SYSTEM,
            )
    return {"created": created, "updated": updated, "missing": missing}


def _sync_internal_conflicts(locked: dict[str, Scenario], definitions: dict) -> None:
    wanted: set[frozenset[str]] = set()
    for key, definition in definitions.items():
        for other in definition.conflicts:
            if other in locked:
                wanted.add(frozenset((key, other)))
    internal_ids = {s.pk: key for key, s in locked.items() if s.kind == Scenario.Kind.INTERNAL}
    through = Scenario.conflicts.through
    existing = {
        frozenset((internal_ids[a], internal_ids[b]))
        for a, b in through.objects.filter(
            from_scenario_id__in=internal_ids, to_scenario_id__in=internal_ids
        ).values_list("from_scenario_id", "to_scenario_id")
    }
    for pair in wanted - existing:
        left, right = sorted(pair)
        locked[left].conflicts.add(locked[right])
    for pair in existing - wanted:
        left, right = sorted(pair)
        if left in definitions or right in definitions:
            locked[left].conflicts.remove(locked[right])


def after_migrate(sender, using="default", **kwargs):
    """post_migrate receiver (connected by the scenarios app): copy the registry into the database after
    migrations (never activates anything)."""
    if using != "default" or Scenario._meta.db_table not in connections[using].introspection.table_names():
        return
    sync_registry()
