"""The only writers of stock. Every change of on-hand stock is one conditional UPDATE of a StockLevel
plus one ledger row, in one transaction, so levels always equal the ledger and two technicians can never
take the same last unit. Errors say how many there are and where."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.models import (
    MovementKind,
    Part,
    PurchaseOrder,
    PurchaseOrderLine,
    Reservation,
    StockLevel,
    StockLocation,
    StockMovement,
    Vendor,
    VendorPart,
    new_transfer_id,
)
from maintenance_site import audit, client_ids
from maintenance_site.bulk import history_by_select, id_in, insert_rows
from maintenance_site.errors import Conflict, InvalidInput, NotFound, PermissionDeniedError
from maintenance_site.events.services import publish
from maintenance_site.i18n import lazy_number
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.models import Membership
from maintenance_site.tenancy.roles import Action, Role, role_allows
from maintenance_site.validation import delete_or_conflict, validated
from workorders.models import WorkOrder
from workorders.services import check_may_work_on, check_occurred_at, check_version

ZERO = Decimal("0")
QUANTUM = Decimal("0.001")
LARGEST_QUANTITY = Decimal("1e11")  # the ledger's columns hold 11 integer digits
DEMAND_WINDOW_DAYS = 90


# --- input checks -----------------------------------------------------------------------------------------


def parse_quantity(part: Part, raw, *, field: str = "quantity", allow_negative: bool = False) -> Decimal:
    """A quantity of `part`: a number, not zero, positive unless allowed, whole for countable units."""
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(
            _("“%(raw)s” is not a quantity.") % {"raw": raw}, fields={field: [_("Not a number.")]}
        ) from None
    if not value.is_finite():
        raise InvalidInput(_("“%(raw)s” is not a quantity.") % {"raw": raw}, fields={field: [_("Not a number.")]})
    if abs(value) >= LARGEST_QUANTITY:
        raise InvalidInput(_("%(raw)s is too large a quantity.") % {"raw": raw}, fields={field: [_("Too large.")]})
    if value == 0 or (value < 0 and not allow_negative):
        raise InvalidInput(_("The quantity must be more than zero."), fields={field: [_("Must be more than zero.")]})
    if part.is_countable and value != value.to_integral_value():
        raise InvalidInput(
            _("%(sku)s is counted in whole units (%(unit)s): %(value)s is not a whole number.")
            % {"sku": part.sku, "unit": part.get_unit_display().lower(), "value": value},
            fields={field: [_("Whole numbers only for this part.")]},
        )
    if value != value.quantize(QUANTUM):
        raise InvalidInput(_("Quantities have at most three decimals."), fields={field: [_("At most three decimals.")]})
    return value


def parse_money(raw, *, field: str = "unit_cost") -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(
            _("“%(raw)s” is not an amount.") % {"raw": raw}, fields={field: [_("Not a number.")]}
        ) from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(_("An amount cannot be negative."), fields={field: [_("Must be zero or more.")]})
    return value


def _same_organization(organization_id: int, *objects) -> None:
    for obj in objects:
        if obj is not None and obj.organization_id != organization_id:
            raise NotFound(_("No such %(what)s.") % {"what": obj._meta.verbose_name})


def _require(organization_id: int, actor, action: Action) -> str | None:
    """The acting role after the role-table check (None for automation)."""
    membership = tenancy_services.require_role(organization_id, action, actor=actor)
    return membership.role if membership else None


def _level(part: Part, location: StockLocation) -> StockLevel:
    level, _ = StockLevel.objects.get_or_create(
        part=part, location=location, defaults={"organization_id": part.organization_id}
    )
    return level


def _author(actor):
    """The user a ledger line names: the actor (`SYSTEM` arrives from `audit.attributed` as the system user)."""
    return actor


def _ledger(part, location, kind, quantity, unit_cost, *, actor, **extra) -> StockMovement:
    return StockMovement.objects.create(
        organization_id=part.organization_id,
        part=part,
        location=location,
        kind=kind,
        quantity=quantity,
        unit_cost=unit_cost,
        user=_author(actor),
        **extra,
    )


def _fmt(quantity) -> str:
    return f"{Decimal(quantity).normalize():f}"


def _shortage_message(part: Part, location: StockLocation, wanted: Decimal) -> Conflict:
    levels = list(StockLevel.objects.filter(part=part, on_hand__gt=0).select_related("location").order_by("-on_hand"))
    here = next((lvl.on_hand for lvl in levels if lvl.location_id == location.pk), ZERO)
    elsewhere = [f"{lvl.location.name} ({_fmt(lvl.on_hand)})" for lvl in levels if lvl.location_id != location.pk]
    unit = part.get_unit_display().lower()
    values = {
        "here": _fmt(here),
        "location": location.name,
        "sku": part.sku,
        "part": part.name,
        "wanted": _fmt(wanted),
        "unit": unit,
    }
    if here:
        message = (
            _("Only %(here)s left in %(location)s (%(sku)s %(part)s; you asked for %(wanted)s %(unit)s).") % values
        )
    else:
        message = _("None left in %(location)s (%(sku)s %(part)s; you asked for %(wanted)s %(unit)s).") % values
    if elsewhere:
        message += " " + _("Also available: %(locations)s.") % {"locations": ", ".join(elsewhere)}
    return Conflict(
        message,
        code="insufficient_stock",
        available=str(here),
        locations=[
            {"location": lvl.location.name, "location_id": lvl.location_id, "on_hand": str(lvl.on_hand)}
            for lvl in levels
        ],
    )


def _take(part: Part, location: StockLocation, quantity: Decimal) -> None:
    """Remove stock with one conditional UPDATE: never below zero, whatever runs at the same time."""
    taken = StockLevel.objects.filter(part=part, location=location, on_hand__gte=quantity).update(
        on_hand=F("on_hand") - quantity, updated_at=timezone.now()
    )
    if not taken:
        raise _shortage_message(part, location, quantity)


def _put(part: Part, location: StockLocation, quantity: Decimal) -> None:
    level = _level(part, location)
    StockLevel.objects.filter(pk=level.pk).update(on_hand=F("on_hand") + quantity, updated_at=timezone.now())


# --- low stock ------------------------------------------------------------------------------------------


def available_quantity(part: Part) -> Decimal:
    totals = StockLevel.objects.filter(part=part).aggregate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
    return (totals["on_hand"] or ZERO) - (totals["reserved"] or ZERO)


def check_low_stock(part: Part) -> bool:
    """Alert once when available stock crosses the reorder point downward; re-arm when it rises above.

    The conditional UPDATE of the armed flag makes the alert fire once even when two transactions cross
    the line at the same moment. Returns True when this call raised the alert.
    """
    return bool(check_low_stock_many([part]))


def check_low_stock_many(parts) -> list[Part]:
    """`check_low_stock` for several parts at once: their available stock in one query, one UPDATE re-arming those
    above their reorder point, and for each part at or below it the conditional UPDATE of its armed flag that
    raises its alert once, whatever runs at the same time (one query per low part, none per order). Returns the
    parts whose alert this call raised."""
    parts = sorted({part.pk: part for part in parts}.values(), key=lambda part: part.pk)
    if not parts:
        return []
    totals = {
        row["part"]: (row["on_hand"] or ZERO) - (row["reserved"] or ZERO)
        for row in StockLevel.objects.filter(part__in=[part.pk for part in parts])
        .values("part")
        .annotate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
    }
    available = {part.pk: totals.get(part.pk, ZERO) for part in parts}
    above = [part.pk for part in parts if available[part.pk] > part.reorder_point]
    if above:
        Part.objects.filter(pk__in=above, low_stock_armed=False).update(low_stock_armed=True)
    alerted = []
    for part in parts:
        if available[part.pk] <= part.reorder_point and (
            Part.objects.filter(pk=part.pk, low_stock_armed=True).update(low_stock_armed=False)
        ):
            alerted.append(part)
            _alert_low_stock(part, available[part.pk])
    return alerted


def _alert_low_stock(part: Part, available: Decimal) -> None:
    payload = {
        "part": part.pk,
        "sku": part.sku,
        "name": part.name,
        "available": str(available),
        "reorder_point": str(part.reorder_point),
        "reorder_quantity": str(part.reorder_quantity),
    }
    publish(part.organization, "inventory:low-stock", payload)
    notify(
        part.organization,
        [Role.STOREKEEPER],
        "inventory:low-stock",
        {
            # lazy: each storekeeper reads it in their own language, quantities in its locale
            "title": format_lazy(gettext_lazy("Low stock: {sku} {name}"), sku=part.sku, name=part.name),
            "body": format_lazy(
                gettext_lazy("{available} available, reorder point {reorder_point}: reorder {reorder_quantity}."),
                available=lazy_number(available),
                reorder_point=lazy_number(part.reorder_point),
                reorder_quantity=lazy_number(part.reorder_quantity),
            ),
            "url": f"/admin/inventory/part/{part.pk}/change/",
        },
    )


# --- movements ------------------------------------------------------------------------------------------


def _unavailable(part: Part, location: StockLocation) -> Conflict | None:
    """Why stock of this part cannot move at this location (the location or the part is no longer in use)."""
    if not location.is_active:
        return Conflict(_("%(location)s is no longer in use.") % {"location": location.name}, code="location_inactive")
    if not part.is_active:
        return Conflict(_("%(sku)s is no longer active.") % {"sku": part.sku}, code="part_inactive")
    return None


def _check_location(part: Part, location: StockLocation) -> Part:
    """Refuse inactive or foreign locations and parts; return the part as it is now (current average cost)."""
    _same_organization(part.organization_id, location)
    part = Part.objects.get(pk=part.pk)
    problem = _unavailable(part, location)
    if problem is not None:
        raise problem
    return part


@audit.attributed
@transaction.atomic
def receive_stock(
    part: Part, location: StockLocation, quantity, unit_cost, *, actor, purchase_order=None, reason: str = ""
) -> StockMovement:
    """Put received stock on the shelf and fold its price into the part's moving-average cost."""
    _require(part.organization_id, actor, Action.ADJUST_STOCK)
    part = _check_location(part, location)
    quantity = parse_quantity(part, quantity)
    unit_cost = parse_money(unit_cost)
    part = Part.objects.select_for_update().get(pk=part.pk)  # one cost update at a time per part
    on_hand = StockLevel.objects.filter(part=part).aggregate(total=Sum("on_hand"))["total"] or ZERO
    total = on_hand + quantity
    part.average_cost = ((on_hand * part.average_cost + quantity * unit_cost) / total).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_UP
    )
    part.save(update_fields=["average_cost", "updated_at"])
    _put(part, location, quantity)
    movement = _ledger(
        part,
        location,
        MovementKind.RECEIPT,
        quantity,
        unit_cost,
        actor=actor,
        purchase_order=purchase_order,
        reason=reason,
    )
    check_low_stock(part)
    return movement


