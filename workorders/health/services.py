"""The only writers of asset health: diagnostics (built-in runs, deep runs, results from external tools), the health
job (scores recomputed when their inputs changed, at most once per asset per HEALTH_RECOMPUTE_INTERVAL, batched)
and the predictive job (one predictive work order per asset and cause while it is open, a cooldown after it closes,
at most `max_orders_per_run` per organisation per run). Both jobs are safe to run twice or on two machines at
once: the health rows are upserted by asset, and an open alert is unique per asset and cause (the rows are locked
while one is opened, and the constraint backs the lock)."""

import logging
import re
from collections import defaultdict
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from assets.models import Asset, Downtime, Meter, MeterReading
from assets.telemetry.models import Anomaly, Grain, MetricDefinition, Series, TelemetryRollup
from maintenance_site import audit
from maintenance_site.errors import InvalidInput
from maintenance_site.events.services import publish
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import Action
from maintenance_site.validation import assign_editable, validated
from workorders import services as work_orders
from workorders.health import reliability, scoring
from workorders.health.models import (
    CHECK_RANK,
    RISK_RANK,
    AssetHealth,
    CheckStatus,
    DiagnosticResult,
    DiagnosticRun,
    HealthSnapshot,
    PredictiveAlert,
    PredictiveSettings,
    Risk,
)
from workorders.models import WorkOrder

logger = logging.getLogger(__name__)
EVENT_PREDICTIVE = "predictive:alert"
DEEP_TASK = "workorders.health.tasks.complete_deep_diagnostic"
CHECK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,139}$")
MAX_RESULTS = 200
CHUNK = 500
PRIORITY_OF_RISK = {Risk.HIGH: WorkOrder.Priority.HIGH, Risk.CRITICAL: WorkOrder.Priority.CRITICAL}


def settings_of(organization_id: int) -> PredictiveSettings:
    """The organisation's predictive settings (the defaults when it never changed them)."""
    return PredictiveSettings.objects.filter(organization_id=organization_id).first() or PredictiveSettings(
        organization_id=organization_id
    )


SETTINGS_FIELDS = {"enabled", "risk_level", "delay_minutes", "cooldown_hours", "max_orders_per_run", "notify_roles"}


@audit.attributed
@transaction.atomic
def update_predictive_settings(organization, *, actor, **changes) -> PredictiveSettings:
    """Change when predictive work orders open (risk level, delay, cooldown, cap per run) and who hears of them
    (created on first change)."""
    tenancy_services.require_role(organization.pk, Action.MANAGE_SETTINGS, actor=actor)
    current, _ = PredictiveSettings.objects.select_for_update().get_or_create(organization=organization)
    validated(assign_editable(current, changes, SETTINGS_FIELDS, "Predictive settings")).save()
    return current


# --- diagnostics ------------------------------------------------------------------------------------------------


def _definitions(asset: Asset, metrics: set[str]) -> dict[str, MetricDefinition]:
    """The definition that applies to each metric of the asset: the asset's, else its type's, else the
    organisation's (one query)."""
    rows = MetricDefinition.objects.filter(organization_id=asset.organization_id, metric__in=metrics).filter(
        Q(asset=asset)
        | Q(asset_type_id=asset.asset_type_id, asset__isnull=True)
        | Q(asset__isnull=True, asset_type__isnull=True)
    )
    rank = {}
    for definition in rows:
        level = 0 if definition.asset_id else (1 if definition.asset_type_id else 2)
        if definition.metric not in rank or level < rank[definition.metric][0]:
            rank[definition.metric] = (level, definition)
    return {metric: definition for metric, (_, definition) in rank.items()}


def _range_check(series: Series, definition: MetricDefinition | None) -> tuple[str, str]:
    value = series.last_value
    if definition is None or value is None:
        return CheckStatus.PASS, "No limits defined." if definition is None else "No value yet."
    if (definition.critical_high is not None and value > definition.critical_high) or (
        definition.critical_low is not None and value < definition.critical_low
    ):
        return CheckStatus.FAIL, f"Latest value {value:g} is beyond a critical limit."
    if (definition.warning_high is not None and value > definition.warning_high) or (
        definition.warning_low is not None and value < definition.warning_low
    ):
        return CheckStatus.WARN, f"Latest value {value:g} is beyond a warning limit."
    return CheckStatus.PASS, f"Latest value {value:g} is within its limits."


