"""The only writers of SLA calendars, policies, clocks and violations.

- Configuration: `create_calendar` / `update_calendar` / `delete_calendar`, `create_policy` / `update_policy` /
  `delete_policy`. Each runs in one transaction, validates with the models' own rules (the admin and the API
  show the same sentences) and records history with the acting user.
- Clocks: the work-order services call three hook points (`maintenance_site.hooks`: work_order_created,
  work_order_transitioned, work_order_edited), which `sla.apps` connects to `on_work_order_created`,
  `on_work_order_transition` and `on_work_order_edited`; they run inside the work order's transaction, after it
  is locked. A clock copies its policy's targets when it starts; deadlines are `started_at` + target + time
  paused, in business time on the policy's calendar (`sla.business_hours`).
- Monitoring: `monitor_clocks()` (the beat task) claims each warning and breach with a conditional UPDATE
  and a row-count check, so however often and on however many machines it runs, one `SLAViolation`, one
  `sla:warning` / `sla:violation` event and one run of the escalation steps exist per warning or breach.
  Lock order everywhere: the work order, then its clock.
- Escalation runs downward: it calls the work-order services directly (acting as the system user).
- Reading: `clock_summary(work_order)`, `with_sla(queryset)` and `for_work_order_lists(queryset)` (no N+1; the
  last is what work-order lists get through the `work_order_list` hook point) and `performance(...)`.
"""

import json
import logging
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    CharField,
    Count,
    DateTimeField,
    F,
    FloatField,
    JSONField,
    Q,
    Value,
    When,
)
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assets.models import Asset, Location
from maintenance_site import audit
from maintenance_site.analytics.definitions import percent
from maintenance_site.bulk import history_by_select, id_in, insert_rows
from maintenance_site.errors import DomainError, InvalidInput
from maintenance_site.events.services import publish
from maintenance_site.notifications.kinds import is_registered, register_kind
from maintenance_site.notifications.models import Channel
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.actors import is_system
from maintenance_site.tenancy.models import Membership, Organization
from maintenance_site.tenancy.roles import Action, role_allows
from maintenance_site.validation import delete_or_conflict, validated
from sla import business_hours
from sla.models import (
    BusinessCalendar,
    ClockState,
    EscalationStep,
    Holiday,
    SLAClock,
    SLAPolicy,
    SLAViolation,
    Target,
    WorkingHours,
    overall_state,
    overlapping_spans,
)
from workorders import services as work_orders
from workorders.models import WorkOrder

logger = logging.getLogger(__name__)
User = get_user_model()
Level = EscalationStep.Level

# The notification kinds the monitor uses (registered by the notifications app already; kept in step here).
for _kind, _label, _channels in [
    ("sla:warning", "SLA deadline approaching", [Channel.EMAIL, Channel.PUSH]),
    ("sla:violation", "SLA violated", [Channel.EMAIL, Channel.SLACK, Channel.PUSH]),
    ("work-order:assigned", "Work order assigned to you", [Channel.EMAIL, Channel.PUSH]),
]:
    if not is_registered(_kind):
        register_kind(_kind, _label, _channels)

EVENT_FOR_LEVEL = {Level.WARNING: "sla:warning", Level.BREACH: "sla:violation"}
# The notices of an escalation, written in each recipient's language by notify().
NOTICE_TITLES = {
    ("response", Level.WARNING): gettext_lazy("SLA response deadline approaching: {number}"),
    ("response", Level.BREACH): gettext_lazy("SLA response deadline missed: {number}"),
    ("resolution", Level.WARNING): gettext_lazy("SLA resolution deadline approaching: {number}"),
    ("resolution", Level.BREACH): gettext_lazy("SLA resolution deadline missed: {number}"),
}
NOTICE_BODIES = {
    "response": gettext_lazy("{number} “{title}” ({priority}): response due {due} UTC under “{policy}”."),
    "resolution": gettext_lazy("{number} “{title}” ({priority}): resolution due {due} UTC under “{policy}”."),
}
REASSIGNED_BODIES = {
    ("response", Level.WARNING): gettext_lazy("{number} “{title}”: response deadline approaching."),
    ("response", Level.BREACH): gettext_lazy("{number} “{title}”: response deadline missed."),
    ("resolution", Level.WARNING): gettext_lazy("{number} “{title}”: resolution deadline approaching."),
    ("resolution", Level.BREACH): gettext_lazy("{number} “{title}”: resolution deadline missed."),
}
# Edits by a person to these fields make the clock look again for the policy that applies.
RETARGET_FIELDS = {"priority", "type", "asset", "location"}
CALENDAR_FIELDS = {"name", "time_zone", "always_open"}
POLICY_FIELDS = {
    "name",
    "is_active",
    "priority",
    "work_order_type",
    "asset_criticality",
    "location",
    "calendar",
    "response_minutes",
    "resolution_minutes",
    "warning_percent",
    "pause_statuses",
}
STEP_FIELDS = ["position", "level", "target", "kind", "notify_roles", "notify_assignee", "raise_to", "reassign_to"]
HOURS_FIELDS = {"weekday", "start", "end"}
HOLIDAY_FIELDS = {"date", "name"}


# --- who acts ---------------------------------------------------------------------------------------------


def _require_manage(organization_id: int, actor) -> None:
    """A person changing SLA settings must be a member whose role may manage SLAs (automation and superusers may)."""
    if is_system(actor) or actor.is_superuser:
        return
    tenancy_services.require_role(organization_id, Action.MANAGE_SLA, actor=actor)


def _unknown(given, allowed, what: str) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        listed = ", ".join(sorted(unknown))
        raise InvalidInput(
            _("A %(what)s has no field(s) %(listed)s.") % {"what": what, "listed": listed},
            fields={name: [_("Unknown field.")] for name in unknown},
        )


def _lock_configuration(organization_id: int) -> None:
    """Serialise SLA configuration changes of one organisation (the overlap check reads the other policies):
    FOR NO KEY UPDATE on the organisation row, which does not block inserts that refer to it."""
    list(Organization.objects.select_for_update(no_key=True).filter(pk=organization_id).values_list("pk"))


# --- calendars ----------------------------------------------------------------------------------------------


def _as_dict(row, fields) -> dict:
    if isinstance(row, dict):
        return row
    return {name: getattr(row, name) for name in fields}