def _may_use_parts_on(work_order, actor) -> None:
    role = _require(work_order.organization_id, actor, Action.USE_PARTS)
    if role is None or role_allows(role, Action.ASSIGN_WORK) or role_allows(role, Action.ADJUST_STOCK):
        return
    check_may_work_on(work_order, actor=actor)


def _open_work_order(work_order):
    work_order = WorkOrder.objects.select_for_update().get(pk=work_order.pk)
    _check_open(work_order)
    return work_order


def _check_open(work_order) -> None:
    if not work_order.is_open:
        raise Conflict(
            _("%(number)s is %(status)s: parts can no longer be issued to it.")
            % {"number": work_order.number, "status": work_order.get_status_display().lower()},
            code="work_order_closed",
        )


@audit.attributed
@transaction.atomic
def issue_to_work_order(
    work_order,
    part: Part,
    location: StockLocation,
    quantity,
    *,
    actor,
    client_id: str = "",
    occurred_at=None,
    version: str | None = None,
) -> StockMovement:
    """Take parts from a location for a work order. More than is there is a Conflict saying how many are
    left there and where else there are some. A client id is the actor's own: sent again with the same order,
    part, location and quantity it applies once; with anything else it is a Conflict naming the movement.
    A part used offline (the phone's queue) comes with `occurred_at`, the device's time (bounds-checked, kept on
    the ledger line beside its arrival time), and `version`, the order as the phone had it: a part used on an
    order closed meanwhile is refused in the order's own words, on an order somebody else changed since as stale
    (`workorders.services.check_version`), and the technician decides (apply anyway, discard, keep as a note)."""
    _same_organization(work_order.organization_id, part, location)
    quantity = parse_quantity(part, quantity)

    def issue() -> StockMovement:
        nonlocal part, work_order
        part = _check_location(part, location)
        _may_use_parts_on(work_order, actor)
        work_order = _open_work_order(work_order)
        if occurred_at is not None:
            check_occurred_at(work_order, occurred_at, actor)
        check_version(work_order, version, actor=actor)  # after: a closed order's refusal says why
        _take(part, location, quantity)
        movement = _ledger(
            part,
            location,
            MovementKind.ISSUE,
            -quantity,
            part.average_cost,
            actor=actor,
            work_order=work_order,
            client_id=client_id,
            occurred_at=occurred_at,
        )
        _consume_reservation(work_order, part, location, quantity)
        check_low_stock(part)
        publish(
            work_order.organization,
            "work-order:updated",
            {
                "id": work_order.pk,
                "number": work_order.number,
                "status": work_order.status,
                "change": "parts",
                "part": part.pk,
                "quantity": str(quantity),
            },
            user=work_order.assignee,
        )
        return movement

    return client_ids.apply_once(
        StockMovement,
        client_id=client_id,
        scope={"organization_id": part.organization_id, "user": _author(actor), "kind": MovementKind.ISSUE},
        sent={"work_order_id": work_order.pk, "part_id": part.pk, "location_id": location.pk, "quantity": -quantity},
        create=issue,
        describe=_described_movement,
    )


def _described_movement(movement: StockMovement) -> dict:
    label = (
        f"stock movement #{movement.pk} ({-movement.quantity.normalize():f} × {movement.part.sku} "
        f"from {movement.location.name}" + (f" on {movement.work_order.number})" if movement.work_order_id else ")")
    )
    return {"kind": "stock_movement", "id": movement.pk, "label": label}


def net_issued(work_order, part: Part, location: StockLocation | None = None) -> Decimal:
    movements = StockMovement.objects.filter(
        work_order=work_order, part=part, kind__in=(MovementKind.ISSUE, MovementKind.RETURN)
    )
    if location is not None:
        movements = movements.filter(location=location)
    return -(movements.aggregate(total=Sum("quantity"))["total"] or ZERO)