def builtin_checks(asset: Asset, now: datetime, *, deep: bool = False) -> list[dict]:
    """The built-in checks of a device, from its telemetry and meters: per series stale data, out-of-range latest
    value and ongoing drift; per counter meter a rollover (the latest reading below the one before). A deep run
    adds a trend check per series over the daily rollups of the last 30 days. A fixed number of queries per
    series at most (quick: four queries in all plus one per counter meter)."""
    results = []
    series_list = list(Series.objects.filter(asset=asset).order_by("metric"))
    definitions = _definitions(asset, {series.metric for series in series_list})
    drifting = {
        (anomaly.series_id): anomaly
        for anomaly in Anomaly.objects.filter(asset=asset, detector=Anomaly.Detector.DRIFT, ended_at__isnull=True)
    }
    stale_after = timedelta(seconds=settings.HEALTH_STALE_SECONDS)
    for series in series_list:
        metric = series.metric
        age = (now - series.last_ts).total_seconds() if series.last_ts else None
        if age is None:
            status, message = CheckStatus.FAIL, "No data received."
        elif age > 24 * stale_after.total_seconds():
            status, message = CheckStatus.FAIL, f"No data for {age / 3600:.1f} h."
        elif age > stale_after.total_seconds():
            status, message = CheckStatus.WARN, f"No data for {age / 60:.0f} min."
        else:
            status, message = CheckStatus.PASS, "Data is current."
        results.append(
            {"check": f"stale_data:{metric}", "status": status, "measured": {"age_seconds": age}, "message": message}
        )
        status, message = _range_check(series, definitions.get(metric))
        results.append(
            {
                "check": f"out_of_range:{metric}",
                "status": status,
                "measured": {"value": series.last_value},
                "message": message,
            }
        )
        anomaly = drifting.get(series.pk)
        if anomaly is None:
            results.append(
                {"check": f"drift:{metric}", "status": CheckStatus.PASS, "measured": {}, "message": "No drift."}
            )
        else:
            results.append(
                {
                    "check": f"drift:{metric}",
                    "status": CheckStatus.FAIL if anomaly.severity == "critical" else CheckStatus.WARN,
                    "measured": {"peak": anomaly.peak_value, "baseline": anomaly.limit, "anomaly": anomaly.pk},
                    "message": anomaly.message,
                }
            )
        if deep:
            results.append(_trend_check(series, now))
    for meter in Meter.objects.filter(asset=asset, kind=Meter.Kind.CUMULATIVE).order_by("name"):
        last_two = list(MeterReading.objects.filter(meter=meter).order_by("-read_at", "-id")[:2])
        if len(last_two) == 2 and last_two[0].value < last_two[1].value:
            status = CheckStatus.WARN
            message = f"Counter went back from {last_two[1].value} to {last_two[0].value}: rollover or replacement."
        else:
            status, message = CheckStatus.PASS, "Counter only grows."
        results.append(
            {
                "check": f"meter_rollover:{meter.name}"[:140],
                "status": status,
                "measured": {"readings": [str(reading.value) for reading in last_two]},
                "message": message,
            }
        )
    return results


