"""The KPIs computed from work orders and downtime (the definitions are in `maintenance_site.analytics.definitions`):
availability, MTBF, MTTR, failures and downtime hours (here, not in `assets`, because whether a downtime was
scheduled is known from the work order that caused it, `DowntimeLink`); planned ratio, backlog, rework, first-time
fix, wrench time; labour and external costs; the failure-code Pareto. Registered in `WorkOrdersConfig.ready()`.

Every figure is one aggregate query (a trend adds one filtered aggregate per bucket to that query, a breakdown
groups it): the number of queries never grows with the data.
"""

from bisect import bisect_left
from datetime import timedelta
from decimal import Decimal

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least

from assets.models import Asset, Downtime
from maintenance_site.analytics import definitions, periods, registry, rollups
from maintenance_site.analytics.definitions import PLANNED_TYPES, REACTIVE_TYPES, REWORK_DAYS
from workorders import services
from workorders.models import CostLine, FailureCode, TimeEntry, WorkOrder

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
# The breakdowns the rollups also keep per day (`maintenance_site.analytics.rollups`): few groups each. Per asset
# stays live (a row per asset and day would be most of the data again).
ROLLUP_BREAKDOWNS = ("asset_type", "location")

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


def _planned():
    """Whether a downtime was scheduled (`definitions.DOWNTIME_RULES`): the work order that caused it is planned
    work. A join, not a subquery: the flag is read in every bucket's filtered aggregate."""
    return Case(
        When(work_order_link__caused_by__type__in=PLANNED_TYPES, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def _downtime_query(scope, buckets):
    """The downtimes that touch the period, and per bucket i the sums s{i} (scheduled), u{i} (unscheduled), f{i}
    (failures), r{i} (repair time) and n{i} (repairs) as filtered aggregates."""
    now = scope.now
    end = Coalesce("ended_at", Value(now), output_field=DateTimeField())  # an open downtime counts up to now
    planned = _planned()
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
    return downtimes, measures


def downtime_kpis_rows(scope, interval, group_by=None) -> dict:
    """{bucket key: {"s", "u", "f", "r", "n"}}: the sums of `_downtime_query` per bucket, in one query; with
    `group_by`, {bucket key: {group: {…, "t"}}} for the groups with a downtime touching the bucket (`t`: how many)."""
    buckets = periods.buckets(scope, interval)
    downtimes, measures = _downtime_query(scope, buckets)
    if group_by is None:
        row = downtimes.aggregate(**measures)
        return {b.key: {name: row[f"{name}{i}"] for name in "sufrn"} for i, b in enumerate(buckets)}
    for i, b in enumerate(buckets):
        measures[f"t{i}"] = Count("pk", filter=Q(started_at__lt=b.end, effective_end__gt=b.start))
    field = DOWNTIME_GROUP[group_by]
    out: dict = {}
    for row in downtimes.values(field).annotate(**measures).order_by():
        for i, b in enumerate(buckets):
            if row[f"t{i}"]:
                out.setdefault(b.key, {})[row[field]] = {name: row[f"{name}{i}"] for name in "sufrnt"}
    return out


def downtime_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """Availability, MTBF, MTTR, failures, scheduled and unscheduled downtime hours: one query over the downtimes
    that touch the period (each bucket's hours cut at its bounds), one over the assets (the asset hours)."""
    buckets = periods.buckets(scope, interval) if group_by is None else periods.buckets(scope, None)
    now = scope.now
    downtimes, measures = _downtime_query(scope, buckets)
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
            bucket = b.key if group_by is None else group
            figures = _downtime_figures(hours, scheduled, unscheduled, failures, _hours(row.get(f"r{i}")), repaired)
            for key in keys:
                out[key][bucket] = figures[key]
    return out


def _downtime_figures(hours, scheduled, unscheduled, failures, repair_hours, repaired) -> dict:
    """The downtime KPIs of one bucket or group from its asset hours and downtime sums (`definitions`)."""
    up = hours - scheduled - unscheduled
    return {
        "availability": _ratio(up, hours - scheduled) if hours - scheduled > 0 else None,
        "mtbf": definitions.mtbf_hours(up, failures),
        "mttr": round(repair_hours / repaired, 4) if repaired else None,
        "failures": failures,
        "unscheduled_downtime_hours": round(unscheduled, 4),
        "scheduled_downtime_hours": round(scheduled, 4),
    }


# --- the additive daily measures behind the rollups (`maintenance_site.analytics.rollups`) ------------------------
#
# Each `*_measures(scope, keys, interval=None)` returns {bucket: {name: int or Decimal}}: sums and counts that add up
# over disjoint periods (durations as integer microseconds, so the sums stay exact); the matching `*_finish(scope,
# keys, raw)` turns the sums of one whole period into the provider's figures {kpi: {None: value}}. A period's figures
# are `finish(sum of its days' measures)`: equal to the provider's own (a test asserts it on PostgreSQL).

MICRO = timedelta(microseconds=1)


def _us(value) -> int:
    return (value or timedelta(0)) // MICRO


def _hours_us(value) -> float:
    return timedelta(microseconds=int(value or 0)) / HOUR


def _downtime_sums(row: dict) -> dict:
    return {name: _us(row.get(name)) if name in "sur" else row.get(name) or 0 for name in row}


def downtime_measures(scope, keys, *, interval=None, group_by=None) -> dict:
    """Scheduled and unscheduled downtime cut at each bucket's bounds, failures, repair time and repairs: the
    downtime query of `downtime_kpis` (asset hours are not additive over days: `downtime_finish` reads them); per
    group of `group_by` too ({bucket: {group: sums}}, `t` marking that the group had downtime that day)."""
    rows = downtime_kpis_rows(scope, interval, group_by)
    if group_by is not None:
        return {key: {group: _downtime_sums(row) for group, row in groups.items()} for key, groups in rows.items()}
    return {key: _downtime_sums(row) for key, row in rows.items()}


def _downtime_sum_figures(hours, raw) -> dict:
    return _downtime_figures(
        hours,
        _hours_us(raw.get("s")),
        _hours_us(raw.get("u")),
        int(raw.get("f") or 0),
        _hours_us(raw.get("r")),
        int(raw.get("n") or 0),
    )


def downtime_finish(scope, keys, raw, *, group_by=None) -> dict:
    if group_by is not None:
        return _downtime_finish_groups(scope, keys, raw, group_by)
    # The assets' creation moments, read once per question (the scope's `extra` is shared by a trend's buckets).
    created = scope.extra.get("rollup_asset_created")
    if created is None:
        assets = Asset.objects.filter(organization=scope.organization).exclude(status=Asset.Status.RETIRED)
        created = scope.extra["rollup_asset_created"] = sorted(assets.values_list("created_at", flat=True))
    counted = bisect_left(created, scope.end)  # the assets created before the period's end
    hours = max(0.0, (min(scope.end, scope.now) - scope.start) / HOUR) * counted
    figures = _downtime_sum_figures(hours, raw)
    return {key: {None: figures[key]} for key in keys}


def _downtime_finish_groups(scope, keys, sums: dict, group_by: str) -> dict:
    """The figures per group from each group's sums ({group: sums}) and its assets (one grouped count, as
    `downtime_kpis`): the groups are those with downtime in the period or with assets, as live."""
    field = ASSET_GROUP[group_by]
    assets = Asset.objects.filter(organization=scope.organization).exclude(status=Asset.Status.RETIRED)
    counted = {
        row[field]: row["a"]
        for row in assets.values(field).annotate(a=Count("pk", filter=Q(created_at__lt=scope.end))).order_by()
    }
    span = max(0.0, (min(scope.end, scope.now) - scope.start) / HOUR)
    out = {key: {} for key in keys}
    for group in set(sums) | set(counted):
        figures = _downtime_sum_figures(span * (counted.get(group) or 0), sums.get(group, {}))
        for key in keys:
            out[key][group] = figures[key]
    return out


def failure_starts(organization, since, until) -> dict[int, list]:
    """When each asset of the organisation failed in [since, until) — the start of each unscheduled downtime, as
    the `mtbf` and `failures` KPIs count them — oldest first. One query (asset health's failure history)."""
    rows = (
        Downtime.objects.filter(organization=organization, started_at__gte=since, started_at__lt=until)
        .annotate(planned=_planned())
        .filter(planned=False)
        .order_by("asset_id", "started_at")
        .values_list("asset_id", "started_at")
    )
    starts: dict[int, list] = {}
    for asset_id, started_at in rows:
        starts.setdefault(asset_id, []).append(started_at)
    return starts


# --- work: planned ratio, rework, first-time fix, wrench time ---------------------------------------------------


def _orders(scope):
    return WorkOrder.objects.filter(organization=scope.organization).filter(
        periods.scope_q(scope, asset="asset_id", asset_type="asset__asset_type_id", location="location", team="team_id")
    )


def _work_rows(scope, keys, interval) -> dict:
    """{bucket: {completed, planned, reactive, estimated, reworked, logged}}: the sums behind the work KPIs."""
    done = _orders(scope).filter(status__in=DONE, completed_at__gte=scope.start, completed_at__lt=scope.end)
    reactive = Q(type__in=REACTIVE_TYPES)
    measures = {
        "completed": Count("pk"),
        "planned": Count("pk", filter=Q(type__in=PLANNED_TYPES)),
        "reactive": Count("pk", filter=reactive),
        "estimated": Sum("estimated_minutes"),
    }
    zone = scope.zone
    if interval:
        rows = done.annotate(bucket=periods.trunc("completed_at", interval, zone)).values("bucket")
        rows = {periods.bucket_key(r["bucket"], zone): r for r in rows.annotate(**measures).order_by()}
    else:
        rows = {None: done.aggregate(**measures)}
    if {"rework_rate", "first_time_fix"} & keys:
        for bucket, reworked in _reworked(scope, interval).items():
            rows.setdefault(bucket, {"completed": 0, "planned": 0, "reactive": 0, "estimated": None})
            rows[bucket]["reworked"] = reworked
    if "wrench_time" in keys:
        # The time entries of the same orders (those with an estimate), joined: one more query. Their estimates are
        # the `estimated` sum above (orders without an estimate add nothing to it).
        entries = TimeEntry.objects.filter(
            work_order__in=done.filter(estimated_minutes__isnull=False).values("pk"), minutes__isnull=False
        )
        logged = {}
        if interval:
            grouped = entries.annotate(bucket=periods.trunc("work_order__completed_at", interval, zone))
            for r in grouped.values("bucket").annotate(minutes=Sum("minutes")).order_by():
                logged[periods.bucket_key(r["bucket"], zone)] = r["minutes"]
        else:
            logged[None] = entries.aggregate(minutes=Sum("minutes"))["minutes"]
        for bucket, row in rows.items():
            row["logged"] = logged.get(bucket)
    return rows


def _work_figures(row, keys) -> dict:
    rework = _ratio(row.get("reworked") or 0, row["reactive"])
    return {
        "planned_ratio": _ratio(row["planned"], row["completed"]),
        "rework_rate": rework,
        "first_time_fix": round(100 - rework, 4) if rework is not None else None,
        "wrench_time": _ratio(row.get("logged") or 0, row["estimated"]) if "wrench_time" in keys else None,
    }


def work_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """Planned ratio, rework, first-time fix and wrench time of the orders completed in the period: one aggregate
    over those orders (grouped by bucket), one from the follow-ups' side for rework, and one over their time
    entries for wrench time."""
    out = {key: {} for key in keys}
    for bucket, row in _work_rows(scope, keys, interval).items():
        figures = _work_figures(row, keys)
        for key in keys:
            out[key][bucket] = figures[key]
    return out


WORK_MEASURES = ("completed", "planned", "reactive", "estimated", "reworked", "logged")


def work_measures(scope, keys, *, interval=None) -> dict:
    """The work KPIs' sums per bucket (`_work_rows`), every one of them whatever `keys` asks."""
    rows = _work_rows(scope, frozenset(WORK_KPIS), interval)
    return {bucket: {name: row.get(name) or 0 for name in WORK_MEASURES} for bucket, row in rows.items()}


def work_finish(scope, keys, raw) -> dict:
    row = {name: int(raw.get(name) or 0) for name in WORK_MEASURES}
    figures = _work_figures(row, keys)
    return {key: {None: figures[key]} for key in keys}


def _reworked(scope, interval) -> dict:
    """Reactive orders completed in the period (per bucket of their completion) with a follow-up raised within
    REWORK_DAYS of their completion. One query from the follow-ups' side (few rows, `wo_org_followup_created_idx`),
    joined to their parent, instead of a lookup per completed order."""
    window = timedelta(days=REWORK_DAYS)
    follow_ups = WorkOrder.objects.filter(
        organization=scope.organization,
        parent__isnull=False,
        created_at__lt=scope.end + window,
        parent__status__in=DONE,
        parent__type__in=REACTIVE_TYPES,
        parent__completed_at__gte=scope.start,
        parent__completed_at__lt=scope.end,
        created_at__lte=ExpressionWrapper(F("parent__completed_at") + Value(window), output_field=DateTimeField()),
    ).filter(
        periods.scope_q(
            scope,
            asset="parent__asset_id",
            asset_type="parent__asset__asset_type_id",
            location="parent__location",
            team="parent__team_id",
        )
    )
    if interval:
        grouped = follow_ups.annotate(bucket=periods.trunc("parent__completed_at", interval, scope.zone))
        return {
            periods.bucket_key(r["bucket"], scope.zone): r["n"]
            for r in grouped.values("bucket").annotate(n=Count("parent_id", distinct=True)).order_by()
        }
    return {None: follow_ups.aggregate(n=Count("parent_id", distinct=True))["n"]}


def backlog_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """The backlog at the end of each bucket (or now, if earlier): count, estimated hours, mean age.

    The orders open at some moment of the period are read as three disjoint sets, each an index-only range scan
    of its own covering index, so the cost follows the orders open or closed since the period's start, not the
    organisation's whole history: open now (`wo_org_open_created_idx`), closed by completion at or after the first
    moment (`wo_org_completed_cov_idx`), closed by cancellation at or after it without such a completion
    (`wo_org_cancelled_idx`). Three queries, each with one filtered aggregate per bucket, added up here."""
    buckets = periods.buckets(scope, interval)
    moments = [min(b.end, scope.now) for b in buckets]
    first, last = min(moments), max(moments)
    orders = _orders(scope).filter(created_at__lt=last)
    is_open = Q(status__in=WorkOrder.OPEN_STATUSES)
    completed_since = Q(completed_at__gte=first)
    sets = [
        orders.filter(is_open),
        orders.filter(~is_open & completed_since),
        orders.filter(
            ~is_open & Q(cancelled_at__gte=first) & (Q(completed_at__isnull=True) | Q(completed_at__lt=first))
        ),
    ]
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
        measures[f"a{i}"] = Sum(age, filter=open_then)
    rows = [part.aggregate(**measures) for part in sets]
    out = {key: {} for key in keys}
    for i, b in enumerate(buckets):
        count = sum(row[f"c{i}"] or 0 for row in rows)
        minutes = sum(row[f"m{i}"] or 0 for row in rows)
        age = sum((row[f"a{i}"] for row in rows if row[f"a{i}"] is not None), timedelta(0))
        figures = {
            "backlog_count": count,
            "backlog_hours": round(minutes / 60, 4),
            "backlog_age_days": round(age / count / timedelta(days=1), 4) if count else None,
        }
        for key in keys:
            out[key][b.key] = figures[key]
    return out


# --- costs: labour and external ---------------------------------------------------------------------------------

MONEY = DecimalField(max_digits=20, decimal_places=4)
CENT = Decimal("0.01")


def _money(value) -> Decimal:
    return (value or Decimal(0)).quantize(CENT)


def _cost_query(rows, moment: str, amount, scope, interval, group_by, money=_money) -> dict:
    """One cost's amount: per group, per bucket, per bucket and group ({bucket: {group: amount}}), or in all."""
    rows = rows.filter(**{f"{moment}__gte": scope.start, f"{moment}__lt": scope.end}).filter(
        periods.scope_q(
            scope,
            asset="work_order__asset_id",
            asset_type="work_order__asset__asset_type_id",
            location="work_order__location",
            team="work_order__team_id",
        )
    )
    if group_by is not None and interval:
        field = CHILD_GROUP[group_by]
        grouped = rows.annotate(bucket=periods.trunc(moment, interval, scope.zone)).values("bucket", field)
        out: dict = {}
        for r in grouped.annotate(amount=amount).order_by():
            out.setdefault(periods.bucket_key(r["bucket"], scope.zone), {})[r[field]] = money(r["amount"])
        return out
    if group_by is not None:
        field = CHILD_GROUP[group_by]
        return {r[field]: money(r["amount"]) for r in rows.values(field).annotate(amount=amount).order_by()}
    if interval:
        grouped = rows.annotate(bucket=periods.trunc(moment, interval, scope.zone)).values("bucket")
        return {
            periods.bucket_key(r["bucket"], scope.zone): money(r["amount"]) for r in grouped.annotate(amount=amount)
        }
    return {None: money(rows.aggregate(amount=amount)["amount"])}


def cost_kpis(scope, keys, *, interval=None, group_by=None, money=_money) -> dict:
    """Labour (time entries at their copied rate) and external (cost lines) costs: one query each."""
    out = {}
    if "labour_cost" in keys:
        entries = TimeEntry.objects.filter(organization=scope.organization, minutes__isnull=False).annotate(
            moment=Coalesce("started_at", "created_at")
        )
        amount = Sum(ExpressionWrapper(F("minutes") * F("hourly_rate") / Value(60), output_field=MONEY))
        out["labour_cost"] = _cost_query(entries, "moment", amount, scope, interval, group_by, money)
    if "external_cost" in keys:
        lines = CostLine.objects.filter(organization=scope.organization)
        out["external_cost"] = _cost_query(lines, "created_at", Sum("amount"), scope, interval, group_by, money)
    return out


def _exact(value):
    return value or 0


def cost_measures(scope, keys, *, interval=None, group_by=None) -> dict:
    """Labour and external cost per bucket (and group of `group_by`: {bucket: {group: sums}}), unrounded (the
    rounding to cents is the period's, in `cost_finish`)."""
    answer = cost_kpis(scope, COST_KPIS, interval=interval, group_by=group_by, money=_exact)
    out: dict = {}
    for key, values in answer.items():
        for bucket, value in values.items():
            if group_by is None:
                out.setdefault(bucket, {})[key] = value
                continue
            if interval is None:  # a live segment of a grouped question: one bucket, the whole segment
                bucket, value = None, {bucket: value}
            for group, amount in value.items():
                out.setdefault(bucket, {}).setdefault(group, {})[key] = amount
    return out


def cost_finish(scope, keys, raw, *, group_by=None) -> dict:
    if group_by is not None:
        return {key: {group: _money(sums.get(key)) for group, sums in raw.items() if key in sums} for key in keys}
    return {key: {None: _money(raw.get(key))} for key in keys}


# --- helpers other apps and the API use -------------------------------------------------------------------------


PARETO_FIELDS = {"problem": "problem_code", "cause": "cause_code", "remedy": "remedy_code"}


def _failures_done(scope):
    """The reactive work orders completed in the period: what the failure-code Pareto counts."""
    return _orders(scope).filter(
        status__in=DONE, type__in=REACTIVE_TYPES, completed_at__gte=scope.start, completed_at__lt=scope.end
    )


def failure_code_measures(scope, keys, *, interval=None, group_by=None) -> dict:
    """The Pareto's counts kept by the rollups: reactive orders completed per bucket ({bucket: {"failures": n}}),
    per failure code of `group_by` ("cause_code", …: {bucket: {code id: {"failures": n}}})."""
    done = _failures_done(scope)
    zone = scope.zone
    if interval:
        done = done.annotate(bucket=periods.trunc("completed_at", interval, zone))
    fields = (["bucket"] if interval else []) + ([f"{group_by}_id"] if group_by else [])
    rows = done.values(*fields).annotate(n=Count("pk")).order_by() if fields else [done.aggregate(n=Count("pk"))]
    out: dict = {}
    for r in rows:
        bucket = periods.bucket_key(r["bucket"], zone) if interval else None
        if group_by is None:
            out[bucket] = {"failures": r["n"]}
        else:
            out.setdefault(bucket, {})[r[f"{group_by}_id"]] = {"failures": r["n"]}
    return out


def failure_code_finish(scope, keys, raw, *, group_by=None) -> dict:
    return {}  # no KPI: read by `failure_pareto` through `rollups.grouped`


def failure_pareto(scope, *, kind: str = "cause", limit: int = 20) -> list[dict]:
    """Reactive work orders completed in the period, counted by failure code of `kind` (problem, cause, remedy),
    most frequent first (then by code), with the cumulative share (a Pareto). Orders without a code of that kind
    are one row with code None. One query; for the whole organisation the counts per code come from the daily
    rollups when they can be used (then a second query names the codes)."""
    field = PARETO_FIELDS[kind]
    rolled = rollups.grouped(scope, "failure_codes", field)
    if rolled is not None:
        counts = {code: int(sums.get("failures") or 0) for code, sums in rolled["groups"].items()}
        counts = {code: n for code, n in counts.items() if n}
        named = FailureCode.objects.filter(pk__in=[code for code in counts if code is not None]).order_by("code")
        ordered = [(pk, code, name) for pk, code, name in named.values_list("pk", "code", "name")]
        if None in counts:
            ordered.append((None, None, None))
        rows = [
            {f"{field}_id": pk, f"{field}__code": code, f"{field}__name": name, "count": counts[pk]}
            for pk, code, name in ordered
        ]
        rows.sort(key=lambda r: -r["count"])  # stable: ties keep the codes' order, as ORDER BY count DESC, code
    else:
        rows = list(
            _failures_done(scope)
            .values(f"{field}_id", f"{field}__code", f"{field}__name")
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
    registry.register_provider(
        DOWNTIME_KPIS,
        downtime_kpis,
        group_bys=GROUP_BYS,
        rollup=("downtime", downtime_measures, downtime_finish),
        rollup_breakdowns=ROLLUP_BREAKDOWNS,
    )
    registry.register_provider(WORK_KPIS, work_kpis, rollup=("work", work_measures, work_finish))
    registry.register_provider(BACKLOG_KPIS, backlog_kpis)
    registry.register_provider(
        COST_KPIS,
        cost_kpis,
        group_bys=GROUP_BYS,
        rollup=("costs", cost_measures, cost_finish),
        rollup_breakdowns=ROLLUP_BREAKDOWNS,
    )
    registry.register_rollup(
        "failure_codes", failure_code_measures, failure_code_finish, breakdowns=tuple(PARETO_FIELDS.values())
    )
    registry.register_function("failure_pareto", failure_pareto)
    registry.register_function("exists:team", services.exists_team)
    registry.register_function("budgets_overlapping", services.budgets_overlapping)
