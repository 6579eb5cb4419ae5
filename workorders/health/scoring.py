"""The health score: 100 minus the penalty of each term, never below 0. Each term has a value (what was measured),
a weight (points per unit) and a cap; its penalty is min(value × weight, cap). Windows and weights are below, in
one table, so the formula is the code and the code is the documentation:

| term        | value                                                                | weight   | cap |
|-------------|----------------------------------------------------------------------|----------|-----|
| failures    | corrective and emergency work orders in the last HEALTH_WINDOW_DAYS  | 10 each  | 30  |
| downtime    | hours down in the last HEALTH_WINDOW_DAYS                            | 0.5 /h   | 15  |
| anomalies   | open or acknowledged anomalies: critical count 3 × a warning         | 5 /unit  | 35  |
| diagnostics | latest result of each check (30 days): a fail counts 2.5 × a warning | 4 /unit  | 20  |
| overdue_pm  | open preventive work orders past their due time                      | 5 each   | 15  |
| criticality | the asset's criticality: low 0, medium 0, high 1, critical 2         | 5 /level | 10  |

Risk: score ≥ 80 low, ≥ 60 medium, ≥ 40 high, below 40 critical.

`compute` reads every term of many assets in a fixed number of queries (one per term)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q

from assets.models import Asset, Downtime
from assets.telemetry.models import Anomaly
from workorders.health.models import CheckStatus, DiagnosticResult, Risk
from workorders.health.reliability import FAILURE_TYPES
from workorders.models import WorkOrder

DIAGNOSTICS_DAYS = 30
CRITICALITY_LEVEL = {"low": 0, "medium": 0, "high": 1, "critical": 2}


@dataclass(frozen=True)
class TermRule:
    name: str
    label: str
    weight: float
    cap: float


RULES = {
    rule.name: rule
    for rule in [
        TermRule("failures", "Corrective and emergency work orders (window)", 10, 30),
        TermRule("downtime", "Hours of downtime (window)", 0.5, 15),
        TermRule("anomalies", "Open anomalies (critical = 3, warning = 1)", 5, 35),
        TermRule("diagnostics", "Latest diagnostics (fail = 2.5, warning = 1)", 4, 20),
        TermRule("overdue_pm", "Overdue preventive work orders", 5, 15),
        TermRule("criticality", "Asset criticality (high = 1, critical = 2)", 5, 10),
    ]
}


def risk_of(score: float) -> str:
    if score >= 80:
        return Risk.LOW
    if score >= 60:
        return Risk.MEDIUM
    if score >= 40:
        return Risk.HIGH
    return Risk.CRITICAL


@dataclass
class Health:
    """One asset's score, risk and terms (each: name, label, value, weight, cap, penalty, detail)."""

    asset_id: int
    score: float
    risk: str
    terms: list[dict]
    anomaly_ids: list[int] = field(default_factory=list)
    diagnostic_ids: list[int] = field(default_factory=list)

    @property
    def heaviest(self) -> str | None:
        """The term that takes the most points (the cause of a predictive alert)."""
        weighed = [term for term in self.terms if term["penalty"] > 0 and term["name"] != "criticality"]
        return max(weighed, key=lambda term: term["penalty"])["name"] if weighed else None

    @property
    def reasons(self) -> list[str]:
        return [
            f"{term['label']}: {term['value']:g} (−{term['penalty']:g})"
            for term in sorted(self.terms, key=lambda term: -term["penalty"])
            if term["penalty"] > 0
        ]


def _term(name: str, value: float, detail: dict | None = None) -> dict:
    rule = RULES[name]
    penalty = round(min(value * rule.weight, rule.cap), 2)
    return {
        "name": name,
        "label": rule.label,
        "value": round(value, 2),
        "weight": rule.weight,
        "cap": rule.cap,
        "penalty": penalty,
        "detail": detail or {},
    }


