"""The only writers of preventive schedules and their calendar feeds: create, update, delete, pause, resume,
"generate now", and the secret .ics feed URLs. One transaction each, refused with a DomainError a person can
act on (bad expressions and inconsistent coverage: an InvalidInput saying, per field, what is wrong)."""

import hashlib
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.models import Part, StockLocation
from inventory.services import parse_quantity
from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput, NotFound
from maintenance_site.recurrence import normalize_cron
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.roles import Action
from maintenance_site.validation import checked_reason, delete_or_conflict, validated
from scheduling.preventive.generation import GenerationResult, generate_due_work_orders
from scheduling.preventive.models import CalendarFeed, PreventiveSchedule, ScheduleTemplatePart
from scheduling.preventive.occurrences import format_local, next_occurrence
from scheduling.preventive.targets import schedule_zone
from workorders.services import validate_assignee

Schedule = PreventiveSchedule
Trigger = PreventiveSchedule.Trigger
MAX_DAYS_AHEAD = 366  # "generate now" looks at most this many days ahead
FEED_USE_STAMP = timedelta(hours=1)  # how precisely a calendar feed's last use is recorded

SCHEDULE_FIELDS = {
    "name",
    "description",
    "coverage",
    "asset",
    "asset_type",
    "location",
    "trigger",
    "cron_expression",
    "rrule",
    "interval_count",
    "interval_unit",
    "time_of_day",
    "meter_name",
    "meter_mode",
    "meter_interval",
    "meter_threshold",
    "cooldown_minutes",
    "mode",
    "lead_days",
    "skip_if_open",
    "misfire_policy",
    "misfire_cap",
    "start_date",
    "end_date",
    "title",
    "instructions",
    "priority",
    "work_type",
    "procedure",
    "estimated_minutes",
    "plan_start",
    "assignee",
    "team",
}
TRIGGER_FIELDS = {
    "trigger",
    "cron_expression",
    "rrule",
    "interval_count",
    "interval_unit",
    "time_of_day",
    "mode",
    "lead_days",
    "start_date",
    "end_date",
    "coverage",
    "asset",
    "asset_type",
    "location",
}


def _require(organization_id, actor, action: Action = Action.MANAGE_SCHEDULES) -> None:
    tenancy_services.require_role(organization_id, action, actor=actor)


def _parse_parts(organization_id, parts) -> list[dict]:
    """Template part lines: dicts of part, stock_location, quantity (objects or ids)."""
    lines, seen = [], set()
    for index, raw in enumerate(parts or ()):
        prefix = f"parts[{index}]"
        part, location = raw.get("part"), raw.get("stock_location")
        if not isinstance(part, Part):
            part = Part.objects.filter(organization_id=organization_id, pk=part).first() if part else None
        if not isinstance(location, StockLocation):
            location = (
                StockLocation.objects.filter(organization_id=organization_id, pk=location).first() if location else None
            )
        if part is None or part.organization_id != organization_id:
            raise InvalidInput(
                _("Part line %(index)s: no such part.") % {"index": index + 1},
                fields={f"{prefix}.part": [_("No such part.")]},
            )
        if location is None or location.organization_id != organization_id:
            raise InvalidInput(
                _("Part line %(index)s: no such stock location.") % {"index": index + 1},
                fields={f"{prefix}.stock_location": [_("No such stock location.")]},
            )
        try:
            quantity = parse_quantity(part, raw.get("quantity"))
        except InvalidInput as exc:
            raise InvalidInput(
                _("Part line %(index)s: %(message)s") % {"index": index + 1, "message": exc.message},
                fields={f"{prefix}.quantity": [exc.message]},
            ) from None
        if (part.pk, location.pk) in seen:
            raise InvalidInput(
                _("Part line %(index)s: %(sku)s at %(location)s is listed twice; add the quantities up.")
                % {"index": index + 1, "sku": part.sku, "location": location.name},
                fields={f"{prefix}.part": [_("Listed twice.")]},
            )
        seen.add((part.pk, location.pk))
        lines.append({"part": part, "stock_location": location, "quantity": quantity})
    return lines


