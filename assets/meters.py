"""The only writers of meters and meter readings.

Readings arrive one by one or in batches (telemetry): a batch is validated as a whole (every problem named
with its position) and written with one bulk insert; a counter (cumulative meter) may never go down; a reading
sent again (same meter, same moment, same value) is ignored, so a client may retry a batch safely.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assets.models import Asset, Meter, MeterReading
from maintenance_site import audit
from maintenance_site.errors import InvalidInput, NotFound
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.roles import Action
from maintenance_site.validation import assign_editable, delete_or_conflict, validated

MAX_BATCH = 5000
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of devices run a little fast
QUANTUM = Decimal("0.0001")
LIMIT = Decimal("1e14")
METER_FIELDS = {"name", "unit", "kind"}


def _require(organization_id: int, actor, action: Action) -> None:
    tenancy_services.require_role(organization_id, action, actor=actor)


# --- meters -----------------------------------------------------------------------------------------------


@audit.attributed
@transaction.atomic
def create_meter(
    organization, *, asset: Asset, name: str, unit: str = "", kind: str = Meter.Kind.CUMULATIVE, actor
) -> Meter:
    """Add a meter to an asset (names are unique per asset: schedules find meters by name)."""
    _require(organization.pk, actor, Action.MANAGE_ASSETS)
    if asset is None or asset.organization_id != organization.pk:
        raise NotFound(_("No such asset."))
    meter = Meter(
        organization=organization, asset=asset, name=(name or "").strip(), unit=(unit or "").strip(), kind=kind
    )
    validated(meter).save()
    return meter


@audit.attributed
@transaction.atomic
def update_meter(meter: Meter, *, actor, **changes) -> Meter:
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    _require(meter.organization_id, actor, Action.MANAGE_ASSETS)
    changes = {
        name: value.strip() if isinstance(value, str) and name != "kind" else value for name, value in changes.items()
    }
    validated(assign_editable(meter, changes, METER_FIELDS, gettext_lazy("A meter"))).save()
    return meter


@audit.attributed
@transaction.atomic
def delete_meter(meter: Meter, *, actor) -> None:
    """Remove a meter and its readings."""
    _require(meter.organization_id, actor, Action.MANAGE_ASSETS)
    delete_or_conflict(meter, gettext_lazy("meter"))


# --- readings ---------------------------------------------------------------------------------------------


def parse_value(raw, field_name: str = "value") -> Decimal:
    """A reading's value: a finite number with at most four decimals (more are rounded)."""
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(
            _("“%(raw)s” is not a number.") % {"raw": raw}, fields={field_name: [_("Not a number.")]}
        ) from None
    if not value.is_finite() or abs(value) >= LIMIT:
        raise InvalidInput(
            _("“%(raw)s” is not a usable reading.") % {"raw": raw}, fields={field_name: [_("Out of range.")]}
        )
    return value.quantize(QUANTUM)


def parse_moment(raw, now: datetime, field_name: str = "read_at") -> datetime:
    """When the value was read: an aware date-time (ISO 8601 text accepted), not in the future. Empty: now."""
    if raw in (None, ""):
        return now
    moment = raw if isinstance(raw, datetime) else parse_datetime(str(raw).strip())
    if moment is None:
        raise InvalidInput(
            _("“%(raw)s” is not a date-time; write ISO 8601 such as 2026-01-31T12:00:00Z.") % {"raw": raw},
            fields={field_name: [_("Not an ISO 8601 date-time.")]},
        )
    if timezone.is_naive(moment):
        raise InvalidInput(
            _("“%(raw)s” has no time zone; add one (Z for UTC, or an offset such as +01:00).") % {"raw": raw},
            fields={field_name: [_("Add a time zone.")]},
        )
    if moment > now + FUTURE_TOLERANCE:
        raise InvalidInput(
            _("%(moment)s is in the future; a reading is of something already measured.")
            % {"moment": moment.isoformat()},
            fields={field_name: [_("In the future.")]},
        )
    return moment


@dataclass
class RecordResult:
    created: list[MeterReading] = field(default_factory=list)
    duplicates: int = 0


