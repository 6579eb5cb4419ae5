"""What every KPI means: the one place its formula, what counts, its unit and its edge cases are written down.

The API publishes these (`/api/v1/analytics/definitions`, the OpenAPI descriptions of `/api/v1/analytics/*`),
every response names `VERSION`, and the functions that compute a figure (each app's `analytics` module) follow
the text here. Change a definition and its computation together, and bump `VERSION`.

Rules shared by every KPI:

- A period is a range of the organisation's local days [from, to] (both included), in the organisation's time
  zone: a day is local midnight to local midnight, so a DST day lasts 23 or 25 hours and counts as such. Sites
  with their own time zone are still counted in the organisation's days (one calendar for one figure).
- Something that happens at a moment (a failure, a completion, a cost) belongs to the period holding that moment.
  Something that lasts (a downtime) is cut at the period's bounds: each period gets the hours that fall in it.
- Something still going on (an open downtime) counts up to now, or to the period's end if that is earlier.
- A ratio with nothing to divide by (no failures, no due PM) is null ("—"), never 0 or 100.
- Filters: location (the location and everything below it), asset type, asset and team. A KPI ignores a filter
  that does not apply to it (`filters` below says which apply); stock KPIs are organisation-wide.
"""

from dataclasses import asdict, dataclass, field

VERSION = "2026-12-07.1"

# Work-order types that are planned work; the others (corrective, emergency) are reactive.
PLANNED_TYPES = ("preventive", "predictive", "inspection", "routine")
REACTIVE_TYPES = ("corrective", "emergency")
# Rework: a follow-up order raised on a completed reactive order within this many days of its completion.
REWORK_DAYS = 14
# PM on time: completed within this long after the due time (scheduling.preventive.reports.ON_TIME_TOLERANCE).
PM_ON_TIME_TOLERANCE_HOURS = 24

WORK_FILTERS = ("location", "asset_type", "asset", "team")
ASSET_FILTERS = ("location", "asset_type", "asset")


@dataclass(frozen=True)
class KPI:
    """One key performance indicator: what it is called, how it is computed, in what unit."""

    key: str
    name: str
    unit: str  # "percent", "hours", "days", "count", "money" (the organisation's currency), "ratio"
    formula: str
    counts: str  # what is counted, what is left out
    edge_cases: str = ""
    filters: tuple = WORK_FILTERS
    higher_is_better: bool | None = True
    link: str = ""  # where a dashboard tile leads (an API path)
    group_bys: tuple = field(default=())  # breakdowns device-performance / costs offer for it

    def as_dict(self) -> dict:
        data = asdict(self)
        data["filters"] = list(self.filters)
        data["group_bys"] = list(self.group_bys)
        return data


DOWNTIME_RULES = (
    "Scheduled downtime: a downtime whose work-order link names the planned work order that took the asset down "
    "(`DowntimeLink.caused_by`, a work order of type preventive, predictive, inspection or routine). Every other "
    "downtime is unscheduled — a failure. "
)
ASSET_HOURS = (
    "Asset hours: for each asset in the filter that is not retired and was created before the period's end, the "
    "hours of the period (a DST day has 23 or 25)."
)