def _trend_check(series: Series, now: datetime) -> dict:
    """Deep check: the mean of the last 7 daily buckets against the 23 before; a shift of over 20 % warns."""
    days = list(
        TelemetryRollup.objects.filter(series_id=series.pk, grain=Grain.DAY, bucket__gte=now - timedelta(days=30))
        .order_by("bucket")
        .values_list("bucket", "count", "total")
    )
    recent = [total / count for bucket, count, total in days if bucket >= now - timedelta(days=7) and count]
    before = [total / count for bucket, count, total in days if bucket < now - timedelta(days=7) and count]
    check = f"trend:{series.metric}"
    if not recent or not before:
        return {"check": check, "status": CheckStatus.PASS, "measured": {}, "message": "Not enough history."}
    recent_mean, before_mean = sum(recent) / len(recent), sum(before) / len(before)
    shift = (recent_mean - before_mean) / abs(before_mean) if before_mean else 0.0
    status = CheckStatus.WARN if abs(shift) > 0.2 else CheckStatus.PASS
    return {
        "check": check,
        "status": status,
        "measured": {"recent_mean": recent_mean, "previous_mean": before_mean, "shift": round(shift, 4)},
        "message": f"The last 7 days' mean moved {shift:+.0%} from the 23 days before.",
    }


def _store_results(run: DiagnosticRun, results: list[dict]) -> None:
    DiagnosticResult.objects.bulk_create(
        DiagnosticResult(
            organization_id=run.organization_id,
            run=run,
            asset_id=run.asset_id,
            check_name=result["check"],
            status=result["status"],
            measured=result.get("measured") or {},
            message=result.get("message") or "",
        )
        for result in results
    )
    run.outcome = max((result["status"] for result in results), key=lambda s: CHECK_RANK[s], default=CheckStatus.PASS)
    run.status = DiagnosticRun.Status.DONE
    run.finished_at = timezone.now()
    run.save(update_fields=["outcome", "status", "finished_at", "updated_at"])


@audit.attributed
@transaction.atomic
def run_diagnostic(asset: Asset, *, deep: bool = False, actor) -> DiagnosticRun:
    """Run the built-in checks on a device. A quick run is done when this returns (its results stored); a deep
    one (trends over 30 days of rollups) is queued: it is returned pending and done by `complete_deep_run`."""
    membership = tenancy_services.acting_membership(asset.organization_id, actor=actor)
    tenancy_services.check_role(membership, Action.INGEST_TELEMETRY)
    run = DiagnosticRun.objects.create(
        organization_id=asset.organization_id, asset=asset, deep=deep, requested_by=audit.as_user(actor)
    )
    if deep:
        transaction.on_commit(lambda: _enqueue_deep_run(run.pk), robust=True)
        return run
    _store_results(run, builtin_checks(asset, timezone.now()))
    return run


def _enqueue_deep_run(run_id: int) -> None:
    """Queue the deep run's task by name (the tasks module imports this one); when the broker is down the run stays
    pending and the health job's sweep (`complete_pending_runs`) does it."""
    try:
        current_app.send_task(DEEP_TASK, args=[run_id])
    except Exception:  # noqa: BLE001 - a broker outage must not fail the request; the sweep catches up
        logger.warning("Deep diagnostic %s not queued; the health job will run it.", run_id, exc_info=True)


def complete_pending_runs(older_than_seconds: int = 60) -> int:
    """The sweep: deep runs still pending after `older_than_seconds` (their task lost) are done now."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        DiagnosticRun.objects.filter(status=DiagnosticRun.Status.PENDING, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )
    for run_id in ids:
        complete_deep_run(run_id)
    return len(ids)


def complete_deep_run(run_id: int) -> DiagnosticRun | None:
    """The deep run's task: run the checks once (a run already done is left alone; a missing one is ignored)."""
    with transaction.atomic(), audit.acting_as(SYSTEM, reason="deep diagnostic"):
        run = DiagnosticRun.objects.select_for_update().select_related("asset").filter(pk=run_id).first()
        if run is None or run.status != DiagnosticRun.Status.PENDING:
            return run
        _store_results(run, builtin_checks(run.asset, timezone.now(), deep=True))
        return run