def _build_hours(calendar: BusinessCalendar, hours) -> list[WorkingHours]:
    built = []
    for index, raw in enumerate(hours):
        raw = _as_dict(raw, HOURS_FIELDS)
        _unknown(raw, HOURS_FIELDS, "working-hours span")
        span = WorkingHours(organization_id=calendar.organization_id, calendar=calendar, **raw)
        try:
            validated(span, exclude=["calendar"])
        except InvalidInput as exc:
            raise InvalidInput(
                _("Working hours, span %(index)s: %(message)s") % {"index": index + 1, "message": exc.message},
                fields={f"hours.{index}.{name}": msgs for name, msgs in exc.fields.items()},
            ) from None
        built.append(span)
    problems = overlapping_spans([(span.weekday, span.start, span.end) for span in built])
    if problems:
        raise InvalidInput(
            _("Working hours overlap: %(problems)s") % {"problems": " ".join(problems)}, fields={"hours": problems}
        )
    return built


def _build_holidays(calendar: BusinessCalendar, holidays) -> list[Holiday]:
    built, seen = [], set()
    for index, raw in enumerate(holidays):
        raw = _as_dict(raw, HOLIDAY_FIELDS)
        _unknown(raw, HOLIDAY_FIELDS, "holiday")
        holiday = Holiday(organization_id=calendar.organization_id, calendar=calendar, **raw)
        try:
            validated(holiday, exclude=["calendar"])
        except InvalidInput as exc:
            raise InvalidInput(
                _("Holiday %(index)s: %(message)s") % {"index": index + 1, "message": exc.message},
                fields={f"holidays.{index}.{name}": msgs for name, msgs in exc.fields.items()},
            ) from None
        if holiday.date in seen:
            raise InvalidInput(
                _("%(date)s is listed twice as a holiday.") % {"date": f"{holiday.date:%Y-%m-%d}"},
                fields={"holidays": [_("%(date)s is listed twice.") % {"date": f"{holiday.date:%Y-%m-%d}"}]},
            )
        seen.add(holiday.date)
        built.append(holiday)
    return built


def check_working_time(always_open: bool, hours_count: int) -> None:
    if not always_open and hours_count == 0:
        raise InvalidInput(
            _("A calendar needs working time: add working hours, or make it 24/7."),
            fields={"hours": [_("Add at least one span of working hours (or make the calendar 24/7).")]},
        )


def _sync_hours(calendar: BusinessCalendar, wanted: list[WorkingHours]) -> None:
    """Make the calendar's spans exactly `wanted`, touching (and writing history for) only what changed."""
    key = lambda span: (int(span.weekday), span.start, span.end)  # noqa: E731
    existing = {key(span): span for span in calendar.hours.all()}
    wanted_keys = {key(span) for span in wanted}
    for span_key, span in existing.items():
        if span_key not in wanted_keys:
            span.delete()
    new = [span for span in wanted if key(span) not in existing]
    if new:
        audit.bulk_create_with_history(new, WorkingHours)


def _sync_holidays(calendar: BusinessCalendar, wanted: list[Holiday]) -> None:
    existing = {holiday.date: holiday for holiday in calendar.holidays.all()}
    wanted_by_date = {holiday.date: holiday for holiday in wanted}
    for day, holiday in existing.items():
        if day not in wanted_by_date:
            holiday.delete()
        elif holiday.name != wanted_by_date[day].name:
            holiday.name = wanted_by_date[day].name
            holiday.save()
    new = [holiday for day, holiday in wanted_by_date.items() if day not in existing]
    if new:
        audit.bulk_create_with_history(new, Holiday)


@audit.attributed
@transaction.atomic
def create_calendar(organization, *, actor, hours=(), holidays=(), **fields) -> BusinessCalendar:
    """Add a business calendar: `hours` as dicts of weekday (Monday 0), start and end; `holidays` as dicts of
    date and name. A calendar without working hours must be 24/7 (`always_open`)."""
    _require_manage(organization.pk, actor)
    _unknown(fields, CALENDAR_FIELDS, "calendar")
    calendar = validated(BusinessCalendar(organization=organization, **fields))
    spans = _build_hours(calendar, hours)
    days_off = _build_holidays(calendar, holidays)
    check_working_time(calendar.always_open, len(spans))
    calendar.save()
    _sync_hours(calendar, spans)
    _sync_holidays(calendar, days_off)
    return calendar


@audit.attributed
@transaction.atomic
def update_calendar(calendar: BusinessCalendar, *, actor, hours=None, holidays=None, **changes):
    """Edit a calendar; `hours` / `holidays`, when given, replace all its spans / holidays. Running clocks
    keep their deadlines until they next move (pause, resume, re-target)."""
    calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
    _require_manage(calendar.organization_id, actor)
    _unknown(changes, CALENDAR_FIELDS, "calendar")
    for name, value in changes.items():
        setattr(calendar, name, value)
    validated(calendar)
    spans = _build_hours(calendar, hours) if hours is not None else None
    days_off = _build_holidays(calendar, holidays) if holidays is not None else None
    check_working_time(calendar.always_open, len(spans) if spans is not None else calendar.hours.count())
    calendar.save()
    if spans is not None:
        _sync_hours(calendar, spans)
    if days_off is not None:
        _sync_holidays(calendar, days_off)
    return calendar


@audit.attributed
@transaction.atomic
def delete_calendar(calendar: BusinessCalendar, *, actor) -> None:
    """Delete a calendar no policy or clock uses (409 otherwise)."""
    _require_manage(calendar.organization_id, actor)
    delete_or_conflict(calendar, "calendar")


# --- policies -----------------------------------------------------------------------------------------------


def _check_reassignee(organization_id: int, user, index: int) -> None:
    membership = Membership.objects.active().filter(organization_id=organization_id, user=user).first()
    if membership is None or not role_allows(membership.role, Action.EXECUTE_WORK):
        raise InvalidInput(
            _(
                "Escalation step %(index)s: %(user)s cannot be given work in this organisation "
                "(not an active member who carries out work)."
            )
            % {"index": index + 1, "user": user.get_username()},
            fields={f"escalation_steps.{index}.reassign_to": [_("Not someone who carries out work here.")]},
        )


def _build_steps(policy: SLAPolicy, steps) -> list[EscalationStep]:
    built = []
    for index, raw in enumerate(steps):
        raw = dict(_as_dict(raw, STEP_FIELDS))
        _unknown(raw, STEP_FIELDS, "escalation step")
        if raw.get("position") is None:
            raw["position"] = index + 1
        step = EscalationStep(organization_id=policy.organization_id, policy=policy, **raw)
        try:
            validated(step, exclude=["policy"])
        except InvalidInput as exc:
            raise InvalidInput(
                _("Escalation step %(index)s: %(message)s") % {"index": index + 1, "message": exc.message},
                fields={f"escalation_steps.{index}.{name}": msgs for name, msgs in exc.fields.items()},
            ) from None
        if step.reassign_to_id:
            _check_reassignee(policy.organization_id, step.reassign_to, index)
        built.append(step)
    return built