def _replace_parts(schedule: Schedule, lines: list[dict]) -> None:
    existing = list(schedule.template_parts.all())
    for line in existing:
        line.delete()
    audit.bulk_create_with_history(
        [ScheduleTemplatePart(organization_id=schedule.organization_id, schedule=schedule, **line) for line in lines],
        ScheduleTemplatePart,
    )


def _refresh_next(schedule: Schedule, now=None) -> None:
    """After an edit: the next pass looks at the schedule (`next_run_at` = now) and computes the exact moments
    per target zone; `next_due_at` is filled for display (in the schedule's own zone)."""
    now = now or timezone.now()
    schedule.next_run_at = now
    schedule.next_due_at = None
    if schedule.trigger != Trigger.METER and schedule.mode == Schedule.Mode.FIXED:
        after = max(filter(None, [schedule.generated_through, now - timedelta(days=schedule.lead_days)]))
        schedule.next_due_at = next_occurrence(
            schedule, ZoneInfo(schedule_zone(schedule)), after + timedelta(days=schedule.lead_days)
        )


def _owed_from(schedule: Schedule, now) -> datetime:
    """The generation cursor of a schedule that starts (or resumes) now: occurrences due before now are not
    owed; those due later are, even when their lead time has begun already."""
    return now - timedelta(days=schedule.lead_days)