def _checked_results(results) -> list[dict]:
    if not isinstance(results, list) or not results:
        raise InvalidInput({"results": [_("Give a list of 1 to %(limit)s results.") % {"limit": MAX_RESULTS}]})
    if len(results) > MAX_RESULTS:
        raise InvalidInput({"results": [_("At most %(limit)s results per run.") % {"limit": MAX_RESULTS}]})
    checked, problems = [], {}
    for position, result in enumerate(results):
        where = f"results[{position}]"
        if not isinstance(result, dict):
            problems[where] = [_("An object: check, status, measured, message.")]
            continue
        check = result.get("check")
        status = result.get("status")
        measured = result.get("measured", {})
        message = result.get("message", "")
        if not isinstance(check, str) or not CHECK_NAME.match(check):
            problems[f"{where}.check"] = [_("1 to 140 letters, digits, “_”, “.”, “:”, “/” or “-”.")]
        if status not in CheckStatus.values:
            problems[f"{where}.status"] = [_("One of %(choices)s.") % {"choices": ", ".join(CheckStatus.values)}]
        if not isinstance(measured, dict) or len(str(measured)) > 4000 or "\\x00" in repr(measured):
            problems[f"{where}.measured"] = [_("An object of measured values (at most 4,000 characters).")]
        if not isinstance(message, str) or len(message) > 2000 or "\x00" in message:
            problems[f"{where}.message"] = [_("Text of at most 2,000 characters.")]
        checked.append({"check": check, "status": status, "measured": measured, "message": message})
    if problems:
        raise InvalidInput(problems)
    return checked


@audit.attributed
@transaction.atomic
def submit_results(asset: Asset, *, tool: str = "", results, actor) -> DiagnosticRun:
    """Store results an external tool measured (check, status pass/warn/fail, measured values, message) as a done
    run, the same way as the built-in checks. All or nothing: any bad result refuses the run (400, by position)."""
    membership = tenancy_services.acting_membership(asset.organization_id, actor=actor)
    tenancy_services.check_role(membership, Action.INGEST_TELEMETRY)
    if not isinstance(tool, str) or len(tool) > 120 or "\x00" in tool:
        raise InvalidInput({"tool": [_("Text of at most 120 characters.")]})
    checked = _checked_results(results)
    run = DiagnosticRun.objects.create(
        organization_id=asset.organization_id,
        asset=asset,
        source=DiagnosticRun.Source.EXTERNAL,
        tool=tool,
        requested_by=audit.as_user(actor),
    )
    _store_results(run, checked)
    return run


def analyze(organization, *, since: datetime, until: datetime, asset: Asset | None = None) -> list[dict]:
    """Diagnostic trends over a period: per check, how many results, how often it failed or warned, and whether it
    degrades (its share of fail + warn in the second half of the period above the first half's). One query."""
    middle = since + (until - since) / 2
    rows = DiagnosticResult.objects.filter(organization=organization, created_at__gte=since, created_at__lt=until)
    if asset is not None:
        rows = rows.filter(asset=asset)
    stats: dict[str, dict] = defaultdict(
        lambda: {"runs": 0, "pass": 0, "warn": 0, "fail": 0, "halves": [[0, 0], [0, 0]]}
    )
    for check, status, created_at in rows.values_list("check_name", "status", "created_at").iterator():
        entry = stats[check]
        entry["runs"] += 1
        entry[status] += 1
        half = entry["halves"][0 if created_at < middle else 1]
        half[0] += 1
        half[1] += status != CheckStatus.PASS
    answer = []
    for check, entry in sorted(stats.items()):
        (first_n, first_bad), (second_n, second_bad) = entry.pop("halves")
        first_rate = first_bad / first_n if first_n else None
        second_rate = second_bad / second_n if second_n else None
        answer.append(
            {
                "check": check,
                **entry,
                "fail_rate": round(entry["fail"] / entry["runs"], 4),
                "first_half_problem_rate": first_rate,
                "second_half_problem_rate": second_rate,
                "degrading": first_rate is not None and second_rate is not None and second_rate > first_rate,
            }
        )
    return answer


# --- health ----------------------------------------------------------------------------------------------------