@audit.attributed
@transaction.atomic
def return_from_work_order(
    work_order, part: Part, location: StockLocation, quantity, *, actor, reason: str = ""
) -> StockMovement:
    """Put unused parts back; never more than the order took. They return at the cost they left at."""
    _same_organization(work_order.organization_id, part, location)
    quantity = parse_quantity(part, quantity)
    _may_use_parts_on(work_order, actor)
    return _return_parts(work_order, part, location, quantity, actor=actor, reason=reason)


def _return_parts(work_order, part, location, quantity: Decimal, *, actor, reason: str = "") -> StockMovement:
    work_order = WorkOrder.objects.select_for_update().get(pk=work_order.pk)  # one return at a time per order
    issued = net_issued(work_order, part)
    if quantity > issued:
        raise Conflict(
            _("%(number)s holds %(issued)s of %(sku)s: that is the most that can be returned.")
            % {"number": work_order.number, "issued": _fmt(issued), "sku": part.sku},
            code="return_exceeds_issued",
        )
    issues = StockMovement.objects.filter(work_order=work_order, part=part, kind=MovementKind.ISSUE)
    value = sum((-m.quantity * m.unit_cost for m in issues), ZERO)
    count = sum((-m.quantity for m in issues), ZERO)
    unit_cost = (value / count).quantize(Decimal("0.0001")) if count else part.average_cost
    part = _check_location(part, location)
    _put(part, location, quantity)
    movement = _ledger(
        part, location, MovementKind.RETURN, quantity, unit_cost, actor=actor, work_order=work_order, reason=reason
    )
    check_low_stock(part)
    return movement


@audit.attributed
@transaction.atomic
def adjust_stock(
    part: Part, location: StockLocation, *, reason: str, actor, counted=None, change=None
) -> StockMovement | None:
    """Correct a level after a count (`counted`: what is really there) or by a signed `change`. The reason
    is required. Returns None when the count matches the books."""
    if not (reason or "").strip():
        raise InvalidInput(_("Say why the stock is adjusted."), fields={"reason": [_("Required.")]})
    if (counted is None) == (change is None):
        raise InvalidInput(_("Give either the counted quantity or the change, not both."))
    _require(part.organization_id, actor, Action.ADJUST_STOCK)
    part = _check_location(part, location)
    level = StockLevel.objects.select_for_update().filter(pk=_level(part, location).pk).get()
    if counted is not None:
        # zero is a valid count (everything is gone); anything else is an ordinary quantity
        is_zero = str(counted).strip() in ("0", "0.0", "0.00", "0.000")
        counted_value = ZERO if is_zero else parse_quantity(part, counted, field="counted")
        delta = counted_value - level.on_hand
        if delta == 0:
            return None
    else:
        delta = parse_quantity(part, change, field="change", allow_negative=True)
    if delta < 0:
        _take(part, location, -delta)
    else:
        _put(part, location, delta)
    movement = _ledger(
        part, location, MovementKind.ADJUSTMENT, delta, part.average_cost, actor=actor, reason=reason.strip()
    )
    check_low_stock(part)
    return movement


@audit.attributed
@transaction.atomic
def write_off(part: Part, location: StockLocation, quantity, *, reason: str, actor, work_order=None) -> StockMovement:
    """Remove damaged, expired or lost stock, with the reason."""
    if not (reason or "").strip():
        raise InvalidInput(_("Say why the stock is written off."), fields={"reason": [_("Required.")]})
    _require(part.organization_id, actor, Action.ADJUST_STOCK)
    part = _check_location(part, location)
    _same_organization(part.organization_id, work_order)
    quantity = parse_quantity(part, quantity)
    _take(part, location, quantity)
    movement = _ledger(
        part,
        location,
        MovementKind.WRITE_OFF,
        -quantity,
        part.average_cost,
        actor=actor,
        reason=reason.strip(),
        work_order=work_order,
    )
    check_low_stock(part)
    return movement


def _check_van_refill(source: StockLocation, destination: StockLocation, *, actor) -> None:
    """The one transfer `use_parts` allows without `adjust_stock`: refilling one's own van from a warehouse or a
    shelf. Stock in a van is its holder's to use: taking it out is a storekeeper's move."""
    if destination.kind != StockLocation.Kind.VAN or destination.holder_id != actor.pk:
        raise PermissionDeniedError(
            _(
                "You may only transfer stock into your own van, and %(location)s is not it; "
                "ask a storekeeper to move stock anywhere else."
            )
            % {"location": destination.name},
            code="role_forbids",
        )
    if source.kind == StockLocation.Kind.VAN:
        holder = source.holder
        whose = (
            _("%(name)s’s van") % {"name": holder.get_full_name() or holder.get_username()} if holder else _("a van")
        )
        raise PermissionDeniedError(
            _(
                "%(location)s is %(whose)s: refill your van from a warehouse or shelf, or ask a storekeeper to move "
                "stock between vans."
            )
            % {"location": source.name, "whose": whose},
            code="role_forbids",
        )


@audit.attributed
@transaction.atomic
def transfer_stock(
    part: Part, source: StockLocation, destination: StockLocation, quantity, *, actor, reason: str = ""
) -> tuple[StockMovement, StockMovement]:
    """Move stock between locations (refill a van from the warehouse): two ledger rows, one transfer id."""
    if source.pk == destination.pk:
        raise InvalidInput(
            _("Source and destination are the same location."), fields={"destination": [_("Same as source.")]}
        )
    role = _require(part.organization_id, actor, Action.USE_PARTS)
    _same_organization(part.organization_id, source, destination)
    if role is not None and not role_allows(role, Action.ADJUST_STOCK):
        _check_van_refill(source, destination, actor=actor)
    part = _check_location(part, source)
    _check_location(part, destination)
    quantity = parse_quantity(part, quantity)
    levels = sorted([_level(part, source), _level(part, destination)], key=lambda lvl: lvl.pk)
    # Touch both rows in primary-key order so opposite transfers cannot deadlock.
    for level in levels:
        if level.location_id == source.pk:
            _take(part, source, quantity)
        else:
            _put(part, destination, quantity)
    transfer_id = new_transfer_id()
    out = _ledger(
        part,
        source,
        MovementKind.TRANSFER_OUT,
        -quantity,
        part.average_cost,
        actor=actor,
        transfer_id=transfer_id,
        reason=reason,
    )
    into = _ledger(
        part,
        destination,
        MovementKind.TRANSFER_IN,
        quantity,
        part.average_cost,
        actor=actor,
        transfer_id=transfer_id,
        reason=reason,
    )
    return out, into


# --- reservations ---------------------------------------------------------------------------------------


@audit.attributed
@transaction.atomic
def reserve(work_order, part: Part, location: StockLocation, quantity, *, actor) -> Reservation:
    """Hold parts at a location for an open work order. More than is available is allowed: it shows as a
    shortage and counts in reorder suggestions."""
    _same_organization(work_order.organization_id, part, location)
    quantity = parse_quantity(part, quantity)
    part = _check_location(part, location)
    _require(work_order.organization_id, actor, Action.CREATE_WORK)
    work_order = _open_work_order(work_order)
    level = _level(part, location)
    reservation = (
        Reservation.objects.select_for_update()
        .filter(work_order=work_order, part=part, location=location, status=Reservation.Status.ACTIVE)
        .first()
    )
    if reservation is None:
        reservation = Reservation.objects.create(
            organization_id=work_order.organization_id,
            work_order=work_order,
            part=part,
            location=location,
            quantity=quantity,
        )
    else:
        reservation.quantity += quantity
        reservation.save(update_fields=["quantity", "updated_at"])
    StockLevel.objects.filter(pk=level.pk).update(reserved=F("reserved") + quantity, updated_at=timezone.now())
    check_low_stock(part)
    return reservation


