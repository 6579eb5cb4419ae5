"""The KPIs computed from work orders and downtime (the definitions are in `maintenance_site.analytics.definitions`):
availability, MTBF, MTTR, failures and downtime hours (here, not in `assets`, because whether a downtime was
scheduled is known from the work order that caused it, `DowntimeLink`); planned ratio, backlog, rework, first-time
fix, wrench time; labour and external costs; the failure-code Pareto. Registered in `WorkOrdersConfig.ready()`.

Every figure is one aggregate query (a trend adds one filtered aggregate per bucket to that query, a breakdown
groups it): the number of queries never grows with the data.
"""

from datetime import timedelta
from decimal import Decimal

from django.db.models import (
    Avg,
    BooleanField,
    Case,
    Count,
    DateTimeField,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least

from assets.models import Asset, Downtime
from maintenance_site.analytics import periods, registry
from maintenance_site.analytics.definitions import PLANNED_TYPES, REACTIVE_TYPES, REWORK_DAYS
from workorders import services
from workorders.models import CostLine, TimeEntry, WorkOrder

DONE = (WorkOrder.Status.COMPLETED, WorkOrder.Status.VERIFIED)
DOWNTIME_KPIS = (
    "availability",
    "mtbf",
    "mttr",
    "failures",
    "unscheduled_downtime_hours",
    "scheduled_downtime_hours",
)
WORK_KPIS = ("planned_ratio", "rework_rate", "first_time_fix", "wrench_time")
BACKLOG_KPIS = ("backlog_count", "backlog_hours", "backlog_age_days")
COST_KPIS = ("labour_cost", "external_cost")
GROUP_BYS = ("asset", "asset_type", "location")

# A breakdown's group, per model: the field that names the group.
DOWNTIME_GROUP = {"asset": "asset_id", "asset_type": "asset__asset_type_id", "location": "asset__location_id"}
ASSET_GROUP = {"asset": "id", "asset_type": "asset_type_id", "location": "location_id"}
ORDER_GROUP = {"asset": "asset_id", "asset_type": "asset__asset_type_id", "location": "location_id"}
CHILD_GROUP = {key: f"work_order__{path}" for key, path in ORDER_GROUP.items()}
HOUR = timedelta(hours=1)


def _hours(value) -> float:
    return (value or timedelta(0)) / HOUR


def _ratio(part, whole, scale=100.0):
    return round(scale * part / whole, 4) if whole else None


def _keyed(rows, group_by, group_field, compute) -> dict:
    """{group id: compute(row)} for a grouped query, or {None: compute(row)} for a plain aggregate."""
    if group_by is None:
        return {None: compute(rows)}
    return {row[group_field]: compute(row) for row in rows}


# --- downtime: availability, MTBF, MTTR -------------------------------------------------------------------------


def downtime_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """Availability, MTBF, MTTR, failures, scheduled and unscheduled downtime hours: one query over the downtimes
    that touch the period (each bucket's hours cut at its bounds), one over the assets (the asset hours)."""
    buckets = periods.buckets(scope, interval) if group_by is None else periods.buckets(scope, None)
    now = scope.now
    end = Coalesce("ended_at", Value(now), output_field=DateTimeField())  # an open downtime counts up to now
    # A join, not a subquery: the flag is read in every bucket's filtered aggregate.
    planned = Case(
        When(work_order_link__caused_by__type__in=PLANNED_TYPES, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    downtimes = (
        Downtime.objects.filter(organization=scope.organization, started_at__lt=min(scope.end, now))
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=scope.start))
        .filter(periods.scope_q(scope, asset="asset_id", asset_type="asset__asset_type_id", location="asset__location"))
        .annotate(planned=planned, effective_end=end)
    )
    measures = {}
    for i, b in enumerate(buckets):
        overlap = ExpressionWrapper(
            Least(F("effective_end"), Value(b.end)) - Greatest(F("started_at"), Value(b.start)),
            output_field=DurationField(),
        )
        touches = Q(started_at__lt=b.end, effective_end__gt=b.start)
        measures[f"s{i}"] = Sum(overlap, filter=touches & Q(planned=True))
        measures[f"u{i}"] = Sum(overlap, filter=touches & Q(planned=False))
        measures[f"f{i}"] = Count("pk", filter=Q(planned=False, started_at__gte=b.start, started_at__lt=b.end))
        repair = ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())
        ended_here = Q(planned=False, ended_at__gte=b.start, ended_at__lt=b.end)
        measures[f"r{i}"] = Sum(repair, filter=ended_here)
        measures[f"n{i}"] = Count("pk", filter=ended_here)
    assets = Asset.objects.filter(organization=scope.organization).exclude(status=Asset.Status.RETIRED)
    assets = assets.filter(periods.scope_q(scope, asset="id", asset_type="asset_type_id", location="location"))
    counts = {f"a{i}": Count("pk", filter=Q(created_at__lt=b.end)) for i, b in enumerate(buckets)}
    if group_by is None:
        rows = [downtimes.aggregate(**measures)]
        asset_rows = [assets.aggregate(**counts)]
        key_of = asset_key_of = lambda row: None  # noqa: E731
    else:
        field, asset_field = DOWNTIME_GROUP[group_by], ASSET_GROUP[group_by]
        rows = list(downtimes.values(field).annotate(**measures).order_by())
        asset_rows = list(assets.values(asset_field).annotate(**counts).order_by())
        key_of, asset_key_of = (lambda row: row[field]), (lambda row: row[asset_field])  # noqa: E731
    by_key = {key_of(row): row for row in rows}
    asset_counts = {asset_key_of(row): row for row in asset_rows}
    out = {key: {} for key in keys}
    for group in set(by_key) | set(asset_counts):
        row, counted = by_key.get(group, {}), asset_counts.get(group, {})
        for i, b in enumerate(buckets):
            hours = max(0.0, (min(b.end, now) - b.start) / HOUR) * (counted.get(f"a{i}") or 0)
            scheduled, unscheduled = _hours(row.get(f"s{i}")), _hours(row.get(f"u{i}"))
            failures, repaired = row.get(f"f{i}") or 0, row.get(f"n{i}") or 0
            up = hours - scheduled - unscheduled
            bucket = b.key if group_by is None else group
            figures = {
                "availability": _ratio(up, hours - scheduled) if hours - scheduled > 0 else None,
                "mtbf": round(up / failures, 4) if failures else None,
                "mttr": round(_hours(row.get(f"r{i}")) / repaired, 4) if repaired else None,
                "failures": failures,
                "unscheduled_downtime_hours": round(unscheduled, 4),
                "scheduled_downtime_hours": round(scheduled, 4),
            }
            for key in keys:
                out[key][bucket] = figures[key]
    return out