def _step_key(step: EscalationStep) -> tuple:
    return (
        step.position,
        step.level,
        step.target,
        step.kind,
        tuple(sorted(step.notify_roles)),
        step.notify_assignee,
        step.raise_to,
        step.reassign_to_id,
    )


def _sync_steps(policy: SLAPolicy, wanted: list[EscalationStep]) -> None:
    existing = list(policy.escalation_steps.all())
    if [_step_key(step) for step in existing] == [_step_key(step) for step in wanted]:
        return
    for step in existing:
        step.delete()
    audit.bulk_create_with_history(wanted, EscalationStep)


@audit.attributed
@transaction.atomic
def create_policy(organization, *, actor, escalation_steps=(), **fields) -> SLAPolicy:
    """Add an SLA policy. Refused (InvalidInput, by field) when the resolution target is shorter than the
    response target, the calendar has no working time, or an active policy is just as specific and can
    match the same work orders. `escalation_steps`: dicts of the EscalationStep fields, in order."""
    _require_manage(organization.pk, actor)
    _unknown(fields, POLICY_FIELDS, "policy")
    _lock_configuration(organization.pk)
    policy = validated(SLAPolicy(organization=organization, **fields))
    steps = _build_steps(policy, escalation_steps)
    policy.save()
    _sync_steps(policy, steps)
    return policy


@audit.attributed
@transaction.atomic
def update_policy(policy: SLAPolicy, *, actor, escalation_steps=None, **changes) -> SLAPolicy:
    """Edit a policy (`escalation_steps`, when given, replaces its steps). Running clocks keep the targets they
    copied; new clocks (and re-targeted ones) take the new values."""
    _require_manage(policy.organization_id, actor)
    _unknown(changes, POLICY_FIELDS, "policy")
    _lock_configuration(policy.organization_id)
    policy = SLAPolicy.objects.select_for_update().get(pk=policy.pk)
    for name, value in changes.items():
        setattr(policy, name, value)
    validated(policy)
    steps = _build_steps(policy, escalation_steps) if escalation_steps is not None else None
    policy.save()
    if steps is not None:
        _sync_steps(policy, steps)
    return policy


@audit.attributed
@transaction.atomic
def delete_policy(policy: SLAPolicy, *, actor) -> None:
    """Delete a policy no clock used; one that was used is retired instead (409 says so)."""
    _require_manage(policy.organization_id, actor)
    delete_or_conflict(policy, "SLA policy")


# --- which policy applies ----------------------------------------------------------------------------------


def _location_chain(work_order: WorkOrder) -> list[int]:
    """The order's location and its ancestors, innermost first (the asset's location when it has none)."""
    location = work_order.location or (work_order.asset.location if work_order.asset_id else None)
    if location is None:
        return []
    return [location.pk, *(node.pk for node in location.ancestors())]


def _chain(location_id: int | None, parents: dict[int, int | None]) -> list[int]:
    """A location and its ancestors, innermost first, from a map of parents."""
    chain = []
    while location_id is not None and location_id not in chain:
        chain.append(location_id)
        location_id = parents.get(location_id)
    return chain


def match_policy(work_order: WorkOrder) -> SLAPolicy | None:
    """The active policy that covers the work order most specifically (more criteria set, then the deeper
    location); None when none covers it."""
    policies = SLAPolicy.objects.active().filter(organization_id=work_order.organization_id).select_related("calendar")
    criticality = work_order.asset.criticality if work_order.asset_id else None
    return _best_policy(policies.order_by("pk"), work_order, criticality, _location_chain(work_order))


def _best_policy(policies, work_order: WorkOrder, criticality, chain: list[int]) -> SLAPolicy | None:
    """Of `policies` (in pk order), the one that covers the order most specifically, given its asset's
    criticality and its location chain (innermost first)."""
    best, best_key = None, None
    for policy in policies:
        if policy.priority and policy.priority != work_order.priority:
            continue
        if policy.work_order_type and policy.work_order_type != work_order.type:
            continue
        if policy.asset_criticality and policy.asset_criticality != criticality:
            continue
        if policy.location_id and policy.location_id not in chain:
            continue
        criteria = sum(1 for value in (policy.priority, policy.work_order_type, policy.asset_criticality) if value)
        depth = len(chain) - chain.index(policy.location_id) if policy.location_id else 0
        key = (criteria + (1 if policy.location_id else 0), depth)
        if best_key is None or key > best_key:
            best, best_key = policy, key
    return best


# --- clocks ---------------------------------------------------------------------------------------------


def _threshold_columns(target: str, level: str) -> tuple[str, str]:
    """(the instant column, the claim column) of a target's warning or breach."""
    if level == Level.WARNING:
        return f"{target}_warning_at", f"{target}_warned_at"
    return f"{target}_due_at", f"{target}_breached_at"


def _copy_policy(clock: SLAClock, policy: SLAPolicy) -> None:
    clock.policy = policy
    clock.calendar = policy.calendar
    clock.response_minutes = policy.response_minutes
    clock.resolution_minutes = policy.resolution_minutes
    clock.warning_percent = policy.warning_percent
    clock.pause_statuses = list(policy.pause_statuses)


def _business_add(schedule: business_hours.Schedule, start, seconds, memo: dict | None):
    """`business_hours.add_business_seconds`, remembered in `memo` when given (a batch of orders created at one
    moment under one policy has one set of deadlines)."""
    if memo is None:
        return business_hours.add_business_seconds(schedule, start, seconds)
    key = (id(schedule), start, seconds)
    if key not in memo:
        memo[key] = business_hours.add_business_seconds(schedule, start, seconds)
    return memo[key]


def _set_deadlines(clock: SLAClock, schedule: business_hours.Schedule, memo: dict | None = None) -> None:
    """Deadlines of the targets not yet met: started_at + target + time paused, in business time."""
    for target, minutes in ((Target.RESPONSE, clock.response_minutes), (Target.RESOLUTION, clock.resolution_minutes)):
        if getattr(clock, f"{target}_met_at") is not None:
            continue
        seconds = minutes * 60
        warning = seconds * clock.warning_percent / 100
        due_at = _business_add(schedule, clock.started_at, seconds + clock.paused_seconds, memo)
        warning_at = _business_add(schedule, clock.started_at, warning + clock.paused_seconds, memo)
        setattr(clock, f"{target}_due_at", due_at)
        setattr(clock, f"{target}_warning_at", warning_at)


def _pending_state(clock: SLAClock, target: str) -> str:
    if getattr(clock, f"{target}_breached_at") is not None:
        return ClockState.BREACHED
    if getattr(clock, f"{target}_warned_at") is not None:
        return ClockState.WARNING
    return ClockState.ON_TRACK


