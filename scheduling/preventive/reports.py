"""Reading preventive schedules: the forecast of what falls due (with the parts it will need), the statistics
and PM compliance of what was generated, the trigger in words, and the next due dates."""

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q, Value
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site.analytics.definitions import percent
from maintenance_site.errors import InvalidInput
from maintenance_site.recurrence import to_local
from scheduling.preventive.generation import order_title
from scheduling.preventive.models import PreventiveOccurrence, PreventiveSchedule, ScheduleTemplatePart
from scheduling.preventive.occurrences import next_occurrence, occurrences_between
from scheduling.preventive.planning import DONE_STATUSES, floating_due
from scheduling.preventive.targets import Places, latest_occurrences, resolve_targets, schedule_zone
from workorders.models import WorkOrder

Schedule = PreventiveSchedule
Occurrence = PreventiveOccurrence
Trigger = PreventiveSchedule.Trigger

MAX_FORECAST_DAYS = 366
MAX_FORECAST_ROWS = 5000
ON_TIME_TOLERANCE = timedelta(hours=24)  # statistics: completed within a day of the due time is on time
DEFAULT_STATISTICS_SPAN = timedelta(days=90)  # statistics without a start: this long before the end


def _parts_of(schedules) -> dict[int, list[ScheduleTemplatePart]]:
    parts: dict[int, list] = defaultdict(list)
    rows = ScheduleTemplatePart.objects.filter(schedule__in=list(schedules)).select_related("part", "stock_location")
    for line in rows.order_by("schedule_id", "id"):
        parts[line.schedule_id].append(line)
    return parts


def forecast(organization, *, days: int = 30, schedule: Schedule | None = None, now=None) -> dict:
    """The occurrences due over the next `days` days (per schedule, or for the organisation), with the parts
    they will need in total. Calendar and interval schedules are listed by date; floating ones by their next
    due date; meter schedules cannot be dated and are listed with the meter's state. Already generated ones
    are marked so."""
    now = now or timezone.now()
    if not 1 <= int(days) <= MAX_FORECAST_DAYS:
        raise InvalidInput(
            _("Forecast 1 to %(limit)s days ahead.") % {"limit": MAX_FORECAST_DAYS},
            fields={"days": [_("From 1 to %(limit)s.") % {"limit": MAX_FORECAST_DAYS}]},
        )
    until = now + timedelta(days=int(days))
    queryset = Schedule.objects.for_tenant(organization).active().select_related("organization", "asset")
    if schedule is not None:
        queryset = queryset.filter(pk=schedule.pk)
    queryset = queryset.filter(start_date__lte=until.date()).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=now.date())
    )
    schedules = list(queryset.order_by("name", "pk"))
    places = Places([organization.pk])
    targets = resolve_targets(schedules, places)
    floating = [s for s in schedules if s.mode == Schedule.Mode.FLOATING and s.trigger != Trigger.METER]
    latest = latest_occurrences([(s.pk, t.key) for s in floating for t in targets[s.pk]])
    parts = _parts_of(schedules)
    rows, meter_rows, truncated = [], [], False
    for s in schedules:
        if s.trigger == Trigger.METER:
            meter_rows.append(
                {
                    "schedule": s.pk,
                    "schedule_name": s.name,
                    "assets": len(targets[s.pk]),
                    "meter": s.meter_name,
                    "rule": trigger_summary(s),
                }
            )
            continue
        for target in targets[s.pk]:
            zone = ZoneInfo(target.zone_name)
            if s.mode == Schedule.Mode.FLOATING:
                due = floating_due(s, latest.get((s.pk, target.key)), zone)
                dues = [due] if due is not None and now < due <= until else []
            else:
                dues = occurrences_between(s, zone, now, until)
            for due in dues:
                if len(rows) >= MAX_FORECAST_ROWS:
                    truncated = True
                    break
                rows.append((s, target, due))
    generated = set()
    if rows:
        generated = set(
            Occurrence.objects.filter(
                schedule_id__in={s.pk for s, _, _ in rows}, due_at__gt=now, due_at__lte=until
            ).values_list("schedule_id", "target_key", "due_at")
        )
    rows.sort(key=lambda row: (row[2], row[0].name, row[1].asset_code))
    needed: dict[tuple[int, int], dict] = {}
    occurrences = []
    for s, target, due in rows:
        lines = []
        for line in parts.get(s.pk, ()):
            lines.append(
                {
                    "part": line.part_id,
                    "sku": line.part.sku,
                    "quantity": f"{line.quantity:f}",
                    "stock_location": line.stock_location_id,
                }
            )
            entry = needed.setdefault(
                (line.part_id, line.stock_location_id),
                {
                    "part": line.part_id,
                    "sku": line.part.sku,
                    "name": line.part.name,
                    "unit": line.part.unit,
                    "stock_location": line.stock_location_id,
                    "stock_location_name": line.stock_location.name,
                    "quantity": Decimal("0"),
                    "occurrences": 0,
                },
            )
            entry["quantity"] += line.quantity
            entry["occurrences"] += 1
        occurrences.append(
            {
                "schedule": s.pk,
                "schedule_name": s.name,
                "asset": target.asset_id,
                "asset_code": target.asset_code,
                "asset_name": target.asset_name,
                "location": target.location_id,
                "due_at": due,
                "local_due": to_local(due, ZoneInfo(target.zone_name)).isoformat(timespec="minutes"),
                "time_zone": target.zone_name,
                "title": order_title(s, target, due),
                "estimated_minutes": s.estimated_minutes,
                "generated": (s.pk, target.key, due) in generated,
                "parts": lines,
            }
        )
    for entry in needed.values():
        entry["quantity"] = f"{entry['quantity']:f}"  # as the API writes quantities: "4.000"
    return {
        "from": now,
        "until": until,
        "days": int(days),
        "count": len(occurrences),
        "truncated": truncated,
        "occurrences": occurrences,
        "parts_needed": sorted(needed.values(), key=lambda entry: (entry["sku"], entry["stock_location_name"])),
        "meter_schedules": meter_rows,
    }


PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
GROUPS = ("period", "schedule", "asset")


def statistics(
    organization,
    *,
    start=None,
    end=None,
    group_by: str = "period",
    period: str = "month",
    schedule=None,
    asset=None,
    now=None,
    where: Q | None = None,
) -> dict:
    """Generated, completed on time (within ON_TIME_TOLERANCE of the due time), completed late, overdue,
    skipped, and PM compliance = on time ÷ occurrences whose time to be done has passed (skips count against
    it; orders still open within the tolerance are not counted yet), per period, schedule or asset. One
    aggregate query; the same SQL on SQLite and PostgreSQL. `where` narrows the occurrences further (the analytics
    filters: location subtree, asset type, team)."""
    now = now or timezone.now()
    end = end or now
    if start is None:
        try:
            start = end - DEFAULT_STATISTICS_SPAN
        except OverflowError:
            raise InvalidInput(
                _(
                    "With no start the period is the %(days)s days before the end, and %(end)s leaves no room for "
                    "them: give a later end or a start."
                )
                % {"days": DEFAULT_STATISTICS_SPAN.days, "end": end.isoformat()},
                fields={"end": [_("Too early without a start.")]},
            ) from None
    if start >= end:
        raise InvalidInput(
            _("The start of the period must be before its end."), fields={"start": [_("After the end.")]}
        )
    if group_by not in GROUPS:
        raise InvalidInput(
            _("Group by one of %(choices)s.") % {"choices": ", ".join(GROUPS)},
            fields={"group_by": [_("Unknown grouping.")]},
        )
    if period not in PERIODS:
        raise InvalidInput(
            _("A period is one of %(choices)s.") % {"choices": ", ".join(PERIODS)},
            fields={"period": [_("Unknown period.")]},
        )
    rows = Occurrence.objects.filter(organization=organization, due_at__gte=start, due_at__lt=end)
    if schedule is not None:
        rows = rows.filter(schedule=schedule)
    if asset is not None:
        rows = rows.filter(asset=asset)
    if where is not None:
        rows = rows.filter(where)
    measures = compliance_measures(now)
    if group_by == "period":
        rows = rows.annotate(group=PERIODS[period]("due_at", tzinfo=organization.zone)).values("group")
    elif group_by == "schedule":
        rows = rows.values("schedule_id", "schedule__name").annotate(group=F("schedule_id"))
    else:
        rows = rows.values("asset_id", "asset__code").annotate(group=F("asset_id"))
    groups = []
    for row in rows.annotate(**measures).order_by("group"):
        entry = {name: row[name] for name in measures}
        if group_by == "period":
            moment = row["group"]
            entry["period"] = (moment.date() if isinstance(moment, datetime) else moment).isoformat()
        elif group_by == "schedule":
            entry["schedule"], entry["schedule_name"] = row["schedule_id"], row["schedule__name"]
        else:
            entry["asset"], entry["asset_code"] = row["asset_id"], row["asset__code"]
        groups.append(_with_compliance(entry))
    totals = _with_compliance({name: sum(g[name] for g in groups) for name in measures})
    return {"start": start, "end": end, "group_by": group_by, "period": period, "totals": totals, "groups": groups}


