"""The product's core periodic jobs, registered once as django-celery-beat periodic tasks.

`get_or_create` by name: a row edited in the admin (interval, enabled) keeps its edits across
restarts and migrations. Later apps add their jobs to CORE_PERIODIC_TASKS.
"""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class CoreTask:
    name: str
    task: str
    every_seconds: int
    description: str


def core_periodic_tasks() -> list[CoreTask]:
    return [
        CoreTask(
            name="core: beat heartbeat",
            task="maintenance_site.ops.tasks.beat_heartbeat",
            every_seconds=settings.HEARTBEAT_INTERVAL,
            description="Proves beat and a worker run; read by /health/ready and /api/v1/status.",
        ),
        CoreTask(
            name="core: event sweep",
            task="maintenance_site.events.tasks.sweep_events",
            every_seconds=settings.EVENTS_SWEEP_INTERVAL,
            description="Numbers and delivers events that a failed or lost dispatch left behind.",
        ),
        CoreTask(
            name="core: event retention",
            task="maintenance_site.events.tasks.prune_events",
            every_seconds=3600,
            description="Deletes delivered events older than EVENTS_RETENTION_DAYS.",
        ),
        CoreTask(
            name="core: notification sweep",
            task="maintenance_site.notifications.tasks.sweep_deliveries",
            every_seconds=60,
            description="Re-sends notification deliveries whose task was lost (broker or worker outage).",
        ),
    ]


def ensure_core_periodic_tasks(using: str = "default") -> int:
    """Create the missing core periodic tasks; returns how many were created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    for core in core_periodic_tasks():
        if PeriodicTask.objects.using(using).filter(name=core.name).exists():
            continue
        interval, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=core.every_seconds, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.using(using).create(
            name=core.name, task=core.task, interval=interval, description=core.description
        )
        created += 1
    return created