def _end_pause(clock: SLAClock, schedule, now) -> None:
    if clock.paused_since is None:
        return
    clock.paused_seconds += round(business_hours.business_seconds_between(schedule, clock.paused_since, now))
    clock.paused_since = None


def _meet(clock: SLAClock, target: str, at, schedule, now) -> bool:
    """Mark a target met at `at`. Returns True when it was late and no breach was recorded yet (the caller
    records it: the monitor had not seen it)."""
    setattr(clock, f"{target}_met_at", at)
    taken = business_hours.business_seconds_between(schedule, clock.started_at, at) - clock.paused_seconds
    setattr(clock, f"{target}_seconds", max(0, round(taken)))
    late = at > getattr(clock, f"{target}_due_at")
    unrecorded = late and getattr(clock, f"{target}_breached_at") is None
    if unrecorded:
        setattr(clock, f"{target}_breached_at", now)
    late = late or getattr(clock, f"{target}_breached_at") is not None
    setattr(clock, f"{target}_state", ClockState.BREACHED if late else ClockState.MET)
    return unrecorded


def _locked_clock(work_order: WorkOrder) -> SLAClock | None:
    return (
        SLAClock.objects.select_for_update(of=("self",))
        .select_related("calendar", "policy")
        .filter(work_order_id=work_order.pk)
        .first()
    )


def _new_clock(work_order: WorkOrder, policy: SLAPolicy, schedule, now, memo=None) -> tuple[SLAClock, list[str]]:
    """An unsaved clock for an order, from its creation, reflecting where it already is (started, on hold),
    and the targets it is already late on (their breach is recorded once the clock is saved)."""
    clock = SLAClock(
        organization_id=work_order.organization_id, work_order=work_order, started_at=work_order.created_at
    )
    _copy_policy(clock, policy)
    _set_deadlines(clock, schedule, memo)
    late = []
    if work_order.started_at is not None and _meet(clock, Target.RESPONSE, work_order.started_at, schedule, now):
        late.append(Target.RESPONSE)
    if work_order.status in clock.pause_statuses:
        clock.paused_since = now
    clock._change_reason = f"started under “{policy}”"
    return clock, late


def _start_clock(work_order: WorkOrder, policy: SLAPolicy, now) -> SLAClock:
    """A clock for an order, from its creation, reflecting where it already is (started, on hold)."""
    clock, late = _new_clock(work_order, policy, policy.calendar.schedule(), now)
    clock.save()
    for target in late:
        _record(clock, target, Level.BREACH, now, escalate=False)
    return clock


def on_work_order_created(work_order: WorkOrder) -> None:
    """A new order: start its clock under the policy that matches it best (none: no clock)."""
    policy = match_policy(work_order)
    if policy is not None:
        _start_clock(work_order, policy, timezone.now())


def on_work_orders_created(work_orders) -> None:
    """Many new orders at once (the `work_orders_created` hook point, called by `create_work_orders_bulk`): the
    same clocks as `on_work_order_created` for each, in a number of queries that does not grow with the orders:
    the organisations' active policies, the orders' assets, the location trees (when a policy names a location),
    each calendar's hours and holidays, then one COPY of the clocks and their history (one statement per
    policy); the deadlines are computed once per calendar, start and target."""
    work_orders = list(work_orders)
    policies: dict[int, list[SLAPolicy]] = {}
    rows = SLAPolicy.objects.active().filter(organization_id__in={order.organization_id for order in work_orders})
    for policy in rows.select_related("calendar__organization").order_by("pk"):
        policies.setdefault(policy.organization_id, []).append(policy)
    work_orders = [order for order in work_orders if order.organization_id in policies]
    if not work_orders:
        return
    needs_locations = any(policy.location_id for rows in policies.values() for policy in rows)
    assets = {
        pk: (criticality, location_id)
        for pk, criticality, location_id in Asset.objects.filter(
            pk__in={order.asset_id for order in work_orders if order.asset_id}
        ).values_list("pk", "criticality", "location_id")
    }
    parents = {}
    if needs_locations:
        parents = dict(Location.objects.filter(organization_id__in=policies).values_list("pk", "parent_id"))
    schedules: dict[int, business_hours.Schedule] = {}
    now = timezone.now()
    started, deadlines = [], {}
    for order in work_orders:
        criticality, asset_location = assets.get(order.asset_id, (None, None))
        chain = _chain(order.location_id or asset_location, parents) if needs_locations else []
        policy = _best_policy(policies[order.organization_id], order, criticality, chain)
        if policy is None:
            continue
        if policy.calendar_id not in schedules:
            schedules[policy.calendar_id] = policy.calendar.schedule()
        started.append(_new_clock(order, policy, schedules[policy.calendar_id], now, deadlines))
    if started:
        _insert_clocks([clock for clock, _ in started], now)
    for clock, late in started:
        for target in late:
            _record(clock, target, Level.BREACH, now, escalate=False)


def _insert_clocks(clocks: list[SLAClock], now) -> None:
    """Write new clocks as `save()` would, in a number of statements that does not grow with them: one COPY of the
    clocks (`maintenance_site.bulk`), then their history by INSERT … SELECT, one statement per change reason (per
    policy: "started under …"). The clocks get their ids."""
    fields = [field for field in SLAClock._meta.concrete_fields if not field.primary_key]

    def value(clock, field):  # JSON as its text, as `insert_rows` takes it
        value = getattr(clock, field.attname)
        if isinstance(field, JSONField) and value is not None:
            return json.dumps(value, cls=field.encoder)
        return value

    for clock in clocks:
        clock.created_at = clock.updated_at = now
    rows = [[value(clock, field) for field in fields] for clock in clocks]
    ids = insert_rows(SLAClock, [field.attname for field in fields], rows)
    by_reason: dict[str, list[int]] = {}
    for clock, pk in zip(clocks, ids, strict=True):
        clock.pk = pk
        clock._state.adding, clock._state.db = False, connection.alias
        by_reason.setdefault(clock._change_reason, []).append(pk)
    for reason, pks in by_reason.items():
        where, params = id_in("t.id", pks)
        history_by_select(SLAClock, where, params, reason=reason)