def _fail(problems: list[tuple[str, str]]) -> InvalidInput:
    shown = "; ".join(f"{where}: {message}" for where, message in problems[:20])
    more = _(" (and %(count)s more)") % {"count": len(problems) - 20} if len(problems) > 20 else ""
    fields: dict[str, list[str]] = {}
    for where, message in problems:
        fields.setdefault(where, []).append(message)
    return InvalidInput(
        _("%(count)s reading(s) refused — %(shown)s%(more)s.") % {"count": len(problems), "shown": shown, "more": more},
        fields=fields,
    )


@audit.attributed
@transaction.atomic
def record_readings(organization, readings, *, actor, source: str = MeterReading.Source.API) -> RecordResult:
    """Record readings of the organisation's meters: `readings` is a list of dicts with `meter` (a Meter or its
    id), `value` and `read_at` (default now). All or nothing: any refused reading refuses the batch, naming
    each problem by position (`readings[3].value`). The meters are locked (in id order) while their counters'
    monotony is checked and their newest value moves on; a repeated reading (same meter, moment and value) is
    ignored."""
    _require(organization.pk, actor, Action.INGEST_TELEMETRY)
    readings = list(readings)
    if not readings:
        raise InvalidInput(_("Send at least one reading."), fields={"readings": [_("Empty.")]})
    if len(readings) > MAX_BATCH:
        raise InvalidInput(
            _("%(count)s readings in one request; send at most %(most)s at a time.")
            % {"count": len(readings), "most": MAX_BATCH},
            fields={"readings": [_("At most %(most)s.") % {"most": MAX_BATCH}]},
        )
    if source not in MeterReading.Source.values:
        raise InvalidInput(
            _("“%(source)s” is not a reading source.") % {"source": source}, fields={"source": [_("Unknown source.")]}
        )
    now = timezone.now()
    meter_ids = set()
    for raw in readings:
        meter = raw.get("meter") if isinstance(raw, dict) else None
        meter_ids.add(meter.pk if isinstance(meter, Meter) else meter)
    meters = {
        m.pk: m
        for m in Meter.objects.select_for_update()
        .filter(organization=organization, pk__in=[pk for pk in meter_ids if isinstance(pk, int)])
        .order_by("pk")
    }
    problems: list[tuple[str, str]] = []
    parsed = []  # (index, meter, value, read_at)
    for index, raw in enumerate(readings):
        where = f"readings[{index}]"
        if not isinstance(raw, dict):
            problems.append((where, _("A reading is an object with meter, value and read_at.")))
            continue
        meter_ref = raw.get("meter")
        meter = meters.get(meter_ref.pk if isinstance(meter_ref, Meter) else meter_ref)
        if meter is None:
            problems.append((f"{where}.meter", _("No such meter.")))
            continue
        try:
            value = parse_value(raw.get("value"))
            read_at = parse_moment(raw.get("read_at"), now)
        except InvalidInput as exc:
            name = next(iter(exc.fields), "value")
            problems.append((f"{where}.{name}", exc.message))
            continue
        parsed.append((index, meter, value, read_at))
    if problems:
        raise _fail(problems)

    # Same meter and moment twice in the batch, or already stored: the same value is a replay, another a clash.
    seen: dict[tuple[int, datetime], tuple[int, Decimal]] = {}
    unique = []
    result = RecordResult()
    for index, meter, value, read_at in parsed:
        earlier = seen.get((meter.pk, read_at))
        if earlier is not None:
            if earlier[1] != value:
                problems.append(
                    (
                        f"readings[{index}].read_at",
                        _("readings[%(earlier)s] has the same meter and moment.") % {"earlier": earlier[0]},
                    )
                )
            else:
                result.duplicates += 1
            continue
        seen[(meter.pk, read_at)] = (index, value)
        unique.append((index, meter, value, read_at))
    stored = {}
    if unique:
        match = Q()
        for meter_id in {m.pk for _, m, _, _ in unique}:
            match |= Q(meter_id=meter_id, read_at__in=[r for _, m, _, r in unique if m.pk == meter_id])
        stored = {
            (m, r): v for m, r, v in MeterReading.objects.filter(match).values_list("meter_id", "read_at", "value")
        }
    fresh = []
    for index, meter, value, read_at in unique:
        existing = stored.get((meter.pk, read_at))
        if existing is None:
            fresh.append((index, meter, value, read_at))
        elif existing == value:
            result.duplicates += 1
        else:
            problems.append(
                (f"readings[{index}].value", f"{meter.name} already has {existing:f} at {read_at.isoformat()}.")
            )
    problems += _check_counters(fresh)
    if problems:
        raise _fail(problems)

    rows = [
        MeterReading(
            organization_id=organization.pk,
            meter=meter,
            value=value,
            read_at=read_at,
            source=source,
            recorded_by=actor,
        )
        for _, meter, value, read_at in fresh
    ]
    result.created = MeterReading.objects.bulk_create(rows, batch_size=1000)
    for _raw, meter, value, read_at in sorted(fresh, key=lambda item: item[3]):
        if meter.last_read_at is None or read_at >= meter.last_read_at:
            meter.last_value, meter.last_read_at = value, read_at
    touched = {meter.pk: meter for _, meter, _, _ in fresh}
    for meter in touched.values():
        meter.updated_at = now  # the generator looks at meters with readings since its last pass
    if touched:
        Meter.objects.bulk_update(list(touched.values()), ["last_value", "last_read_at", "updated_at"])
    return result


