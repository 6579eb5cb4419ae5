"""The maintenance windows' section of the status report (`maintenance_site.reports.registry`): the windows in
progress now, and those the period scheduled. Two queries. Registered when `SchedulingConfig.ready()` imports this
module. A location filter keeps the windows scoped to a location of the subtree."""

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from maintenance_site.analytics import periods
from maintenance_site.i18n import number
from maintenance_site.reports import registry
from maintenance_site.reports.registry import Block
from scheduling.windows.models import MaintenanceWindow

LIST_LIMIT = 100


@registry.section("status", "windows", title="Maintenance windows in progress", order=50)
def windows_in_progress(scope, options):
    windows = MaintenanceWindow.objects.filter(organization=scope.organization).filter(
        periods.scope_q(scope, location="location")
    )
    active = windows.filter(status=MaintenanceWindow.Status.ACTIVE)
    rows = [
        [w.title, w.get_maintenance_type_display(), w.actual_start or w.starts_at, w.ends_at]
        for w in active.only("title", "maintenance_type", "actual_start", "starts_at", "ends_at").order_by(
            "starts_at", "pk"
        )[:LIST_LIMIT]
    ]
    in_period = windows.filter(Q(starts_at__lt=scope.end) & Q(ends_at__gt=scope.start)).count()
    return Block(
        _("Maintenance windows in progress"),
        [_("Window"), _("Type"), _("Started"), _("Ends")],
        rows,
        note=ngettext(
            "%(active)s in progress now; %(count)s window falls in the period.",
            "%(active)s in progress now; %(count)s windows fall in the period.",
            in_period,
        )
        % {"active": number(len(rows)), "count": number(in_period)},
    )