@dataclass
class BulkReservation:
    """What `reserve_bulk` did: the reservations written (new, or active ones that grew), and the lines it left
    out because their part or location is no longer in use, each with why."""

    reservations: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


@audit.attributed
@transaction.atomic
def reserve_bulk(lines, *, actor) -> BulkReservation:
    """`reserve` for many lines at once: `lines` of (work order, part, stock location, quantity), each checked
    as `reserve` checks it (same organisation, a valid quantity, the actor may create work, the order open and
    locked) and reserved the same way (the order's active reservation of that part there grows, else a new one
    with its history; the stock level's reserved quantity grows; low stock is checked per part). Unlike `reserve`,
    a line whose part or location is no longer in use does not refuse the batch: it is left out and reported in
    `refused` (index of the line, why). The number of queries does not grow with the lines: the levels are made
    sure of in one insert, changed with one UPDATE per (part, location) in key order (so concurrent batches
    cannot deadlock), the reservations written by COPY and their history by INSERT … SELECT."""
    lines = list(lines)
    result = BulkReservation()
    if not lines:
        return result
    organization_ids = {order.organization_id for order, _, _, _ in lines}
    if actor is not None:
        for organization_id in sorted(organization_ids):
            _require(organization_id, actor, Action.CREATE_WORK)
    parts = Part.objects.in_bulk({part.pk for _, part, _, _ in lines})
    locations = StockLocation.objects.in_bulk({location.pk for _, _, location, _ in lines})
    # each distinct (part, location, quantity) is checked once: (organisation, part id, location id, quantity) or why
    checked: dict[tuple, tuple | str] = {}
    wanted: dict[tuple[int, int, int], Decimal] = {}
    organization_of: dict[int, int] = {}
    for index, (order, part, location, quantity) in enumerate(lines):
        key = (id(part), id(location), quantity)  # the lines hold them: same objects, checked once
        if key not in checked:
            _same_organization(part.organization_id, location)
            part, location = parts[part.pk], locations[location.pk]
            problem = _unavailable(part, location)
            checked[key] = (
                f"{part.sku} at {location.name}: {problem.message}"
                if problem is not None
                else (part.organization_id, part.pk, location.pk, parse_quantity(part, quantity))
            )
        outcome = checked[key]
        if isinstance(outcome, str):
            result.refused.append((index, outcome))
            continue
        organization_id, part_id, location_id, amount = outcome
        order_id = order.pk
        if order.organization_id != organization_id:
            raise NotFound(_("No such %(what)s.") % {"what": Part._meta.verbose_name})
        organization_of[order_id] = organization_id
        line_key = (order_id, part_id, location_id)
        wanted[line_key] = wanted.get(line_key, ZERO) + amount
    if not wanted:
        return result
    order_ids = sorted({order_id for order_id, _, _ in wanted})
    orders_table, reservations_table = (connection.ops.quote_name(m._meta.db_table) for m in (WorkOrder, Reservation))
    with connection.cursor() as cursor:
        where, params = id_in("id", order_ids)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: the database is locked
        cursor.execute(f"SELECT id, status FROM {orders_table} WHERE {where} ORDER BY id{lock}", params)  # noqa: S608
        closed = [pk for pk, status in cursor.fetchall() if status not in WorkOrder.OPEN_STATUSES]
        if closed:
            _check_open(WorkOrder.objects.get(pk=closed[0]))
        # the orders are locked: no `reserve` of theirs can add a reservation meanwhile
        where, params = id_in("work_order_id", order_ids)
        cursor.execute(
            f"SELECT id FROM {reservations_table} WHERE {where} AND status = %s",  # noqa: S608
            [*params, Reservation.Status.ACTIVE],
        )
        active_ids = [row[0] for row in cursor.fetchall()]
    pairs = sorted({(part_id, location_id) for _, part_id, location_id in wanted})
    StockLevel.objects.bulk_create(
        [StockLevel(organization_id=parts[p].organization_id, part_id=p, location_id=loc) for p, loc in pairs],
        ignore_conflicts=True,
    )
    active = {
        (r.work_order_id, r.part_id, r.location_id): r
        for r in Reservation.objects.select_for_update().filter(pk__in=active_ids).order_by("pk")
    }
    now = timezone.now()
    grown = [active[key] for key in wanted if key in active]
    for reservation in grown:
        reservation.quantity += wanted[(reservation.work_order_id, reservation.part_id, reservation.location_id)]
        reservation.updated_at = now
    if grown:
        audit.bulk_update_with_history(grown, Reservation, ["quantity", "updated_at"])
    new = [
        (organization_of[o], o, p, loc, quantity)
        for (o, p, loc), quantity in wanted.items()
        if (o, p, loc) not in active
    ]
    ids = insert_rows(Reservation, ["organization_id", "work_order_id", "part_id", "location_id", "quantity"], new)
    if ids:
        where, params = id_in("t.id", ids)
        history_by_select(Reservation, where, params, reason=audit.current_change_reason())
    totals: dict[tuple[int, int], Decimal] = {}
    for (_order_id, part_id, location_id), quantity in wanted.items():
        totals[(part_id, location_id)] = totals.get((part_id, location_id), ZERO) + quantity
    for (part_id, location_id), quantity in sorted(totals.items()):
        StockLevel.objects.filter(part_id=part_id, location_id=location_id).update(
            reserved=F("reserved") + quantity, updated_at=now
        )
    check_low_stock_many(parts[part_id] for part_id, _ in totals)
    result.reservations = [r.pk for r in grown] + ids
    return result


def _consume_reservation(work_order, part, location, quantity: Decimal) -> None:
    reservation = (
        Reservation.objects.select_for_update()
        .filter(work_order=work_order, part=part, location=location, status=Reservation.Status.ACTIVE)
        .first()
    )
    if reservation is None:
        return
    used = min(reservation.quantity, quantity)
    StockLevel.objects.filter(part=part, location=location).update(
        reserved=F("reserved") - used, updated_at=timezone.now()
    )
    if used == reservation.quantity:
        reservation.status = Reservation.Status.CONSUMED
        reservation.save(update_fields=["status", "updated_at"])
    else:
        reservation.quantity -= used
        reservation.save(update_fields=["quantity", "updated_at"])


def release_reservations_for(work_order) -> int:
    """Release what is still reserved for an order that completes or is cancelled (the `work_order_closing`
    hook point)."""
    released = 0
    parts = set()
    for reservation in Reservation.objects.select_for_update().filter(
        work_order=work_order, status=Reservation.Status.ACTIVE
    ):
        StockLevel.objects.filter(part_id=reservation.part_id, location_id=reservation.location_id).update(
            reserved=F("reserved") - reservation.quantity, updated_at=timezone.now()
        )
        reservation.status = Reservation.Status.RELEASED
        reservation.save(update_fields=["status", "updated_at"])
        parts.add(reservation.part_id)
        released += 1
    for part in Part.objects.filter(pk__in=parts):
        check_low_stock(part)
    return released