def _apply_fields(schedule: Schedule, fields: dict) -> None:
    unknown = set(fields) - SCHEDULE_FIELDS
    if unknown:
        raise InvalidInput(
            _("A preventive schedule has no field(s) %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={name: [_("Unknown field.")] for name in unknown},
        )
    for name, value in fields.items():
        if name == "cron_expression" and isinstance(value, str):
            value = normalize_cron(value)
        elif name in ("rrule", "name", "meter_name", "title") and isinstance(value, str):
            value = value.strip()
        setattr(schedule, name, value)


@audit.attributed
@transaction.atomic
def create_schedule(organization, *, actor, parts=None, **fields) -> Schedule:
    """Add a preventive schedule (`parts`: list of {part, stock_location, quantity}). Bad expressions and
    inconsistent coverage are an InvalidInput saying, per field, what is wrong."""
    _require(organization.pk, actor)
    fields.setdefault("start_date", timezone.localdate(timezone.now(), organization.zone))
    schedule = Schedule(organization=organization)
    _apply_fields(schedule, fields)
    validated(schedule)
    validate_assignee(organization.pk, schedule.assignee)
    lines = _parse_parts(organization.pk, parts)
    now = timezone.now()
    schedule.generated_through = _owed_from(schedule, now)
    _refresh_next(schedule, now)
    schedule.save()
    if lines:
        _replace_parts(schedule, lines)
    return schedule


def _locked(schedule: Schedule) -> Schedule:
    return Schedule.objects.select_for_update(of=("self",)).select_related("organization", "asset").get(pk=schedule.pk)


@audit.attributed
@transaction.atomic
def update_schedule(schedule: Schedule, *, actor, parts=None, **changes) -> Schedule:
    """Edit a schedule; `parts`, when given, replaces its part list. Occurrences already generated stay."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    _apply_fields(schedule, changes)
    validated(schedule)
    if "assignee" in changes:
        validate_assignee(schedule.organization_id, schedule.assignee)
    if set(changes) & TRIGGER_FIELDS:
        _refresh_next(schedule)
    schedule.save()
    if parts is not None:
        _replace_parts(schedule, _parse_parts(schedule.organization_id, parts))
    return schedule


@audit.attributed
@transaction.atomic
def delete_schedule(schedule: Schedule, *, actor) -> None:
    """Delete a schedule that never generated anything; one with history must be paused or ended (409)."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    generated = schedule.occurrences.count()
    if generated:
        raise Conflict(
            _(
                "“%(name)s” has %(generated)s generated occurrence(s): pause it or give it an end date instead, "
                "so its history and statistics stay."
            )
            % {"name": schedule.name, "generated": generated},
            code="in_use",
        )
    schedule.template_parts.all().delete()
    delete_or_conflict(schedule, gettext_lazy("preventive schedule"))


@audit.attributed
@transaction.atomic
def pause_schedule(schedule: Schedule, *, actor, reason: str = "") -> Schedule:
    """Stop generating (nothing is owed for the paused time: resuming does not catch up)."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    if schedule.status == Schedule.Status.PAUSED:
        raise Conflict(_("“%(name)s” is already paused.") % {"name": schedule.name}, code="already_paused")
    schedule.status = Schedule.Status.PAUSED
    schedule.paused_at = timezone.now()
    schedule.pause_reason = checked_reason(reason)
    schedule._change_reason = f"paused: {schedule.pause_reason}" if schedule.pause_reason else "paused"
    schedule.save()
    return schedule


@audit.attributed
@transaction.atomic
def resume_schedule(schedule: Schedule, *, actor, now=None) -> Schedule:
    """Generate again from now on; occurrences that fell in the pause are not created."""
    schedule = _locked(schedule)
    _require(schedule.organization_id, actor)
    if schedule.status == Schedule.Status.ACTIVE:
        raise Conflict(_("“%(name)s” is not paused.") % {"name": schedule.name}, code="not_paused")
    now = now or timezone.now()
    schedule.status = Schedule.Status.ACTIVE
    schedule.paused_at = None
    schedule.pause_reason = ""
    schedule.generated_through = max(filter(None, [schedule.generated_through, _owed_from(schedule, now)]))
    schedule.last_run_at = max(filter(None, [schedule.last_run_at, now]))
    _refresh_next(schedule, now)
    schedule._change_reason = "resumed"
    schedule.save()
    return schedule


@audit.attributed
def generate_now(schedule: Schedule, *, actor, days_ahead: int = 0, now=None) -> GenerationResult:
    """“Generate now” (admin action, API): create what this schedule has due, or due within `days_ahead` days (plus
    its lead time), by its rules (misfire policy, skip-if-open). The result says which horizon was covered and, in
    `message`, why fewer orders than occurrences were made when some were."""
    _require(schedule.organization_id, actor)
    if schedule.status != Schedule.Status.ACTIVE:
        raise Conflict(_("“%(name)s” is paused: resume it to generate.") % {"name": schedule.name}, code="paused")
    if isinstance(days_ahead, bool) or not isinstance(days_ahead, int) or not 0 <= days_ahead <= MAX_DAYS_AHEAD:
        raise InvalidInput(
            _("Generate from 0 to %(most)s days ahead (got %(got)s).")
            % {"most": MAX_DAYS_AHEAD, "got": repr(days_ahead)},
            fields={"days_ahead": [_("From 0 to %(most)s.") % {"most": MAX_DAYS_AHEAD}]},
        )
    now = now or timezone.now()
    result = generate_due_work_orders(
        now, schedule.organization, schedule_ids=[schedule.pk], days_ahead=days_ahead, actor=actor
    )
    if schedule.pk in result.failed:
        raise InvalidInput(
            _(
                "The occurrences of “%(name)s” cannot be computed (%(reason)s): check its start "
                "and end dates and its trigger."
            )
            % {"name": schedule.name, "reason": result.failed[schedule.pk]},
            code="not_computable",
        )
    schedule.refresh_from_db()
    result.due_until = result.horizon + timedelta(days=schedule.lead_days)
    result.message = _generation_message(schedule, result)
    return result


def _generation_message(schedule: Schedule, result: GenerationResult) -> str:
    """What a “generate now” covered and did, and why fewer orders than occurrences were made, in sentences."""
    zone = schedule_zone(schedule)
    ahead = f"{result.days_ahead} day(s) ahead" if result.days_ahead else "now"
    if schedule.lead_days:
        ahead += f", plus the schedule's lead time of {schedule.lead_days} day(s)"
    done = [f"{result.created} order(s) created"]
    if result.skipped:
        done.append(f"{result.skipped} occurrence(s) recorded as skipped (see the occurrences for why)")
    if result.already_generated:
        done.append(f"{result.already_generated} generated before")
    text = f"Covered what falls due by {format_local(result.due_until, zone)} ({ahead}): {', '.join(done)}."
    if result.deferred:
        text += (
            f" {len(result.deferred)} later occurrence(s) in that time are left for later: this schedule skips an "
            "occurrence while its previous order is open (“skip if open”), which is decided when the occurrence's "
            "order is due to be created, so at most one open order per asset is created ahead. Turn off “skip if "
            "open” to create them all now."
        )
    if schedule.trigger == Trigger.METER:
        text += " A meter schedule falls due on meter readings, not on dates: nothing is created ahead of them."
    elif schedule.mode == Schedule.Mode.FLOATING and result.days_ahead:
        text += (
            " A floating schedule counts each occurrence from the completion of the previous one, so only the "
            "next one per asset can be created ahead."
        )
    if not (result.created or result.skipped or result.already_generated or result.deferred):
        if schedule.next_due_at is not None:
            next_due = format_local(schedule.next_due_at, zone)
            text += f" Nothing falls due in that time; the next occurrence is due {next_due}."
        elif schedule.trigger != Trigger.METER:
            text += " Nothing falls due in that time."
    return text


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@audit.attributed
@transaction.atomic
def create_calendar_feed(organization, *, name: str, actor) -> tuple[CalendarFeed, str]:
    """A new secret feed URL token; returned once (only its hash is kept)."""
    _require(organization.pk, actor)
    token = secrets.token_urlsafe(24)
    feed = CalendarFeed(
        organization=organization,
        name=(name or "").strip() or "Calendar feed",
        token_hash=_hash(token),
        token_prefix=token[:8],
        created_by=actor,
    )
    validated(feed, exclude=["token_hash"]).save()
    return feed, token


@audit.attributed
@transaction.atomic
def rename_calendar_feed(feed: CalendarFeed, *, actor, name: str) -> CalendarFeed:
    """Give a feed another name (its URL stays)."""
    feed = CalendarFeed.objects.select_for_update().get(pk=feed.pk)
    _require(feed.organization_id, actor)
    feed.name = (name or "").strip() or "Calendar feed"
    validated(feed, exclude=["token_hash"]).save()
    return feed


@audit.attributed
@transaction.atomic
def revoke_calendar_feed(feed: CalendarFeed, *, actor) -> CalendarFeed:
    """Retire a feed URL at once (calendar apps get a 404 from then on)."""
    feed = CalendarFeed.objects.select_for_update().get(pk=feed.pk)
    _require(feed.organization_id, actor)
    if feed.revoked_at is None:
        feed.revoked_at = timezone.now()
        feed._change_reason = "revoked"
        feed.save()
    return feed


def calendar_feed_for_token(token: str, *, now=None) -> CalendarFeed:
    """The active feed of a token, or NotFound (the same answer for unknown and revoked tokens). Reading a feed
    changes nothing a client relies on; it only stamps `last_used_at`, at most once per FEED_USE_STAMP (calendar
    apps poll every few minutes), so that unused feeds can be found and revoked."""
    if not token or len(token) > 100:
        raise NotFound(_("No such calendar feed."))
    feed = CalendarFeed.objects.select_related("organization").filter(token_hash=_hash(token)).first()
    if feed is None or feed.revoked_at is not None:
        raise NotFound(_("No such calendar feed."))
    now = now or timezone.now()
    if feed.last_used_at is None or feed.last_used_at < now - FEED_USE_STAMP:
        CalendarFeed.objects.filter(pk=feed.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - FEED_USE_STAMP)
        ).update(last_used_at=now)
    return feed