# --- work: planned ratio, rework, first-time fix, wrench time ---------------------------------------------------


def _orders(scope):
    return WorkOrder.objects.filter(organization=scope.organization).filter(
        periods.scope_q(scope, asset="asset_id", asset_type="asset__asset_type_id", location="location", team="team_id")
    )


def work_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """Planned ratio, rework, first-time fix and wrench time of the orders completed in the period: one aggregate
    over those orders (grouped by bucket), and one over their time entries for wrench time."""
    done = _orders(scope).filter(status__in=DONE, completed_at__gte=scope.start, completed_at__lt=scope.end)
    follow_up = WorkOrder.objects.filter(
        parent=OuterRef("pk"),
        created_at__lte=ExpressionWrapper(
            OuterRef("completed_at") + Value(timedelta(days=REWORK_DAYS)), output_field=DateTimeField()
        ),
    )
    reactive = Q(type__in=REACTIVE_TYPES)
    measures = {
        "completed": Count("pk"),
        "planned": Count("pk", filter=Q(type__in=PLANNED_TYPES)),
        "reactive": Count("pk", filter=reactive),
        "estimated": Sum("estimated_minutes"),
    }
    if {"rework_rate", "first_time_fix"} & keys:
        measures["reworked"] = Count("pk", filter=reactive & Q(Exists(follow_up)))
    zone = scope.zone
    if interval:
        rows = done.annotate(bucket=periods.trunc("completed_at", interval, zone)).values("bucket")
        rows = {periods.bucket_key(r["bucket"], zone): r for r in rows.annotate(**measures).order_by()}
    else:
        rows = {None: done.aggregate(**measures)}
    logged = {}
    if "wrench_time" in keys:
        # The time entries of the same orders (those with an estimate), joined: one more query. Their estimates are
        # the `estimated` sum above (orders without an estimate add nothing to it).
        entries = TimeEntry.objects.filter(
            work_order__in=done.filter(estimated_minutes__isnull=False).values("pk"), minutes__isnull=False
        )
        if interval:
            grouped = entries.annotate(bucket=periods.trunc("work_order__completed_at", interval, zone))
            for r in grouped.values("bucket").annotate(minutes=Sum("minutes")).order_by():
                logged[periods.bucket_key(r["bucket"], zone)] = r["minutes"]
        else:
            logged[None] = entries.aggregate(minutes=Sum("minutes"))["minutes"]
    out = {key: {} for key in keys}
    for bucket, row in rows.items():
        rework = _ratio(row.get("reworked") or 0, row["reactive"])
        figures = {
            "planned_ratio": _ratio(row["planned"], row["completed"]),
            "rework_rate": rework,
            "first_time_fix": round(100 - rework, 4) if rework is not None else None,
            "wrench_time": _ratio(logged.get(bucket) or 0, row["estimated"]) if "wrench_time" in keys else None,
        }
        for key in keys:
            out[key][bucket] = figures[key]
    return out