# --- work-order hook points (registered in inventory.apps) ------------------------------------------------------------

PARTS_DISPOSITIONS = ("return", "write_off")


@audit.attributed
def settle_parts_on_cancel(work_order, disposition: str | None, *, actor) -> None:
    """An order cancelled while holding issued parts must say where they go: back to stock (`return`, to
    the locations they came from) or written off (`write_off`, they stay consumed by the order)."""
    held = (
        StockMovement.objects.filter(work_order=work_order, kind__in=(MovementKind.ISSUE, MovementKind.RETURN))
        .values("part_id", "location_id")
        .annotate(total=Sum("quantity"))
        .filter(total__lt=0)
    )
    held = list(held)
    if not held:
        return
    if disposition not in PARTS_DISPOSITIONS:
        parts = Part.objects.in_bulk([row["part_id"] for row in held])
        listed = ", ".join(f"{_fmt(-row['total'])} × {parts[row['part_id']].sku}" for row in held)
        raise Conflict(
            _(
                "%(number)s has parts issued (%(listed)s): say whether they go back to stock "
                "(parts_disposition=return) or are written off (parts_disposition=write_off)."
            )
            % {"number": work_order.number, "listed": listed},
            code="parts_disposition_required",
        )
    if disposition == "return":
        parts = Part.objects.in_bulk([row["part_id"] for row in held])
        locations = StockLocation.objects.in_bulk([row["location_id"] for row in held])
        for row in held:
            # the canceller's permission to cancel covers putting the parts back
            _return_parts(
                work_order,
                parts[row["part_id"]],
                locations[row["location_id"]],
                -row["total"],
                actor=actor,
                reason=f"{work_order.number} cancelled",
            )


def parts_cost_for(work_order) -> Decimal:
    """What the parts the order used cost: issues minus returns, at their ledger unit costs."""
    total = ZERO
    for quantity, unit_cost in StockMovement.objects.filter(
        work_order=work_order, kind__in=(MovementKind.ISSUE, MovementKind.RETURN)
    ).values_list("quantity", "unit_cost"):
        total -= quantity * unit_cost
    return total.quantize(Decimal("0.01"))


# --- reconciliation and suggestions ------------------------------------------------------------------------


def reconcile(organization) -> list[dict]:
    """Compare every stock level with the sum of its ledger. An empty list means the books balance."""
    ledger = {
        (row["part_id"], row["location_id"]): row["total"]
        for row in StockMovement.objects.for_tenant(organization)
        .values("part_id", "location_id")
        .annotate(total=Sum("quantity"))
    }
    differences = []
    seen = set()
    for level in StockLevel.objects.for_tenant(organization).select_related("part", "location"):
        key = (level.part_id, level.location_id)
        seen.add(key)
        expected = ledger.get(key, ZERO)
        if level.on_hand != expected:
            differences.append(
                {
                    "part": level.part.sku,
                    "location": level.location.name,
                    "on_hand": level.on_hand,
                    "ledger": expected,
                    "difference": level.on_hand - expected,
                }
            )
    for key, total in ledger.items():
        if key not in seen and total != 0:
            differences.append(
                {"part": key[0], "location": key[1], "on_hand": ZERO, "ledger": total, "difference": -total}
            )
    return differences


def on_order(organization) -> dict[int, Decimal]:
    open_statuses = (PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.ORDERED, PurchaseOrder.Status.PARTLY_RECEIVED)
    lines = (
        PurchaseOrderLine.objects.filter(organization=organization, purchase_order__status__in=open_statuses)
        .values("part_id")
        .annotate(ordered=Sum("quantity"), received=Sum("received_quantity"))
    )
    return {row["part_id"]: row["ordered"] - row["received"] for row in lines}


def reorder_suggestions(organization, *, now=None) -> list[dict]:
    """Parts whose available stock plus what is on order is at or below the reorder point.

    available = on hand − reserved (across locations); demand during lead time = issues of the last 90 days
    ÷ 90 × lead time days; suggested = max(reorder quantity, reorder point − available − on order + that
    demand), rounded up to whole units for countable parts.
    """
    now = now or timezone.now()
    levels = (
        StockLevel.objects.for_tenant(organization)
        .values("part_id")
        .annotate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
    )
    stock = {row["part_id"]: row for row in levels}
    usage = {
        row["part_id"]: -row["used"]
        for row in StockMovement.objects.for_tenant(organization)
        .filter(kind=MovementKind.ISSUE, created_at__gte=now - timedelta(days=DEMAND_WINDOW_DAYS))
        .values("part_id")
        .annotate(used=Sum("quantity"))
    }
    ordered = on_order(organization)
    suggestions = []
    for part in Part.objects.for_tenant(organization).filter(is_active=True).select_related("preferred_vendor"):
        row = stock.get(part.pk, {"on_hand": ZERO, "reserved": ZERO})
        available = (row["on_hand"] or ZERO) - (row["reserved"] or ZERO)
        incoming = ordered.get(part.pk, ZERO)
        if available + incoming > part.reorder_point:
            continue
        lead_demand = usage.get(part.pk, ZERO) / DEMAND_WINDOW_DAYS * part.lead_time_days
        quantity = max(part.reorder_quantity, part.reorder_point - available - incoming + lead_demand)
        quantity = (
            quantity.to_integral_value(rounding="ROUND_CEILING") if part.is_countable else quantity.quantize(QUANTUM)
        )
        if quantity <= 0:
            continue
        on_hand, reserved = row["on_hand"] or ZERO, row["reserved"] or ZERO
        suggestions.append(
            {
                "part": part,
                "available": available,
                "on_hand": on_hand,
                "reserved": reserved,
                "on_order": incoming,
                "reorder_point": part.reorder_point,
                "lead_time_demand": lead_demand.quantize(QUANTUM),
                "shortage": max(ZERO, reserved - on_hand),
                "quantity": quantity,
                "vendor": part.preferred_vendor,
            }
        )
    return suggestions


def transfer_suggestions(organization) -> list[dict]:
    """Locations below their per-location minimum, and where to refill them from (warehouses first)."""
    levels = list(StockLevel.objects.for_tenant(organization).select_related("part", "location"))
    by_part = defaultdict(list)
    for level in levels:
        by_part[level.part_id].append(level)
    suggestions = []
    for level in levels:
        if level.min_quantity is None or level.available >= level.min_quantity:
            continue
        target = level.max_quantity if level.max_quantity is not None else level.min_quantity
        needed = target - level.available
        sources = sorted(
            (other for other in by_part[level.part_id] if other.pk != level.pk),
            key=lambda other: (other.location.kind != StockLocation.Kind.WAREHOUSE, -other.available),
        )
        for source in sources:
            spare = source.available - (source.min_quantity or ZERO)
            if spare <= 0 or needed <= 0:
                continue
            quantity = min(spare, needed)
            if level.part.is_countable:
                quantity = quantity.to_integral_value(rounding="ROUND_FLOOR")
            if quantity <= 0:
                continue
            suggestions.append(
                {"part": level.part, "source": source.location, "destination": level.location, "quantity": quantity}
            )
            needed -= quantity
    return suggestions


