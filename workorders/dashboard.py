"""The work orders' figures on the manager's dashboard (maintenance_site.dashboard): open and overdue work, the
backlog in hours, what came in and what was finished, and the charts of the weekly flow, the backlog's age and the
assets that fail most. Registered by WorkOrdersConfig.ready(); each function is one query.

"Open at the start of the period" is read without history: an order open then was created before it and is either
open now or was closed since (its completed_at or cancelled_at falls after the start, so its updated_at too — the
(organization, updated_at) index finds those, the open-orders partial index the rest)."""

import functools
from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_site import dashboard
from maintenance_site.analytics import services as analytics
from maintenance_site.analytics.definitions import COST_CATEGORIES
from workorders.health.models import AssetHealth, Risk
from workorders.models import WorkOrder

WORK_ORDER = "workorders.workorder"
OPEN = Q(status__in=WorkOrder.OPEN_STATUSES)
FAILURE_TYPES = (WorkOrder.Type.CORRECTIVE, WorkOrder.Type.EMERGENCY)


def list_url(query: str = "") -> str:
    return reverse("admin:workorders_workorder_changelist") + (f"?{query}" if query else "")


def open_query() -> str:
    return "status__in=" + ",".join(WorkOrder.OPEN_STATUSES)


def open_at(moment) -> Q:
    """Orders, closed now, that were open at `moment` (created before it, completed or cancelled after it)."""
    return Q(created_at__lt=moment) & (Q(completed_at__gte=moment) | Q(cancelled_at__gte=moment))


@functools.lru_cache(maxsize=16)
def open_work(organization_id: int, period) -> dict:
    """The open-work figures the open, overdue and backlog tiles share (two queries for the three): now, and at the
    start of the period. An order open then is either still open (and created before the start: the open orders'
    partial index holds created_at) or was closed since (its updated_at moved: the updated_at index's range)."""
    before = Q(created_at__lt=period.start)
    now = (
        WorkOrder.objects.filter(organization_id=organization_id)
        .filter(OPEN)
        .aggregate(
            open=Count("id"),
            overdue=Count("id", filter=Q(due_at__lt=period.now)),
            minutes=Sum("estimated_minutes"),
            open_before=Count("id", filter=before),
            overdue_before=Count("id", filter=before & Q(due_at__lt=period.start)),
            minutes_before=Sum("estimated_minutes", filter=before),
        )
    )
    closed_since = (
        WorkOrder.objects.filter(organization_id=organization_id, updated_at__gte=period.start)
        .exclude(OPEN)
        .filter(open_at(period.start))
        .aggregate(
            open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=period.start)), minutes=Sum("estimated_minutes")
        )
    )
    return {
        "open": (now["open"], now["open_before"] + closed_since["open"]),
        "overdue": (now["overdue"], now["overdue_before"] + closed_since["overdue"]),
        "minutes": (
            now["minutes"] or 0,
            (now["minutes_before"] or 0) + (closed_since["minutes"] or 0),
        ),
    }


@dashboard.tile(
    "open", title=gettext_lazy("Open work orders"), order=10, model=WORK_ORDER, icon="assignment", lower_is_better=True
)
def open_orders(organization, period):
    now, then = open_work(organization.pk, period)["open"]
    return dashboard.Figure(now, then, link=list_url(open_query()))


@dashboard.tile(
    "overdue", title=gettext_lazy("Overdue"), order=20, model=WORK_ORDER, icon="alarm", lower_is_better=True
)
def overdue_orders(organization, period):
    now, then = open_work(organization.pk, period)["overdue"]
    return dashboard.Figure(now, then, link=list_url("overdue=yes"))


@dashboard.tile(
    "backlog_hours",
    title=gettext_lazy("Backlog (estimated hours)"),
    order=30,
    model=WORK_ORDER,
    unit="h",
    lower_is_better=True,
)
def backlog_hours(organization, period):
    now, then = open_work(organization.pk, period)["minutes"]
    return dashboard.Figure(round(now / 60, 1), round(then / 60, 1), link=list_url(open_query()))


