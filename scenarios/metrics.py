"""History and metrics of the automated tasks, read from their runs (ScenarioRun, append-only), and the
cleanup of old runs and rollback points."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Avg, Count, Max, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from maintenance_site import audit
from maintenance_site.errors import InvalidInput
from scenarios import runner
from scenarios.models import Scenario, ScenarioActivity, ScenarioRun
from scenarios.services import log_activity

Status = ScenarioRun.Status
COUNTED = [Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT]  # skipped and cancelled runs say nothing of health


def task_metrics(scenario: Scenario, days: int = 30, now=None) -> dict:
    """Success rate (of succeeded, failed and timed-out runs), average duration, consecutive failures, last
    success, and the daily trend over the last `days` days."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    runs = ScenarioRun.objects.filter(scenario=scenario, finished_at__gte=since, finished_at__lte=now)
    totals = runs.aggregate(
        total=Count("pk"),
        counted=Count("pk", filter=Q(status__in=COUNTED)),
        succeeded=Count("pk", filter=Q(status=Status.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        timed_out=Count("pk", filter=Q(status=Status.TIMED_OUT)),
        average_ms=Avg("duration_ms", filter=Q(status__in=COUNTED)),
    )
    last_success = ScenarioRun.objects.filter(scenario=scenario, status=Status.SUCCEEDED).aggregate(
        at=Max("finished_at")
    )["at"]
    trend = []
    daily = (
        runs.filter(status__in=COUNTED)
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(
            runs=Count("pk"),
            succeeded=Count("pk", filter=Q(status=Status.SUCCEEDED)),
            average_ms=Avg("duration_ms"),
        )
        .order_by("day")
    )
    for row in daily:
        trend.append(
            {
                "day": row["day"].isoformat(),
                "runs": row["runs"],
                "success_rate": round(100.0 * row["succeeded"] / row["runs"], 1),
                "average_duration_ms": round(row["average_ms"] or 0),
            }
        )
    return {
        "task": scenario.key,
        "days": days,
        "runs": totals["total"],
        "succeeded": totals["succeeded"],
        "failed": totals["failed"],
        "timed_out": totals["timed_out"],
        "success_rate": round(100.0 * totals["succeeded"] / totals["counted"], 1) if totals["counted"] else None,
        "average_duration_ms": round(totals["average_ms"]) if totals["average_ms"] is not None else None,
        "consecutive_failures": runner.consecutive_failures(scenario.pk),
        "last_success": last_success,
        "trend": trend,
    }


def all_metrics(days: int = 30) -> list[dict]:
    return [task_metrics(scenario, days) for scenario in Scenario.objects.internal().order_by("key")]


@audit.attributed
def cleanup(history_days: int, rollback_days: int, *, actor, via=ScenarioActivity.Via.SYSTEM) -> dict:
    """Delete finished runs older than `history_days`; forget the rollback points older than `rollback_days`
    (the run is kept, marked as no longer offering one: its history rows stay, as the audit does)."""
    if history_days < 1 or rollback_days < 1:
        raise InvalidInput("Give --history-days and --rollback-days of at least 1 day.")
    now = timezone.now()
    with transaction.atomic():
        deleted, _ = ScenarioRun.objects.finished().filter(finished_at__lt=now - timedelta(days=history_days)).delete()
        expired = (
            ScenarioRun.objects.finished()
            .filter(
                finished_at__lt=now - timedelta(days=rollback_days),
                rolled_back_at__isnull=True,
                rollback_expired_at__isnull=True,
                changed__gt=0,
            )
            .update(rollback_expired_at=now)
        )
        outcome = {"runs_deleted": deleted, "rollback_points_expired": expired}
        log_activity(
            ScenarioActivity.Action.CLEANUP,
            via=via,
            actor=actor,
            subject="runs",
            message=f"deleted {deleted} runs older than {history_days} days; "
            f"expired {expired} rollback points older than {rollback_days} days",
            details=outcome,
        )
    return outcome
