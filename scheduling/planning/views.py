"""The planner's calendar and the dispatch board in the back office (/admin/planning/…): server-rendered in the
organisation's time zone, with one small script (scheduling/static/planning/planning.js) for dragging, the refusal
messages and, on the board, live updates from the event socket (/ws/events/). A drop posts to `move`, which turns
the local day and time into an instant and calls the work-order services (scheduling.planning.moves); a refusal
comes back as the service's sentence, shown above the grid."""

import json
from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from assets.models import Location
from maintenance_site import formats
from maintenance_site.errors import DomainError, InvalidInput
from maintenance_site.recurrence import to_utc
from maintenance_site.tenancy.admin_base import active_organization, request_may
from maintenance_site.tenancy.roles import Action
from scheduling.planning import moves
from scheduling.planning.board import board
from scheduling.planning.calendar import Filters, calendar_items
from workorders.capacity.api import query_day, query_id
from workorders.models import Team, WorkOrder

User = get_user_model()
VIEWS = ("month", "week", "day")
VIEW_LABELS = {"month": gettext_lazy("Month"), "week": gettext_lazy("Week"), "day": gettext_lazy("Day")}
HOURS = range(24)


def _page_context(request, title: str) -> dict:
    if not request_may(request, Action.VIEW):
        raise PermissionDenied
    return {**admin.site.each_context(request), "title": title, "organization": active_organization(request)}


def _anchor(request, organization) -> date:
    try:
        return query_day(request.GET, "date") or timezone.localtime(timezone.now(), organization.zone).date()
    except InvalidInput:
        return timezone.localtime(timezone.now(), organization.zone).date()


def _local(value: datetime, zone) -> datetime:
    return timezone.localtime(value, zone)


def _id_or_none(request, name: str) -> int | None:
    try:
        return query_id(request.GET, name)
    except InvalidInput:
        return None


# --- the calendar ---------------------------------------------------------------------------------------------


def _period(view: str, anchor: date) -> tuple[date, date]:
    if view == "day":
        return anchor, anchor
    if view == "week":
        monday = anchor - timedelta(days=anchor.weekday())
        return monday, monday + timedelta(days=6)
    first = anchor.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first - timedelta(days=first.weekday()), last + timedelta(days=6 - last.weekday())