@dashboard.tile("completed", title=gettext_lazy("Completed (7 days)"), order=60, model=WORK_ORDER, icon="task_alt")
def completed_orders(organization, period):
    # completing an order moves its updated_at: the index range narrows the rows to look at
    found = (
        WorkOrder.objects.filter(organization=organization, updated_at__gte=period.previous_start)
        .filter(completed_at__gte=period.previous_start)
        .aggregate(
            now=Count("id", filter=Q(completed_at__gte=period.start)),
            then=Count("id", filter=Q(completed_at__lt=period.start)),
        )
    )
    return dashboard.Figure(found["now"], found["then"], link=list_url("status__in=completed,verified"))


WEEKS = 12


def week_start(moment):
    local = timezone.localtime(moment)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday


@dashboard.chart(
    "flow",
    title=format_lazy(gettext_lazy("Created vs completed per week (last {weeks} weeks)"), weeks=WEEKS),
    order=10,
    model=WORK_ORDER,
)
def created_vs_completed(organization, period):
    first = week_start(period.now) - timedelta(weeks=WEEKS - 1)
    starts = [first + timedelta(weeks=index) for index in range(WEEKS)]
    bounds = [(start, start + timedelta(weeks=1)) for start in starts]
    counts = {}
    for index, (start, end) in enumerate(bounds):
        counts[f"created_{index}"] = Count("id", filter=Q(created_at__gte=start, created_at__lt=end))
        counts[f"completed_{index}"] = Count("id", filter=Q(completed_at__gte=start, completed_at__lt=end))
    found = (
        WorkOrder.objects.filter(organization=organization)
        .filter(Q(created_at__gte=first) | Q(updated_at__gte=first))
        .aggregate(**counts)
    )
    return dashboard.ChartData(
        labels=[start.strftime("%Y-%m-%d") for start in starts],
        datasets=[
            {
                "label": _("Created"),
                "data": [found[f"created_{index}"] for index in range(WEEKS)],
                "backgroundColor": dashboard.SECONDARY,
            },
            {
                "label": _("Completed"),
                "data": [found[f"completed_{index}"] for index in range(WEEKS)],
                "backgroundColor": dashboard.PRIMARY,
            },
        ],
    )


AGE_BUCKETS = [
    (gettext_lazy("< 1 week"), 0, 7),
    (gettext_lazy("1–4 weeks"), 7, 28),
    (gettext_lazy("1–3 months"), 28, 91),
    (gettext_lazy("3–12 months"), 91, 365),
]
AGE_BUCKETS += [(gettext_lazy("> 1 year"), 365, None)]


@dashboard.chart("backlog_age", title=gettext_lazy("Backlog age (open work orders)"), order=20, model=WORK_ORDER)
def backlog_age(organization, period):
    counts, links = {}, []
    for index, (_label, youngest, oldest) in enumerate(AGE_BUCKETS):
        window = Q(created_at__lte=period.now - timedelta(days=youngest))
        if oldest is not None:
            window &= Q(created_at__gt=period.now - timedelta(days=oldest))
        counts[f"bucket_{index}"] = Count("id", filter=window)
        links.append(list_url(f"{open_query()}&age={index}"))
    found = WorkOrder.objects.filter(organization=organization).filter(OPEN).aggregate(**counts)
    return dashboard.ChartData(
        labels=[str(label) for label, _youngest, _oldest in AGE_BUCKETS],
        datasets=[
            {
                "label": _("Open work orders"),
                "data": [found[f"bucket_{index}"] for index in range(len(AGE_BUCKETS))],
                "backgroundColor": dashboard.WARNING,
            }
        ],
        links=links,
    )


FAILING_DAYS = 90
COST_LABELS = {"labour": gettext_lazy("Labour"), "parts": gettext_lazy("Parts"), "external": gettext_lazy("External")}
TOP_ASSETS = 8