def _due_assets(now: datetime, organization_id: int | None, force: bool) -> list[int]:
    """Assets whose score is due: never computed; or computed before the debounce interval and either older than
    HEALTH_MAX_AGE or with an input changed since (a point, an anomaly, a work order, a downtime, a diagnostic)."""
    assets = Asset.objects.all()
    if organization_id is not None:
        assets = assets.filter(organization_id=organization_id)
    if force:
        return list(assets.order_by("pk").values_list("pk", flat=True))
    never = list(assets.filter(health__isnull=True).order_by("pk").values_list("pk", flat=True))
    debounced = now - timedelta(seconds=settings.HEALTH_RECOMPUTE_INTERVAL)
    old = now - timedelta(seconds=settings.HEALTH_MAX_AGE)
    since = OuterRef("computed_at")
    asset = OuterRef("asset_id")
    changed = (
        AssetHealth.objects.filter(computed_at__lte=debounced, asset__in=assets)
        .filter(
            Q(computed_at__lte=old)
            | Exists(Series.objects.filter(asset_id=asset, last_ts__gt=since))
            | Exists(Anomaly.objects.filter(asset_id=asset, updated_at__gt=since))
            | Exists(WorkOrder.objects.filter(asset_id=asset, updated_at__gt=since))
            | Exists(Downtime.objects.filter(asset_id=asset, updated_at__gt=since))
            | Exists(DiagnosticResult.objects.filter(asset_id=asset, created_at__gt=since))
        )
        .order_by("asset_id")
        .values_list("asset_id", flat=True)
    )
    return never + list(changed)


def _save_health(healths: dict[int, scoring.Health], assets: dict[int, Asset], now: datetime) -> None:
    previous = {
        asset_id: (risk, since)
        for asset_id, risk, since in AssetHealth.objects.filter(asset_id__in=list(healths)).values_list(
            "asset_id", "risk", "risk_since"
        )
    }
    rows, snapshots = [], []
    for asset_id, health in healths.items():
        old_risk, old_since = previous.get(asset_id, (None, None))
        risk_since = old_since if old_risk == health.risk else now
        organization_id = assets[asset_id].organization_id
        rows.append(
            AssetHealth(
                organization_id=organization_id,
                asset_id=asset_id,
                score=health.score,
                risk=health.risk,
                terms=health.terms,
                computed_at=now,
                risk_since=risk_since,
                created_at=now,
                updated_at=now,
            )
        )
        snapshots.append(
            HealthSnapshot(
                organization_id=organization_id,
                asset_id=asset_id,
                score=health.score,
                risk=health.risk,
                computed_at=now,
            )
        )
    AssetHealth.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["asset"],
        update_fields=["score", "risk", "terms", "computed_at", "risk_since", "updated_at"],
    )
    HealthSnapshot.objects.bulk_create(snapshots)


def refresh_health(now: datetime | None = None, *, organization_id: int | None = None, force: bool = False) -> int:
    """The health job: recompute the scores that are due (see `_due_assets`), CHUNK assets at a time, each chunk in
    a fixed number of queries. However many points arrived since, an asset is recomputed at most once per
    HEALTH_RECOMPUTE_INTERVAL. Safe to run twice at once (rows upserted by asset). Returns how many it computed."""
    now = now or timezone.now()
    due = _due_assets(now, organization_id, force)
    for start in range(0, len(due), CHUNK):
        assets = Asset.objects.in_bulk(due[start : start + CHUNK])
        with transaction.atomic():
            _save_health(scoring.compute(list(assets.values()), now), assets, now)
    return len(due)


def health_of(asset: Asset, *, now: datetime | None = None, history_days: int = 30) -> dict:
    """An asset's health now (computed afresh: score, risk, each term and why), and the score's history."""
    now = now or timezone.now()
    health = scoring.compute([asset], now)[asset.pk]
    history = list(
        HealthSnapshot.objects.filter(asset=asset, computed_at__gte=now - timedelta(days=history_days))
        .order_by("-computed_at")
        .values("computed_at", "score", "risk")[:500]
    )
    history.reverse()
    return {
        "asset": asset.pk,
        "score": health.score,
        "risk": health.risk,
        "computed_at": now,
        "terms": health.terms,
        "reasons": health.reasons,
        "formula": "100 − Σ min(value × weight, cap) over the terms, never below 0; risk: ≥ 80 low, ≥ 60 medium, "
        "≥ 40 high, else critical.",
        "history": history,
    }