def on_work_order_transition(work_order: WorkOrder, action: str, previous_status: str) -> None:
    """Lifecycle change: response met on start; resolution met on completion (the clock stops); stopped on
    cancel; resumed on reopen (or a rejected verification); paused and resumed with the pause statuses."""
    clock = _locked_clock(work_order)
    if clock is None:
        return
    # When it happened: a step done offline is dated by the device (never before what the clock already holds).
    now = getattr(work_order, "transitioned_at", None) or timezone.now()
    now = max([now, *(moment for moment in (clock.paused_since, clock.stopped_at, clock.started_at) if moment)])
    schedule = clock.calendar.schedule()
    status = work_order.status
    late, reasons, moved = [], [], False
    closing = status in WorkOrder.CLOSED_STATUSES

    if clock.paused_since is not None and (closing or status not in clock.pause_statuses):
        _end_pause(clock, schedule, now)
        reasons.append("resumed")
        moved = True
    if clock.stopped_at is not None and not closing:  # reopened, or sent back by verification
        clock.paused_seconds += round(business_hours.business_seconds_between(schedule, clock.stopped_at, now))
        clock.stopped_at = None
        clock.resolution_met_at = None
        clock.resolution_seconds = None
        clock.resolution_state = _pending_state(clock, Target.RESOLUTION)
        reasons.append("resumed on reopen")
        moved = True
    if moved:
        _set_deadlines(clock, schedule)
    if clock.response_met_at is None and (work_order.started_at is not None or status == WorkOrder.Status.COMPLETED):
        if _meet(clock, Target.RESPONSE, work_order.started_at or now, schedule, now):
            late.append(Target.RESPONSE)
        reasons.append(f"response {clock.response_state.replace('_', ' ')}")
    if status == WorkOrder.Status.COMPLETED and clock.resolution_met_at is None:
        if _meet(clock, Target.RESOLUTION, work_order.completed_at or now, schedule, now):
            late.append(Target.RESOLUTION)
        reasons.append(f"resolution {clock.resolution_state.replace('_', ' ')}")
    if closing and clock.stopped_at is None:
        clock.stopped_at = now
        reasons.append("stopped")
    if clock.stopped_at is None and clock.paused_since is None and status in clock.pause_statuses:
        clock.paused_since = now
        reasons.append("paused")
    if not reasons:
        return
    clock._change_reason = f"{action}: {', '.join(reasons)}"
    clock.save()
    for target in late:
        _record(clock, target, Level.BREACH, now, escalate=False)


@audit.attributed
def on_work_order_edited(work_order: WorkOrder, changed_fields: list[str], *, actor) -> None:
    """A person changed priority, type, asset or location: re-evaluate which policy applies and, when another
    one does, re-target the clock to it (deadlines from the order's creation, time paused still excluded;
    targets already met, warnings and breaches already recorded stay). Automation (the system user: an
    escalation raising the priority) never re-targets, so an escalation cannot loop on its own clock. An order
    that no policy covers any more keeps the clock it has."""
    if not RETARGET_FIELDS.intersection(changed_fields) or is_system(actor) or not work_order.is_open:
        return
    policy = match_policy(work_order)
    clock = _locked_clock(work_order)
    now = timezone.now()
    if clock is None:
        if policy is not None:
            _start_clock(work_order, policy, now)
        return
    if policy is None or policy.pk == clock.policy_id:
        return
    previous = clock.policy
    _copy_policy(clock, policy)
    schedule = policy.calendar.schedule()
    if clock.paused_since is not None and work_order.status not in clock.pause_statuses:
        _end_pause(clock, schedule, now)
    _set_deadlines(clock, schedule)
    for target in (Target.RESPONSE, Target.RESOLUTION):
        if getattr(clock, f"{target}_met_at") is None:
            setattr(clock, f"{target}_state", _pending_state(clock, target))
    if clock.paused_since is None and work_order.status in clock.pause_statuses:
        clock.paused_since = now
    clock._change_reason = f"re-targeted from “{previous}” to “{policy}” ({', '.join(sorted(changed_fields))} changed)"
    clock.save()


@audit.attributed
@transaction.atomic
def start_clocks_for_open_orders(organization, *, actor) -> int:
    """Start clocks for the organisation's open orders that have none (orders created before the policies,
    e.g. the demo's). Each clock runs from its order's creation. Returns how many were started."""
    now = timezone.now()
    started = 0
    orders = (
        WorkOrder.objects.for_tenant(organization)
        .open()
        .filter(sla_clock__isnull=True)
        .select_for_update(of=("self",))
        .select_related("asset", "location")
        .order_by("pk")
    )
    for work_order in orders:
        policy = match_policy(work_order)
        if policy is not None:
            _start_clock(work_order, policy, now)
            started += 1
    return started


# --- the monitor ---------------------------------------------------------------------------------------------

CHECKS = [
    (Target.RESPONSE, Level.WARNING),
    (Target.RESPONSE, Level.BREACH),
    (Target.RESOLUTION, Level.WARNING),
    (Target.RESOLUTION, Level.BREACH),
]
MONITOR_BATCH = 1000


def monitor_clocks(now=None, *, batch: int = MONITOR_BATCH) -> dict:
    """Find running clocks past a warning time or a deadline and raise each warning and breach exactly once:
    claim it (conditional UPDATE of its `*_warned_at` / `*_breached_at` column, row count 1), then in the same
    transaction write the clock's history, record the SLAViolation, publish `sla:warning` / `sla:violation`
    and run the policy's escalation steps. Another monitor running at the same time claims nothing twice; a
    failure rolls its claim back and the next run retries. Returns how many warnings and breaches it raised."""
    now = now or timezone.now()
    raised = {"warnings": 0, "breaches": 0}
    with audit.acting_as(audit.system_user(), reason="SLA monitor"):
        for target, level in CHECKS:
            threshold, claim = _threshold_columns(target, level)
            due = (
                SLAClock.objects.running()
                .filter(**{f"{target}_met_at__isnull": True, f"{claim}__isnull": True, f"{threshold}__lte": now})
                .order_by(threshold, "pk")
                .values_list("pk", "work_order_id")[:batch]
            )
            for clock_id, work_order_id in list(due):
                try:
                    if _claim_and_raise(clock_id, work_order_id, target, level, now):
                        raised["warnings" if level == Level.WARNING else "breaches"] += 1
                except Exception:  # one broken clock must not stop the others; it is retried next run
                    logger.exception("SLA monitor: %s %s of clock %s failed", target, level, clock_id)
    return raised