KPIS: dict[str, KPI] = {
    k.key: k
    for k in [
        KPI(
            "availability",
            "Availability",
            "percent",
            "100 × (asset hours − scheduled downtime − unscheduled downtime) ÷ (asset hours − scheduled downtime)",
            DOWNTIME_RULES + ASSET_HOURS + " Downtime hours are cut at the period's bounds.",
            "No assets: null. An open downtime counts up to now. Planned stops do not lower availability.",
            filters=ASSET_FILTERS,
            link="/api/v1/analytics/device-performance",
            group_bys=("asset", "asset_type", "location"),
        ),
        KPI(
            "mtbf",
            "Mean time between failures",
            "hours",
            "(asset hours − scheduled downtime − unscheduled downtime) ÷ failures",
            DOWNTIME_RULES + "A failure is an unscheduled downtime that starts in the period. " + ASSET_HOURS,
            "No failures in the period: null (not infinite). The one MTBF of the platform (`mtbf_hours` below): "
            "asset health's predicted next failure uses this figure per asset over the last 365 local days.",
            filters=ASSET_FILTERS,
            link="/api/v1/analytics/device-performance",
            group_bys=("asset", "asset_type", "location"),
        ),
        KPI(
            "mttr",
            "Mean time to repair",
            "hours",
            "sum of the durations of the failures that ended in the period ÷ their number",
            DOWNTIME_RULES + "Whole durations, from the asset going down to it coming back up, of the unscheduled "
            "downtimes that ended in the period (a failure that spans two periods counts once, in the period it "
            "ended).",
            "Failures still open are not counted until they end. None ended: null.",
            filters=ASSET_FILTERS,
            higher_is_better=False,
            link="/api/v1/analytics/device-performance",
            group_bys=("asset", "asset_type", "location"),
        ),
        KPI(
            "failures",
            "Failures",
            "count",
            "number of unscheduled downtimes that started in the period",
            DOWNTIME_RULES,
            filters=ASSET_FILTERS,
            higher_is_better=False,
            group_bys=("asset", "asset_type", "location"),
        ),
        KPI(
            "unscheduled_downtime_hours",
            "Unscheduled downtime",
            "hours",
            "sum of the hours of unscheduled downtime that fall in the period",
            DOWNTIME_RULES + "Cut at the period's bounds; an open downtime counts up to now.",
            filters=ASSET_FILTERS,
            higher_is_better=False,
            group_bys=("asset", "asset_type", "location"),
        ),
        KPI(
            "scheduled_downtime_hours",
            "Scheduled downtime",
            "hours",
            "sum of the hours of scheduled downtime that fall in the period",
            DOWNTIME_RULES + "Cut at the period's bounds; an open downtime counts up to now.",
            filters=ASSET_FILTERS,
            higher_is_better=None,
            group_bys=("asset", "asset_type", "location"),
        ),
        KPI(
            "pm_compliance",
            "PM compliance",
            "percent",
            "100 × PM occurrences completed on time ÷ (occurrences generated + skipped − those still open within "
            "the tolerance)",
            f"Preventive occurrences due in the period. On time: completed (or verified) within "
            f"{PM_ON_TIME_TOLERANCE_HOURS} h after the due time. Skipped occurrences count against compliance; an "
            "order still open within the tolerance is not decided yet and left out. The same figure as "
            "/api/v1/preventive-maintenance/statistics (it calls the same code).",
            "Nothing due and decided: null.",
            link="/api/v1/preventive-maintenance/statistics",
        ),
        KPI(
            "planned_ratio",
            "Planned work",
            "percent",
            "100 × planned work orders completed ÷ all work orders completed",
            f"Work orders completed in the period (completed or verified, by completion time). Planned: types "
            f"{', '.join(PLANNED_TYPES)}; reactive: {', '.join(REACTIVE_TYPES)}.",
            "Nothing completed: null.",
            link="/api/v1/work-orders?status=completed",
        ),
        KPI(
            "backlog_count",
            "Backlog",
            "count",
            "work orders open at the end of the period",
            "Created before the period's end (or now, if earlier) and neither completed nor cancelled by then.",
            "A reopened order counts as open from its creation until it is completed again (reopening clears the "
            "completion time). Backlogs of the past are read from the orders' creation, completion and "
            "cancellation times as they are now.",
            higher_is_better=False,
            link="/api/v1/work-orders?status=open,assigned,in_progress,on_hold",
        ),
        KPI(
            "backlog_hours",
            "Backlog hours",
            "hours",
            "sum of the estimated minutes ÷ 60 of the work orders in the backlog",
            "The backlog as in backlog_count; orders without an estimate add nothing.",
            higher_is_better=False,
        ),
        KPI(
            "backlog_age_days",
            "Backlog age",
            "days",
            "mean of (end of the period − creation) over the work orders in the backlog",
            "The backlog as in backlog_count.",
            "Empty backlog: null.",
            higher_is_better=False,
        ),
        KPI(
            "rework_rate",
            "Rework",
            "percent",
            f"100 × reactive orders completed in the period with a follow-up raised within {REWORK_DAYS} days of "
            f"their completion ÷ reactive orders completed in the period",
            "Reactive orders: corrective and emergency; a follow-up is a work order whose parent is the order.",
            "Reopened orders are not counted as rework yet (the history of reopenings is not aggregated). "
            "Nothing completed: null.",
            higher_is_better=False,
        ),
        KPI(
            "first_time_fix",
            "First-time fix",
            "percent",
            "100 − rework_rate",
            f"Reactive orders completed in the period that needed no follow-up within {REWORK_DAYS} days.",
            "Nothing completed: null.",
        ),
        KPI(
            "wrench_time",
            "Wrench time",
            "percent",
            "100 × minutes logged on work orders completed in the period ÷ their estimated minutes",
            "Only orders completed in the period that have an estimate; all their time entries, whenever logged.",
            "No estimates: null. Above 100 means more time than planned.",
            higher_is_better=None,
        ),
        KPI(
            "response_compliance",
            "SLA response compliance",
            "percent",
            "100 × response targets met ÷ (met + breached)",
            "SLA clocks started in the period, cancelled orders left out; targets still running are not decided. "
            "The same figure as /api/v1/sla/performance (overall response compliance).",
            "Nothing decided: null.",
            link="/api/v1/sla/performance",
        ),
        KPI(
            "resolution_compliance",
            "SLA resolution compliance",
            "percent",
            "100 × resolution targets met ÷ (met + breached)",
            "As response_compliance, for the resolution target.",
            "Nothing decided: null.",
            link="/api/v1/sla/performance",
        ),
        KPI(
            "labour_cost",
            "Labour cost",
            "money",
            "sum of minutes × the hourly rate copied on each time entry ÷ 60",
            "Time entries that started in the period (entered time without a start: when it was entered). The rate "
            "is the one copied when the time was entered, so later rate changes do not rewrite the past.",
            higher_is_better=False,
            link="/api/v1/analytics/costs",
            group_bys=("asset", "asset_type", "location", "category", "period"),
        ),
        KPI(
            "parts_cost",
            "Parts cost",
            "money",
            "sum of (quantity issued − quantity returned) × the ledger's unit cost at the movement",
            "Stock ledger issues to and returns from work orders in the period, at the unit cost written on each "
            "movement.",
            higher_is_better=False,
            link="/api/v1/analytics/costs",
            group_bys=("asset", "asset_type", "location", "category", "period"),
        ),
        KPI(
            "external_cost",
            "External cost",
            "money",
            "sum of the amounts of the work orders' cost lines",
            "Cost lines (contractor invoices, rentals, permits) added in the period.",
            higher_is_better=False,
            link="/api/v1/analytics/costs",
            group_bys=("asset", "asset_type", "location", "category", "period"),
        ),
        KPI(
            "total_cost",
            "Maintenance cost",
            "money",
            "labour_cost + parts_cost + external_cost",
            "As each of the three.",
            higher_is_better=False,
            link="/api/v1/analytics/costs",
        ),
        KPI(
            "inventory_turns",
            "Inventory turns",
            "ratio",
            "value of parts issued in the period (issues − returns) ÷ the value of the stock on hand now",
            "Stock on hand at each part's current unit cost. The whole organisation's stock.",
            "No stock on hand: null. Not annualised: a quarter's turns are a quarter's.",
            filters=(),
        ),
        KPI(
            "stock_outs",
            "Stock-out events",
            "count",
            "movements in the period that took a part's stock at a location to zero or below",
            "Issues, transfers out, write-offs and negative adjustments after which the ledger's running sum for the "
            "part at the location is ≤ 0.",
            filters=(),
            higher_is_better=False,
            link="/api/v1/inventory/parts/low-stock",
        ),
    ]
}

