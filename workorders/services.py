"""The only writers of work orders, their checklists, time, costs, attachments and work requests.

Every function runs in one transaction, checks who acts (the role table plus the work-order rules:
technicians act on their own work), records history with the acting user, and publishes
`work-order:created`, `work-order:updated` or `work-order:completed` after commit.
"""

import operator
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import CharField, DateTimeField, Sum, Value
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from assets import services as asset_services
from assets.models import Asset, Downtime, Location
from maintenance_site import audit, client_ids, formats, hooks
from maintenance_site.analytics import registry as analytics_registry
from maintenance_site.analytics import services as analytics_services
from maintenance_site.bulk import history_by_select, id_in, insert_rows, loaded, take_ids
from maintenance_site.errors import Conflict, InvalidInput, NotFound, PermissionDeniedError
from maintenance_site.events.services import publish, publish_many
from maintenance_site.events.types import INTEGER, STRING, register_event_type
from maintenance_site.i18n import lazy_date, lazy_date_time, lazy_money
from maintenance_site.notifications.kinds import is_registered, register_kind
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.actors import check_actor
from maintenance_site.tenancy.models import Membership, Organization
from maintenance_site.tenancy.roles import Action, Role, role_allows
from maintenance_site.validation import checked_reason, validated, validated_rows
from workorders import uploads
from workorders.bulk import STEP_FIELDS, STEP_ORDER, copy_procedure_steps, owners
from workorders.images import prepare_photo
from workorders.models import (
    FAILURE_CODE_FIELDS,
    TRANSITIONS,
    Attachment,
    Budget,
    BudgetCrossing,
    ChecklistItem,
    Comment,
    CostLine,
    DowntimeLink,
    FailureCode,
    ItemKind,
    OfflineAction,
    Procedure,
    ResumableUpload,
    Team,
    TimeEntry,
    WorkOrder,
    WorkRequest,
)

User = get_user_model()
Status = WorkOrder.Status

# The lifecycle actions as verbs in sentences ("Cannot start WO-7: it is completed."), in the reader's language.
ACTION_VERBS = {
    "assign": gettext_lazy("assign"),
    "unassign": gettext_lazy("unassign"),
    "start": gettext_lazy("start"),
    "hold": gettext_lazy("hold"),
    "resume": gettext_lazy("resume"),
    "complete": gettext_lazy("complete"),
    "verify": gettext_lazy("verify"),
    "reject": gettext_lazy("reject"),
    "reopen": gettext_lazy("reopen"),
    "cancel": gettext_lazy("cancel"),
}
ACTION_PERMISSION = {
    "assign": Action.ASSIGN_WORK,
    "unassign": Action.ASSIGN_WORK,
    "start": Action.EXECUTE_WORK,
    "hold": Action.EXECUTE_WORK,
    "resume": Action.EXECUTE_WORK,
    "complete": Action.EXECUTE_WORK,
    "verify": Action.VERIFY_WORK,
    "reject": Action.VERIFY_WORK,
    "reopen": Action.VERIFY_WORK,
    "cancel": Action.CREATE_WORK,
}
ACTIONS_NEEDING_REASON = {"hold", "reject", "reopen", "cancel"}
EDITABLE_FIELDS = {
    "title",
    "description",
    "type",
    "priority",
    "asset",
    "location",
    "team",
    "due_at",
    "scheduled_start",
    "estimated_minutes",
    "needs_downtime",
    "completion_notes",
    "failure_cause",
    "remedy",
    "problem_code",
    "cause_code",
    "remedy_code",
}
# What may still be written on a closed order: the close-out record.
CLOSE_OUT_FIELDS = {"completion_notes", "failure_cause", "remedy", "problem_code", "cause_code", "remedy_code"}
ATTACHMENT_TYPES = {
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "application/pdf",
    "text/plain",
    "text/csv",
    "video/mp4",
}
ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
ATTACHMENT_OFFER = gettext_lazy("a photo (JPEG, PNG, WebP, HEIC), a PDF, a text or CSV file, or an MP4 video")


# --- who acts -------------------------------------------------------------------------------------------


def _membership(work_order_or_org, actor) -> Membership | None:
    check_actor(actor)
    organization_id = getattr(work_order_or_org, "organization_id", None) or work_order_or_org.pk
    return tenancy_services.acting_membership(
        organization_id, actor=actor, not_member="You are not a member of this work order's organisation."
    )


_require = tenancy_services.check_role


def _is_on_it(work_order: WorkOrder, user) -> bool:
    if work_order.assignee_id == user.pk:
        return True
    return work_order.team_id is not None and work_order.team.members.filter(pk=user.pk).exists()


def _supervises(membership: Membership | None) -> bool:
    return membership is None or role_allows(membership.role, Action.ASSIGN_WORK)


def check_may_work_on(work_order: WorkOrder, *, actor) -> Membership | None:
    """Technicians act only on work assigned to them or their team; supervisors on any (and `SYSTEM`). A missing
    actor is a TypeError."""
    membership = _membership(work_order, actor)
    _require(membership, Action.EXECUTE_WORK)
    if not _supervises(membership) and not _is_on_it(work_order, actor):
        raise PermissionDeniedError(
            _("%(number)s is not assigned to you; ask a planner to assign it.") % {"number": work_order.number},
            code="not_your_work",
        )
    return membership


# Who may comment on an order and attach files to it: those who carry out work (a technician on any order: a note
# or a photo helps whoever does the job) or create and edit work orders. The role table grants storekeepers and
# viewers neither.
ANNOTATING_ACTIONS = (Action.EXECUTE_WORK, Action.CREATE_WORK)


def may_work_on(work_order: WorkOrder, *, actor) -> bool:
    """Whether `check_may_work_on` lets `actor` act on the order (no refusal raised)."""
    check_actor(actor)
    try:
        check_may_work_on(work_order, actor=actor)
    except PermissionDeniedError:
        return False
    return True


def check_may_annotate(work_order: WorkOrder, *, actor) -> Membership | None:
    """Refuse a comment or an attachment from a member whose role neither carries out nor edits work orders."""
    membership = _membership(work_order, actor)
    if membership is not None and not any(role_allows(membership.role, action) for action in ANNOTATING_ACTIONS):
        raise PermissionDeniedError(
            _(
                "Your role (%(role)s) may not comment on work orders or attach files to them: that is for those who "
                "carry out or plan the work. Ask one of them, or raise a work request."
            )
            % {"role": membership.get_role_display()},
            code="role_forbids",
        )
    return membership


def validate_assignee(organization_id: int, user) -> None:
    """Refuse an assignee who is not an active member able to carry out work (InvalidInput on `assignee`)."""
    if user is not None:
        validate_assignees(organization_id, [user.pk])


def validate_assignees(organization_id: int, user_ids) -> None:
    """`validate_assignee` for several users of one organisation, in one query."""
    user_ids = sorted({pk for pk in user_ids if pk is not None})
    if not user_ids:
        return
    username = f"user__{User.USERNAME_FIELD}"
    found = {
        user_id: (role, name)
        for user_id, role, name in Membership.objects.active()
        .filter(organization_id=organization_id, user_id__in=user_ids)
        .values_list("user_id", "role", username)
    }
    for user_id in user_ids:
        if user_id not in found:
            raise InvalidInput(
                _("The assignee is not a member of this organisation."),
                fields={"assignee": [_("Unknown technician.")]},
            )
        role, name = found[user_id]
        if not role_allows(role, Action.EXECUTE_WORK):
            raise InvalidInput(
                _("%(name)s is a %(role)s and cannot carry out work.")
                % {"name": name, "role": str(Role(role).label).lower()},
                fields={"assignee": [_("This person cannot carry out work.")]},
            )


# --- events ---------------------------------------------------------------------------------------------


def _payload(work_order: WorkOrder, **extra) -> dict:
    return {
        "id": work_order.pk,
        "number": work_order.number,
        "title": work_order.title,
        "status": work_order.status,
        "priority": work_order.priority,
        "type": work_order.type,
        "asset": work_order.asset_id,
        "assignee": work_order.assignee_id,
        "team": work_order.team_id,
        "due_at": work_order.due_at,
        **extra,
    }


def _publish_updated(work_order: WorkOrder, change: str, **extra) -> None:
    publish(
        work_order.organization,
        "work-order:updated",
        _payload(work_order, change=change, **extra),
        user=work_order.assignee,
    )


# --- numbers --------------------------------------------------------------------------------------------


def reserve_numbers(organization, count: int = 1) -> range:
    """Consecutive work-order numbers from the organisation's counter."""
    return tenancy_services.reserve_numbers(organization, "work-order", count)


def format_number(number: int) -> str:
    return f"WO-{number:06d}"


# --- creating and editing -------------------------------------------------------------------------------


@audit.attributed
@transaction.atomic
def create_work_order(
    organization, *, title: str, actor, procedure: Procedure | None = None, _raised_on_the_job=False, **fields
) -> WorkOrder:
    """Open a work order. The location defaults to the asset's; a procedure's steps become its checklist;
    an assignee given here assigns it at once."""
    membership = _membership(organization, actor)
    # a technician may open a follow-up from a failed check on their own job (raise_follow_up checks that)
    _require(membership, Action.EXECUTE_WORK if _raised_on_the_job else Action.CREATE_WORK)
    assignee = fields.pop("assignee", None)
    unknown = set(fields) - EDITABLE_FIELDS - {"source", "parent", "requested_by"}
    if unknown:
        raise TypeError(f"create_work_order got unexpected field(s): {', '.join(sorted(unknown))}")
    work_order = WorkOrder(organization=organization, title=title, requested_by=actor, **fields)
    if work_order.asset is not None and work_order.location is None:
        work_order.location = work_order.asset.location
    validate_assignee(organization.pk, assignee)
    validated(work_order, exclude=["number"])
    if work_order.scheduled_start is not None:
        _check_planned_start(work_order)
    work_order.number = format_number(reserve_numbers(organization)[0])
    if assignee is not None:
        work_order.assignee = assignee
        work_order.status = Status.ASSIGNED
    work_order.save()
    if procedure is not None:
        apply_procedure(work_order, procedure)
    hooks.work_order_created(work_order)
    publish(organization, "work-order:created", _payload(work_order), user=work_order.assignee)
    _notify_urgent_assignment(work_order, assigned_by=actor)
    return work_order


