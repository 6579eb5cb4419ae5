"""The work orders' sections of the status report (`maintenance_site.reports.registry`): open work by status and
priority, the backlog by age, what is overdue, the assets that are down. Each a fixed number of queries (grouped
aggregates, or a list cut at `LIST_LIMIT` rows with the total beside it). Registered when `WorkOrdersConfig.ready()`
imports this module. A status report shows the state at the time it is generated; the period dates what was
opened and closed."""

from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from assets.models import Downtime
from maintenance_site.analytics import periods
from maintenance_site.i18n import number
from maintenance_site.reports import registry
from maintenance_site.reports.registry import Block
from workorders.models import WorkOrder

LIST_LIMIT = 100
AGE_BUCKETS = (
    (0, 7, gettext_lazy("up to 7 days")),
    (8, 30, gettext_lazy("8–30 days")),
    (31, 90, gettext_lazy("31–90 days")),
    (91, None, gettext_lazy("over 90 days")),
)


def _orders(scope):
    return WorkOrder.objects.filter(organization=scope.organization).filter(periods.scope_q(scope, location="location"))


@registry.section("status", "open_work", title="Open work", order=10)
def open_work(scope, options):
    """Open orders by status (one grouped query) and by priority (one more), with what the period opened and closed."""
    open_orders = _orders(scope).filter(status__in=WorkOrder.OPEN_STATUSES)
    by_status = dict(open_orders.values_list("status").annotate(n=Count("pk")).order_by())
    by_priority = dict(open_orders.values_list("priority").annotate(n=Count("pk")).order_by())
    period = _orders(scope).aggregate(
        opened=Count("pk", filter=Q(created_at__gte=scope.start, created_at__lt=scope.end)),
        closed=Count(
            "pk",
            filter=Q(status__in=WorkOrder.CLOSED_STATUSES)
            & (
                Q(completed_at__gte=scope.start, completed_at__lt=scope.end)
                | Q(cancelled_at__gte=scope.start, cancelled_at__lt=scope.end)
            ),
        ),
        hours=Sum("estimated_minutes", filter=Q(status__in=WorkOrder.OPEN_STATUSES)),
    )
    statuses = [(s.label, by_status.get(s.value, 0)) for s in WorkOrder.Status if s.value in WorkOrder.OPEN_STATUSES]
    priorities = [(p.label, by_priority.get(p.value, 0)) for p in WorkOrder.Priority]
    return [
        Block(
            _("Open work by status"),
            [_("Status"), _("Orders")],
            [list(row) for row in statuses],
            chart={
                "kind": "bar",
                "labels": [str(label) for label, _n in statuses],
                "datasets": [{"label": _("Open orders"), "data": [n for _label, n in statuses]}],
            },
            note=_(
                "%(open)s open now, %(hours)s estimated hours; %(opened)s opened and %(closed)s closed in the period."
            )
            % {
                "open": number(sum(n for _label, n in statuses)),
                "hours": number(round((period["hours"] or 0) / 60, 1)),
                "opened": number(period["opened"]),
                "closed": number(period["closed"]),
            },
            key="open_by_status",
        ),
        Block(
            _("Open work by priority"),
            [_("Priority"), _("Orders")],
            [list(row) for row in priorities],
            key="open_by_priority",
        ),
    ]


@registry.section("status", "backlog_age", title="Backlog by age", order=20)
def backlog_age(scope, options):
    """The open orders by how long they have been open: one aggregate with a filtered count per bucket."""
    now = scope.now
    measures = {}
    for index, (low, high, _label) in enumerate(AGE_BUCKETS):
        q = Q(created_at__lte=now - timedelta(days=low))
        if high is not None:
            q &= Q(created_at__gt=now - timedelta(days=high + 1))
        measures[f"bucket_{index}"] = Count("pk", filter=q)
    counts = _orders(scope).filter(status__in=WorkOrder.OPEN_STATUSES).aggregate(**measures)
    rows = [[str(label), counts[f"bucket_{index}"]] for index, (_low, _high, label) in enumerate(AGE_BUCKETS)]
    return Block(
        _("Backlog by age"),
        [_("Open for"), _("Orders")],
        rows,
        chart={
            "kind": "bar",
            "labels": [r[0] for r in rows],
            "datasets": [{"label": _("Open orders"), "data": [r[1] for r in rows]}],
        },
    )


@registry.section("status", "overdue", title="Overdue", order=30)
def overdue(scope, options):
    """The overdue orders, most overdue first (the first LIST_LIMIT), and how many there are: two queries."""
    late = _orders(scope).filter(status__in=WorkOrder.OPEN_STATUSES, due_at__lt=scope.now)
    total = late.count()
    rows = [
        [
            o.number,
            o.title,
            o.asset.code if o.asset else "",
            o.get_priority_display(),
            o.get_status_display(),
            o.due_at,
            o.assignee.get_username() if o.assignee else "",
        ]
        for o in late.select_related("asset", "assignee")
        .only("number", "title", "priority", "status", "due_at", "asset__code", "assignee__username")
        .order_by("due_at", "pk")[:LIST_LIMIT]
    ]
    if total > LIST_LIMIT:
        note = _("%(count)s overdue orders; the %(limit)s most overdue are listed.")
    else:
        note = ngettext("%(count)s overdue order.", "%(count)s overdue orders.", total)
    note %= {"count": number(total), "limit": LIST_LIMIT}
    columns = [_("Number"), _("Title"), _("Asset"), _("Priority"), _("Status"), _("Due"), _("Assignee")]
    return Block(_("Overdue work"), columns, rows, note=note)


@registry.section("status", "assets_down", title="Assets down", order=40)
def assets_down(scope, options):
    """The assets down now (an open downtime), longest first: two queries."""
    down = Downtime.objects.filter(organization=scope.organization, ended_at__isnull=True).filter(
        periods.scope_q(scope, location="asset__location")
    )
    total = down.count()
    rows = [
        [
            d.asset.code,
            d.asset.name,
            d.started_at,
            round((scope.now - d.started_at).total_seconds() / 3600, 1),
            d.reason,
        ]
        for d in down.select_related("asset")
        .only("started_at", "reason", "asset__code", "asset__name")
        .order_by("started_at", "pk")[:LIST_LIMIT]
    ]
    if total > LIST_LIMIT:
        note = _("%(count)s assets down now; the %(limit)s down longest are listed.")
    else:
        note = ngettext("%(count)s asset down now.", "%(count)s assets down now.", total)
    note %= {"count": number(total), "limit": LIST_LIMIT}
    columns = [_("Asset"), _("Name"), _("Down since"), _("Hours down"), _("Reason")]
    return Block(_("Assets down"), columns, rows, note=note)
