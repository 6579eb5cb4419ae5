"""Helpers shared by the maintenance-window tests (their fixtures are in conftest.py). Times are fixed (T0, a
Monday in 2030) so that service tests pass `now`."""

from datetime import UTC, datetime, timedelta

from maintenance_site.tenancy import SYSTEM
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.services import create_window

W = MaintenanceWindow
T0 = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
MIDDLEWARE = "scheduling.windows.middleware.MaintenanceModeMiddleware"
CONTEXT_PROCESSOR = "scheduling.windows.context_processors.maintenance_mode"


def scope_kwargs(site, scope: str) -> dict:
    """`system`, `location:<name>` or `assets:<name>,<name>` as create_window keywords."""
    if scope == "system":
        return {"scope": W.Scope.SYSTEM}
    kind, _, names = scope.partition(":")
    if kind == "location":
        return {"scope": W.Scope.LOCATION, "location": site[names]}
    return {"scope": W.Scope.ASSETS, "assets": [site[name] for name in names.split(",")]}


def make_window(org, start: datetime, end: datetime, *, title="Window", now=T0, **options) -> MaintenanceWindow:
    options.setdefault("actor", SYSTEM)
    return create_window(org, title=title, starts_at=start, ends_at=end, now=now, **options)