@dataclass(slots=True)
class NewWorkOrder:
    """One order for `create_work_orders_bulk`: what `create_work_order` takes, with related rows by id.
    `procedure_id` names the procedure whose steps become its checklist; `event` holds extra keys of its
    `work-order:created` payload (the preventive generator adds the schedule); `id`, when given, is an id taken
    beforehand with `maintenance_site.bulk.take_ids(WorkOrder, n)`, so that rows pointing at the order could be
    written before it (the preventive generator's occurrences)."""

    organization_id: int
    title: str
    description: str = ""
    type: str = WorkOrder._meta.get_field("type").default
    priority: str = WorkOrder._meta.get_field("priority").default
    asset_id: int | None = None
    location_id: int | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    due_at: datetime | None = None
    scheduled_start: datetime | None = None
    estimated_minutes: int | None = None
    needs_downtime: bool = False
    source: str = WorkOrder._meta.get_field("source").default
    parent_id: int | None = None
    completion_notes: str = ""
    failure_cause: str = ""
    remedy: str = ""
    procedure_id: int | None = None
    event: dict | None = None
    id: int | None = None


# NewWorkOrder's fields that are the work order's columns, and the related rows they name: (field, model, label).
_NEW_ORDER_COLUMNS = tuple(f.name for f in fields(NewWorkOrder) if f.name not in ("procedure_id", "event", "id"))
_new_order_values = operator.attrgetter(*_NEW_ORDER_COLUMNS)
_FOREIGN_RELATION = {
    "asset": gettext_lazy("The asset belongs to another organisation."),
    "location": gettext_lazy("The location belongs to another organisation."),
    "team": gettext_lazy("The team belongs to another organisation."),
    "parent": gettext_lazy("The parent belongs to another organisation."),
    "procedure": gettext_lazy("No such procedure."),
}
_NEW_ORDER_RELATIONS = (
    ("asset_id", Asset, "asset"),
    ("location_id", Location, "location"),
    ("team_id", Team, "team"),
    ("parent_id", WorkOrder, "parent"),
    ("procedure_id", Procedure, "procedure"),
)


def _check_relations(orders: list[NewWorkOrder]) -> dict[int, int | None]:
    """Refuse an order naming an asset, location, team, parent order or procedure of another organisation (or
    none), as `WorkOrder.clean()` and `apply_procedure` do one by one: one query per kind of relation named.
    Returns the location of each asset named (an order's location defaults to its asset's)."""
    asset_locations: dict[int, int | None] = {}
    for attname, model, label in _NEW_ORDER_RELATIONS:
        wanted = {getattr(order, attname) for order in orders} - {None}
        if not wanted:
            continue
        found = owners(model, wanted, "location_id") if model is Asset else owners(model, wanted)
        for index, order in enumerate(orders):
            value = getattr(order, attname)
            if value is not None and (value not in found or found[value][0] != order.organization_id):
                message = str(_FOREIGN_RELATION[label])
                raise InvalidInput(
                    _("Order %(position)s: %(problem)s") % {"position": index + 1, "problem": message},
                    fields={f"{index}.{label}": [message]},
                )
        if model is Asset:
            asset_locations = {pk: row[1] for pk, row in found.items()}
    return asset_locations


@audit.attributed
@transaction.atomic
def create_work_orders_bulk(orders: Sequence[NewWorkOrder], *, actor) -> list[WorkOrder]:
    """Open many work orders at once, each exactly as `create_work_order` would: the actor's role checked in each
    organisation, fields validated by the model's rules, related rows of the order's organisation, the location
    defaulting to the asset's, a number from the organisation's counter (in the given order), assigned when an
    assignee is given (a member who can carry out work), the procedure's steps as its checklist, history naming
    who acts (and the reason of an `audit.acting_as` block), the `work_orders_created` hook point (SLA clocks) and
    one `work-order:created` event per order. The number of queries does not grow with the orders: the orders go
    in by COPY and their history, checklists and checklist history by INSERT … SELECT (`maintenance_site.bulk`),
    the events by one `publish_many` per organisation. Returns the orders, saved, in the given order."""
    orders = list(orders)
    if not orders:
        return []
    organizations = Organization.objects.in_bulk({order.organization_id for order in orders})
    for organization in organizations.values():
        _require(_membership(organization, actor), Action.CREATE_WORK)
    values = list(map(_new_order_values, orders))
    validated_rows(WorkOrder, _NEW_ORDER_COLUMNS, values, what="order")
    asset_locations = _check_relations(orders)
    by_organization: dict[int, list[int]] = {}
    for index, order in enumerate(orders):
        by_organization.setdefault(order.organization_id, []).append(index)
    numbers: list[str] = [""] * len(orders)
    for organization_id, indexes in sorted(by_organization.items()):
        validate_assignees(organization_id, {orders[index].assignee_id for index in indexes})
        taken = reserve_numbers(organizations[organization_id], len(indexes))
        for index, number in zip(indexes, taken, strict=True):
            numbers[index] = format_number(number)

    columns = [f for f in WorkOrder._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in columns]
    now = timezone.now()
    template = [
        now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default() for f in columns
    ]
    at = {name: position for position, name in enumerate(names)}
    given = [(at[name], n) for n, name in enumerate(_NEW_ORDER_COLUMNS)]
    requested_by = actor.pk if actor is not None else None
    rows = []
    for index, (order, row_values) in enumerate(zip(orders, values, strict=True)):
        row = template.copy()
        for position, n in given:
            row[position] = row_values[n]
        row[at["organization_id"]] = order.organization_id
        row[at["number"]] = numbers[index]
        row[at["status"]] = Status.ASSIGNED if order.assignee_id is not None else Status.OPEN
        row[at["requested_by_id"]] = requested_by
        if order.location_id is None and order.asset_id is not None:
            row[at["location_id"]] = asset_locations.get(order.asset_id)
        rows.append(row)
    fresh = iter(take_ids(WorkOrder, sum(1 for order in orders if order.id is None)))
    ids = insert_rows(WorkOrder, names, rows, ids=[order.id or next(fresh) for order in orders])
    created = loaded(WorkOrder, names, rows, ids)
    where, params = id_in("t.id", ids)
    history_by_select(WorkOrder, where, params, reason=audit.current_change_reason())
    copy_procedure_steps(
        [
            (o.pk, o.organization_id, order.procedure_id)
            for o, order in zip(created, orders, strict=True)
            if order.procedure_id is not None
        ],
        reason=audit.current_change_reason() or "",
    )
    hooks.work_orders_created(created)
    for organization_id, indexes in sorted(by_organization.items()):
        publish_many(
            organizations[organization_id],
            "work-order:created",
            [_payload(created[index], **(orders[index].event or {})) for index in indexes],
            user_ids=[created[index].assignee_id for index in indexes],
        )
    return created


def _locked(work_order: WorkOrder) -> WorkOrder:
    return (
        WorkOrder.objects.select_for_update(of=("self",)).select_related("organization", "team").get(pk=work_order.pk)
    )


@audit.attributed
@transaction.atomic
def update_work_order(work_order: WorkOrder, *, actor, **changes) -> WorkOrder:
    """Edit the descriptive fields of a work order that is not closed."""
    work_order = _locked(work_order)
    membership = _membership(work_order, actor)
    _require(membership, Action.CREATE_WORK)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(
            _("These fields cannot be edited here: %(fields)s; use the lifecycle actions.")
            % {"fields": ", ".join(sorted(unknown))},
            fields={name: [_("Not editable.")] for name in unknown},
        )
    if not work_order.is_open and set(changes) - CLOSE_OUT_FIELDS:
        raise Conflict(
            _("%(number)s is %(status)s; reopen it to change it.")
            % {"number": work_order.number, "status": str(work_order.get_status_display()).lower()}
        )
    changed = [name for name, value in changes.items() if getattr(work_order, name) != value]
    for name, value in changes.items():
        setattr(work_order, name, value)
    if "asset" in changes and "location" not in changes and work_order.asset is not None:
        work_order.location = work_order.asset.location
    validated(work_order)
    if work_order.scheduled_start is not None and {"scheduled_start", "estimated_minutes", "asset"} & set(changed):
        _check_planned_start(work_order)
    work_order.save()
    if changed:
        hooks.work_order_edited(work_order, sorted(changed), actor=actor)
        _publish_updated(work_order, "edited", fields=sorted(changed))
    return work_order


# --- planning: the planned start and dispatching ---------------------------------------------------------

PLANNED_LENGTH_WITHOUT_ESTIMATE = timedelta(hours=1)  # how long an order without an estimate shows as planned


def planned_end(work_order) -> datetime | None:
    """The end of the planned period: the planned start plus the estimate (an hour without one)."""
    if work_order.scheduled_start is None:
        return None
    minutes = work_order.estimated_minutes
    return work_order.scheduled_start + (timedelta(minutes=minutes) if minutes else PLANNED_LENGTH_WITHOUT_ESTIMATE)


def _check_planned_start(work_order: WorkOrder) -> None:
    """Higher apps refuse a planned period that clashes with what they know (`hooks.work_order_planning`: the
    maintenance windows refuse a period in which a window takes the order's asset out of service)."""
    hooks.work_order_planning(work_order, work_order.scheduled_start, planned_end(work_order))


@audit.attributed
@transaction.atomic
def schedule(work_order: WorkOrder, *, actor, scheduled_start: datetime | None) -> WorkOrder:
    """Plan when an open work order starts (None: unplan it), as the planner's calendar and the dispatch board do
    when an order is dragged, and the technician for their own work. Who may: those who assign work, and a
    technician the order is assigned to (`check_may_work_on`). Refused: a closed order (409), a period a higher app
    refuses (a maintenance window that takes the asset out of service, 409)."""
    work_order = _locked(work_order)
    check_may_work_on(work_order, actor=actor)
    if not work_order.is_open:
        raise Conflict(
            _("%(number)s is %(status)s: a closed order cannot be planned; reopen it first.")
            % {"number": work_order.number, "status": str(work_order.get_status_display()).lower()},
            code="order_closed",
        )
    if scheduled_start is not None and timezone.is_naive(scheduled_start):
        raise InvalidInput(
            _("Give the planned start with its time zone."),
            fields={"scheduled_start": [_("A time zone is needed.")]},
        )
    previous = work_order.scheduled_start
    work_order.scheduled_start = scheduled_start
    validated(work_order)
    if scheduled_start is not None:
        _check_planned_start(work_order)
    if previous == scheduled_start:
        return work_order
    work_order._change_reason = "planned" if scheduled_start is not None else "unplanned"
    work_order.save(update_fields=["scheduled_start", "updated_at"])
    _publish_updated(work_order, "scheduled", scheduled_start=scheduled_start, previous_scheduled_start=previous)
    return work_order


def check_team_member(work_order: WorkOrder, user) -> None:
    """An order given to a team goes to one of its members (the dispatch board's rule)."""
    if work_order.team_id is not None and not work_order.team.members.filter(pk=user.pk).exists():
        raise Conflict(
            _(
                "%(user)s is not in %(team)s, the team %(number)s is given to: assign it to one of the team's "
                "members, or change the order's team first."
            )
            % {"user": user.get_username(), "team": work_order.team.name, "number": work_order.number},
            code="not_in_team",
        )


