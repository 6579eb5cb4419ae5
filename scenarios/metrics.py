"""History and metrics of the automated tasks, read from their runs (ScenarioRun, append-only), and the
cleanup of old runs and rollback points."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Avg, Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext

from maintenance_site import audit
from maintenance_site.errors import InvalidInput
from scenarios import backups, runner
from scenarios.models import Scenario, ScenarioActivity, ScenarioRun
from scenarios.services import log_activity

Status = ScenarioRun.Status
COUNTED = [Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT]  # skipped and cancelled runs say nothing of health
# Upper bounds (milliseconds) of the execution-time histogram's buckets; the last bucket is open.
HISTOGRAM_BOUNDS_MS = [100, 1_000, 10_000, 60_000, 600_000, 3_600_000]


def percentile(ordered: list[int], fraction: float) -> int | None:
    """The nearest-rank percentile of an ordered list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n × p), at least the first
    return ordered[int(min(rank, len(ordered))) - 1]


def duration_distribution(durations: list[int]) -> dict:
    """p50/p90/p99 and a histogram of run durations (milliseconds)."""
    ordered = sorted(durations)
    histogram, lower = [], 0
    for bound in [*HISTOGRAM_BOUNDS_MS, None]:
        count = sum(1 for value in ordered if value >= lower and (bound is None or value < bound))
        histogram.append({"from_ms": lower, "to_ms": bound, "runs": count})
        lower = bound
    return {
        "p50_ms": percentile(ordered, 0.5),
        "p90_ms": percentile(ordered, 0.9),
        "p99_ms": percentile(ordered, 0.99),
        "histogram": histogram,
    }


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
        files_modified=Sum("files_modified"),
        lines_added=Sum("lines_added"),
        lines_removed=Sum("lines_removed"),
        issues_fixed=Sum("issues_fixed"),
    )
    durations = list(runs.filter(status__in=COUNTED, duration_ms__isnull=False).values_list("duration_ms", flat=True))
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
        "duration": duration_distribution(durations),
        "files_modified": totals["files_modified"] or 0,
        "lines_changed": (totals["lines_added"] or 0) + (totals["lines_removed"] or 0),
        "lines_added": totals["lines_added"] or 0,
        "lines_removed": totals["lines_removed"] or 0,
        "issues_fixed": totals["issues_fixed"] or 0,
        "consecutive_failures": runner.consecutive_failures(scenario.pk),
        "last_success": last_success,
        "trend": trend,
    }


def all_metrics(days: int = 30) -> list[dict]:
    return [task_metrics(scenario, days) for scenario in Scenario.objects.internal().order_by("key")]


def system_metrics(days: int = 30, now=None) -> dict:
    """The seed's system-wide figures: runs, success rate, the execution-time distribution, files and lines
    changed, and the storage used by the file rollback points."""
    now = now or timezone.now()
    runs = ScenarioRun.objects.filter(finished_at__gte=now - timedelta(days=days), finished_at__lte=now)
    totals = runs.aggregate(
        counted=Count("pk", filter=Q(status__in=COUNTED)),
        succeeded=Count("pk", filter=Q(status=Status.SUCCEEDED)),
        files_modified=Sum("files_modified"),
        lines_added=Sum("lines_added"),
        lines_removed=Sum("lines_removed"),
        issues_fixed=Sum("issues_fixed"),
    )
    durations = list(runs.filter(status__in=COUNTED, duration_ms__isnull=False).values_list("duration_ms", flat=True))
    return {
        "days": days,
        "runs": totals["counted"],
        "success_rate": round(100.0 * totals["succeeded"] / totals["counted"], 1) if totals["counted"] else None,
        "duration": duration_distribution(durations),
        "files_modified": totals["files_modified"] or 0,
        "lines_changed": (totals["lines_added"] or 0) + (totals["lines_removed"] or 0),
        "issues_fixed": totals["issues_fixed"] or 0,
        "storage": backups.storage(),
    }


@audit.attributed
def cleanup(history_days: int, rollback_days: int, *, actor, via=ScenarioActivity.Via.SYSTEM) -> dict:
    """Delete finished runs older than `history_days`; forget the rollback points older than `rollback_days`
    (the run is kept, marked as no longer offering one: its history rows stay, as the audit does); delete the
    copies of file backups older than `rollback_days`."""
    if history_days < 1 or rollback_days < 1:
        raise InvalidInput(gettext("Give --history-days and --rollback-days of at least 1 day."))
    now = timezone.now()
    with transaction.atomic():
        old_runs = ScenarioRun.objects.finished().filter(finished_at__lt=now - timedelta(days=history_days))
        backups.drop_for(old_runs)
        deleted, _ = old_runs.delete()
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
        files_expired = backups.expire(now - timedelta(days=rollback_days))
        outcome = {"runs_deleted": deleted, "rollback_points_expired": expired, "file_backups_expired": files_expired}
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