# --- predictive ------------------------------------------------------------------------------------------------


def _trend_factor(terms: list[dict]) -> float:
    """How much the current trend brings the next failure forward: open critical anomalies and failing diagnostics
    shorten the expected interval (down to half of it)."""
    penalty = sum(term["penalty"] for term in terms if term["name"] in ("anomalies", "diagnostics"))
    return round(max(0.5, 1 - penalty / 110), 2)


def predictive_insights(organization, *, now: datetime | None = None, risk: str | None = None, limit: int = 50):
    """Assets ranked by risk (lowest score first), with their reasons and, where at least two failures are known
    in the last year, a predicted next-failure window from the asset's MTBF (the analytics definition) and how it
    was estimated. Four queries whatever `limit`."""
    now = now or timezone.now()
    rows = AssetHealth.objects.filter(organization=organization).select_related("asset").order_by("score", "asset_id")
    if risk:
        rows = rows.filter(risk=risk)
    rows = list(rows[:limit])
    failures, mtbf = reliability.failure_history(organization, now) if rows else ({}, {})
    answer = []
    for row in rows:
        reasons = [
            f"{term['label']}: {term['value']:g} (−{term['penalty']:g})"
            for term in sorted(row.terms, key=lambda term: -term["penalty"])
            if term["penalty"] > 0
        ]
        answer.append(
            {
                "asset": row.asset_id,
                "asset_code": row.asset.code,
                "asset_name": row.asset.name,
                "score": row.score,
                "risk": row.risk,
                "risk_since": row.risk_since,
                "computed_at": row.computed_at,
                "reasons": reasons,
                "prediction": reliability.next_failure_window(
                    failures.get(row.asset_id, []),
                    now,
                    mtbf_hours=mtbf.get(row.asset_id),
                    trend_factor=_trend_factor(row.terms),
                ),
            }
        )
    return answer


def _close_finished_alerts(organization_id: int, now: datetime) -> None:
    """An alert closes when its work order did (completed, verified or cancelled): the cooldown counts from then."""
    finished = PredictiveAlert.objects.filter(
        organization_id=organization_id, closed_at__isnull=True, work_order__status__in=WorkOrder.CLOSED_STATUSES
    ).select_related("work_order")
    for alert in finished:
        order = alert.work_order
        alert.closed_at = order.cancelled_at or order.completed_at or now
        alert.save(update_fields=["closed_at", "updated_at"])


def _alert_payload(alert: PredictiveAlert, asset: Asset) -> dict:
    return {
        "id": alert.pk,
        "asset": asset.pk,
        "asset_code": asset.code,
        "cause": alert.cause,
        "score": alert.score,
        "risk": alert.risk,
        "reasons": alert.reasons,
        "work_order": alert.work_order_id,
        "work_order_number": alert.work_order.number,
        "anomalies": [anomaly.pk for anomaly in alert.anomalies.all()],
    }


def _title(asset: Asset, health: scoring.Health, cause: str) -> str:
    label = scoring.RULES[cause].label
    return f"Predictive: {asset.code} health {health.score:g} ({health.risk}), {label}"[:200]