@audit.attributed
@transaction.atomic
def dispatch(work_order: WorkOrder, *, actor, assignee, scheduled_start: datetime | None = None) -> WorkOrder:
    """What a drop on the dispatch board does, all or nothing: give the order to `assignee` (None: take it back
    to the unassigned column) and, when `scheduled_start` is given, plan it then. The assignment goes through
    `transition` (its role check: a role that may not assign is refused) after the team check (a technician not in
    the order's team is refused); the planned start through `schedule`."""
    work_order = _locked(work_order)
    _require(_membership(work_order, actor), Action.ASSIGN_WORK)
    if assignee is None:
        if work_order.assignee_id is not None:
            work_order = transition(work_order, "unassign", actor=actor)
    elif assignee.pk != work_order.assignee_id:
        check_team_member(work_order, assignee)
        work_order = transition(work_order, "assign", actor=actor, assignee=assignee)
    if scheduled_start is not None:
        work_order = schedule(work_order, actor=actor, scheduled_start=scheduled_start)
    return work_order


def allowed_actions(work_order: WorkOrder) -> list[str]:
    """The lifecycle actions possible from the work order's current status (ignoring who asks)."""
    actions = [name for name, (sources, _) in TRANSITIONS.items() if work_order.status in sources]
    if not work_order.organization.require_verification:
        actions = [a for a in actions if a not in ("verify", "reject")]
    return actions


@audit.attributed
@transaction.atomic
def transition(
    work_order: WorkOrder,
    action: str,
    *,
    actor,
    reason: str = "",
    assignee=None,
    notes: str = "",
    parts_disposition: str | None = None,
    occurred_at: datetime | None = None,
    failure_codes: dict | None = None,
) -> WorkOrder:
    """Move a work order through its lifecycle (the table `workorders.models.TRANSITIONS`).

    `occurred_at`: when it happened, for a step done offline (checked by `apply_offline_action`): the order's
    started/completed times, its downtime, SLA met times and its history row carry it instead of now.

    Completing may set the failure codes (`failure_codes`: {"problem_code": FailureCode, ...}); an organisation
    that requires them (`require_failure_codes`) refuses to complete a corrective or emergency order without all
    three, with a 400 naming the missing fields.

    A transition not allowed from the current status is a Conflict naming the status and the allowed
    actions; one the actor may not perform is a PermissionDeniedError.
    """
    if action not in TRANSITIONS:
        raise InvalidInput(
            _("“%(action)s” is not a work-order action; use one of %(actions)s.")
            % {"action": action, "actions": ", ".join(TRANSITIONS)}
        )
    work_order = _locked(work_order)
    organization = work_order.organization
    sources, target = TRANSITIONS[action]
    if work_order.status not in sources:
        allowed = allowed_actions(work_order)
        raise Conflict(
            _("Cannot %(action)s %(number)s: it is %(status)s.")
            % {
                "action": ACTION_VERBS.get(action, action),
                "number": work_order.number,
                "status": work_order.get_status_display().lower(),
            }
            + " "
            + (
                _("From there you can: %(actions)s.")
                % {"actions": ", ".join(str(ACTION_VERBS.get(a, a)) for a in allowed)}
                if allowed
                else _("No action is possible from there.")
            ),
            code="invalid_transition",
            current_status=work_order.status,
            allowed_actions=allowed,
        )
    membership = _membership(work_order, actor)
    _require(membership, ACTION_PERMISSION[action])
    reason = checked_reason(reason)
    if action in ACTIONS_NEEDING_REASON and not reason:
        raise InvalidInput(
            _("Give a reason to %(action)s %(number)s.")
            % {"action": ACTION_VERBS.get(action, action), "number": work_order.number},
            fields={"reason": [_("Required.")]},
        )
    now = occurred_at or timezone.now()
    previous_status = work_order.status

    if action == "assign":
        if assignee is None:
            raise InvalidInput(_("Say who to assign the work to."), fields={"assignee": [_("Required.")]})
        validate_assignee(organization.pk, assignee)
        work_order.assignee = assignee
    elif action == "unassign":
        work_order.assignee = None
    elif action == "start":
        _start(work_order, membership, actor)
        work_order.started_at = work_order.started_at or now
        if work_order.needs_downtime and work_order.asset_id:
            _start_downtime(work_order, now)
    elif action in ("hold", "resume", "complete"):
        if membership is not None and not _supervises(membership) and not _is_on_it(work_order, actor):
            raise PermissionDeniedError(
                _("%(number)s is not assigned to you.") % {"number": work_order.number}, code="not_your_work"
            )
        if action == "hold":
            work_order.hold_reason = reason
        elif action == "resume":
            work_order.hold_reason = ""
        else:
            _check_checklist_complete(work_order)
            _set_failure_codes(work_order, failure_codes or {})
            work_order.completed_at = now
            if notes:
                work_order.completion_notes = notes
            _end_downtime(work_order, now)
            hooks.work_order_closing(work_order)
    elif action in ("verify", "reject"):
        if not organization.require_verification:
            raise Conflict(
                _("%(organization)s does not require verification: completed work is final (reopen it to change it).")
                % {"organization": organization.name},
                code="verification_not_required",
            )
        if action == "verify":
            work_order.verified_at = now
        else:
            work_order.completed_at = None
    elif action == "reopen":
        if work_order.completed_at and now - work_order.completed_at > timedelta(days=organization.reopen_period_days):
            raise Conflict(
                _(
                    "%(number)s was completed on %(date)s, more than %(days)s days ago: open a follow-up work order "
                    "instead."
                )
                % {
                    "number": work_order.number,
                    "date": formats.date(timezone.localtime(work_order.completed_at, organization.zone).date()),
                    "days": organization.reopen_period_days,
                },
                code="reopen_period_over",
            )
        work_order.completed_at = None
        work_order.verified_at = None
    elif action == "cancel":
        hooks.work_order_cancelling(work_order, parts_disposition, actor=actor)
        work_order.cancel_reason = reason
        work_order.cancelled_at = now
        hooks.work_order_closing(work_order)
        if work_order.status == Status.IN_PROGRESS and work_order.needs_downtime:
            _end_downtime(work_order, now)

    if target is not None:
        work_order.status = target
    work_order._change_reason = f"{action}: {reason}" if reason else action
    if occurred_at is not None:
        work_order._change_reason += f" (done offline, sent at {timezone.now():%Y-%m-%d %H:%M:%S} UTC)"
        work_order._history_date = occurred_at  # simple-history dates the row with the device's time
    work_order.save()
    work_order.transitioned_at = now  # when it happened (the device's time for a step done offline), for the hooks
    hooks.work_order_transitioned(work_order, action, previous_status)
    extra = {"change": action, "from_status": previous_status}
    if reason:
        extra["reason"] = reason
    if action == "complete":
        publish(organization, "work-order:completed", _payload(work_order, **extra), user=work_order.assignee)
    else:
        publish(organization, "work-order:updated", _payload(work_order, **extra), user=work_order.assignee)
    if action == "assign":
        _notify_urgent_assignment(work_order, assigned_by=actor)
    return work_order


def is_urgent(work_order: WorkOrder) -> bool:
    """Critical priority or an emergency: what reaches the technician's phone even when the page is closed."""
    return work_order.priority == WorkOrder.Priority.CRITICAL or work_order.type == WorkOrder.Type.EMERGENCY


def _notify_urgent_assignment(work_order: WorkOrder, *, assigned_by) -> None:
    """An urgent order was assigned: its assignee is notified (`work-order:assigned`), or, assigned to a team
    only, the team's members (`work-order:urgent`), not the person who assigned it. Their channels (Web Push
    on the phones they subscribed) are used after commit."""
    if not is_urgent(work_order) or (work_order.assignee_id is None and work_order.team_id is None):
        return
    # Lazy texts: each recipient reads them in their own language (maintenance_site.i18n), not the assigner's.
    priority = WorkOrder.Priority(work_order.priority).label
    body = work_order.description[:500] or gettext_lazy("Open it to see what is needed.")
    if work_order.due_at is not None:
        due = format_lazy(
            gettext_lazy("Due {when}."), when=lazy_date_time(work_order.due_at, work_order.organization.zone)
        )
        body = format_lazy("{body}\n\n{due}", body=body, due=due)
    context = {
        "title": format_lazy(
            "{priority}: {number} {title}", priority=priority, number=work_order.number, title=work_order.title
        ),
        "body": body,
        "url": f"/t/orders/{work_order.pk}/",
        "work_order": work_order.pk,
    }
    if work_order.assignee_id is not None:
        if work_order.assignee_id != getattr(assigned_by, "pk", None):
            notify(work_order.organization, [work_order.assignee], "work-order:assigned", context)
        return
    members = [user for user in work_order.team.members.all() if user.pk != getattr(assigned_by, "pk", None)]
    if members:
        notify(work_order.organization, members, "work-order:urgent", context)


def _start(work_order: WorkOrder, membership: Membership | None, actor) -> None:
    if work_order.status == Status.ASSIGNED:
        if membership is not None and not _supervises(membership) and not _is_on_it(work_order, actor):
            raise PermissionDeniedError(
                _("%(number)s is not assigned to you.") % {"number": work_order.number}, code="not_your_work"
            )
        return
    # from open: an emergency anyone on the crew may start; otherwise only by claiming it
    if work_order.type == WorkOrder.Type.EMERGENCY:
        if actor is not None and membership is not None and work_order.assignee_id is None:
            work_order.assignee = actor
        return
    if membership is None:
        raise Conflict(_("%(number)s is not assigned: assign it before starting it.") % {"number": work_order.number})
    if not work_order.organization.technicians_can_claim:
        raise Conflict(
            _(
                "%(number)s is not assigned, and %(organization)s does not let technicians claim work: ask a planner "
                "to assign it."
            )
            % {"number": work_order.number, "organization": work_order.organization.name},
            code="claiming_disabled",
        )
    work_order.assignee = actor  # claimed


def _check_checklist_complete(work_order: WorkOrder) -> None:
    missing = [item.text for item in work_order.checklist.filter(required=True, done=False).order_by("position", "id")]
    if missing:
        listed = "; ".join(f"“{text}”" for text in missing)
        raise Conflict(
            ngettext(
                "Cannot complete %(number)s: %(count)s required checklist item(s) are not done: %(items)s.",
                "Cannot complete %(number)s: %(count)s required checklist item(s) are not done: %(items)s.",
                len(missing),
            )
            % {"number": work_order.number, "count": len(missing), "items": listed},
            code="checklist_incomplete",
            missing_items=missing,
        )