# --- purchasing -----------------------------------------------------------------------------------------


@audit.attributed
@transaction.atomic
def create_purchase_order(
    organization, *, vendor: Vendor, lines: list[dict], actor, expected_at=None, notes: str = ""
) -> PurchaseOrder:
    """A draft order to a vendor with its lines ({part, quantity, unit_price})."""
    _require(organization.pk, actor, Action.MANAGE_PURCHASING)
    _same_organization(organization.pk, vendor)
    if not lines:
        raise InvalidInput(_("A purchase order needs at least one line."), fields={"lines": [_("Required.")]})
    number = f"PO-{tenancy_services.reserve_numbers(organization, 'purchase-order')[0]:06d}"
    order = PurchaseOrder.objects.create(
        organization=organization, number=number, vendor=vendor, expected_at=expected_at, notes=notes, created_by=actor
    )
    for index, line in enumerate(lines):
        part = line["part"]
        _same_organization(organization.pk, part)
        try:
            quantity = parse_quantity(part, line["quantity"], field=f"lines[{index}].quantity")
            price = parse_money(line.get("unit_price", _vendor_price(vendor, part)), field=f"lines[{index}].unit_price")
        except InvalidInput:
            raise
        PurchaseOrderLine.objects.create(
            organization=organization, purchase_order=order, part=part, quantity=quantity, unit_price=price
        )
    return order


def _vendor_price(vendor: Vendor, part: Part) -> Decimal:
    offer = vendor.parts.filter(part=part).first()
    return offer.price if offer else part.average_cost


@audit.attributed
@transaction.atomic
def purchase_orders_from_suggestions(organization, *, actor, part_ids=None) -> tuple[list[PurchaseOrder], list[Part]]:
    """Draft one purchase order per preferred vendor from the reorder suggestions. Returns the orders and
    the parts left out because they have no preferred vendor."""
    by_vendor = defaultdict(list)
    without_vendor = []
    for suggestion in reorder_suggestions(organization):
        if part_ids is not None and suggestion["part"].pk not in part_ids:
            continue
        if suggestion["vendor"] is None:
            without_vendor.append(suggestion["part"])
            continue
        by_vendor[suggestion["vendor"]].append({"part": suggestion["part"], "quantity": suggestion["quantity"]})
    orders = [
        create_purchase_order(
            organization, vendor=vendor, lines=lines, actor=actor, notes="Drafted from reorder suggestions."
        )
        for vendor, lines in sorted(by_vendor.items(), key=lambda item: item[0].name)
    ]
    return orders, without_vendor


def _locked_order(order: PurchaseOrder) -> PurchaseOrder:
    return PurchaseOrder.objects.select_for_update().get(pk=order.pk)


@audit.attributed
@transaction.atomic
def place_purchase_order(order: PurchaseOrder, *, actor) -> PurchaseOrder:
    """Send a draft to the vendor: draft → ordered."""
    order = _locked_order(order)
    _require(order.organization_id, actor, Action.MANAGE_PURCHASING)
    if order.status != PurchaseOrder.Status.DRAFT:
        raise Conflict(
            _("%(number)s is %(status)s: only a draft can be ordered.")
            % {"number": order.number, "status": order.get_status_display().lower()},
            code="invalid_transition",
        )
    order.status, order.ordered_at = PurchaseOrder.Status.ORDERED, timezone.now()
    order.save()
    return order


@audit.attributed
@transaction.atomic
def cancel_purchase_order(order: PurchaseOrder, *, reason: str, actor) -> PurchaseOrder:
    order = _locked_order(order)
    _require(order.organization_id, actor, Action.MANAGE_PURCHASING)
    if not (reason or "").strip():
        raise InvalidInput(_("Say why the order is cancelled."), fields={"reason": [_("Required.")]})
    if order.status not in (PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.ORDERED):
        raise Conflict(
            _("%(number)s is %(status)s: it can no longer be cancelled.")
            % {"number": order.number, "status": order.get_status_display().lower()},
            code="invalid_transition",
        )
    order.status = PurchaseOrder.Status.CANCELLED
    order._change_reason = reason.strip()
    order.save()
    return order


@audit.attributed
@transaction.atomic
def receive_purchase_order(order: PurchaseOrder, *, location: StockLocation, quantities: dict, actor) -> PurchaseOrder:
    """Receive some or all of an ordered purchase order at `location`: {line id: quantity}. Each line takes
    at most what is outstanding; receipts go in the ledger at the line's price."""
    order = _locked_order(order)
    _require(order.organization_id, actor, Action.ADJUST_STOCK)
    _same_organization(order.organization_id, location)
    if order.status not in (PurchaseOrder.Status.ORDERED, PurchaseOrder.Status.PARTLY_RECEIVED):
        raise Conflict(
            _("%(number)s is %(status)s: only an ordered purchase order can be received.")
            % {"number": order.number, "status": order.get_status_display().lower()},
            code="invalid_transition",
        )
    if not quantities:
        raise InvalidInput(_("Say how much of which line arrived."), fields={"lines": [_("Required.")]})
    lines = {line.pk: line for line in order.lines.select_related("part")}
    for line_id, raw in quantities.items():
        line = lines.get(int(line_id)) if str(line_id).isdigit() else None
        if line is None:
            raise NotFound(_("%(number)s has no line %(line)s.") % {"number": order.number, "line": line_id})
        quantity = parse_quantity(line.part, raw, field=f"lines.{line_id}")
        updated = PurchaseOrderLine.objects.filter(pk=line.pk, received_quantity__lte=F("quantity") - quantity).update(
            received_quantity=F("received_quantity") + quantity, updated_at=timezone.now()
        )
        if not updated:
            raise Conflict(
                _("Line %(sku)s: %(outstanding)s outstanding, %(quantity)s received is too many.")
                % {"sku": line.part.sku, "outstanding": _fmt(line.outstanding), "quantity": _fmt(quantity)},
                code="over_receipt",
            )
        receive_stock(
            line.part,
            location,
            quantity,
            line.unit_price,
            actor=actor,
            purchase_order=order,
            reason=f"Received against {order.number}",
        )
    outstanding = order.lines.filter(received_quantity__lt=F("quantity")).exists()
    order.status = PurchaseOrder.Status.PARTLY_RECEIVED if outstanding else PurchaseOrder.Status.RECEIVED
    if not outstanding:
        order.received_at = timezone.now()
    order.save()
    return order


# --- catalogue ------------------------------------------------------------------------------------------

PART_FIELDS = {
    "sku",
    "name",
    "description",
    "category",
    "unit",
    "manufacturer",
    "manufacturer_part_number",
    "preferred_vendor",
    "reorder_point",
    "reorder_quantity",
    "lead_time_days",
    "is_active",
}


@audit.attributed
@transaction.atomic
def create_part(organization, *, actor, compatible_asset_types=(), **fields) -> Part:
    _require(organization.pk, actor, Action.ADJUST_STOCK)
    unknown = set(fields) - PART_FIELDS
    if unknown:
        raise InvalidInput(_("Unknown part field(s): %(fields)s.") % {"fields": ", ".join(sorted(unknown))})
    part = validated(Part(organization=organization, **fields))
    part.save()
    if compatible_asset_types:
        _same_organization(organization.pk, *compatible_asset_types)
        part.compatible_asset_types.set(compatible_asset_types)
    return part