@transaction.atomic
def _claim_and_raise(clock_id: int, work_order_id: int, target: str, level: str, now) -> bool:
    # The work order first, then the clock: the order the work-order services and their hooks lock in.
    WorkOrder.objects.select_for_update(of=("self",)).filter(pk=work_order_id).values_list("pk").first()
    threshold, claim = _threshold_columns(target, level)
    state_column = f"{target}_state"
    if level == Level.WARNING:
        new_state = Case(
            When(**{state_column: ClockState.ON_TRACK}, then=Value(ClockState.WARNING)), default=F(state_column)
        )
    else:
        new_state = Value(ClockState.BREACHED)
    claimed = (
        SLAClock.objects.running()
        .filter(pk=clock_id, **{f"{target}_met_at__isnull": True, f"{claim}__isnull": True, f"{threshold}__lte": now})
        .update(**{claim: now, state_column: new_state, "updated_at": now})
    )
    if claimed != 1:
        return False  # another monitor (or the order's own progress) got there first
    clock = SLAClock.objects.select_related("policy", "work_order__organization", "work_order__assignee").get(
        pk=clock_id
    )
    # The UPDATE bypassed save(): this save writes the history row it owes.
    audit.save_with_reason(clock, f"{target} {'warning' if level == Level.WARNING else 'breached'}")
    _record(clock, target, level, now, escalate=True)
    return True


def _event_payload(clock: SLAClock, work_order: WorkOrder, target: str, level: str, threshold_at, late: int) -> dict:
    return {
        "work_order": work_order.pk,
        "number": work_order.number,
        "title": work_order.title,
        "priority": work_order.priority,
        "status": work_order.status,
        "policy": clock.policy_id,
        "policy_name": clock.policy.name,
        "kind": target,
        "level": level,
        "due_at": getattr(clock, f"{target}_due_at"),
        "threshold_at": threshold_at,
        "late_seconds": late,
    }


def _record(clock: SLAClock, target: str, level: str, now, *, escalate: bool) -> SLAViolation:
    """Record a warning or breach (its claim column is already set), publish its event and, when `escalate`,
    run the escalation steps (a target met late, found by the order's own progress, only notifies)."""
    work_order = clock.work_order
    threshold_at = getattr(clock, _threshold_columns(target, level)[0])
    late = max(0, round((now - threshold_at).total_seconds()))
    payload = _event_payload(clock, work_order, target, level, threshold_at, late)
    publish(work_order.organization, EVENT_FOR_LEVEL[level], payload, user=work_order.assignee)
    violation = SLAViolation(
        organization_id=clock.organization_id,
        clock=clock,
        work_order=work_order,
        policy_id=clock.policy_id,
        kind=target,
        level=level,
        priority=work_order.priority,
        threshold_at=threshold_at,
        detected_at=now,
        late_seconds=late,
    )
    violation.escalations = _escalate(clock, work_order, target, level, notify_only=not escalate)
    violation.save()
    return violation


PRIORITY_ORDER = [str(priority) for priority in WorkOrder.Priority]  # low → critical


def _higher_priority(current: str, wanted: str) -> str | None:
    """The priority a raise leads to (None: already as high)."""
    rank = PRIORITY_ORDER.index(current)
    target = PRIORITY_ORDER.index(wanted) if wanted else min(rank + 1, len(PRIORITY_ORDER) - 1)
    return PRIORITY_ORDER[target] if target > rank else None


def _escalate(clock: SLAClock, work_order: WorkOrder, target: str, level: str, *, notify_only: bool) -> list[dict]:
    """Run the policy's steps for this target and level, in order, through the notification and work-order
    services (acting as the system user). Returns what each did, for the violation record."""
    system = audit.system_user()
    steps = [step for step in clock.policy.escalation_steps.all() if step.applies_to(target, level)]
    outcomes = []
    what = "deadline approaching" if level == Level.WARNING else "deadline missed"
    for step in steps:
        outcome = {"step": step.pk, "position": step.position, "kind": step.kind, "done": False}
        try:
            with audit.acting_as(system, reason=f"SLA escalation: {target} {what}"), transaction.atomic():
                work_order.refresh_from_db()
                if step.kind == EscalationStep.Kind.NOTIFY:
                    recipients = list(step.notify_roles)
                    if step.notify_assignee and work_order.assignee_id:
                        recipients.append(work_order.assignee)
                    sent = notify(
                        work_order.organization,
                        recipients,
                        EVENT_FOR_LEVEL[level],
                        {
                            "title": format_lazy(NOTICE_TITLES[(target, level)], number=work_order.number),
                            "body": format_lazy(
                                NOTICE_BODIES[target],
                                number=work_order.number,
                                title=work_order.title,
                                priority=lazy(work_order.get_priority_display, str)(),
                                due=f"{getattr(clock, f'{target}_due_at'):%Y-%m-%d %H:%M}",
                                policy=clock.policy.name,
                            ),
                            "work_order": work_order.pk,
                            "kind": target,
                            "level": level,
                        },
                    )
                    people = "person" if len(sent) == 1 else "people"
                    outcome.update(done=True, detail=f"notified {len(sent)} {people}", recipients=[u.pk for u in sent])
                elif notify_only:
                    outcome["detail"] = "skipped: the target was already met (late)"
                elif step.kind == EscalationStep.Kind.RAISE_PRIORITY:
                    new = _higher_priority(work_order.priority, step.raise_to)
                    if new is None:
                        outcome["detail"] = f"skipped: priority is already {work_order.priority}"
                    else:
                        old = work_order.priority
                        work_orders.update_work_order(work_order, actor=system, priority=new)
                        outcome.update(done=True, detail=f"priority raised from {old} to {new}")
                elif step.kind == EscalationStep.Kind.REASSIGN:
                    person = step.reassign_to
                    if work_order.assignee_id == person.pk:
                        outcome["detail"] = f"skipped: already assigned to {person.get_username()}"
                    elif work_order.status not in (WorkOrder.Status.OPEN, WorkOrder.Status.ASSIGNED):
                        outcome["detail"] = f"skipped: work already {work_order.get_status_display().lower()}"
                    else:
                        work_orders.transition(work_order, "assign", actor=system, assignee=person)
                        notify(
                            work_order.organization,
                            [person],
                            "work-order:assigned",
                            {
                                "title": format_lazy(
                                    gettext_lazy("{number} assigned to you (SLA escalation)"), number=work_order.number
                                ),
                                "body": format_lazy(
                                    REASSIGNED_BODIES[(target, level)], number=work_order.number, title=work_order.title
                                ),
                                "work_order": work_order.pk,
                            },
                        )
                        outcome.update(done=True, detail=f"reassigned to {person.get_username()}")
        except DomainError as exc:
            outcome["detail"] = f"refused: {exc.message}"
        outcomes.append(outcome)
    return outcomes


# --- reading ---------------------------------------------------------------------------------------------