def _start_downtime(work_order: WorkOrder, at) -> None:
    """Work that needs downtime marks its asset down; a downtime it opens records the order as its cause."""
    already_down = work_order.asset.downtimes.filter(ended_at__isnull=True).exists()
    downtime = asset_services.mark_asset_down(
        work_order.asset, reason=f"{work_order.number}: {work_order.title}", at=at
    )
    if not already_down:
        link_downtime(downtime, caused_by=work_order)


def _end_downtime(work_order: WorkOrder, at) -> None:
    if work_order.asset_id and work_order.asset.downtimes.filter(ended_at__isnull=True).exists():
        downtime = asset_services.mark_asset_up(work_order.asset, at=at)
        if downtime is not None:
            link_downtime(downtime, ended_by=work_order)


@transaction.atomic
def link_downtime(downtime: Downtime, *, caused_by: WorkOrder | None = None, ended_by=None) -> DowntimeLink:
    """Record the work order that took an asset down (`caused_by`) or brought it back (`ended_by`). A cause
    already recorded is kept (two orders starting on one asset: the first took it down). Callers hold the
    asset's lock (the asset services take it), so one downtime gets one link."""
    link = DowntimeLink.objects.select_for_update().filter(downtime=downtime).first()
    if link is None:
        link = DowntimeLink(
            organization_id=downtime.organization_id, downtime=downtime, caused_by=caused_by, ended_by=ended_by
        )
        link.save()
        return link
    changed = []
    if caused_by is not None and link.caused_by_id is None:
        link.caused_by = caused_by
        changed.append("caused_by")
    if ended_by is not None and link.ended_by_id != ended_by.pk:
        link.ended_by = ended_by
        changed.append("ended_by")
    if changed:
        link.save(update_fields=[*changed, "updated_at"])
    return link


@audit.attributed
def assign(work_order, assignee, *, actor):
    return transition(work_order, "assign", actor=actor, assignee=assignee)


@audit.attributed
def start(work_order, *, actor):
    return transition(work_order, "start", actor=actor)


@audit.attributed
def hold(work_order, *, reason, actor):
    return transition(work_order, "hold", actor=actor, reason=reason)


@audit.attributed
def resume(work_order, *, actor):
    return transition(work_order, "resume", actor=actor)


@audit.attributed
def complete(work_order, *, actor, notes="", failure_codes=None):
    return transition(work_order, "complete", actor=actor, notes=notes, failure_codes=failure_codes)


def _set_failure_codes(work_order: WorkOrder, codes: dict) -> None:
    """Put the failure codes given at completion on the order, then refuse completion if the organisation requires
    codes and some are missing (`WorkOrder.missing_failure_codes`)."""
    unknown = set(codes) - set(FAILURE_CODE_FIELDS)
    if unknown:
        raise InvalidInput(
            _("Failure codes are %(fields)s.") % {"fields": ", ".join(FAILURE_CODE_FIELDS)},
            fields={name: [_("Unknown.")] for name in unknown},
        )
    for field, code in codes.items():
        if code is not None:
            setattr(work_order, field, code)
    errors = {}
    try:
        work_order.clean()
    except ValidationError as error:
        errors = {name: list(messages) for name, messages in error.message_dict.items() if name in FAILURE_CODE_FIELDS}
    for field in work_order.missing_failure_codes:
        errors.setdefault(field, [_("Required to complete corrective and emergency work.")])
    if errors:
        raise InvalidInput(
            _(
                "%(number)s needs a valid problem, cause and remedy code to be completed (%(organization)s requires "
                "failure codes on corrective and emergency work)."
            )
            % {"number": work_order.number, "organization": work_order.organization.name},
            fields=errors,
        )


@audit.attributed
def cancel(work_order, *, reason, actor, parts_disposition=None):
    return transition(work_order, "cancel", actor=actor, reason=reason, parts_disposition=parts_disposition)


OFFLINE_STEPS = ("start", "hold", "resume", "complete")


def assigned_since(work_order: WorkOrder, user) -> datetime:
    """Since when the order has been `user`'s: the start of the latest unbroken run of history rows
    assigning it to them (or to a team of theirs), else its creation. A step done offline before that was done
    on somebody else's work."""
    since = work_order.created_at
    team_ids = set(
        Team.objects.filter(organization_id=work_order.organization_id, members=user).values_list("pk", flat=True)
    )
    for record in work_order.history.order_by("-history_date", "-history_id").only(
        "history_date", "assignee_id", "team_id"
    )[:200]:
        if record.assignee_id == user.pk or (record.assignee_id is None and record.team_id in team_ids):
            since = record.history_date
        else:
            break
    return since


def check_occurred_at(work_order: WorkOrder, occurred_at: datetime, user) -> None:
    """A device time is believed within bounds: not beyond the allowed clock skew in the future, not older than
    OFFLINE_MAX_AGE days, not before the order became `user`'s. Refusals name the field `occurred_at`, in the
    reader's language (the phone lists them)."""
    now = timezone.now()

    def refuse(message):
        raise InvalidInput(message, fields={"occurred_at": [message]}, code="occurred_at_out_of_bounds")

    if timezone.is_naive(occurred_at):
        refuse(_("Send the time it happened with its UTC offset."))
    if occurred_at > now + timedelta(seconds=settings.OFFLINE_MAX_SKEW_SECONDS):
        refuse(
            _("The time it happened (%(time)s UTC) is in the future: check the phone's clock.")
            % {"time": f"{occurred_at:%Y-%m-%d %H:%M}"}
        )
    if occurred_at < now - timedelta(days=settings.OFFLINE_MAX_AGE_DAYS):
        refuse(
            _("This was done more than %(days)s days ago: it is too old to apply.")
            % {"days": settings.OFFLINE_MAX_AGE_DAYS}
        )
    since = assigned_since(work_order, user)
    if occurred_at < since - timedelta(seconds=settings.OFFLINE_MAX_SKEW_SECONDS):
        refuse(
            _("This was done at %(time)s UTC, before %(number)s was yours (%(since)s UTC).")
            % {"time": f"{occurred_at:%Y-%m-%d %H:%M}", "number": work_order.number, "since": f"{since:%Y-%m-%d %H:%M}"}
        )


VERSION_LOOKBACK = 200  # history rows read after the phone's version: an order changes far less between two syncs


VERSION = re.compile(r"^(\d{1,18})\.(\d{1,18})$")


def _required_item_change(record, before) -> str | None:
    """What a checklist history row by somebody else did to the required items a phone checked before completing
    offline (`before`: the item's previous row, None when there is none): added or removed a required item, made
    an item required, or changed a required item's text, kind or unit. None when completing did not rely on it
    (a tick, an optional item, an item made optional)."""
    values = {"item": record.text}
    if record.history_type == "+":
        return _("added the required checklist item “%(item)s”") % values if record.required else None
    if record.history_type == "-":
        return _("removed the required checklist item “%(item)s”") % values if record.required else None
    if before is None or not record.required:
        return None
    if not before.required:
        return _("made the checklist item “%(item)s” required") % values
    if before.text != record.text:
        return _("changed the required checklist item “%(before)s” to “%(item)s”") % {**values, "before": before.text}
    if before.kind != record.kind or before.unit != record.unit:
        return _("changed what the required checklist item “%(item)s” asks for") % values
    return None


def check_version(work_order: WorkOrder, version: str | None, *, actor, item=None, checklist: bool = False) -> None:
    """An action a phone made against `version` of the order (`WorkOrder.version`: the latest history rows of the
    order and of its checklist that the phone had) is stale when somebody else changed, since then, what it relied
    on: the order's status (always); with `item`, that checklist item (edited, answered or removed); with
    `checklist`, the required items (`_required_item_change`: one added, removed, made required, or its text or
    kind edited — completing relied on the list the phone checked). A Conflict (409, `stale_version`) naming who
    changed what and when, in the reader's language; the technician's own changes (this phone's earlier steps) are
    not a conflict. No version (a client online, one that does not send it, or a refusal the technician chose to
    apply anyway): nothing to compare. At most four queries whatever the checklist's length."""
    check_actor(actor)
    if not version:
        return
    match = VERSION.match(str(version))
    base = match and work_order.history.filter(history_id=int(match[1])).values("status").first()
    if not base:
        raise InvalidInput(
            _("%(number)s has no version “%(version)s”: save the order for offline again.")
            % {"number": work_order.number, "version": str(version)[:40]},
            fields={"version": [_("Not a version of this order.")]},
            code="unknown_version",
        )
    order_version, checklist_version = int(match[1]), int(match[2])

    def stale(record, what: str):
        user = record.history_user
        who = (user.get_full_name() or user.get_username()) if user else _("The system")
        raise Conflict(
            _(
                "%(who)s %(what)s at %(time)s, after this phone saved %(number)s: what was done here was done on an "
                "older version of the order."
            )
            % {
                "who": who,
                "what": what,
                "time": f"{timezone.localtime(record.history_date):%Y-%m-%d %H:%M}",
                "number": work_order.number,
            },
            code="stale_version",
            current_version=work_order.version,
        )

    status = base["status"]
    for record in (
        work_order.history.filter(history_id__gt=order_version)
        .select_related("history_user")
        .order_by("history_id")[:VERSION_LOOKBACK]
    ):
        if record.status != status and record.history_user_id != actor.pk:
            stale(
                record,
                _("changed %(number)s to “%(status)s”")
                % {"number": work_order.number, "status": record.get_status_display().lower()},
            )
        status = record.status
    items = ChecklistItem.history.filter(work_order_id=work_order.pk, history_id__gt=checklist_version)
    items = items.exclude(history_user_id=actor.pk).select_related("history_user").order_by("history_id")
    if item is not None:
        record = items.filter(id=item.pk).first()
        if record is not None:
            stale(record, _("changed the checklist item “%(item)s”") % {"item": record.text})
    if checklist:
        changed = list(items[:VERSION_LOOKBACK])
        if not changed:
            return
        # Each changed item's rows up to the last change, in order: a row's previous one is what it changed.
        rows = ChecklistItem.history.filter(
            work_order_id=work_order.pk,
            id__in={record.id for record in changed},
            history_id__lte=changed[-1].history_id,
        ).only("history_id", "id", "text", "kind", "unit", "required")
        previous, before = {}, {}
        for row in rows.order_by("history_id"):
            before[row.history_id] = previous.get(row.id)
            previous[row.id] = row
        for record in changed:
            what = _required_item_change(record, before.get(record.history_id))
            if what:
                stale(record, what)