def _open_alert(asset: Asset, health: scoring.Health, options: PredictiveSettings, now: datetime) -> bool:
    """Open one predictive order for the asset's heaviest cause, unless one is open for it or its cooldown runs.
    The asset's health row is locked (a second run at once skips it); the unique constraint backs the lock."""
    cause = health.heaviest
    if cause is None:
        return False
    with transaction.atomic():
        if not AssetHealth.objects.select_for_update(skip_locked=True).filter(asset=asset).exists():
            return False  # another run holds this asset
        if PredictiveAlert.objects.filter(asset=asset, cause=cause, closed_at__isnull=True).exists():
            return False
        cooled = now - timedelta(hours=options.cooldown_hours)
        if PredictiveAlert.objects.filter(asset=asset, cause=cause, closed_at__gt=cooled).exists():
            return False
        try:
            with transaction.atomic():
                order = work_orders.create_work_order(
                    Organization.objects.get(pk=asset.organization_id),
                    title=_title(asset, health, cause),
                    description="The asset's health reached the predictive level.\n\n"
                    + "\n".join(f"- {reason}" for reason in health.reasons),
                    type=WorkOrder.Type.PREDICTIVE,
                    source=WorkOrder.Source.PREDICTIVE,
                    priority=PRIORITY_OF_RISK.get(health.risk, WorkOrder.Priority.HIGH),
                    asset=asset,
                    actor=SYSTEM,
                )
                alert = PredictiveAlert.objects.create(
                    organization_id=asset.organization_id,
                    asset=asset,
                    cause=cause,
                    work_order=order,
                    score=health.score,
                    risk=health.risk,
                    reasons=health.reasons,
                )
        except IntegrityError:
            return False  # another machine opened it a moment ago
        alert.anomalies.set(health.anomaly_ids)
        alert.diagnostics.set(health.diagnostic_ids)
        organization = order.organization
        publish(organization, EVENT_PREDICTIVE, _alert_payload(alert, asset))
        notify(
            organization,
            options.roles_notified,
            EVENT_PREDICTIVE,
            {
                "title": f"Predictive alert: {asset.code} at {health.risk} risk ({health.score:g})",
                "body": f"Work order {order.number} opened. " + "; ".join(health.reasons[:3]),
                "url": f"/api/v1/work-orders/{order.pk}/",
                "work_order": order.pk,
                "asset": asset.pk,
            },
        )
    return True


def run_predictive_checks(now: datetime | None = None, *, organization_id: int | None = None) -> dict:
    """The predictive job: in each organisation with predictive work enabled, close the alerts whose order closed,
    then open a predictive work order for each asset whose stored risk is at or above the organisation's level
    (and has been for its delay), riskiest first, at most `max_orders_per_run`, exactly once per asset and cause
    (see `_open_alert`). Returns {"opened": n, "candidates": m}."""
    now = now or timezone.now()
    opened = candidates_seen = 0
    organizations = Organization.objects.order_by("pk")
    if organization_id is not None:
        organizations = organizations.filter(pk=organization_id)
    with audit.acting_as(SYSTEM, reason="predictive maintenance"):
        for organization in organizations:
            options = settings_of(organization.pk)
            if not options.enabled:
                continue
            _close_finished_alerts(organization.pk, now)
            levels = [risk for risk, rank in RISK_RANK.items() if rank >= RISK_RANK[Risk(options.risk_level)]]
            rows = list(
                AssetHealth.objects.filter(
                    organization=organization,
                    risk__in=levels,
                    risk_since__lte=now - timedelta(minutes=options.delay_minutes),
                )
                .select_related("asset")
                .order_by("score", "asset_id")
            )
            if not rows:
                continue
            candidates_seen += len(rows)
            # Assets whose cause has an open alert or runs its cooldown are passed over before any work (so a
            # hundred assets with open orders never starve the hundred-and-first); `_open_alert` checks again.
            cooled = now - timedelta(hours=options.cooldown_hours)
            blocked = set(
                PredictiveAlert.objects.filter(asset_id__in=[row.asset_id for row in rows])
                .filter(Q(closed_at__isnull=True) | Q(closed_at__gt=cooled))
                .values_list("asset_id", "cause")
            )
            opened_here = 0
            for start in range(0, len(rows), CHUNK):
                if opened_here >= options.max_orders_per_run:
                    break
                assets = [row.asset for row in rows[start : start + CHUNK]]
                healths = scoring.compute(assets, now)
                for asset in assets:
                    health = healths[asset.pk]
                    if RISK_RANK[Risk(health.risk)] < RISK_RANK[Risk(options.risk_level)]:
                        continue  # better since the score was stored
                    if (asset.pk, health.heaviest) in blocked:
                        continue
                    if opened_here >= options.max_orders_per_run:
                        break
                    if _open_alert(asset, health, options, now):
                        opened_here += 1
            opened += opened_here
    return {"opened": opened, "candidates": candidates_seen}