@audit.attributed
@transaction.atomic
def update_part(part: Part, *, actor, compatible_asset_types=None, **changes) -> Part:
    _require(part.organization_id, actor, Action.ADJUST_STOCK)
    part = Part.objects.select_for_update().get(pk=part.pk)
    unknown = set(changes) - PART_FIELDS
    if unknown:
        raise InvalidInput(_("Unknown part field(s): %(fields)s.") % {"fields": ", ".join(sorted(unknown))})
    if "unit" in changes and changes["unit"] != part.unit and part.movements.exists():
        raise Conflict(
            _("%(sku)s already has stock movements: its unit can no longer change.") % {"sku": part.sku},
            code="unit_locked",
        )
    for name, value in changes.items():
        setattr(part, name, value)
    validated(part).save()
    if compatible_asset_types is not None:
        _same_organization(part.organization_id, *compatible_asset_types)
        part.compatible_asset_types.set(compatible_asset_types)
    check_low_stock(part)
    return part


@audit.attributed
@transaction.atomic
def delete_part(part: Part, *, actor) -> None:
    _require(part.organization_id, actor, Action.ADJUST_STOCK)
    if part.movements.exists():
        raise Conflict(
            _("%(sku)s has stock movements: mark it inactive instead.") % {"sku": part.sku}, code="has_movements"
        )
    delete_or_conflict(part, gettext_lazy("part"))


def level_query_for(organization):
    return (
        StockLevel.objects.for_tenant(organization)
        .select_related("part", "location")
        .filter(Q(on_hand__gt=0) | Q(reserved__gt=0) | Q(min_quantity__isnull=False))
    )


# --- stock locations, vendors, per-location limits, purchase-order edits ----------------------------------
# (The writers the API and the admin need besides the stock movements above.)


LOCATION_FIELDS = {"name", "kind", "site", "holder", "is_active"}
VENDOR_FIELDS = {"name", "contact_name", "email", "phone", "address", "website", "notes", "is_active"}
VENDOR_PART_FIELDS = {"vendor", "part", "vendor_sku", "price", "lead_time_days"}
PURCHASE_ORDER_FIELDS = {"vendor", "expected_at", "notes"}
# QUANTITY fields hold 14 digits, 3 of them decimals.
LARGEST_QUANTITY = Decimal("99999999999.999")
_UNCHANGED = object()


def _known_fields(given, allowed, what: str) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise InvalidInput(
            _("Unknown %(what)s field(s): %(fields)s.") % {"what": what, "fields": ", ".join(sorted(unknown))}
        )


def _check_holder(organization_id: int, holder) -> None:
    if holder is None:
        return
    if not Membership.objects.active().filter(organization_id=organization_id, user=holder).exists():
        raise InvalidInput(
            _("The holder is not a member of this organisation."), fields={"holder": [_("Unknown member.")]}
        )


def _holding(location: StockLocation) -> list[str]:
    levels = StockLevel.objects.filter(location=location).filter(Q(on_hand__gt=0) | Q(reserved__gt=0))
    return [
        f"{_fmt(level.on_hand)} × {level.part.sku}" + (f" ({_fmt(level.reserved)} reserved)" if level.reserved else "")
        for level in levels.select_related("part").order_by("part__sku")
    ]


@audit.attributed
@transaction.atomic
def create_stock_location(organization, *, actor, **fields) -> StockLocation:
    """Add a warehouse, shelf or van. A van's holder must be a member of the organisation."""
    _require(organization.pk, actor, Action.ADJUST_STOCK)
    _known_fields(fields, LOCATION_FIELDS, gettext_lazy("stock location"))
    location = StockLocation(organization=organization, **fields)
    _same_organization(organization.pk, location.site)
    _check_holder(organization.pk, location.holder)
    validated(location).save()
    return location


@audit.attributed
@transaction.atomic
def update_stock_location(location: StockLocation, *, actor, **changes) -> StockLocation:
    """Rename, re-kind or retire a location; a location still holding stock cannot be retired."""
    _require(location.organization_id, actor, Action.ADJUST_STOCK)
    _known_fields(changes, LOCATION_FIELDS, gettext_lazy("stock location"))
    location = StockLocation.objects.select_for_update().get(pk=location.pk)
    was_active = location.is_active
    for name, value in changes.items():
        setattr(location, name, value)
    _same_organization(location.organization_id, location.site)
    _check_holder(location.organization_id, location.holder)
    if was_active and not location.is_active:
        holding = _holding(location)
        if holding:
            raise Conflict(
                _("%(location)s still holds %(holding)s: transfer or write it off before retiring the location.")
                % {"location": location.name, "holding": ", ".join(holding)},
                code="location_not_empty",
            )
    validated(location).save()
    return location


@audit.attributed
@transaction.atomic
def delete_stock_location(location: StockLocation, *, actor) -> None:
    """Delete a location that never held stock; one with a ledger is retired (is_active=False) instead."""
    _require(location.organization_id, actor, Action.ADJUST_STOCK)
    if location.movements.exists():
        raise Conflict(
            _("%(location)s has stock movements: mark it inactive instead.") % {"location": location.name},
            code="has_movements",
        )
    holding = _holding(location)
    if holding:
        raise Conflict(
            _("%(location)s still holds %(holding)s.") % {"location": location.name, "holding": ", ".join(holding)},
            code="location_not_empty",
        )
    delete_or_conflict(location, gettext_lazy("stock location"))


@audit.attributed
@transaction.atomic
def create_vendor(organization, *, actor, **fields) -> Vendor:
    _require(organization.pk, actor, Action.MANAGE_PURCHASING)
    _known_fields(fields, VENDOR_FIELDS, gettext_lazy("vendor"))
    vendor = validated(Vendor(organization=organization, **fields))
    vendor.save()
    return vendor


@audit.attributed
@transaction.atomic
def update_vendor(vendor: Vendor, *, actor, **changes) -> Vendor:
    _require(vendor.organization_id, actor, Action.MANAGE_PURCHASING)
    _known_fields(changes, VENDOR_FIELDS, gettext_lazy("vendor"))
    vendor = Vendor.objects.select_for_update().get(pk=vendor.pk)
    for name, value in changes.items():
        setattr(vendor, name, value)
    validated(vendor).save()
    return vendor


@audit.attributed
@transaction.atomic
def delete_vendor(vendor: Vendor, *, actor) -> None:
    """Delete a vendor nobody ordered from (its offers go with it); otherwise mark it inactive."""
    _require(vendor.organization_id, actor, Action.MANAGE_PURCHASING)
    delete_or_conflict(vendor, gettext_lazy("vendor"))


@audit.attributed
@transaction.atomic
def create_vendor_part(organization, *, actor, **fields) -> VendorPart:
    """What a vendor sells a part as ({vendor, part, vendor_sku, price, lead_time_days})."""
    _require(organization.pk, actor, Action.MANAGE_PURCHASING)
    _known_fields(fields, VENDOR_PART_FIELDS, gettext_lazy("vendor part"))
    offer = VendorPart(organization=organization, **fields)
    _same_organization(organization.pk, offer.vendor, offer.part)
    validated(offer).save()
    return offer