@audit.attributed
@transaction.atomic
def apply_offline_action(
    work_order: WorkOrder,
    action: str,
    *,
    actor,
    client_id: str,
    occurred_at: datetime,
    text: str = "",
    version: str | None = None,
    failure_codes: dict | None = None,
) -> OfflineAction:
    """A lifecycle step a phone queued offline (start, hold with its reason, resume, complete with its notes),
    applied once per client id through `transition`, dated `occurred_at` (checked by `check_occurred_at`).
    The same client id with the same step is a replay (nothing happens); with another step a Conflict. A step
    that no longer applies (the order reassigned, cancelled, completed meanwhile) is the transition's own
    refusal, which the phone shows to the technician. `version`: the order as the phone had it when the step was
    made; a step made on an order someone else changed since is refused as stale (`check_version`).
    `failure_codes`: what completing sets, as `complete` takes them."""
    check_actor(actor)
    if action not in OFFLINE_STEPS:
        raise InvalidInput(
            _("“%(action)s” cannot be done offline; use one of %(steps)s.")
            % {"action": action, "steps": ", ".join(OFFLINE_STEPS)}
        )
    if not client_id:
        raise InvalidInput(_("Send the step with its client id."), fields={"client_id": [_("Required.")]})
    text = text or ""

    def apply() -> OfflineAction:
        check_occurred_at(work_order, occurred_at, actor)
        # A step that no longer applies (not yours, or the order closed meanwhile) is the transition's own
        # refusal, in its words; only a step that still applies is compared with the version the phone had.
        still_applies = work_order.status in TRANSITIONS[action][0] and may_work_on(work_order, actor=actor)
        if version and still_applies:
            check_version(work_order, version, actor=actor, checklist=action == "complete")
        extra = {"reason": text} if action == "hold" else {}
        if action == "complete":
            extra = {"notes": text, "failure_codes": failure_codes}
        transition(work_order, action, actor=actor, occurred_at=occurred_at, **extra)
        return OfflineAction.objects.create(
            organization_id=work_order.organization_id,
            work_order=work_order,
            author=actor,
            action=action,
            text=text,
            occurred_at=occurred_at,
            client_id=client_id,
        )

    return client_ids.apply_once(
        OfflineAction,
        client_id=client_id,
        scope={"organization_id": work_order.organization_id, "author": actor},
        sent={"work_order_id": work_order.pk, "action": action, "text": text, "occurred_at": occurred_at},
        create=apply,
        describe=lambda record: {
            "kind": "offline_action",
            "id": record.pk,
            "label": f"offline {record.action} of {record.work_order.number}",
        },
    )


@audit.attributed
@transaction.atomic
def delete_work_order(work_order: WorkOrder, *, actor) -> None:
    """Delete an order created by mistake; one with any activity must be cancelled instead (409)."""
    work_order = _locked(work_order)
    _require(_membership(work_order, actor), Action.CREATE_WORK)
    activity = []
    if work_order.status != Status.OPEN and work_order.status != Status.ASSIGNED:
        activity.append(_("it is %(status)s") % {"status": str(work_order.get_status_display()).lower()})
    for relation, reason in (
        ("comments", gettext_lazy("it has comments")),
        ("time_entries", gettext_lazy("it has time entries")),
        ("cost_lines", gettext_lazy("it has costs")),
        ("attachments", gettext_lazy("it has attachments")),
        ("follow_ups", gettext_lazy("it has follow-ups")),
    ):
        if getattr(work_order, relation).exists():
            activity.append(str(reason))
    if work_order.checklist.filter(done=True).exists():
        activity.append(_("checklist items are done"))
    if activity:
        raise Conflict(
            _("%(number)s cannot be deleted because %(reasons)s: cancel it instead.")
            % {"number": work_order.number, "reasons": _(", and ").join(activity)},
            code="has_activity",
        )
    publish(work_order.organization, "work-order:updated", _payload(work_order, change="deleted"))
    work_order.delete()


# --- checklists -----------------------------------------------------------------------------------------


@transaction.atomic
def apply_procedure(work_order: WorkOrder, procedure: Procedure) -> list[ChecklistItem]:
    """Copy a procedure's steps onto the work order's checklist (after any existing items)."""
    if procedure.organization_id != work_order.organization_id:
        raise NotFound(_("No such procedure."))
    start_at = (work_order.checklist.order_by("-position").values_list("position", flat=True).first() or 0) + 1
    items = [
        ChecklistItem(
            organization_id=work_order.organization_id,
            work_order=work_order,
            position=start_at + index,
            **{name: getattr(step, name) for name in STEP_FIELDS},
        )
        for index, step in enumerate(procedure.items.order_by(*STEP_ORDER))
    ]
    return audit.bulk_create_with_history(items, ChecklistItem)


@audit.attributed
@transaction.atomic
def add_checklist_item(work_order, *, text, kind=ItemKind.TICK, required=True, unit="", actor) -> ChecklistItem:
    work_order = _locked(work_order)
    _require(_membership(work_order, actor), Action.CREATE_WORK)
    position = (work_order.checklist.order_by("-position").values_list("position", flat=True).first() or 0) + 1
    item = ChecklistItem(
        organization_id=work_order.organization_id,
        work_order=work_order,
        position=position,
        text=text,
        kind=kind,
        unit=unit,
        required=required,
    )
    validated(item).save()
    return item


@audit.attributed
@transaction.atomic
def record_checklist_result(
    item: ChecklistItem,
    *,
    actor,
    done: bool | None = None,
    passed: bool | None = None,
    number_value=None,
    text_value: str | None = None,
    client_id: str = "",
    occurred_at: datetime | None = None,
    version: str | None = None,
) -> ChecklistItem:
    """Tick an item or enter its result. A replay with the same client id changes nothing. From a phone's offline
    queue: `occurred_at` (the device's time, bounds-checked) dates the result and its history row, and `version`
    (the order as the phone had it) refuses a result on an item someone else changed since."""
    item = ChecklistItem.objects.select_for_update(of=("self",)).select_related("work_order").get(pk=item.pk)
    work_order = item.work_order
    if client_id and item.client_id == client_id:
        return item
    check_may_work_on(work_order, actor=actor)
    if occurred_at is not None:
        check_occurred_at(work_order, occurred_at, actor)
    if work_order.status not in (Status.IN_PROGRESS, Status.ASSIGNED, Status.OPEN, Status.ON_HOLD):
        raise Conflict(
            _("%(number)s is %(status)s: its checklist can no longer change.")
            % {"number": work_order.number, "status": work_order.get_status_display().lower()},
            code="work_order_closed",
        )
    check_version(work_order, version, actor=actor, item=item)  # after: a closed order's refusal says why
    if item.kind == ItemKind.TICK:
        item.done = bool(done) if done is not None else True
    elif item.kind == ItemKind.PASS_FAIL:
        if passed is None:
            raise InvalidInput(
                _("“%(item)s” needs a pass or a fail.") % {"item": item.text}, fields={"passed": [_("Required.")]}
            )
        item.passed, item.done = passed, True
    elif item.kind == ItemKind.NUMBER:
        if number_value in (None, ""):
            raise InvalidInput(
                _("“%(item)s” needs a number.") % {"item": item.text}, fields={"number_value": [_("Required.")]}
            )
        try:
            item.number_value = Decimal(str(number_value))
            if not item.number_value.is_finite() or abs(item.number_value) >= Decimal("1e10"):
                raise InvalidOperation
        except InvalidOperation:
            raise InvalidInput(
                _("“%(value)s” is not a number.") % {"value": number_value},
                fields={"number_value": [_("Not a number.")]},
            ) from None
        item.done = True
    else:
        if not (text_value or "").strip():
            raise InvalidInput(
                _("“%(item)s” needs an answer.") % {"item": item.text}, fields={"text_value": [_("Required.")]}
            )
        item.text_value, item.done = text_value.strip(), True
    if done is False:
        item.done, item.passed, item.number_value, item.text_value = False, None, None, ""
    item.done_by = actor if item.done else None
    item.done_at = (occurred_at or timezone.now()) if item.done else None
    item.client_id = client_id or item.client_id
    if occurred_at is not None:
        item._history_date = occurred_at  # the history row dated by the device; updated_at is the sync time
    item.save()
    _publish_updated(work_order, "checklist", item=item.pk)
    return item


@audit.attributed
@transaction.atomic
def raise_follow_up(item: ChecklistItem, *, actor, title: str = "", priority: str | None = None) -> WorkOrder:
    """A failed pass/fail item opens a corrective follow-up work order linked to the first."""
    item = ChecklistItem.objects.select_for_update(of=("self",)).select_related("work_order").get(pk=item.pk)
    original = item.work_order
    if item.kind != ItemKind.PASS_FAIL or item.passed is not False:
        raise Conflict(_("Only a failed pass/fail item raises a follow-up."), code="not_failed")
    if item.follow_up_id:
        return item.follow_up
    check_may_work_on(original, actor=actor)
    follow_up = create_work_order(
        original.organization,
        title=title or f"Follow-up: {item.text} failed on {original.number}",
        description=f"Raised from {original.number} “{original.title}”: checklist item “{item.text}” failed.",
        type=WorkOrder.Type.CORRECTIVE,
        priority=priority or original.priority,
        asset=original.asset,
        location=original.location,
        source=WorkOrder.Source.FOLLOW_UP,
        parent=original,
        actor=actor,
        _raised_on_the_job=True,
    )
    item.follow_up = follow_up
    item.save(update_fields=["follow_up", "updated_at"])
    return follow_up


# --- comments, time, costs, attachments -----------------------------------------------------------------


@audit.attributed
@transaction.atomic
def add_comment(
    work_order: WorkOrder, *, actor, body: str, client_id: str = "", occurred_at: datetime | None = None
) -> Comment:
    """Add a note (who may: `check_may_annotate`). A replayed client id applies once. `occurred_at`: when it was
    written on the phone (bounds-checked), kept beside the arrival time and dating the history row."""
    work_order = _locked(work_order)
    check_may_annotate(work_order, actor=actor)
    if not (body or "").strip():
        raise InvalidInput(_("A comment needs some text."), fields={"body": [_("Required.")]})
    if occurred_at is not None:
        check_occurred_at(work_order, occurred_at, actor)

    def create() -> Comment:
        comment = Comment(
            organization_id=work_order.organization_id,
            work_order=work_order,
            author=actor,
            body=body.strip(),
            client_id=client_id,
            occurred_at=occurred_at,
        )
        if occurred_at is not None:
            comment._history_date = occurred_at
        comment.save()
        _publish_updated(work_order, "comment", comment=comment.pk)
        return comment

    return client_ids.apply_once(
        Comment,
        client_id=client_id,
        scope={"organization_id": work_order.organization_id, "author": actor},
        sent={"work_order_id": work_order.pk, "body": body.strip()},
        create=create,
        describe=_described_comment,
    )


