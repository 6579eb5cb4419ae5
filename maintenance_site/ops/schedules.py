"""The product's core periodic jobs, registered once as django-celery-beat periodic tasks.

`get_or_create` by name: a row edited in the admin (interval, enabled) keeps its edits across
restarts and migrations. A new core job is one more entry in `core_periodic_tasks()`.
"""

from dataclasses import dataclass

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask


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
            name="core: platform event sweep",
            task="maintenance_site.events.tasks.dispatch_platform_events",
            every_seconds=settings.EVENTS_SWEEP_INTERVAL,
            description="Numbers and delivers platform events (scenarios, resource samples; superusers only) that a "
            "failed or lost dispatch left behind.",
        ),
        CoreTask(
            name="core: event retention",
            task="maintenance_site.events.tasks.prune_events",
            every_seconds=3600,
            description="Deletes delivered events older than EVENTS_RETENTION_DAYS.",
        ),
        CoreTask(
            name="core: idempotency key expiry",
            task="maintenance_site.api.tasks.prune_idempotency_keys",
            every_seconds=3600,
            description="Forgets Idempotency-Key responses older than IDEMPOTENCY_KEY_TTL_HOURS.",
        ),
        CoreTask(
            name="core: notification sweep",
            task="maintenance_site.notifications.tasks.sweep_deliveries",
            every_seconds=60,
            description="Re-sends notification deliveries whose task was lost (broker or worker outage).",
        ),
        CoreTask(
            name="core: notification digests",
            task="maintenance_site.notifications.tasks.send_digests",
            every_seconds=300,
            description="Sends the daily digest e-mails that are due (people who chose a digest).",
        ),
        CoreTask(
            name="core: webhook deliveries",
            task="maintenance_site.webhooks.tasks.deliver_webhooks",
            every_seconds=settings.WEBHOOK_SWEEP_INTERVAL,
            description="Fans out new events to webhook subscriptions and sends what is due (retries, dead workers' "
            "claims).",
        ),
        CoreTask(
            name="core: webhook log retention",
            task="maintenance_site.webhooks.tasks.prune_webhook_log",
            every_seconds=3600,
            description="Forgets finished webhook deliveries older than WEBHOOK_LOG_DAYS.",
        ),
        CoreTask(
            name="core: report schedules",
            task="maintenance_site.reports.tasks.send_scheduled_reports",
            every_seconds=900,
            description="Sends each report schedule's report of its last complete week or month, once per period "
            "(a unique row per schedule and period).",
        ),
        CoreTask(
            name="core: analytics rollups",
            task="maintenance_site.analytics.tasks.rollup_analytics",
            every_seconds=settings.ANALYTICS_ROLLUP_INTERVAL,
            description="Rolls up each organisation's settled days of KPI sums and recomputes the days that changes "
            "touched (organisation-wide figures read them; safe to run twice).",
        ),
        CoreTask(
            name="core: report archive",
            task="maintenance_site.reports.tasks.reports_housekeeping",
            every_seconds=3600,
            description="Deletes archived reports older than REPORTS_RETENTION_DAYS with their files; re-queues "
            "reports whose task was lost.",
        ),
        CoreTask(
            name="core: SLA monitor",
            task="sla.tasks.monitor_sla_clocks",
            every_seconds=settings.SLA_MONITOR_INTERVAL,
            description="Raises SLA warnings and breaches once each: violation, event, escalation steps.",
        ),
        CoreTask(
            name="core: budget thresholds",
            task="workorders.tasks.check_budgets",
            every_seconds=3600,
            description="Announces each budget threshold crossed by actual + committed spend, once.",
        ),
        CoreTask(
            name="core: abandoned uploads",
            task="workorders.tasks.discard_abandoned_uploads",
            every_seconds=3600,
            description="Forgets photo uploads a phone left unfinished for longer than OFFLINE_MAX_AGE_DAYS.",
        ),
        CoreTask(
            name="core: maintenance windows tick",
            task="scheduling.tasks.maintenance_windows_tick",
            every_seconds=settings.MAINTENANCE_CHECK_INTERVAL,
            description="Starts due maintenance windows, ends finished ones, reconciles maintenance mode.",
        ),
        CoreTask(
            name="core: maintenance history cleanup",
            task="scheduling.tasks.prune_maintenance_history",
            every_seconds=3600,
            description="Keeps the newest MAINTENANCE_MAX_HISTORY finished maintenance windows per organisation.",
        ),
        CoreTask(
            name="core: preventive generation",
            task="scheduling.tasks.generate_preventive_work_orders",
            every_seconds=settings.PREVENTIVE_GENERATION_INTERVAL,
            description="Creates the preventive work orders that are due, exactly once (unique per schedule, "
            "asset and due time).",
        ),
        CoreTask(
            name="core: telemetry partitions",
            task="assets.telemetry.tasks.create_telemetry_partitions",
            every_seconds=6 * 3600,
            description="Creates the monthly partitions of IoT points TELEMETRY_PARTITIONS_AHEAD months ahead "
            "(PostgreSQL; idempotent).",
        ),
        CoreTask(
            name="core: telemetry retention",
            task="assets.telemetry.tasks.apply_telemetry_retention",
            every_seconds=3600,
            description="Deletes raw IoT points and rollups older than each organisation keeps them; drops the "
            "monthly partitions every retention has passed.",
        ),
        CoreTask(
            name="core: asset health",
            task="workorders.health.tasks.refresh_asset_health",
            every_seconds=settings.HEALTH_JOB_INTERVAL,
            description="Recomputes the health scores whose inputs changed (at most once per asset per "
            "HEALTH_RECOMPUTE_INTERVAL), opens predictive work orders exactly once per asset and cause, sweeps "
            "deep diagnostics whose task was lost.",
        ),
        CoreTask(
            name="core: scenario scheduler",
            task="scenarios.tasks.scheduler_tick",
            every_seconds=settings.SCENARIO_TICK_INTERVAL,
            description="Switches off expired scenario timers, opens and closes preset windows, records due "
            "scenario runs (once per slot).",
        ),
        CoreTask(
            name="core: scenario runner",
            task="scenarios.tasks.runner_tick",
            every_seconds=settings.SCENARIO_TICK_INTERVAL,
            description="Executes due scenario runs, each claimed once with a conditional update.",
        ),
        CoreTask(
            name="core: resource sampling",
            task="scenarios.tasks.sample_resources",
            every_seconds=settings.RESOURCE_SAMPLE_INTERVAL,
            description="Records the machine's CPU, memory, disk and load once per RESOURCE_SAMPLE_INTERVAL (the "
            "scenario board's charts) and forgets samples older than RESOURCE_SAMPLE_RETENTION_HOURS.",
        ),
        CoreTask(
            name="core: scenario discovery",
            task="scenarios.tasks.discovery_tick",
            every_seconds=settings.DISCOVERY_INTERVAL,
            description="Scans SCENARIO_DISCOVERY_DIR for external scenarios and polls their status endpoints.",
        ),
    ]


def ensure_core_periodic_tasks(using: str = "default") -> int:
    """Create the missing core periodic tasks; returns how many were created."""
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


def after_migrate(sender, using="default", **kwargs):
    """post_migrate receiver (connected by the ops app): the core periodic tasks exist after every migrate."""
    ensure_core_periodic_tasks(using=using)