def clock_summary(work_order: WorkOrder) -> dict | None:
    """The order's SLA for display (admin page, API detail): None when no policy covers it. Uses
    `work_order.sla_clock` (select_related("sla_clock__policy") in lists)."""
    try:
        clock = work_order.sla_clock
    except SLAClock.DoesNotExist:
        return None

    def target(name: str, minutes: int) -> dict:
        seconds = getattr(clock, f"{name}_seconds")
        return {
            "state": getattr(clock, f"{name}_state"),
            "target_minutes": minutes,
            "due_at": getattr(clock, f"{name}_due_at"),
            "warning_at": getattr(clock, f"{name}_warning_at"),
            "met_at": getattr(clock, f"{name}_met_at"),
            "business_minutes": round(seconds / 60, 1) if seconds is not None else None,
        }

    return {
        "policy": {"id": clock.policy_id, "name": clock.policy.name},
        "state": clock.state,
        "paused": clock.is_paused,
        "paused_since": clock.paused_since,
        "paused_minutes": round(clock.paused_seconds / 60, 1),
        "stopped_at": clock.stopped_at,
        "response": target(Target.RESPONSE, clock.response_minutes),
        "resolution": target(Target.RESOLUTION, clock.resolution_minutes),
    }


def with_sla(queryset):
    """Work orders annotated with `response_due_at`, `resolution_due_at` and `sla_state` (the worse of the
    two targets: breached, warning, on_track or met; None without a clock), through one LEFT JOIN."""
    response, resolution = "sla_clock__response_state", "sla_clock__resolution_state"
    return queryset.annotate(
        response_due_at=F("sla_clock__response_due_at"),
        resolution_due_at=F("sla_clock__resolution_due_at"),
        sla_state=Case(
            When(sla_clock__isnull=True, then=Value(None)),
            When(Q(**{response: ClockState.BREACHED}) | Q(**{resolution: ClockState.BREACHED}), then=Value("breached")),
            When(Q(**{response: ClockState.WARNING}) | Q(**{resolution: ClockState.WARNING}), then=Value("warning")),
            When(Q(**{response: ClockState.MET}) & Q(**{resolution: ClockState.MET}), then=Value("met")),
            default=Value("on_track"),
            output_field=CharField(),
        ),
    )


# The SLA deadline that comes next: the response target until it is met, then the resolution target.
NEXT_DUE = Case(
    When(sla_clock__response_met_at__isnull=True, then=F("sla_clock__response_due_at")),
    default=F("sla_clock__resolution_due_at"),
    output_field=DateTimeField(),
)
NEXT_WARNING = Case(
    When(sla_clock__response_met_at__isnull=True, then=F("sla_clock__response_warning_at")),
    default=F("sla_clock__resolution_warning_at"),
    output_field=DateTimeField(),
)


def for_work_order_lists(queryset):
    """`with_sla`, the clock and its policy joined in (for `clock_summary` without a query), and the next
    deadline `sla_due_at` with its warning time `sla_warning_at`: the `work_order_list` hook point."""
    return with_sla(queryset.select_related("sla_clock__policy")).annotate(
        sla_due_at=NEXT_DUE, sla_warning_at=NEXT_WARNING
    )


GROUPINGS = ("priority", "policy", "asset", "period")
INTERVALS = ("day", "week", "month")


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least `share` of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _target_figures(rows: list[dict], target: str) -> dict:
    met = sum(1 for row in rows if row[f"{target}_state"] == ClockState.MET)
    breached = sum(1 for row in rows if row[f"{target}_state"] == ClockState.BREACHED)
    minutes = [row[f"{target}_seconds"] / 60 for row in rows if row[f"{target}_seconds"] is not None]
    mean = sum(minutes) / len(minutes) if minutes else None
    p90 = _percentile(minutes, 0.9)
    return {
        "met": met,
        "breached": breached,
        "compliance_percent": percent(met, met + breached),  # the analytics definition (response_compliance)
        "mean_minutes": round(mean, 1) if mean is not None else None,
        "p90_minutes": round(p90, 1) if p90 is not None else None,
        "measured": len(minutes),
    }


def _period_key(moment: datetime, zone, interval: str) -> str:
    local = moment.astimezone(zone)
    if interval == "day":
        return f"{local:%Y-%m-%d}"
    if interval == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local:%Y-%m}"


def _bound(value, organization, *, end: bool):
    """A date (midnight in the organisation's zone; an end date includes its whole day) or a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(0)).replace(tzinfo=organization.zone).astimezone(UTC)
    raise TypeError("from / to are dates or datetimes")


def cancelled_orders(organization):
    """The ids of the organisation's cancelled work orders, as a subquery: performance leaves their clocks out. An
    anti-join on a small hashed set (wo_org_status_created_idx) instead of joining every clock to its order."""
    return WorkOrder.objects.filter(organization=organization, status=WorkOrder.Status.CANCELLED).values("pk")


class _PercentileDisc(Aggregate):
    """PostgreSQL's nearest-rank percentile (`_percentile`'s definition): percentile_disc(share) WITHIN GROUP."""

    function = "percentile_disc"
    template = "%(function)s(%(share)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, share: float, **extra):
        super().__init__(expression, share=float(share), **extra)


def _sql_measures() -> dict:
    measures = {"clocks": Count("pk")}
    for target in (Target.RESPONSE, Target.RESOLUTION):
        seconds = f"{target}_seconds"
        measures[f"{target}_met"] = Count("pk", filter=Q(**{f"{target}_state": ClockState.MET}))
        measures[f"{target}_breached"] = Count("pk", filter=Q(**{f"{target}_state": ClockState.BREACHED}))
        measures[f"{target}_mean"] = Avg(seconds)
        measures[f"{target}_p90"] = _PercentileDisc(seconds, 0.9)
        measures[f"{target}_measured"] = Count(seconds)
    return measures


def _sql_figures(row: dict) -> dict:
    figures = {"clocks": row["clocks"]}
    for target in (Target.RESPONSE, Target.RESOLUTION):
        met, breached = row[f"{target}_met"], row[f"{target}_breached"]
        mean, p90 = row[f"{target}_mean"], row[f"{target}_p90"]
        figures[str(target)] = {
            "met": met,
            "breached": breached,
            "compliance_percent": percent(met, met + breached),
            "mean_minutes": round(float(mean) / 60, 1) if mean is not None else None,
            "p90_minutes": round(float(p90) / 60, 1) if p90 is not None else None,
            "measured": row[f"{target}_measured"],
        }
    return figures


def _performance_in_sql(organization, clocks, group_by: str, interval: str, start, end) -> dict:
    """`performance` aggregated by PostgreSQL: the same figures without fetching every clock (at the 300k-order
    organisation a year is ~60k clocks)."""
    zone = organization.zone
    if group_by == "priority":
        grouped = clocks.values(key=F("work_order__priority"))
    elif group_by == "policy":
        grouped = clocks.values(key=F("policy_id"), name=F("policy__name"))
    elif group_by == "asset":
        grouped = clocks.values(key=F("work_order__asset_id"), name=F("work_order__asset__code"))
    else:
        trunc = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}[interval]
        grouped = clocks.annotate(local=trunc("started_at", tzinfo=zone)).values(key=F("local"))
    measures = _sql_measures()
    return _assemble_performance(
        zone, group_by, interval, start, end, grouped.annotate(**measures).order_by(), clocks.aggregate(**measures)
    )


def _assemble_performance(zone, group_by: str, interval: str, start, end, rows, overall: dict) -> dict:
    """`performance`'s answer from aggregated rows (`_sql_measures` per group, with its `key` and `name`)."""
    groups = []
    for row in rows:
        key = row["key"]
        if group_by == "priority":
            label = WorkOrder.Priority(key).label
        elif group_by == "policy":
            label = row["name"]
        elif group_by == "asset":
            label = row["name"] or "(no asset)"
        else:
            key = label = _period_key(key, zone, interval)
        groups.append({"key": key, "label": label, **_sql_figures(row)})
    if group_by == "priority":
        groups.sort(key=lambda g: -PRIORITY_ORDER.index(g["key"]))
    else:
        groups.sort(key=lambda g: (g["key"] is None, str(g["label"])))
    return {
        "group_by": group_by,
        "interval": interval if group_by == "period" else None,
        "from": start,
        "to": end,
        "groups": groups,
        "overall": _sql_figures(overall),
    }