# The KPIs the overview and the dashboard tiles show, in order.
OVERVIEW = (
    "availability",
    "mtbf",
    "mttr",
    "pm_compliance",
    "planned_ratio",
    "backlog_count",
    "response_compliance",
    "resolution_compliance",
    "first_time_fix",
    "total_cost",
)

COST_CATEGORIES = {"labour": "labour_cost", "parts": "parts_cost", "external": "external_cost"}


def mtbf_hours(up_hours: float, failures: int) -> float | None:
    """MTBF as the `mtbf` KPI defines it: up hours (asset hours − scheduled − unscheduled downtime) ÷ failures
    (unscheduled downtimes that started in the period); null without a failure, never infinite. The one MTBF
    formula: the analytics provider (`workorders.analytics`) and asset health's next-failure window
    (`workorders.health.reliability`) both call it."""
    if failures <= 0:
        return None
    return round(max(up_hours, 0.0) / failures, 4)


def describe() -> dict:
    """The definitions as the API publishes them."""
    return {"version": VERSION, "kpis": [kpi.as_dict() for kpi in KPIS.values()]}


def openapi_text(keys=None) -> str:
    """The definitions as Markdown, for an OpenAPI description."""
    lines = [f"Definitions version {VERSION}."]
    for kpi in KPIS.values():
        if keys is None or kpi.key in keys:
            lines.append(f"- **{kpi.key}** ({kpi.unit}): {kpi.formula}. {kpi.counts} {kpi.edge_cases}".rstrip())
    return "\n".join(lines)


def percent(part, whole, digits: int = 1):
    """100 × part ÷ whole, rounded; null when there is nothing to divide by (never 0 or 100)."""
    return round(100 * part / whole, digits) if whole else None


# --- quality KPIs (the reports' quality report, issue 22) --------------------------------------------------------
# Appended as one block: first-time fix and rework are above; verification rejects are read from the work orders'
# history (the lifecycle's `reject` step), since an order sent back leaves no other trace once it is completed again.
QUALITY = ("first_time_fix", "rework_rate", "verification_rejects", "verification_reject_rate")
KPIS.update(
    {
        k.key: k
        for k in [
            KPI(
                "verification_rejects",
                "Verification rejects",
                "count",
                "number of times completed work was sent back by its verifier (the `reject` step) in the period",
                "Each reject of the period counts, so an order rejected twice counts twice; read from the work "
                "orders' history (a record whose change reason is the reject step), at the moment of the reject. Only "
                "organisations that require verification have rejects.",
                "Filters apply to the order as it was when it was rejected.",
                higher_is_better=False,
                link="/api/v1/work-orders?status=in_progress",
            ),
            KPI(
                "verification_reject_rate",
                "Verification reject rate",
                "percent",
                "100 × rejects ÷ (verifications + rejects) in the period",
                "Verification decisions of the period (the `verify` and `reject` steps), from the work orders' "
                "history.",
                "No decision in the period (or verification not required): null.",
                higher_is_better=False,
            ),
        ]
    }
)