def _check_counters(fresh) -> list[tuple[str, str]]:
    """A counter never goes down: each new reading must be at least the newest stored one before it and at most
    the oldest stored one after it (one query per meter with a back-dated reading; none otherwise)."""
    problems = []
    by_meter: dict[int, list] = {}
    for item in fresh:
        if item[1].kind == Meter.Kind.CUMULATIVE:
            by_meter.setdefault(item[1].pk, []).append(item)
    for items in by_meter.values():
        meter = items[0][1]
        items.sort(key=lambda item: item[3])
        neighbours = []
        if meter.last_read_at is not None and items[0][3] < meter.last_read_at:
            oldest = items[0][3]
            before = (
                MeterReading.objects.filter(meter=meter, read_at__lt=oldest)
                .order_by("-read_at")
                .values_list("read_at", "value")
                .first()
            )
            neighbours = list(
                MeterReading.objects.filter(meter=meter, read_at__gte=oldest).values_list("read_at", "value")
            )
            if before:
                neighbours.append(before)
        elif meter.last_read_at is not None:
            neighbours = [(meter.last_read_at, meter.last_value)]
        timeline = sorted([(r, v, None) for r, v in neighbours] + [(i[3], i[2], i[0]) for i in items])
        highest = None
        for read_at, value, index in timeline:
            if highest is not None and value < highest[1]:
                where = f"readings[{index}].value" if index is not None else f"readings[{highest[2]}].value"
                problems.append(
                    (
                        where,
                        f"{meter.name} is a counter: {value:f} at {read_at.isoformat()} is below {highest[1]:f} "
                        f"at {highest[0].isoformat()}. If the meter was replaced or reset, create a new meter.",
                    )
                )
                continue
            highest = (read_at, value, index)
    return problems


@audit.attributed
def record_reading(meter: Meter, value, read_at=None, *, actor, source: str = MeterReading.Source.API):
    """One reading (see `record_readings`). Returns the reading, or None when it repeated a stored one."""
    result = record_readings(
        meter.organization, [{"meter": meter, "value": value, "read_at": read_at}], actor=actor, source=source
    )
    return result.created[0] if result.created else None


def meter_of(organization, meter_id) -> Meter:
    meter = Meter.objects.filter(organization=organization, pk=meter_id).select_related("asset").first()
    if meter is None:
        raise NotFound(_("No such meter."))
    return meter


__all__ = [
    "create_meter",
    "delete_meter",
    "meter_of",
    "parse_moment",
    "parse_value",
    "record_reading",
    "record_readings",
    "update_meter",
]