def performance_by_priority_from_sums(organization, start, end, sums: dict, p90: dict) -> dict:
    """`performance` by priority from sums kept elsewhere (the analytics rollups): `sums` = {priority: {clocks,
    <target>_met, <target>_breached, <target>_seconds (their sum), <target>_measured}}, `p90` = {priority or
    "overall": {<target>_seconds: nearest-rank 90th percentile}}: the same answer as computed from the clocks."""

    def row(values: dict, p90s: dict) -> dict:
        out = {"clocks": int(values.get("clocks") or 0)}
        for target in (Target.RESPONSE, Target.RESOLUTION):
            measured = int(values.get(f"{target}_measured") or 0)
            total = values.get(f"{target}_seconds") or 0
            out[f"{target}_met"] = int(values.get(f"{target}_met") or 0)
            out[f"{target}_breached"] = int(values.get(f"{target}_breached") or 0)
            out[f"{target}_mean"] = Decimal(total) / measured if measured else None
            out[f"{target}_p90"] = p90s.get(f"{target}_seconds")
            out[f"{target}_measured"] = measured
        return out

    rows = [{"key": key, **row(values, p90.get(key, {}))} for key, values in sums.items()]
    overall: dict = {}
    for values in sums.values():
        for name, value in values.items():
            overall[name] = overall.get(name, 0) + (value or 0)
    return _assemble_performance(
        organization.zone, "priority", "month", start, end, rows, row(overall, p90.get("overall", {}))
    )


def performance(
    organization, *, group_by: str = "priority", start=None, end=None, interval: str = "month", where=None
) -> dict:
    """SLA performance of the clocks started in [start, end): per group (priority, policy, asset or period of
    `interval` in the organisation's zone) and overall, for response and resolution: how many targets were
    met and breached, compliance % (met of decided), and mean and 90th-percentile business minutes taken
    (targets reached, late or not). Cancelled orders are left out; `where` (a Q over the clocks) narrows them
    further (the analytics filters). On PostgreSQL two aggregate queries (per group, overall: counts, mean and the
    nearest-rank 90th percentile, `percentile_disc`, in SQL); elsewhere one query and the same figures in Python."""
    if group_by not in GROUPINGS:
        raise InvalidInput(
            _("“%(value)s” is not a grouping; use one of %(choices)s.")
            % {"value": group_by, "choices": ", ".join(GROUPINGS)},
            fields={"group_by": [_("One of %(choices)s.") % {"choices": ", ".join(GROUPINGS)}]},
        )
    if interval not in INTERVALS:
        raise InvalidInput(
            _("“%(value)s” is not an interval; use one of %(choices)s.")
            % {"value": interval, "choices": ", ".join(INTERVALS)},
            fields={"interval": [_("One of %(choices)s.") % {"choices": ", ".join(INTERVALS)}]},
        )
    start, end = _bound(start, organization, end=False), _bound(end, organization, end=True)
    if start is not None and end is not None and end <= start:
        raise InvalidInput(_("“to” must be after “from”."), fields={"to": [_("Must be after from.")]})
    clocks = SLAClock.objects.for_tenant(organization).exclude(work_order_id__in=cancelled_orders(organization))
    if start is not None:
        clocks = clocks.filter(started_at__gte=start)
    if end is not None:
        clocks = clocks.filter(started_at__lt=end)
    if where is not None:
        clocks = clocks.filter(where)
    if connection.vendor == "postgresql":
        return _performance_in_sql(organization, clocks, group_by, interval, start, end)
    rows = list(
        clocks.values(
            "started_at",
            "policy_id",
            "policy__name",
            "work_order__priority",
            "work_order__asset_id",
            "work_order__asset__code",
            "response_state",
            "response_seconds",
            "resolution_state",
            "resolution_seconds",
        )
    )
    zone = organization.zone
    groups: dict = {}
    for row in rows:
        if group_by == "priority":
            key, label = row["work_order__priority"], WorkOrder.Priority(row["work_order__priority"]).label
        elif group_by == "policy":
            key, label = row["policy_id"], row["policy__name"]
        elif group_by == "asset":
            key, label = row["work_order__asset_id"], row["work_order__asset__code"] or "(no asset)"
        else:
            key = label = _period_key(row["started_at"], zone, interval)
        groups.setdefault((key, label), []).append(row)

    def sort_key(item):
        (key, label), _ = item
        if group_by == "priority":
            return -PRIORITY_ORDER.index(key)
        return (key is None, str(label))

    def figures(selected):
        return {
            "clocks": len(selected),
            "response": _target_figures(selected, Target.RESPONSE),
            "resolution": _target_figures(selected, Target.RESOLUTION),
        }

    return {
        "group_by": group_by,
        "interval": interval if group_by == "period" else None,
        "from": start,
        "to": end,
        "groups": [
            {"key": key, "label": label, **figures(selected)}
            for (key, label), selected in sorted(groups.items(), key=sort_key)
        ],
        "overall": figures(rows),
    }


__all__ = [
    "clock_summary",
    "create_calendar",
    "create_policy",
    "delete_calendar",
    "delete_policy",
    "for_work_order_lists",
    "match_policy",
    "monitor_clocks",
    "on_work_order_created",
    "on_work_order_edited",
    "on_work_order_transition",
    "overall_state",
    "performance",
    "start_clocks_for_open_orders",
    "update_calendar",
    "update_policy",
    "with_sla",
]