def backlog_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """The backlog at the end of each bucket (or now, if earlier): count, estimated hours, mean age. One query
    over the orders that were open at some point of the period, with one filtered aggregate per bucket."""
    buckets = periods.buckets(scope, interval)
    moments = [min(b.end, scope.now) for b in buckets]
    first, last = min(moments), max(moments)
    # Open at some moment: open now, or closed at or after the first moment (each side of the OR has its index:
    # wo_org_open_created_idx, wo_org_completed_idx, wo_org_cancelled_idx); the aggregates say when exactly.
    orders = _orders(scope).filter(created_at__lt=last)
    orders = orders.filter(
        Q(status__in=WorkOrder.OPEN_STATUSES) | Q(completed_at__gte=first) | Q(cancelled_at__gte=first)
    )
    measures = {}
    for i, moment in enumerate(moments):
        open_then = (
            Q(created_at__lt=moment)
            & (Q(completed_at__isnull=True) | Q(completed_at__gte=moment))
            & (Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=moment))
        )
        measures[f"c{i}"] = Count("pk", filter=open_then)
        measures[f"m{i}"] = Sum("estimated_minutes", filter=open_then)
        age = ExpressionWrapper(Value(moment) - F("created_at"), output_field=DurationField())
        measures[f"a{i}"] = Avg(age, filter=open_then)
    row = orders.aggregate(**measures)
    out = {key: {} for key in keys}
    for i, b in enumerate(buckets):
        figures = {
            "backlog_count": row[f"c{i}"] or 0,
            "backlog_hours": round((row[f"m{i}"] or 0) / 60, 4),
            "backlog_age_days": round(row[f"a{i}"] / timedelta(days=1), 4) if row[f"a{i}"] is not None else None,
        }
        for key in keys:
            out[key][b.key] = figures[key]
    return out


# --- costs: labour and external ---------------------------------------------------------------------------------

MONEY = DecimalField(max_digits=20, decimal_places=4)
CENT = Decimal("0.01")


def _money(value) -> Decimal:
    return (value or Decimal(0)).quantize(CENT)


def _cost_query(rows, moment: str, amount, scope, interval, group_by) -> dict:
    rows = rows.filter(**{f"{moment}__gte": scope.start, f"{moment}__lt": scope.end}).filter(
        periods.scope_q(
            scope,
            asset="work_order__asset_id",
            asset_type="work_order__asset__asset_type_id",
            location="work_order__location",
            team="work_order__team_id",
        )
    )
    if group_by is not None:
        field = CHILD_GROUP[group_by]
        return {r[field]: _money(r["amount"]) for r in rows.values(field).annotate(amount=amount).order_by()}
    if interval:
        grouped = rows.annotate(bucket=periods.trunc(moment, interval, scope.zone)).values("bucket")
        return {
            periods.bucket_key(r["bucket"], scope.zone): _money(r["amount"]) for r in grouped.annotate(amount=amount)
        }
    return {None: _money(rows.aggregate(amount=amount)["amount"])}


def cost_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """Labour (time entries at their copied rate) and external (cost lines) costs: one query each."""
    out = {}
    if "labour_cost" in keys:
        entries = TimeEntry.objects.filter(organization=scope.organization, minutes__isnull=False).annotate(
            moment=Coalesce("started_at", "created_at")
        )
        amount = Sum(ExpressionWrapper(F("minutes") * F("hourly_rate") / Value(60), output_field=MONEY))
        out["labour_cost"] = _cost_query(entries, "moment", amount, scope, interval, group_by)
    if "external_cost" in keys:
        lines = CostLine.objects.filter(organization=scope.organization)
        out["external_cost"] = _cost_query(lines, "created_at", Sum("amount"), scope, interval, group_by)
    return out


# --- helpers other apps and the API use -------------------------------------------------------------------------


def failure_pareto(scope, *, kind: str = "cause", limit: int = 20) -> list[dict]:
    """Reactive work orders completed in the period, counted by failure code of `kind` (problem, cause, remedy),
    most frequent first, with the cumulative share (a Pareto). Orders without a code of that kind are one row
    with code None. One query."""
    field = {"problem": "problem_code", "cause": "cause_code", "remedy": "remedy_code"}[kind]
    done = _orders(scope).filter(
        status__in=DONE, type__in=REACTIVE_TYPES, completed_at__gte=scope.start, completed_at__lt=scope.end
    )
    rows = list(
        done.values(f"{field}_id", f"{field}__code", f"{field}__name")
        .annotate(count=Count("pk"))
        .order_by("-count", F(f"{field}__code").asc(nulls_last=True))
    )
    total = sum(r["count"] for r in rows)
    out, running = [], 0
    for r in rows[:limit]:
        running += r["count"]
        out.append(
            {
                "id": r[f"{field}_id"],
                "code": r[f"{field}__code"],
                "name": r[f"{field}__name"] or "(no code)",
                "count": r["count"],
                "share": _ratio(r["count"], total),
                "cumulative_share": _ratio(running, total),
            }
        )
    return out


def register() -> None:
    registry.register_provider(DOWNTIME_KPIS, downtime_kpis, group_bys=GROUP_BYS)
    registry.register_provider(WORK_KPIS, work_kpis)
    registry.register_provider(BACKLOG_KPIS, backlog_kpis)
    registry.register_provider(COST_KPIS, cost_kpis, group_bys=GROUP_BYS)
    registry.register_function("failure_pareto", failure_pareto)
    registry.register_function("exists:team", services.exists_team)
    registry.register_function("budgets_overlapping", services.budgets_overlapping)