@audit.attributed
@transaction.atomic
def update_vendor_part(offer: VendorPart, *, actor, **changes) -> VendorPart:
    _require(offer.organization_id, actor, Action.MANAGE_PURCHASING)
    _known_fields(changes, VENDOR_PART_FIELDS, gettext_lazy("vendor part"))
    offer = VendorPart.objects.select_for_update().get(pk=offer.pk)
    for name, value in changes.items():
        setattr(offer, name, value)
    _same_organization(offer.organization_id, offer.vendor, offer.part)
    validated(offer).save()
    return offer


@audit.attributed
@transaction.atomic
def delete_vendor_part(offer: VendorPart, *, actor) -> None:
    _require(offer.organization_id, actor, Action.MANAGE_PURCHASING)
    offer.delete()


def _limit(part: Part, raw, field: str) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(
            _("“%(raw)s” is not a quantity.") % {"raw": raw}, fields={field: [_("Not a number.")]}
        ) from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(_("A minimum or maximum cannot be negative."), fields={field: [_("Must be zero or more.")]})
    if value > LARGEST_QUANTITY:
        raise InvalidInput(_("%(value)s is too large.") % {"value": _fmt(value)}, fields={field: [_("Too large.")]})
    if part.is_countable and value != value.to_integral_value():
        raise InvalidInput(
            _("%(sku)s is counted in whole units (%(unit)s): %(value)s is not a whole number.")
            % {"sku": part.sku, "unit": part.get_unit_display().lower(), "value": value},
            fields={field: [_("Whole numbers only for this part.")]},
        )
    if value != value.quantize(QUANTUM):
        raise InvalidInput(_("Quantities have at most three decimals."), fields={field: [_("At most three decimals.")]})
    return value


def check_stock_limits(part: Part, min_quantity, max_quantity) -> tuple[Decimal | None, Decimal | None]:
    """The per-location minimum and maximum of `part`, checked: none, or zero or more, whole for countable
    parts, the maximum not below the minimum. Returns them as decimals (None clears a limit)."""
    low = _limit(part, min_quantity, "min_quantity")
    high = _limit(part, max_quantity, "max_quantity")
    if low is not None and high is not None and high < low:
        raise InvalidInput(
            _("The maximum (%(high)s) cannot be below the minimum (%(low)s).") % {"high": _fmt(high), "low": _fmt(low)},
            fields={"max_quantity": [_("Below the minimum.")]},
        )
    return low, high


@audit.attributed
@transaction.atomic
def set_stock_limits(
    part: Part, location: StockLocation, *, actor, min_quantity=_UNCHANGED, max_quantity=_UNCHANGED
) -> StockLevel:
    """Set the minimum / maximum kept of a part at a location (transfer suggestions refill below the
    minimum up to the maximum). A limit not given stays as it is; None clears it."""
    _require(part.organization_id, actor, Action.ADJUST_STOCK)
    _same_organization(part.organization_id, location)
    level = StockLevel.objects.select_for_update().get(pk=_level(part, location).pk)
    low = level.min_quantity if min_quantity is _UNCHANGED else min_quantity
    high = level.max_quantity if max_quantity is _UNCHANGED else max_quantity
    level.min_quantity, level.max_quantity = check_stock_limits(part, low, high)
    level.save(update_fields=["min_quantity", "max_quantity", "updated_at"])
    return level


def _purchase_lines(order: PurchaseOrder, lines: list[dict]) -> None:
    if not lines:
        raise InvalidInput(_("A purchase order needs at least one line."), fields={"lines": [_("Required.")]})
    for index, line in enumerate(lines):
        part = line["part"]
        _same_organization(order.organization_id, part)
        quantity = parse_quantity(part, line["quantity"], field=f"lines[{index}].quantity")
        raw_price = line.get("unit_price")
        price = parse_money(
            _vendor_price(order.vendor, part) if raw_price is None else raw_price, field=f"lines[{index}].unit_price"
        )
        PurchaseOrderLine.objects.create(
            organization_id=order.organization_id, purchase_order=order, part=part, quantity=quantity, unit_price=price
        )


@audit.attributed
@transaction.atomic
def update_purchase_order(order: PurchaseOrder, *, actor, lines: list[dict] | None = None, **changes) -> PurchaseOrder:
    """Edit a purchase order. A draft: anything, `lines` ({part, quantity, unit_price}) replacing all its
    lines. Once ordered: only the expected date and the notes."""
    order = _locked_order(order)
    _require(order.organization_id, actor, Action.MANAGE_PURCHASING)
    _known_fields(changes, PURCHASE_ORDER_FIELDS, gettext_lazy("purchase order"))
    status = order.get_status_display().lower()
    if order.status in (PurchaseOrder.Status.RECEIVED, PurchaseOrder.Status.CANCELLED):
        raise Conflict(
            _("%(number)s is %(status)s: it can no longer be changed.") % {"number": order.number, "status": status},
            code="order_closed",
        )
    if order.status != PurchaseOrder.Status.DRAFT:
        frozen = [name for name in ("vendor",) if name in changes and changes[name] != getattr(order, name)]
        if lines is not None:
            frozen.append("lines")
        if frozen:
            raise Conflict(
                _("%(number)s is %(status)s: only the expected date and the notes can change now (not %(frozen)s).")
                % {"number": order.number, "status": status, "frozen": ", ".join(frozen)},
                code="order_not_draft",
            )
    if changes.get("vendor") is not None:
        _same_organization(order.organization_id, changes["vendor"])
    for name, value in changes.items():
        setattr(order, name, value)
    validated(order).save()
    if lines is not None:
        for line in order.lines.all():
            line.delete()
        _purchase_lines(order, lines)
    return order


@audit.attributed
@transaction.atomic
def delete_purchase_order(order: PurchaseOrder, *, actor) -> None:
    """Delete a draft; an order sent to the vendor is cancelled instead (it stays on record)."""
    order = _locked_order(order)
    _require(order.organization_id, actor, Action.MANAGE_PURCHASING)
    if order.status != PurchaseOrder.Status.DRAFT:
        raise Conflict(
            _("%(number)s is %(status)s: only a draft can be deleted; cancel it instead.")
            % {"number": order.number, "status": order.get_status_display().lower()},
            code="order_not_draft",
        )
    order.delete()


def _quantity_or_zero(expression):
    return Coalesce(expression, Value(ZERO), output_field=DecimalField(max_digits=14, decimal_places=3))


def parts_with_stock(queryset):
    """Parts annotated with `on_hand`, `reserved`, `available` (summed over their locations) and `on_order`
    (open purchase-order lines not yet received): correlated subqueries, so a page of parts is one query
    whatever its size, and joins added by filters cannot multiply the sums."""

    def level_total(field):
        totals = StockLevel.objects.filter(part=OuterRef("pk")).order_by().values("part").annotate(total=Sum(field))
        return _quantity_or_zero(Subquery(totals.values("total")[:1]))

    open_statuses = (PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.ORDERED, PurchaseOrder.Status.PARTLY_RECEIVED)
    outstanding = (
        PurchaseOrderLine.objects.filter(part=OuterRef("pk"), purchase_order__status__in=open_statuses)
        .order_by()
        .values("part")
        .annotate(total=Sum(F("quantity") - F("received_quantity")))
        .values("total")[:1]
    )
    return queryset.annotate(
        on_hand=level_total("on_hand"),
        reserved=level_total("reserved"),
        on_order=_quantity_or_zero(Subquery(outstanding)),
    ).annotate(available=F("on_hand") - F("reserved"))