@dashboard.chart(
    "failing_assets",
    title=format_lazy(gettext_lazy("Top failing assets (corrective work, last {days} days)"), days=FAILING_DAYS),
    order=30,
    model=WORK_ORDER,
)
def top_failing_assets(organization, period):
    rows = list(
        WorkOrder.objects.filter(
            organization=organization,
            created_at__gte=period.now - timedelta(days=FAILING_DAYS),
            type__in=FAILURE_TYPES,
            asset__isnull=False,
        )
        .values("asset_id", "asset__code")
        .annotate(failures=Count("id"))
        .order_by("-failures", "asset__code")[:TOP_ASSETS]
    )
    return dashboard.ChartData(
        labels=[row["asset__code"] for row in rows],
        datasets=[
            {
                "label": _("Corrective work orders"),
                "data": [row["failures"] for row in rows],
                "backgroundColor": dashboard.DANGER,
            }
        ],
        links=[list_url(f"asset__id__exact={row['asset_id']}&type__in=corrective,emergency") for row in rows],
    )


# --- the analytics KPIs (maintenance_site.analytics: the same definitions and numbers as /api/v1/analytics) ------


ANALYTICS_TILES = ("mttr", "availability", "total_cost")


@functools.lru_cache(maxsize=16)
def analytics_figures(organization, period) -> dict:
    """The analytics KPIs of the tiles over the period's local days and the same number of days just before,
    computed together by the analytics providers (one aggregate per provider and period) so the tiles show what
    /api/v1/analytics/overview shows."""
    last_day = timezone.localdate(period.now, organization.zone)
    first_day = last_day - timedelta(days=period.days - 1)
    scope = analytics.scope_for(organization, first_day=first_day, last_day=last_day)
    return {figure["kpi"]: figure for figure in analytics.tiles(scope, ANALYTICS_TILES)}


def analytics_figure(organization, period, key: str, link: str) -> dashboard.Figure:
    figure = analytics_figures(organization, period)[key]
    return dashboard.Figure(figure["value"], figure["previous"], link=link)


@dashboard.tile("mttr", title=gettext_lazy("MTTR (7 days)"), order=37, model=WORK_ORDER, unit="h", lower_is_better=True)
def mean_time_to_repair(organization, period):
    return analytics_figure(organization, period, "mttr", list_url("type__exact=corrective"))


@dashboard.tile("availability", title=gettext_lazy("Availability (7 days)"), order=38, model=WORK_ORDER, unit="%")
def availability(organization, period):
    return analytics_figure(organization, period, "availability", reverse("admin:assets_asset_changelist"))


@dashboard.tile(
    "total_cost", title=gettext_lazy("Maintenance cost (7 days)"), order=39, model=WORK_ORDER, lower_is_better=True
)
def maintenance_cost(organization, period):
    return analytics_figure(organization, period, "total_cost", reverse("admin:workorders_budget_changelist"))


@dashboard.tile(
    "at_risk", title=gettext_lazy("Assets at risk"), order=65, model="workorders.assethealth", lower_is_better=True
)
def assets_at_risk(organization, period):
    """Assets whose health risk is high or critical now (asset health: the score with its reasons)."""
    risky = (Risk.HIGH, Risk.CRITICAL)
    count = AssetHealth.objects.filter(organization=organization, risk__in=risky).count()
    return dashboard.Figure(
        count, None, link=reverse("admin:workorders_assethealth_changelist") + "?risk__in=" + ",".join(risky)
    )


@dashboard.chart(
    "cost_by_category", title=gettext_lazy("Maintenance cost this month, by category"), order=40, model=WORK_ORDER
)
def cost_by_category(organization, period):
    """Labour, parts and external cost since the first of the month (local days), from the analytics providers:
    the figures of /api/v1/analytics/costs?group_by=category."""
    last_day = timezone.localdate(period.now, organization.zone)
    scope = analytics.scope_for(organization, first_day=last_day.replace(day=1), last_day=last_day)
    amounts = analytics.kpi_values(scope, list(COST_CATEGORIES.values()))
    budgets = reverse("admin:workorders_budget_changelist")
    return dashboard.ChartData(
        labels=[str(COST_LABELS.get(name, name.capitalize())) for name in COST_CATEGORIES],
        datasets=[
            {
                "label": _("Cost (%(currency)s)") % {"currency": organization.currency},
                "data": [float(amounts[key] or 0) for key in COST_CATEGORIES.values()],
            }
        ],
        links=[budgets for _ in COST_CATEGORIES],
    )