def _described_comment(comment: Comment) -> dict:
    number = comment.work_order.number
    return {"kind": "comment", "id": comment.pk, "work_order": number, "label": f"comment #{comment.pk} on {number}"}


def _hourly_rate(work_order: WorkOrder, technician) -> Decimal:
    rate = (
        Membership.objects.filter(organization_id=work_order.organization_id, user=technician)
        .values_list("hourly_rate", flat=True)
        .first()
    )
    return rate or Decimal("0")


@audit.attributed
@transaction.atomic
def log_time(
    work_order: WorkOrder,
    *,
    actor,
    minutes: int,
    technician=None,
    note: str = "",
    client_id: str = "",
    occurred_at: datetime | None = None,
) -> TimeEntry:
    """Record minutes worked; the technician's hourly rate is copied now (labour cost = minutes × rate).
    `occurred_at`: when the work ended on the phone (bounds-checked): the entry spans the minutes before it, so
    the labour counts in the period it was done, whenever it was synced (created_at)."""
    work_order = _locked(work_order)
    technician = technician or actor
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        raise InvalidInput(
            _("“%(minutes)s” is not a whole number of minutes.") % {"minutes": minutes},
            fields={"minutes": [_("Whole number.")]},
        ) from None
    if minutes <= 0 or minutes > 24 * 60:
        raise InvalidInput(_("Minutes must be between 1 and 1440."), fields={"minutes": [_("Between 1 and 1440.")]})
    membership = check_may_work_on(work_order, actor=actor)
    if technician != actor:
        if not _supervises(membership):
            raise PermissionDeniedError(_("Only planners and managers log time for someone else."))
        validate_assignee(work_order.organization_id, technician)
    if occurred_at is not None:
        check_occurred_at(work_order, occurred_at, actor)
    span = {"started_at": occurred_at - timedelta(minutes=minutes), "ended_at": occurred_at} if occurred_at else {}

    def create() -> TimeEntry:
        if work_order.status in (Status.CANCELLED,):
            raise Conflict(
                _("%(number)s is cancelled: no more time can be logged.") % {"number": work_order.number},
                code="work_order_closed",
            )
        entry = TimeEntry.objects.create(
            organization_id=work_order.organization_id,
            work_order=work_order,
            technician=technician,
            entered_by=actor,
            minutes=minutes,
            hourly_rate=_hourly_rate(work_order, technician),
            note=note,
            client_id=client_id,
            **span,
        )
        _publish_updated(work_order, "time", time_entry=entry.pk)
        return entry

    return client_ids.apply_once(
        TimeEntry,
        client_id=client_id,
        scope={"organization_id": work_order.organization_id, "entered_by": actor},
        sent={"work_order_id": work_order.pk, "technician_id": technician.pk, "minutes": minutes, "note": note},
        create=create,
        describe=_described_time_entry,
    )


def _described_time_entry(entry: TimeEntry) -> dict:
    number = entry.work_order.number
    return {
        "kind": "time_entry",
        "id": entry.pk,
        "work_order": number,
        "label": f"time entry #{entry.pk} ({entry.minutes} min on {number})",
    }


@audit.attributed
@transaction.atomic
def start_timer(work_order: WorkOrder, *, actor) -> TimeEntry:
    """Start the actor's timer on an order (one running timer per person)."""
    work_order = _locked(work_order)
    check_may_work_on(work_order, actor=actor)
    running = TimeEntry.objects.filter(technician=actor, minutes__isnull=True).select_related("work_order").first()
    if running is not None:
        raise Conflict(
            _("Your timer is already running on %(number)s; stop it first.") % {"number": running.work_order.number},
            code="timer_running",
        )
    return TimeEntry.objects.create(
        organization_id=work_order.organization_id,
        work_order=work_order,
        technician=actor,
        entered_by=actor,
        started_at=timezone.now(),
        hourly_rate=_hourly_rate(work_order, actor),
    )


@audit.attributed
@transaction.atomic
def stop_timer(work_order: WorkOrder, *, actor) -> TimeEntry:
    work_order = _locked(work_order)
    entry = (
        TimeEntry.objects.select_for_update()
        .filter(work_order=work_order, technician=actor, minutes__isnull=True)
        .first()
    )
    if entry is None:
        raise Conflict(_("You have no timer running on this order."), code="no_timer")
    entry.ended_at = timezone.now()
    entry.minutes = max(1, round((entry.ended_at - entry.started_at).total_seconds() / 60))
    entry.save()
    _publish_updated(work_order, "time", time_entry=entry.pk)
    return entry


@audit.attributed
@transaction.atomic
def add_cost_line(work_order: WorkOrder, *, actor, description: str, amount) -> CostLine:
    """Record another cost (contractor, rental); totals are computed, never typed."""
    work_order = _locked(work_order)
    _require(_membership(work_order, actor), Action.CREATE_WORK)
    try:
        amount = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidInput(
            _("“%(amount)s” is not an amount.") % {"amount": amount}, fields={"amount": [_("Not a number.")]}
        ) from None
    if amount < 0:
        raise InvalidInput(_("A cost cannot be negative."), fields={"amount": [_("Must be zero or more.")]})
    line = CostLine(
        organization_id=work_order.organization_id,
        work_order=work_order,
        description=description,
        amount=amount,
        added_by=actor,
    )
    validated(line).save()
    _publish_updated(work_order, "cost", cost_line=line.pk)
    return line


def parts_cost(work_order: WorkOrder) -> Decimal:
    """What the parts issued to the order cost, from the stock ledger (the inventory answers the
    `work_order_parts_cost` hook; 0 without it)."""
    return sum(hooks.work_order_parts_cost(work_order), Decimal("0.00"))


# What higher apps show per order in lists (the `work_order_list` hook point), with the type each has.
LIST_EXTENSIONS = {
    "sla_state": CharField(),
    "response_due_at": DateTimeField(),
    "resolution_due_at": DateTimeField(),
    "sla_due_at": DateTimeField(),
    "sla_warning_at": DateTimeField(),
}


def with_extensions(queryset):
    """Work orders with what higher apps show per order joined in (SLA state and deadlines, through the
    `work_order_list` hook point) in the same query; an annotation no app adds is None."""
    queryset = hooks.work_order_list.pipe(queryset)
    missing = {
        name: Value(None, output_field=field)
        for name, field in LIST_EXTENSIONS.items()
        if name not in queryset.query.annotations
    }
    return queryset.annotate(**missing) if missing else queryset


def sla_summary(work_order: WorkOrder) -> dict | None:
    """The order's SLA for display (the `work_order_sla` hook point): None when no policy covers it."""
    return next((summary for summary in hooks.work_order_sla(work_order) if summary is not None), None)


def cost_totals(work_order: WorkOrder) -> dict[str, Decimal]:
    """Labour (time × copied rates), parts (ledger) and other costs, and their total."""
    labour = sum((entry.cost for entry in work_order.time_entries.all()), Decimal("0.00"))
    other = work_order.cost_lines.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    parts = parts_cost(work_order)
    return {
        "labour": labour.quantize(Decimal("0.01")),
        "parts": Decimal(parts).quantize(Decimal("0.01")),
        "other": Decimal(other).quantize(Decimal("0.01")),
        "total": (labour + parts + other).quantize(Decimal("0.01")),
    }