def _step(view: str, anchor: date, direction: int) -> date:
    if view == "day":
        return anchor + timedelta(days=direction)
    if view == "week":
        return anchor + timedelta(days=7 * direction)
    month = anchor.month - 1 + direction
    return date(anchor.year + month // 12, month % 12 + 1, 1)


def _chip(item: dict, zone) -> dict:
    start, end = _local(item["start"], zone), _local(item["end"], zone)
    return {**item, "local_start": start, "local_end": end, "time": f"{start:%H:%M}–{end:%H:%M}"}


def calendar_context(request, organization) -> dict:
    view = request.GET.get("view") if request.GET.get("view") in VIEWS else "month"
    anchor = _anchor(request, organization)
    first, last = _period(view, anchor)
    zone = organization.zone
    start = to_utc(datetime.combine(first, time(0)), zone)
    end = to_utc(datetime.combine(last + timedelta(days=1), time(0)), zone)
    filters = Filters(
        location=_id_or_none(request, "location"),
        team=_id_or_none(request, "team"),
        assignee=_id_or_none(request, "assignee"),
    )
    found = calendar_items(organization, start, end, filters)
    chips = [_chip(item, zone) for item in found["items"]]
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    by_day: dict[date, list] = {day: [] for day in days}
    by_slot: dict[tuple[date, int], list] = {}
    for chip in chips:
        day = chip["local_start"].date()
        if view == "month":
            # on every day it touches (a window over a weekend is on both days)
            last_day = (chip["local_end"] - timedelta(microseconds=1)).date()
            for n in range((max(last_day, day) - day).days + 1):
                if day + timedelta(days=n) in by_day:
                    by_day[day + timedelta(days=n)].append(chip)
        elif day in by_day:
            by_slot.setdefault((day, chip["local_start"].hour), []).append(chip)
        elif chip["local_start"] < _local(start, zone):  # began before the period: at its first hour
            by_slot.setdefault((first, 0), []).append(chip)
    today = timezone.localtime(timezone.now(), zone).date()
    query = {key: value for key, value in request.GET.items() if key in ("location", "team", "assignee")}
    weeks = [days[n : n + 7] for n in range(0, len(days), 7)]
    return {
        "view": view,
        "views": [(name, VIEW_LABELS[name]) for name in VIEWS],
        "anchor": anchor,
        "today": today,
        "heading": _heading(view, anchor, first, last),
        "previous": _step(view, anchor, -1).isoformat(),
        "next": _step(view, anchor, 1).isoformat(),
        "weeks": [
            [
                {"day": day, "items": by_day[day], "outside": view == "month" and day.month != anchor.month}
                for day in week
            ]
            for week in weeks
        ],
        "columns": days,
        "rows": [
            {"hour": hour, "cells": [{"day": day, "items": by_slot.get((day, hour), [])} for day in days]}
            for hour in HOURS
        ],
        "filters": filters,
        "query": query,
        "locations": Location.objects.for_tenant(organization).order_by("name").values_list("pk", "name"),
        "teams": Team.objects.for_tenant(organization).order_by("name").values_list("pk", "name"),
        "assignees": [
            (user.pk, user.get_full_name() or user.get_username())
            for user in User.objects.filter(
                memberships__organization=organization, memberships__is_active=True, is_active=True
            ).order_by("username")
        ],
        "truncated": found["truncated"],
        "count": len(chips),
        "time_zone": organization.time_zone,
    }


def _heading(view: str, anchor: date, first: date, last: date) -> str:
    if view == "month":
        return anchor.strftime("%B %Y")
    if view == "week":
        return f"Week of {formats.date(first)} to {formats.date(last)}"
    return formats.date(anchor)


def calendar_page(request):
    context = _page_context(request, "Planning calendar")
    organization = context["organization"]
    if organization:
        context.update(calendar_context(request, organization))
    template = (
        "scheduling/planning/_calendar.html" if request.GET.get("fragment") else "scheduling/planning/calendar.html"
    )
    return TemplateResponse(request, template, context)


# --- the dispatch board ---------------------------------------------------------------------------------------


def board_context(request, organization) -> dict:
    span = "day" if request.GET.get("span") == "day" else "week"
    anchor = _anchor(request, organization)
    first = anchor if span == "day" else anchor - timedelta(days=anchor.weekday())
    last = first if span == "day" else first + timedelta(days=6)
    team = _id_or_none(request, "team")
    found = board(organization, first, last, team=team)
    step = 1 if span == "day" else 7
    return {
        "span": span,
        "anchor": anchor,
        "board": found,
        "heading": formats.date(first) if span == "day" else f"{formats.date(first)} to {formats.date(last)}",
        "previous": (anchor - timedelta(days=step)).isoformat(),
        "next": (anchor + timedelta(days=step)).isoformat(),
        "team": team,
        "teams": Team.objects.for_tenant(organization).order_by("name").values_list("pk", "name"),
        "time_zone": organization.time_zone,
    }


def board_page(request):
    context = _page_context(request, "Dispatch board")
    organization = context["organization"]
    if organization:
        context.update(board_context(request, organization))
    template = "scheduling/planning/_board.html" if request.GET.get("fragment") else "scheduling/planning/board.html"
    return TemplateResponse(request, template, context)


# --- a drop ---------------------------------------------------------------------------------------------------


def _refusal(message: str, status: int, code: str = "") -> JsonResponse:
    return JsonResponse({"error": {"status": status, "code": code, "message": message}}, status=status)


@require_POST
def move(request):
    """`{"order": id, "day": "YYYY-MM-DD" | null, "time": "HH:MM"?, "assignee": id | null?}`: with `assignee`
    present, a board drop (`moves.dispatch`); without, a calendar drop (`moves.reschedule`)."""
    organization = active_organization(request)
    if not organization or not request_may(request, Action.VIEW):
        return _refusal("Choose an organisation you work in first.", 403, "no_organization")
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError
        order_id = int(body.get("order"))
        day = date.fromisoformat(body["day"]) if body.get("day") else None
        at = time.fromisoformat(body["time"]) if body.get("time") else None
    except (ValueError, TypeError, KeyError):
        return _refusal("Name the order and the day (YYYY-MM-DD), and a time (HH:MM) if any.", 400, "invalid")
    work_order = WorkOrder.objects.for_tenant(organization).select_related("organization").filter(pk=order_id).first()
    if work_order is None:
        return _refusal("No such work order.", 404, "not_found")
    try:
        if "assignee" in body:
            assignee = None
            if body["assignee"] is not None:
                assignee = User.objects.filter(
                    pk=body["assignee"], memberships__organization=organization, memberships__is_active=True
                ).first()
                if assignee is None:
                    raise Http404
            work_order = moves.dispatch(work_order, actor=request.user, assignee=assignee, day=day)
        else:
            if day is None:
                return _refusal("Say which day to move the order to.", 400, "invalid")
            work_order = moves.reschedule(work_order, actor=request.user, day=day, at=at)
    except Http404:
        return _refusal("No such member.", 404, "not_found")
    except DomainError as refused:
        return _refusal(refused.message, refused.status_code, refused.code)
    when = (
        formats.date_time(work_order.scheduled_start, organization.zone)
        if work_order.scheduled_start
        else "not planned"
    )
    who = work_order.assignee.get_username() if work_order.assignee_id else "nobody"
    return JsonResponse(
        {
            "ok": True,
            "message": f"{work_order.number}: {when}, {who}.",
            "order": work_order.pk,
            "url": reverse("admin:workorders_workorder_change", args=[work_order.pk]),
        }
    )


calendar_view = admin.site.admin_view(calendar_page)
board_view = admin.site.admin_view(board_page)
move_view = admin.site.admin_view(move)