def statistics_by_period_from_sums(*, start, end, period: str, now, sums: dict) -> dict:
    """`statistics` by period from the `compliance_measures` counts kept elsewhere per period (the analytics
    rollups: {first local day of the period: {measure: count}}): the same answer as computed from the
    occurrences."""
    measures = compliance_measures(now)
    groups = []
    for first_day in sorted(sums):
        entry = {name: int(sums[first_day].get(name) or 0) for name in measures}
        entry["period"] = first_day.isoformat()
        groups.append(_with_compliance(entry))
    totals = _with_compliance({name: sum(g[name] for g in groups) for name in measures})
    return {"start": start, "end": end, "group_by": "period", "period": period, "totals": totals, "groups": groups}


def compliance_measures(now) -> dict:
    """The aggregates behind PM compliance (the `pm_compliance` definition of `maintenance_site.analytics`), over
    occurrences: the statistics endpoint and the analytics provider (`scheduling.analytics`) both use these."""
    deadline = F("due_at") + Value(ON_TIME_TOLERANCE)
    created = Q(status=Occurrence.Status.CREATED)
    done = created & Q(work_order__status__in=DONE_STATUSES)
    on_time = done & Q(work_order__completed_at__lte=deadline)
    is_open = created & Q(work_order__status__in=WorkOrder.OPEN_STATUSES)
    return {
        "generated": Count("pk", filter=created),
        "completed_on_time": Count("pk", filter=on_time),
        "completed_late": Count("pk", filter=done & Q(work_order__completed_at__gt=deadline)),
        "overdue": Count("pk", filter=is_open & Q(due_at__lt=now - ON_TIME_TOLERANCE)),
        "open": Count("pk", filter=is_open & Q(due_at__gte=now - ON_TIME_TOLERANCE)),
        "cancelled": Count("pk", filter=created & Q(work_order__status=WorkOrder.Status.CANCELLED)),
        "skipped": Count("pk", filter=Q(status=Occurrence.Status.SKIPPED)),
    }


def compliance(entry: dict):
    """PM compliance (%) from `compliance_measures`: on time ÷ decided (generated + skipped − still open)."""
    decided = entry["generated"] + entry["skipped"] - entry["open"]
    return percent(entry["completed_on_time"], decided) if decided > 0 else None


def _with_compliance(entry: dict) -> dict:
    entry["compliance"] = compliance(entry)
    return entry


def trigger_summary(s: Schedule) -> str:
    """The trigger as a person would say it."""
    if s.trigger == Trigger.CRON:
        text = f"cron “{s.cron_expression}”"
    elif s.trigger == Trigger.RRULE:
        text = f"RRULE {s.rrule} from {s.start_date:%Y-%m-%d} {s.time_of_day:%H:%M}"
    elif s.trigger == Trigger.INTERVAL:
        count, unit = s.interval_count or 1, s.interval_unit or "days"
        every = f"every {count} {unit}" if count != 1 else f"every {unit.rstrip('s')}"
        text = f"{every} at {s.time_of_day:%H:%M}"
        if s.mode == Schedule.Mode.FLOATING:
            text += " after the last completion"
    elif s.trigger == Trigger.METER:
        unit = ""
        if s.meter_mode == Schedule.MeterMode.EVERY:
            text = f"every {s.meter_interval:f} of “{s.meter_name}”{unit}"
            if s.mode == Schedule.Mode.FLOATING:
                text += " after the last service"
        else:
            word = "above" if s.meter_mode == Schedule.MeterMode.ABOVE else "below"
            text = f"“{s.meter_name}” {word} {s.meter_threshold:f}"
            if s.cooldown_minutes:
                text += f", at most once per {s.cooldown_minutes} min"
    else:
        text = "no trigger"
    if s.lead_days:
        text += f"; created {s.lead_days} day(s) ahead"
    return text


def next_due_dates(s: Schedule, count: int = 5, now=None) -> list[datetime]:
    """The next `count` due times of a fixed calendar / interval schedule (in its zone); [] otherwise."""
    if s.trigger == Trigger.METER or s.mode == Schedule.Mode.FLOATING or not s.start_date:
        return [s.next_due_at] if s.next_due_at else []
    if s.problems():
        return []
    now = now or timezone.now()
    zone = ZoneInfo(schedule_zone(s))
    found, after = [], now
    for _index in range(count):
        upcoming = next_occurrence(s, zone, after)
        if upcoming is None:
            break
        found.append(upcoming)
        after = upcoming
    return found