def check_upload(uploaded) -> str:
    """The type to store: detected from the content (`workorders.uploads`), never taken from the client."""
    if uploaded.size > ATTACHMENT_MAX_BYTES:
        raise InvalidInput(
            _("The file is %(size)s MB; the limit is %(limit)s MB.")
            % {"size": uploaded.size // 2**20, "limit": ATTACHMENT_MAX_BYTES // 2**20},
            fields={"file": [_("Too large.")]},
        )
    if uploaded.size == 0:
        raise InvalidInput(_("The file is empty."), fields={"file": [_("Empty.")]})
    return uploads.accepted_type(uploaded, allowed=ATTACHMENT_TYPES, offer=ATTACHMENT_OFFER)


@audit.attributed
@transaction.atomic
def add_attachment(
    *, uploaded, actor, work_order: WorkOrder | None = None, request: WorkRequest | None = None
) -> Attachment:
    """Store a file on a work order or a request (type and size checked)."""
    if work_order is None and request is None:
        raise InvalidInput(_("An attachment belongs to a work order or a request."))
    if work_order is not None:
        check_may_annotate(work_order, actor=actor)
    attachment = _store_attachment(uploaded, work_order=work_order, request=request, uploaded_by=actor)
    if work_order is not None:
        _publish_updated(work_order, "attachment", attachment=attachment.pk)
    return attachment


def _store_attachment(uploaded, *, work_order=None, request=None, uploaded_by=None) -> Attachment:
    owner = work_order or request
    content_type = check_upload(uploaded)
    attachment = Attachment(
        organization_id=owner.organization_id,
        work_order=work_order,
        request=request,
        token=secrets.token_urlsafe(16),
        original_name=(uploaded.name or "file")[-255:],
        content_type=content_type,
        size=uploaded.size,
        uploaded_by=uploaded_by,
    )
    attachment.file.save(attachment.original_name.replace("/", "_"), uploaded, save=False)
    attachment.save()
    return attachment


# --- resumable uploads (photos a phone took offline) -----------------------------------------------------

UPLOAD_PIECE_MAX_BYTES = 1024 * 1024  # one piece of an upload; the phone sends 256 kB


def _described_upload(upload: ResumableUpload) -> dict:
    return {"kind": "upload", "id": upload.client_id, "label": f"upload “{upload.name}” ({upload.size} bytes)"}


@audit.attributed
@transaction.atomic
def start_upload(
    work_order: WorkOrder, *, actor, client_id: str, name: str, size: int, occurred_at: datetime | None = None
) -> ResumableUpload:
    """Announce a file (a photo taken offline) that will arrive in pieces: who may is `check_may_annotate`, the
    size is checked against the attachment limit now. The same client id again with the same order, name and size
    is the same upload (its state comes back, to continue from `received`); with others a Conflict."""
    check_actor(actor)
    check_may_annotate(work_order, actor=actor)
    client_id = (client_id or "").strip()
    name = (name or "").strip().replace("/", "_")[-255:] or "photo"
    if not client_id or len(client_id) > 64:
        raise InvalidInput(
            _("Send the file's client id (at most 64 characters)."), fields={"client_id": [_("Required.")]}
        )
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidInput(_("Send the file's size in bytes."), fields={"size": [_("A positive whole number.")]})
    if size > ATTACHMENT_MAX_BYTES:
        raise InvalidInput(
            _("The file is %(size)s MB; the limit is %(limit)s MB.")
            % {"size": size // 2**20, "limit": ATTACHMENT_MAX_BYTES // 2**20},
            fields={"size": [_("Too large.")]},
        )
    if occurred_at is not None:
        check_occurred_at(work_order, occurred_at, actor)

    def create() -> ResumableUpload:
        return ResumableUpload.objects.create(
            organization_id=work_order.organization_id,
            work_order=work_order,
            author=actor,
            client_id=client_id,
            name=name,
            size=size,
            occurred_at=occurred_at,
        )

    return client_ids.apply_once(
        ResumableUpload,
        client_id=client_id,
        scope={"organization_id": work_order.organization_id, "author": actor},
        sent={"work_order_id": work_order.pk, "name": name, "size": size},
        create=create,
        describe=_described_upload,
    )


@audit.attributed
@transaction.atomic
def receive_upload_piece(upload: ResumableUpload, *, actor, offset: int, piece: bytes) -> ResumableUpload:
    """The piece of `upload` that starts at byte `offset`. It must start where the bytes received end (else a
    Conflict carrying `offset`, where to continue: a piece lost or sent twice never corrupts the file). The last
    piece turns the bytes into an attachment of the order through `add_attachment` (type by content, size, who
    may; a photo is downscaled and stripped of EXIF first), once: a piece sent again after that changes nothing."""
    check_actor(actor)
    upload = ResumableUpload.objects.select_for_update().select_related("work_order").get(pk=upload.pk)
    if upload.author_id != actor.pk:
        raise NotFound(_("No such upload."))
    if upload.complete:
        upload.replayed = True
        return upload
    if offset != upload.received:
        raise Conflict(
            _("This upload has %(received)s of its %(size)s bytes: continue from byte %(received)s.")
            % {"received": upload.received, "size": upload.size},
            code="upload_offset_mismatch",
            offset=upload.received,
        )
    if not piece:
        raise InvalidInput(_("The piece is empty: send the bytes that follow."), fields={"body": [_("Empty.")]})
    if len(piece) > UPLOAD_PIECE_MAX_BYTES:
        raise InvalidInput(
            _("Send at most %(size)s kB at a time.") % {"size": UPLOAD_PIECE_MAX_BYTES // 1024},
            fields={"body": [_("Too large.")]},
        )
    if upload.received + len(piece) > upload.size:
        raise InvalidInput(
            _("This piece goes past the %(size)s bytes announced.") % {"size": upload.size},
            fields={"body": [_("Longer than announced.")]},
        )
    upload.data = bytes(upload.data) + piece
    upload.received += len(piece)
    if upload.received == upload.size:
        upload.attachment = _attach_upload(upload, actor)
        upload.data = b""
    upload.save()
    return upload


@audit.attributed
def discard_abandoned_uploads(*, actor, now: datetime | None = None) -> int:
    """Forget the bytes of uploads left unfinished for longer than a phone may keep work offline
    (OFFLINE_MAX_AGE_DAYS since their last piece): the phone was reset, or its photo discarded. One DELETE of
    unfinished rows: run twice, or on two machines at once, the second deletes nothing. Returns how many."""
    check_actor(actor)
    cutoff = (now or timezone.now()) - timedelta(days=settings.OFFLINE_MAX_AGE_DAYS)
    deleted, _ = ResumableUpload.objects.filter(attachment__isnull=True, updated_at__lt=cutoff).delete()
    return deleted


def _attach_upload(upload: ResumableUpload, actor) -> Attachment:
    # declared generic: the phone's type is not trusted, the content says (check_upload)
    uploaded = SimpleUploadedFile(upload.name, bytes(upload.data), content_type="application/octet-stream")
    if check_upload(uploaded).startswith("image/"):
        uploaded.seek(0)
        uploaded = prepare_photo(uploaded)
    uploaded.seek(0)
    return add_attachment(uploaded=uploaded, actor=actor, work_order=upload.work_order)


# --- work requests --------------------------------------------------------------------------------------


@transaction.atomic
def submit_request(
    organization,
    *,
    description: str,
    asset=None,
    location=None,
    contact_name: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    files=(),
) -> WorkRequest:
    """A problem reported from the public form (no login). Returns the request; its token is the
    requester's link to follow it."""
    if not (description or "").strip():
        raise InvalidInput(_("Describe the problem."), fields={"description": [_("Required.")]})
    if asset is not None and asset.organization_id != organization.pk:
        raise NotFound(_("No such asset."))
    work_request = WorkRequest(
        organization=organization,
        token=secrets.token_urlsafe(16),
        asset=asset,
        location=location or (asset.location if asset else None),
        description=description.strip(),
        contact_name=contact_name,
        contact_email=contact_email,
        contact_phone=contact_phone,
    )
    validated(work_request, exclude=["token"]).save()
    for uploaded in files:
        _store_attachment(uploaded, request=work_request)  # sent by someone without an account
    publish(organization, "work-request:submitted", {"id": work_request.pk, "asset": work_request.asset_id})
    return work_request


def _pending_request(work_request: WorkRequest) -> WorkRequest:
    work_request = WorkRequest.objects.select_for_update().get(pk=work_request.pk)
    if work_request.status != WorkRequest.Status.PENDING:
        raise Conflict(
            _("This request was already %(status)s.") % {"status": work_request.status}, code="already_decided"
        )
    return work_request


@audit.attributed
@transaction.atomic
def approve_request(work_request: WorkRequest, *, actor, **work_order_fields) -> WorkOrder:
    """Turn a request into a work order carrying its description, asset, location and attachments."""
    work_request = _pending_request(work_request)
    _require(_membership(work_request.organization, actor), Action.APPROVE_REQUESTS)
    contact = ", ".join(
        filter(None, [work_request.contact_name, work_request.contact_email, work_request.contact_phone])
    )
    description = work_request.description + (f"\n\nReported by: {contact}" if contact else "")
    work_order_fields.setdefault("title", work_request.description.splitlines()[0][:120])
    work_order = create_work_order(
        work_request.organization,
        actor=actor,
        description=description,
        asset=work_order_fields.pop("asset", work_request.asset),
        location=work_order_fields.pop("location", work_request.location),
        source=WorkOrder.Source.REQUEST,
        **work_order_fields,
    )
    for attachment in work_request.attachments.all():
        attachment.work_order = work_order
        attachment.save(update_fields=["work_order", "updated_at"])
    work_request.status = WorkRequest.Status.APPROVED
    work_request.work_order = work_order
    work_request.decided_by, work_request.decided_at = actor, timezone.now()
    work_request.save()
    return work_order


@audit.attributed
@transaction.atomic
def reject_request(work_request: WorkRequest, *, actor, reason: str) -> WorkRequest:
    """Decline a request; the reason is shown to the requester through their link."""
    if not checked_reason(reason):
        raise InvalidInput(_("Give the requester a reason."), fields={"reason": [_("Required.")]})
    work_request = _pending_request(work_request)
    _require(_membership(work_request.organization, actor), Action.APPROVE_REQUESTS)
    work_request.status = WorkRequest.Status.REJECTED
    work_request.rejection_reason = reason.strip()
    work_request.decided_by, work_request.decided_at = actor, timezone.now()
    work_request.save()
    return work_request


# --- procedures and teams -------------------------------------------------------------------------------

from django.db.models import ProtectedError  # noqa: E402

from workorders.models import ProcedureItem  # noqa: E402

PROCEDURE_FIELDS = {"name", "description"}
PROCEDURE_ITEM_FIELDS = {"text", "kind", "unit", "required", "position"}
TEAM_FIELDS = {"name"}


def _delete_unless_used(instance, what: str) -> None:
    """Delete, or say what still refers to the row (409): work orders, preventive schedules…"""
    try:
        instance.delete()
    except ProtectedError as exc:
        users = ", ".join(sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects}))
        raise Conflict(
            _("The %(what)s “%(name)s” is still used by %(users)s: change those first.")
            % {"what": what, "name": instance, "users": users},
            code="in_use",
        ) from None


def _unknown_fields(given, allowed, what: str) -> None:
    unknown = set(given) - allowed
    if unknown:
        listed = ", ".join(sorted(unknown))
        raise InvalidInput(
            _("A %(what)s has no field(s) %(fields)s.") % {"what": what, "fields": listed},
            fields={name: [_("Unknown field.")] for name in unknown},
        )


def _replace_procedure_items(procedure: Procedure, items) -> list[ProcedureItem]:
    """The procedure's steps become `items` (a list of dicts), in list order unless positions are given."""
    built = []
    for index, raw in enumerate(items):
        _unknown_fields(raw, PROCEDURE_ITEM_FIELDS, gettext_lazy("procedure step"))
        step = ProcedureItem(
            organization_id=procedure.organization_id,
            procedure=procedure,
            text=(raw.get("text") or "").strip(),
            kind=raw.get("kind") or ItemKind.TICK,
            unit=raw.get("unit") or "",
            required=raw.get("required", True),
            position=raw["position"] if raw.get("position") is not None else index + 1,
        )
        try:
            validated(step, exclude=["procedure"])
        except InvalidInput as exc:
            raise InvalidInput(
                _("Step %(position)s: %(problem)s") % {"position": index + 1, "problem": exc.message},
                fields={f"items.{index}.{name}": messages for name, messages in exc.fields.items()},
            ) from None
        built.append(step)
    procedure.items.all().delete()
    return audit.bulk_create_with_history(built, ProcedureItem)


@audit.attributed
@transaction.atomic
def create_procedure(organization, *, name: str, actor, description: str = "", items=()) -> Procedure:
    """Add a procedure to the library with its steps (`items`: dicts of text, kind, unit, required, position)."""
    _require(_membership(organization, actor), Action.CREATE_WORK)
    procedure = validated(Procedure(organization=organization, name=(name or "").strip(), description=description))
    procedure.save()
    _replace_procedure_items(procedure, items)
    return procedure


@audit.attributed
@transaction.atomic
def update_procedure(procedure: Procedure, *, actor, items=None, **changes) -> Procedure:
    """Edit a procedure; `items`, when given, replaces all its steps. Work orders keep the copies they have."""
    procedure = Procedure.objects.select_for_update().get(pk=procedure.pk)
    _require(_membership(procedure, actor), Action.CREATE_WORK)
    _unknown_fields(changes, PROCEDURE_FIELDS, gettext_lazy("procedure"))
    for name, value in changes.items():
        setattr(procedure, name, value.strip() if name == "name" and isinstance(value, str) else value)
    validated(procedure).save()
    if items is not None:
        _replace_procedure_items(procedure, items)
    return procedure


@audit.attributed
@transaction.atomic
def delete_procedure(procedure: Procedure, *, actor) -> None:
    """Remove a procedure from the library (checklists already copied from it stay)."""
    _require(_membership(procedure, actor), Action.CREATE_WORK)
    _delete_unless_used(procedure, gettext_lazy("procedure"))


def _check_team_members(organization_id, members) -> list:
    members = list(members)
    member_ids = set(
        Membership.objects.active()
        .filter(organization_id=organization_id, user__in=members)
        .values_list("user_id", flat=True)
    )
    strangers = [user.get_username() for user in members if user.pk not in member_ids]
    if strangers:
        raise InvalidInput(
            _("Not members of this organisation: %(names)s.") % {"names": ", ".join(strangers)},
            fields={"members": [_("Unknown person.")]},
        )
    return members


@audit.attributed
@transaction.atomic
def create_team(organization, *, name: str, actor, members=()) -> Team:
    """Form a crew that work can be assigned to; every member must belong to the organisation."""
    _require(_membership(organization, actor), Action.ASSIGN_WORK)
    members = _check_team_members(organization.pk, members)
    team = validated(Team(organization=organization, name=(name or "").strip()))
    team.save()
    team.members.set(members)
    return team


@audit.attributed
@transaction.atomic
def update_team(team: Team, *, actor, members=None, **changes) -> Team:
    """Rename a team or replace its members (`members`, when given, is the whole new list)."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    _require(_membership(team, actor), Action.ASSIGN_WORK)
    _unknown_fields(changes, TEAM_FIELDS, gettext_lazy("team"))
    if "name" in changes:
        team.name = (changes["name"] or "").strip()
    validated(team).save()
    if members is not None:
        team.members.set(_check_team_members(team.organization_id, members))
    return team


@audit.attributed
@transaction.atomic
def delete_team(team: Team, *, actor) -> None:
    """Disband a team; one that work orders name must be reassigned first (409)."""
    _require(_membership(team, actor), Action.ASSIGN_WORK)
    _delete_unless_used(team, gettext_lazy("team"))


# --- failure codes and budgets ----------------------------------------------------------------------------------

FAILURE_CODE_EDITABLE = {"kind", "code", "name", "description", "asset_type", "is_active"}


@audit.attributed
@transaction.atomic
def create_failure_code(organization, *, actor, **fields) -> FailureCode:
    """Add a problem, cause or remedy code to the organisation's library (who edits work orders may)."""
    _require(_membership(organization, actor), Action.CREATE_WORK)
    _unknown_fields(fields, FAILURE_CODE_EDITABLE, gettext_lazy("failure code"))
    code = FailureCode(organization=organization, **fields)
    code.code = (code.code or "").strip().upper()
    validated(code).save()
    return code


@audit.attributed
@transaction.atomic
def update_failure_code(code: FailureCode, *, actor, **changes) -> FailureCode:
    """Rename, re-describe, restrict to an asset type or deactivate a code; its kind is fixed once used."""
    code = FailureCode.objects.select_for_update().get(pk=code.pk)
    _require(_membership(code, actor), Action.CREATE_WORK)
    _unknown_fields(changes, FAILURE_CODE_EDITABLE, gettext_lazy("failure code"))
    if "kind" in changes and changes["kind"] != code.kind and _code_in_use(code):
        raise Conflict(
            _("“%(code)s” is on work orders: its kind cannot change (add a new code).") % {"code": code.code},
            code="in_use",
        )
    for name, value in changes.items():
        setattr(code, name, value.strip().upper() if name == "code" else value)
    validated(code).save()
    return code


def _code_in_use(code: FailureCode) -> bool:
    field = {"problem": "problem_code", "cause": "cause_code", "remedy": "remedy_code"}[code.kind]
    return WorkOrder.objects.filter(**{field: code}).exists()


@audit.attributed
@transaction.atomic
def delete_failure_code(code: FailureCode, *, actor) -> None:
    """Delete a code no work order carries; one in use is deactivated instead (409 says so)."""
    _require(_membership(code, actor), Action.CREATE_WORK)
    if _code_in_use(code):
        raise Conflict(
            _("“%(code)s” is on work orders: deactivate it instead (is_active=false).") % {"code": code.code},
            code="in_use",
        )
    code.delete()


BUDGET_FIELDS = {"name", "period", "starts_on", "category", "amount", "location", "asset_type", "asset", "thresholds"}


@audit.attributed
@transaction.atomic
def create_budget(organization, *, actor, **fields) -> Budget:
    """Set a spending limit for a month, quarter or year (managers: `manage_settings`)."""
    _require(_membership(organization, actor), Action.MANAGE_SETTINGS)
    _unknown_fields(fields, BUDGET_FIELDS, gettext_lazy("budget"))
    budget = validated(Budget(organization=organization, **fields))
    budget.save()
    return budget


@audit.attributed
@transaction.atomic
def update_budget(budget: Budget, *, actor, **changes) -> Budget:
    """Change a budget; thresholds already crossed stay recorded (they alerted once)."""
    budget = Budget.objects.select_for_update().get(pk=budget.pk)
    _require(_membership(budget, actor), Action.MANAGE_SETTINGS)
    _unknown_fields(changes, BUDGET_FIELDS, gettext_lazy("budget"))
    for name, value in changes.items():
        setattr(budget, name, value)
    validated(budget).save()
    return budget


@audit.attributed
@transaction.atomic
def delete_budget(budget: Budget, *, actor) -> None:
    _require(_membership(budget, actor), Action.MANAGE_SETTINGS)
    budget.delete()


MAX_BUDGETS_SHOWN = 20  # budgets set against actuals in one answer (each costs one query per category asked)


def _budget_scope(budget: Budget) -> dict:
    return {"location": budget.location_id, "asset_type": budget.asset_type_id, "asset": budget.asset_id}


def budget_figures(budget: Budget, now, committed=None) -> dict:
    """A budget against its actual spend (its own period and scope), the committed spend of open purchase orders
    (organisation-wide budgets of all costs or parts only: purchase orders name no location or asset), the
    forecast to the period's end, and the variance (amount − forecast − committed)."""
    from_analytics = analytics_services.budget_status(
        budget.organization, _budget_scope(budget), budget.category, budget.starts_on, budget.ends_on, now
    )
    takes_commitments = budget.category in ("all", "parts") and not any(_budget_scope(budget).values())
    if takes_commitments and committed is None:
        committed = analytics_registry.function("committed_spend")(budget.organization)
    committed = committed if takes_commitments else Decimal("0.00")
    actual, forecast = from_analytics["actual"], from_analytics["forecast"]
    return {
        "id": budget.pk,
        "name": budget.name,
        "period": budget.period,
        "from": budget.starts_on,
        "to": budget.ends_on,
        "category": budget.category,
        "scope": _budget_scope(budget),
        "amount": budget.amount,
        "actual": actual,
        "committed": committed,
        "forecast": forecast,
        "variance": (budget.amount - forecast - committed).quantize(Decimal("0.01")),
        "used_percent": float(round(100 * (actual + committed) / budget.amount, 1)) if budget.amount else None,
        "thresholds": budget.thresholds,
    }


def budgets_overlapping(organization, first_day, last_day, now) -> list[dict]:
    """The budgets whose period overlaps [first_day, last_day], against their actuals (at most MAX_BUDGETS_SHOWN,
    the earliest first): the analytics `budgets_overlapping` function."""
    budgets = (
        Budget.objects.filter(organization=organization, starts_on__lte=last_day, period__in=Budget.Period.values)
        .select_related("organization")
        .order_by("starts_on", "name")
    )
    chosen = [b for b in budgets[: MAX_BUDGETS_SHOWN * 4] if b.ends_on >= first_day][:MAX_BUDGETS_SHOWN]
    committed = analytics_registry.function("committed_spend")(organization) if chosen else None
    return [budget_figures(budget, now, committed) for budget in chosen]


@audit.attributed
def check_budget_thresholds(*, actor, now=None) -> int:
    """For every budget whose period includes today, record each threshold that actual + committed spend has crossed
    and not yet recorded, and for each new one publish `budget:threshold-crossed` and notify the managers — once:
    the unique (budget, threshold) row decides, so two runs at once or one after the other alert once. Returns the
    crossings recorded. Run by beat (`workorders.tasks.check_budgets`)."""
    check_actor(actor)
    now = now or timezone.now()
    recorded = 0
    today_utc = now.date()
    candidates = Budget.objects.filter(
        starts_on__lte=today_utc + timedelta(days=1),
        starts_on__gte=today_utc - timedelta(days=366 + 1),
        period__in=Budget.Period.values,
    ).select_related("organization")
    for budget in candidates.iterator():
        today = now.astimezone(budget.organization.zone).date()
        if not budget.starts_on <= today <= budget.ends_on:
            continue
        figures = budget_figures(budget, now)
        spend = figures["actual"] + figures["committed"]
        for threshold in sorted(set(budget.thresholds)):
            if budget.amount and spend * 100 >= budget.amount * Decimal(threshold):
                recorded += _record_crossing(budget, int(threshold), spend)
    return recorded


def _record_crossing(budget: Budget, threshold: int, spend: Decimal) -> int:
    with transaction.atomic():
        crossing, created = BudgetCrossing.objects.get_or_create(
            budget=budget, threshold=threshold, defaults={"organization": budget.organization, "spend": spend}
        )
        if not created:
            return 0
        payload = {
            "budget": budget.pk,
            "name": budget.name,
            "threshold": threshold,
            "amount": str(budget.amount),
            "spend": str(spend),
            "currency": budget.organization.currency,
            "from": budget.starts_on.isoformat(),
            "to": budget.ends_on.isoformat(),
        }
        publish(budget.organization, "budget:threshold-crossed", payload)
        notify(
            budget.organization,
            [Role.MANAGER],
            "budget:threshold-crossed",
            {
                # lazy: each manager reads it in their own language, amounts and dates in its locale
                "title": format_lazy(
                    gettext_lazy("Budget “{name}” at {threshold}%"), name=budget.name, threshold=threshold
                ),
                "body": format_lazy(
                    gettext_lazy("Spent and committed {spend} of {amount} ({start} – {end})."),
                    spend=lazy_money(spend, budget.organization.currency),
                    amount=lazy_money(budget.amount, budget.organization.currency),
                    start=lazy_date(budget.starts_on),
                    end=lazy_date(budget.ends_on),
                ),
                **payload,
            },
        )
    return 1


register_event_type(
    "budget:threshold-crossed",
    "A budget's threshold was crossed",
    {"budget": INTEGER, "name": STRING, "threshold": INTEGER, "amount": STRING, "spend": STRING, "currency": STRING},
)
if not is_registered("budget:threshold-crossed"):
    register_kind("budget:threshold-crossed", "A budget's threshold was crossed")


def exists_team(organization, pk: int) -> bool:
    return Team.objects.filter(organization=organization, pk=pk).exists()
