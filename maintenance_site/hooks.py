"""Hook points: how a lower app lets a higher one take part, without importing it.

Apps depend one way: `maintenance_site` core → `assets` → `workorders` → {`inventory`, `sla`} → `scheduling` →
`scenarios` (the URL confs, settings, the Celery app and the platform status view are the roof). When a lower app
must let a higher one act (a work order's transition moves its SLA clock; closing it releases the inventory's
reservations), the lower app calls one of the hook points declared below and the higher app registers a receiver
in its `AppConfig.ready()`. A call downward (an SLA escalation changing a work order) needs no hook: the higher
app imports the lower app's service and calls it.

Every point is declared here, with when it fires, what it passes and what a receiver returns. A point may have no
receiver (a call returns an empty list, a pipe returns its value unchanged) or several (called in registration
order, which is INSTALLED_APPS order). Receivers run synchronously, inside the caller's transaction: an exception
a receiver raises reaches the caller (a DomainError refuses the caller's whole change, rolled back).
"""

from collections.abc import Callable
from typing import Any

POINTS: dict[str, "HookPoint"] = {}


class HookPoint:
    """One named place where a lower app calls whatever higher apps registered."""

    def __init__(self, name: str, doc: str):
        if name in POINTS:
            raise ValueError(f"The hook point {name!r} is declared twice.")
        self.name = name
        self.__doc__ = doc
        self.receivers: list[Callable] = []
        POINTS[name] = self

    def __repr__(self) -> str:
        return f"<HookPoint {self.name}: {len(self.receivers)} receiver(s)>"

    def register(self, receiver: Callable) -> Callable:
        """Add a receiver (from an `AppConfig.ready()`); registering the same one again changes nothing."""
        if receiver not in self.receivers:
            self.receivers.append(receiver)
        return receiver

    def unregister(self, receiver: Callable) -> None:
        """Remove a receiver (tests); one not registered is ignored."""
        if receiver in self.receivers:
            self.receivers.remove(receiver)

    def __call__(self, *args, **kwargs) -> list[Any]:
        """Call every receiver with these arguments; their results, in order (empty without receivers)."""
        return [receiver(*args, **kwargs) for receiver in list(self.receivers)]

    def pipe(self, value, *args, **kwargs):
        """Pass `value` through every receiver in turn (each returns the next value); unchanged without any."""
        for receiver in list(self.receivers):
            value = receiver(value, *args, **kwargs)
        return value


# --- events: called by the outbox dispatcher (`maintenance_site.events`), received by webhooks -------------

events_dispatched = HookPoint(
    "events_dispatched",
    """The outbox dispatcher numbered and delivered events: `(numbered: int, delivered: int)`, after both steps,
    outside any transaction. The webhooks app queues its delivery job, which reads the numbered events itself
    (a lost call only delays deliveries until its periodic run). A receiver must not raise. Return value
    ignored.""",
)

# --- work orders: called by `workorders`, received by `sla` and `inventory` -----------------------------

work_order_created = HookPoint(
    "work_order_created",
    """A work order was created: `(work_order)`, after it is saved, in the creating transaction.
    The SLA app matches a policy and starts the order's clock. Return value ignored.""",
)

work_orders_created = HookPoint(
    "work_orders_created",
    """Many work orders were created at once (`workorders.services.create_work_orders_bulk`): `(work_orders: list)`,
    after they are inserted, in the creating transaction. A receiver does for each order what its receiver of
    `work_order_created` does for one, in a number of queries that does not grow with the orders; an app that
    receives one of the two receives both (a test checks it). The SLA app starts the orders' clocks. Return
    value ignored.""",
)

work_order_edited = HookPoint(
    "work_order_edited",
    """Descriptive fields of a work order changed: `(work_order, changed_fields: list[str], *, actor)`, after the save,
    in the editing transaction (the order is locked). The SLA app re-matches the policy when what it matches on
    changed. Return value ignored.""",
)

work_order_planning = HookPoint(
    "work_order_planning",
    """A person plans when a work order is done (created or edited with a planned start, or moved on the planner's
    calendar or the dispatch board): `(work_order, starts_at, ends_at)` (ends_at: the start plus the estimate),
    before the save, in the planning transaction. A receiver raises a DomainError to refuse the period: the
    maintenance windows refuse one in which a window takes the order's asset out of service. Not called for
    orders created in bulk (the preventive generator plans at the schedule's own time). Return value ignored.""",
)

work_order_transitioned = HookPoint(
    "work_order_transitioned",
    """A work order moved through its lifecycle: `(work_order, action: str, previous_status: str)`, after the new
    status is saved, in the transition's transaction (the order is locked); `work_order.transitioned_at` is when it
    happened (now, or the device's time of a step done offline). The SLA app pauses, resumes, meets or
    stops the order's clock. Return value ignored.""",
)

work_order_closing = HookPoint(
    "work_order_closing",
    """A work order is being completed or cancelled: `(work_order)`, before its new status is saved, in the
    transition's transaction. The inventory releases the parts still reserved for it. Return value ignored.""",
)

work_order_cancelling = HookPoint(
    "work_order_cancelling",
    """A work order is being cancelled: `(work_order, parts_disposition: str | None, *, actor)`, before anything of
    the cancellation is saved. The inventory returns the parts issued to the order to stock or writes them off,
    as `parts_disposition` says; it raises a DomainError (refusing the cancellation) when parts are out and no
    disposition was given. Return value ignored.""",
)

work_order_parts_cost = HookPoint(
    "work_order_parts_cost",
    """What the parts used on a work order cost: `(work_order)` → Decimal. The inventory answers from the stock
    ledger (issues less returns); the work-order costs add up the answers (0 without a receiver).""",
)

work_order_sla = HookPoint(
    "work_order_sla",
    """The SLA of one work order, for display (API detail, admin): `(work_order)` → a dict (policy, state, paused,
    response and resolution targets with due, warning and met times) or None when no policy covers it. The
    first dict returned is shown; None without a receiver.""",
)

work_order_list = HookPoint(
    "work_order_list",
    """A list of work orders is about to be read (API, admin, the technician's list): `pipe(queryset)` → the
    queryset with what higher apps show per order joined in, without a query per row. The SLA app adds
    `select_related("sla_clock__policy")` and the annotations `sla_state` (breached, warning, on_track, met or
    None), `response_due_at`, `resolution_due_at`, `sla_due_at` (the next deadline: response until it is met,
    then resolution) and `sla_warning_at` (its warning time). Without a receiver they are None
    (`workorders.services.with_extensions` adds them).""",
)

technician_order_page = HookPoint(
    "technician_order_page",
    """The technician's page of one work order is rendered: `(request, work_order)` → a dict merged into the page's
    context; its `forms` entry (a dict) is merged into the page's forms, under those a view passes explicitly.
    The inventory adds the part-use form and the parts planned (`planned`) and used (`used`) on the order.""",
)

technician_offline_urls = HookPoint(
    "technician_offline_urls",
    """The technician's phone is saving what it needs for a day offline: `(request)` → a list of URLs (under `/t/`)
    that the service worker fetches and keeps besides My work, the orders and their assets. The inventory adds the
    page of the technician's van parts (`inventory.technician_views.van_parts`).""",
)
