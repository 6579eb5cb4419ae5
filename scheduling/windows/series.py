"""Recurring maintenance windows: a window with an RRULE (in the organisation's time zone) is the head of a
series; each occurrence is a window of its own, created ahead by the tick (`materialize`), so it can be moved,
cancelled, started and ended like any other. Local times become UTC by `maintenance_site.recurrence`'s rule: a
02:00 window stays at 02:00 local time across daylight-saving changes; a local time that does not exist that
night moves forward by the gap; one that happens twice runs once, the first time.
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from maintenance_site import recurrence
from maintenance_site.errors import InvalidInput
from maintenance_site.recurrence import RecurrenceError, to_local
from scheduling.windows.models import MaintenanceWindow

Status = MaintenanceWindow.Status


def parse_recurrence(text: str, first_start: datetime, zone):
    """The rule as a dateutil rrule over naive local times from the window's start, or InvalidInput keyed on
    `recurrence` (at most hourly; a rule that never fires is refused)."""
    try:
        return recurrence.parse_rrule(text, to_local(first_start, zone), at_most_hourly=True)
    except RecurrenceError as error:
        raise InvalidInput(
            _("Recurrence: %(problem)s") % {"problem": error.message}, fields={"recurrence": [error.message]}
        ) from None


def occurrence_starts(rule, zone, after: datetime, before: datetime, *, inclusive: bool = True) -> list[datetime]:
    """UTC starts of the rule's occurrences in [after, before) (or (after, before) when not inclusive)."""
    series = recurrence.rrule_series(rule)
    return recurrence.instants(series, zone, after, before, include_after=inclusive, include_until=False)


def first_occurrence(rule, zone, not_before: datetime) -> datetime | None:
    """The first UTC start at or after `not_before`, or None."""
    found = recurrence.next_instants(recurrence.rrule_series(rule), zone, not_before, inclusive=True)
    return found[0] if found else None


def series_occurrences(head: MaintenanceWindow, after: datetime, before: datetime) -> list[tuple[datetime, datetime]]:
    """(start, end) of a series' occurrences starting in [after, before)."""
    zone = head.organization.zone
    rule = parse_recurrence(head.recurrence, head.starts_at, zone)
    duration = head.duration
    return [(start, start + duration) for start in occurrence_starts(rule, zone, after, before)]


def materialize(head: MaintenanceWindow, until: datetime, now: datetime) -> int:
    """Create the series' occurrences that start before `until` and end after now (each once: the unique
    (series, occurrence_start) makes a concurrent run's duplicate an IntegrityError, skipped)."""
    if not head.recurrence or head.status != Status.SCHEDULED:
        return 0
    if head.materialized_until is not None and head.materialized_until >= until:
        return 0
    after = max(head.materialized_until or head.starts_at, now - head.duration)
    slots = series_occurrences(head, after, until)
    existing = set(head.occurrences.filter(occurrence_start__gte=after).values_list("occurrence_start", flat=True))
    assets = list(head.assets.all())
    created = 0
    for start, end in slots:
        if start in existing:
            continue
        occurrence = MaintenanceWindow(
            organization_id=head.organization_id,
            series=head,
            occurrence_start=start,
            starts_at=start,
            ends_at=end,
            title=head.title,
            description=head.description,
            maintenance_type=head.maintenance_type,
            scope=head.scope,
            location_id=head.location_id,
            notify_users=head.notify_users,
            emergency=head.emergency,
            emergency_reason=head.emergency_reason,
            created_by_id=head.created_by_id,
        )
        try:
            with transaction.atomic():
                occurrence.save()
                if assets:
                    occurrence.assets.set(assets)
        except IntegrityError:
            continue  # created by a concurrent run
        created += 1
    MaintenanceWindow.objects.filter(pk=head.pk).filter(
        Q(materialized_until__isnull=True) | Q(materialized_until__lt=until)
    ).update(materialized_until=until)
    head.materialized_until = until
    return created
