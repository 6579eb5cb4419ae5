"""The only writers of capacity data: working patterns and time off. Who may: those who assign work (planners and
managers); history names them. A member's own pattern or time off names an active member of the organisation."""

from django.db import transaction
from django.utils.translation import gettext as _

from maintenance_site import audit
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.actors import check_actor
from maintenance_site.tenancy.models import Membership
from maintenance_site.tenancy.roles import Action
from maintenance_site.validation import validated
from workorders.capacity.models import WEEKDAYS, TimeOff, WorkingPattern

TIME_OFF_FIELDS = {"user", "starts_at", "ends_at", "kind", "note"}


def _check(organization_id: int, actor) -> None:
    check_actor(actor)
    membership = tenancy_services.acting_membership(
        organization_id, actor=actor, not_member="You are not a member of this organisation."
    )
    tenancy_services.check_role(membership, Action.ASSIGN_WORK)


def _check_member(organization_id: int, user, field: str = "user") -> None:
    if user is not None and not Membership.objects.active().filter(organization_id=organization_id, user=user).exists():
        raise InvalidInput(
            _("That person is not an active member of this organisation."), fields={field: [_("Not a member here.")]}
        )


def _unknown(given, allowed) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise InvalidInput(
            _("Unknown field(s): %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={name: [_("Unknown field.")] for name in unknown},
        )


@audit.attributed
@transaction.atomic
def save_working_pattern(organization, *, actor, user=None, **days) -> WorkingPattern:
    """Set the organisation's default week (`user=None`) or a member's own: each weekday's periods as text
    ("08:00-12:00, 13:00-17:00"; empty: a day off). Days not given keep their value (the default's for a new one)."""
    _check(organization.pk, actor)
    _unknown(days, WEEKDAYS)
    _check_member(organization.pk, user)
    pattern = WorkingPattern.objects.select_for_update().filter(
        organization=organization, user=user
    ).first() or WorkingPattern(organization=organization, user=user)
    for day, value in days.items():
        setattr(pattern, day, (value or "").strip())
    validated(pattern)
    pattern.save()
    return pattern


@audit.attributed
@transaction.atomic
def delete_working_pattern(pattern: WorkingPattern, *, actor) -> None:
    """Remove a pattern: the member works the organisation's default again (without a default, the built-in
    Monday to Friday 08:00-12:00, 13:00-17:00)."""
    _check(pattern.organization_id, actor)
    pattern.delete()


@audit.attributed
@transaction.atomic
def create_time_off(organization, *, actor, user, starts_at, ends_at, kind=TimeOff.Kind.LEAVE, note="") -> TimeOff:
    """Record a period a member does not work."""
    _check(organization.pk, actor)
    _check_member(organization.pk, user)
    entry = TimeOff(organization=organization, user=user, starts_at=starts_at, ends_at=ends_at, kind=kind, note=note)
    validated(entry)
    entry.save()
    return entry


@audit.attributed
@transaction.atomic
def update_time_off(entry: TimeOff, *, actor, **changes) -> TimeOff:
    _check(entry.organization_id, actor)
    _unknown(changes, TIME_OFF_FIELDS)
    entry = TimeOff.objects.select_for_update().get(pk=entry.pk)
    if "user" in changes:
        _check_member(entry.organization_id, changes["user"])
    for name, value in changes.items():
        setattr(entry, name, value)
    validated(entry)
    entry.save()
    return entry


@audit.attributed
@transaction.atomic
def delete_time_off(entry: TimeOff, *, actor) -> None:
    _check(entry.organization_id, actor)
    entry.delete()