def compute(assets: list[Asset], now: datetime) -> dict[int, Health]:
    """The health of each asset at `now`: six queries whatever the number of assets."""
    ids = [asset.pk for asset in assets]
    if not ids:
        return {}
    since = now - timedelta(days=settings.HEALTH_WINDOW_DAYS)

    failures = dict(
        WorkOrder.objects.filter(asset_id__in=ids, type__in=FAILURE_TYPES, created_at__gte=since, created_at__lte=now)
        .values("asset_id")
        .annotate(n=Count("id"))
        .values_list("asset_id", "n")
    )

    down_hours: dict[int, float] = {}
    for asset_id, started_at, ended_at in (
        Downtime.objects.filter(asset_id__in=ids, started_at__lt=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=since))
        .values_list("asset_id", "started_at", "ended_at")
    ):
        span = (min(ended_at or now, now) - max(started_at, since)).total_seconds() / 3600
        down_hours[asset_id] = down_hours.get(asset_id, 0.0) + max(span, 0.0)

    anomalies: dict[int, dict] = {}
    for anomaly_id, asset_id, severity in Anomaly.objects.filter(
        asset_id__in=ids, status__in=(Anomaly.Status.OPEN, Anomaly.Status.ACKNOWLEDGED), started_at__lte=now
    ).values_list("id", "asset_id", "severity"):
        entry = anomalies.setdefault(asset_id, {"critical": 0, "warning": 0, "ids": []})
        entry[severity] = entry.get(severity, 0) + 1
        entry["ids"].append(anomaly_id)

    latest_ids = (
        DiagnosticResult.objects.filter(asset_id__in=ids, created_at__gte=now - timedelta(days=DIAGNOSTICS_DAYS))
        .filter(created_at__lte=now)
        .values("asset_id", "check_name")
        .annotate(last=Max("id"))
        .values("last")
    )
    diagnostics: dict[int, dict] = {}
    for result_id, asset_id, check_name, status in DiagnosticResult.objects.filter(pk__in=latest_ids).values_list(
        "id", "asset_id", "check_name", "status"
    ):
        entry = diagnostics.setdefault(asset_id, {"fail": [], "warn": [], "ids": []})
        if status != CheckStatus.PASS:
            entry[status].append(check_name)
            entry["ids"].append(result_id)

    overdue = dict(
        WorkOrder.objects.filter(
            asset_id__in=ids, type=WorkOrder.Type.PREVENTIVE, status__in=WorkOrder.OPEN_STATUSES, due_at__lt=now
        )
        .values("asset_id")
        .annotate(n=Count("id"))
        .values_list("asset_id", "n")
    )

    result = {}
    for asset in assets:
        found = anomalies.get(asset.pk, {"critical": 0, "warning": 0, "ids": []})
        checks = diagnostics.get(asset.pk, {"fail": [], "warn": [], "ids": []})
        terms = [
            _term("failures", failures.get(asset.pk, 0), {"window_days": settings.HEALTH_WINDOW_DAYS}),
            _term("downtime", down_hours.get(asset.pk, 0.0), {"window_days": settings.HEALTH_WINDOW_DAYS}),
            _term(
                "anomalies",
                3 * found["critical"] + found["warning"],
                {"critical": found["critical"], "warning": found["warning"]},
            ),
            _term(
                "diagnostics",
                2.5 * len(checks["fail"]) + len(checks["warn"]),
                {"failing": sorted(checks["fail"]), "warning": sorted(checks["warn"])},
            ),
            _term("overdue_pm", overdue.get(asset.pk, 0)),
            _term("criticality", CRITICALITY_LEVEL.get(asset.criticality, 0), {"criticality": asset.criticality}),
        ]
        score = round(max(0.0, 100.0 - sum(term["penalty"] for term in terms)), 1)
        result[asset.pk] = Health(asset.pk, score, risk_of(score), terms, found["ids"], checks["ids"])
    return result
