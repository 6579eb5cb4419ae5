"""What people and integrations are told about maintenance windows: the notification kinds, who receives them,
the event payload of a window, and the history row a conditional UPDATE owes."""

from datetime import UTC, datetime

from django.utils.functional import lazy

from maintenance_site import formats
from maintenance_site.audit import current_user
from maintenance_site.notifications.kinds import register_kind
from maintenance_site.notifications.models import Channel
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy.roles import Action, Role, roles_allowed
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.scope import asset_ids

# The kinds of this module (started, ended and mode-changed are registered by the notifications app).
for _name, _label, _channels in [
    ("maintenance:window-scheduled", "Maintenance window scheduled", [Channel.EMAIL]),
    ("maintenance:window-starting-soon", "Maintenance window starting soon", [Channel.EMAIL, Channel.PUSH]),
    ("maintenance:window-cancelled", "Maintenance window cancelled", [Channel.EMAIL]),
    ("maintenance:window-failed", "Maintenance window failed", [Channel.EMAIL, Channel.SLACK]),
]:
    register_kind(_name, _label, _channels)


def format_utc(moment: datetime | None) -> str:
    """How windows' times are written in messages: “2027-03-28 01:30 UTC”. A moment at the calendar's edge that has
    no UTC form (year 1 entered in a time zone east of UTC, as the back office reads its inputs) is written as given."""
    if not moment:
        return "—"
    try:
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    except OverflowError:
        return f"{moment:%Y-%m-%d %H:%M %Z}"


def format_local(moment: datetime | None, organization) -> str:
    """How windows' times are written to people (notifications, e-mails): the platform's one format, in the
    organisation's time zone with its name, “Sun 28 Mar 2027, 03:30 (Europe/Berlin)”."""
    if moment is None:
        return "—"
    return f"{formats.date_time(moment, organization.zone)} ({organization.time_zone})"


# The same, written when notify() renders a notice in each recipient's language.
lazy_local = lazy(format_local, str)


def _recipients(window: MaintenanceWindow | None, everyone: bool = False) -> list[str]:
    if everyone or (window is not None and window.notify_users):
        return [role.value for role in Role if role != Role.INTEGRATOR]
    return [role.value for role in roles_allowed(Action.MANAGE_WINDOWS)]


ALWAYS_SENT = ("maintenance:window-failed",)  # to the managers at least, whatever the window's flag


def notify_about(organization, window, kind: str, title: str, body: str, *, everyone: bool = False) -> None:
    """Tell people: everyone for a window with `notify_users` (and for a manual mode switch); for a window
    without it, only its failure, and only to the managers."""
    if window is not None and not window.notify_users and kind not in ALWAYS_SENT:
        return
    context = {"title": title, "body": body}
    if window is not None:
        context.update(window=window.pk, url=f"/admin/scheduling/maintenancewindow/{window.pk}/change/")
    notify(organization, _recipients(window, everyone), kind, context)


def window_payload(window: MaintenanceWindow) -> dict:
    return {
        "id": window.pk,
        "title": window.title,
        "maintenance_type": window.maintenance_type,
        "scope": window.scope,
        "location": window.location_id,
        "assets": sorted(asset_ids(window)),
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "status": window.status,
        "actual_start": window.actual_start,
        "actual_end": window.actual_end,
        "series": window.series_id,
        "emergency": window.emergency,
    }


def write_history(window: MaintenanceWindow, reason: str) -> None:
    """The history row a conditional UPDATE owes (it bypassed save())."""
    MaintenanceWindow.history.bulk_history_create(
        [window], update=True, default_user=current_user(), default_change_reason=reason
    )
