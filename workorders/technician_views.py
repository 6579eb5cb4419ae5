"""The technician's view (`/t/`): server-rendered pages for phones.

Every page needs a signed-in member and works in the session's organisation (`request.organization`, from
ActiveOrganizationMiddleware); every lookup is scoped to it, so another organisation's order, asset or
attachment is a 404. The views parse input and call the services; a service's refusal is shown as its own
sentence (PermissionDeniedError as a 403 page, the others next to the form, with the service's status).

The offline-capable forms (checklist, notes, time, meter readings) post here without JavaScript and to the
JSON endpoints of `workorders.technician_api` with it; the service worker (`sw.js`) keeps the pages readable
offline and `static/technician/technician.js` queues what is entered offline.
"""

import functools
import json
import re
from datetime import datetime, time, timedelta
from io import BytesIO

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from PIL import Image, ImageDraw

from assets import meters
from assets.models import Asset, MeterReading
from maintenance_site import hooks
from maintenance_site.errors import DomainError, PermissionDeniedError
from maintenance_site.events import services as event_services
from maintenance_site.i18n import activate_for_request, preferred_language
from maintenance_site.tenancy.middleware import SESSION_KEY
from maintenance_site.tenancy.roles import Action, role_allows
from maintenance_site.tenancy.services import memberships_of
from maintenance_site.tenancy.services import set_language as set_language_of
from workorders import services
from workorders.asset_history import asset_history
from workorders.health import charts as health_charts
from workorders.images import prepare_photo
from workorders.models import Attachment, ChecklistItem, Team, TimeEntry, WorkOrder
from workorders.technician_forms import (
    ChecklistResultForm,
    CompleteForm,
    HoldForm,
    MeterReadingForm,
    NoteForm,
    PhotoForm,
    PlanForm,
    TimeForm,
    new_client_id,
)

Status = WorkOrder.Status
LIFECYCLE_ACTIONS = ("start", "hold", "resume", "complete")
FILTERS = {"today": gettext_lazy("Today"), "week": gettext_lazy("This week"), "all": gettext_lazy("All")}
HISTORY_LIMIT = 25
CLAIMABLE_LIMIT = 20
OWN_CHANGES_KEY = "technician.own_changes"
OWN_CHANGES_KEPT = 30
# Fields whose change a history line names (the status and the reason come with the change reason).
HISTORY_FIELDS = {
    "status": gettext_lazy("status"),
    "assignee_id": gettext_lazy("assignee"),
    "team_id": gettext_lazy("team"),
    "priority": gettext_lazy("priority"),
    "due_at": gettext_lazy("due date"),
    "title": gettext_lazy("title"),
    "description": gettext_lazy("description"),
    "asset_id": gettext_lazy("asset"),
    "location_id": gettext_lazy("location"),
    "completion_notes": gettext_lazy("completion notes"),
}
# Bump when sw.js changes what it caches: the new worker drops the old caches.
SERVICE_WORKER_VERSION = "4"
# What the service worker keeps for offline use besides the pages.
STATIC_FILES = (
    "workorders/public.css",
    "technician/technician.css",
    "technician/technician.js",
    "technician/photo-queue.js",  # photos taken offline (IndexedDB, resumable uploads)
    "technician/scan-fallback.js",  # Scan without BarcodeDetector: the npm polyfill and its WebAssembly
    "vendor/barcode-detector/polyfill.js",
    "vendor/zxing-wasm/zxing_reader.wasm",
)


def record_meter_reading(meter, user, value, read_at=None):
    """A reading entered by hand. A replay (same meter, moment and value: the client sends the moment it was
    entered) is ignored by the service, so it applies once."""
    return meters.record_reading(meter, value, read_at or None, actor=user, source=MeterReading.Source.MANUAL)


# What a lifecycle step's change reason ("hold: waiting for a part", "start (done offline, sent at … UTC)") says, in
# the reader's language; the reason itself is the person's own words.
CHANGE_ACTIONS = {
    "assign": pgettext_lazy("history", "Assign"),
    "unassign": pgettext_lazy("history", "Unassign"),
    "start": pgettext_lazy("history", "Start"),
    "hold": pgettext_lazy("history", "Hold"),
    "resume": pgettext_lazy("history", "Resume"),
    "complete": pgettext_lazy("history", "Complete"),
    "verify": pgettext_lazy("history", "Verify"),
    "reject": pgettext_lazy("history", "Reject"),
    "reopen": pgettext_lazy("history", "Reopen"),
    "cancel": pgettext_lazy("history", "Cancel"),
}
CHANGE_REASON = re.compile(
    r"^(?P<action>[a-z_]+)(?:: (?P<reason>.*?))?(?: \(done offline, sent at (?P<sent>[^)]*) UTC\))?$", re.S
)


def change_reason_text(reason: str) -> str:
    """A history line's change reason for the page: a lifecycle step named in the reader's language."""
    match = CHANGE_REASON.match(reason)
    if match is None or match["action"] not in CHANGE_ACTIONS:
        return reason[:1].upper() + reason[1:]
    text = str(CHANGE_ACTIONS[match["action"]])
    if match["reason"]:
        text += f": {match['reason']}"
    if match["sent"]:
        text += " " + _("(done offline, sent at %(time)s UTC)") % {"time": match["sent"]}
    return text


# --- access -------------------------------------------------------------------------------------------


def forbidden(request, message: str, *, status: int = 403):
    return render(request, "technician/403.html", {"message": message}, status=status)


def not_found(request):
    return render(request, "technician/404.html", status=404)


def technician_view(view):
    """Signed in (else the technician login), a member of the session's organisation, times in its time zone;
    a refusal for lack of permission is a 403 page carrying the service's message, anything of another
    organisation a 404."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("technician:login"))
        organization = request.organization
        if not organization:
            return forbidden(request, _("Your account is not a member of any organisation: ask a manager to add you."))
        # The event stream continues from here: what happened before is in the page.
        request.technician_sequence = SimpleLazyObject(lambda: event_services.last_sequence(organization.pk))
        with timezone.override(organization.zone):
            try:
                return view(request, *args, **kwargs)
            except PermissionDeniedError as exc:
                return forbidden(request, exc.message)
            except Http404:
                return not_found(request)

    return wrapper


def remember_own_change(request) -> None:
    """Note the request's correlation id: the events it caused are mine, so the order page does not tell me
    that the order changed under me when it was me."""
    own = [cid for cid in request.session.get(OWN_CHANGES_KEY, []) if cid != request.correlation_id]
    request.session[OWN_CHANGES_KEY] = [*own, request.correlation_id][-OWN_CHANGES_KEPT:]


def order_or_404(request, pk) -> WorkOrder:
    return get_object_or_404(
        WorkOrder.objects.for_tenant(request.organization).select_related(
            "organization", "asset", "location", "assignee", "team"
        ),
        pk=pk,
    )


def may_work_on(work_order: WorkOrder, user) -> bool:
    try:
        services.check_may_work_on(work_order, actor=user)
    except PermissionDeniedError:
        return False
    return True


def may_annotate(work_order: WorkOrder, user) -> bool:
    """Whether the page offers the note and photo forms (a viewer's or a storekeeper's does not)."""
    try:
        services.check_may_annotate(work_order, actor=user)
    except PermissionDeniedError:
        return False
    return True


# --- signing in and out, the organisation -------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "technician/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("technician:my-work")


class LogoutView(auth_views.LogoutView):
    """GET shows a page whose script empties this phone's cached pages and queue, then posts; POST signs out."""

    template_name = "technician/logout.html"
    next_page = reverse_lazy("technician:login")
    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect("technician:login")
        return render(request, self.template_name)


@never_cache
@technician_view
def choose_organization(request):
    memberships = list(memberships_of(request.user).order_by("organization__name"))
    return render(
        request,
        "technician/organization.html",
        {"memberships": memberships, "chosen": request.session.get(SESSION_KEY)},
    )


# --- my work ------------------------------------------------------------------------------------------

PRIORITY_RANK = Case(
    *[When(priority=priority, then=Value(rank)) for priority, rank in WorkOrder.PRIORITY_RANK.items()],
    default=Value(len(WorkOrder.PRIORITY_RANK)),
    output_field=IntegerField(),
)


def _urgent_first(queryset):
    """Most urgent first: priority, then the next SLA deadline, then the due date (none last). The queryset has
    the SLA deadlines joined in (`services.with_extensions`)."""
    return (
        queryset.select_related("asset", "location", "team")
        .annotate(priority_rank=PRIORITY_RANK)
        .order_by(
            "priority_rank",
            F("sla_due_at").asc(nulls_last=True),
            F("due_at").asc(nulls_last=True),
            "created_at",
            "pk",
        )
    )


def _period_end(when: str, organization) -> datetime | None:
    """The end of today / this week (Monday to Sunday) in the organisation's time zone; None for all."""
    if when not in ("today", "week"):
        return None
    today = timezone.localtime(timezone.now(), organization.zone).date()
    last_day = today if when == "today" else today + timedelta(days=6 - today.weekday())
    return datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=organization.zone)


def _mark(orders, now) -> list[WorkOrder]:
    for order in orders:
        order.overdue = order.due_at is not None and order.due_at < now
        order.sla_breached = order.sla_due_at is not None and order.sla_due_at <= now
        order.sla_at_risk = not order.sla_breached and order.sla_warning_at is not None and order.sla_warning_at <= now
    return orders


def my_work_context(request, when: str) -> dict:
    """Orders assigned to me or my teams (filtered by `when`), and the unassigned ones I may claim.
    Two queries whatever the number of orders."""
    organization, user = request.organization, request.user
    my_teams = Team.objects.for_tenant(organization).filter(members=user).values("pk")
    open_orders = services.with_extensions(WorkOrder.objects.for_tenant(organization).open())
    mine = open_orders.filter(Q(assignee=user) | Q(team__in=my_teams))
    end = _period_end(when, organization)
    if end is not None:
        mine = mine.filter(Q(due_at__lt=end) | Q(sla_due_at__lt=end) | Q(status=Status.IN_PROGRESS))
    now = timezone.now()
    claimable = []
    membership = request.membership
    if membership and role_allows(membership.role, Action.EXECUTE_WORK):
        # Unassigned orders of my teams are in my list already; these belong to no team.
        unassigned = open_orders.filter(status=Status.OPEN, assignee__isnull=True, team__isnull=True)
        if not organization.technicians_can_claim:
            unassigned = unassigned.filter(type=WorkOrder.Type.EMERGENCY)  # anyone on the crew may start those
        claimable = _mark(list(_urgent_first(unassigned)[:CLAIMABLE_LIMIT]), now)
    return {
        "orders": _mark(list(_urgent_first(mine)), now),
        "claimable": claimable,
        "when": when,
        "filters": FILTERS,
    }


OFFLINE_ORDERS_LIMIT = 100


def offline_bundle_context(request) -> dict:
    """The URLs a phone saves for a day without signal: My work, each of my open orders (most urgent first, at
    most OFFLINE_ORDERS_LIMIT) with its asset's page, and what the higher apps add (`technician_offline_urls`:
    the van's parts). Two queries for the orders whatever their number."""
    orders = my_work_context(request, "all")["orders"][:OFFLINE_ORDERS_LIMIT]
    urls = [reverse("technician:my-work")]
    for order in orders:
        urls.append(reverse("technician:order", args=[order.pk]))
    for token in dict.fromkeys(order.asset.public_token for order in orders if order.asset_id):
        urls.append(reverse("technician:asset", args=[token]))
    for extra in hooks.technician_offline_urls(request):
        urls.extend(extra or [])
    assets = {
        order.asset.public_token: {
            "code": order.asset.code,
            "name": order.asset.name,
            "token": order.asset.public_token,
        }
        for order in orders
        if order.asset_id
    }
    return {
        "orders": [order.pk for order in orders],
        "assets": list(assets.values()),  # what the scanner recognises offline by code
        "urls": urls,
        "saved_at": timezone.now().isoformat(),
    }


def _filter(request) -> str:
    when = request.GET.get("when", "all")
    return when if when in FILTERS else "all"


@never_cache
@technician_view
def my_work(request):
    if not request.session.get(SESSION_KEY) and memberships_of(request.user).count() > 1:
        return redirect("technician:organization")
    team_ids = list(
        Team.objects.for_tenant(request.organization).filter(members=request.user).values_list("pk", flat=True)
    )
    return render(
        request,
        "technician/my_work.html",
        {
            **my_work_context(request, _filter(request)),
            "team_ids": team_ids,
            "preferred_language": preferred_language(request.user),
        },
    )


@require_POST
@technician_view
def set_language(request):
    """The language this person reads the platform in (pages, e-mails, notifications): their profile's, through
    the audited service; empty for their browser's, else the organisation's."""
    try:
        set_language_of(request.user, actor=request.user, language=request.POST.get("language", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("technician:my-work")
    activate_for_request(request)  # the confirmation already in the chosen language
    messages.success(request, _("Language saved."))
    return redirect(reverse("technician:my-work") + "#language")


@never_cache
@technician_view
def my_work_fragment(request):
    """The list alone, for the live refresh."""
    return render(request, "technician/_work_list.html", my_work_context(request, _filter(request)))


# --- the work-order page ------------------------------------------------------------------------------


def _history(work_order: WorkOrder) -> list[dict]:
    """The order's recorded changes, newest first, each with who, when and what changed."""
    records = list(
        work_order.history.select_related("history_user").order_by("-history_date", "-history_id")[: HISTORY_LIMIT + 1]
    )
    entries = []
    for index, record in enumerate(records[:HISTORY_LIMIT]):
        previous = records[index + 1] if index + 1 < len(records) else None
        if record.history_type == "+":
            summary = _("Created")
        elif record.history_change_reason:
            summary = change_reason_text(record.history_change_reason)
        else:
            changed = [
                label
                for field, label in HISTORY_FIELDS.items()
                if previous is not None and getattr(record, field) != getattr(previous, field)
            ]
            summary = (
                _("Changed %(fields)s") % {"fields": ", ".join(str(label) for label in changed)}
                if changed
                else _("Changed")
            )
        entries.append(
            {
                "at": record.history_date,
                "user": record.history_user,
                "summary": summary,
                "status": Status(record.status).label if record.status in Status.values else record.status,
            }
        )
    return entries


def order_context(
    request, work_order: WorkOrder, *, forms: dict | None = None, error: str = "", error_form: str = ""
) -> dict:
    user = request.user
    may_act = may_work_on(work_order, user)
    claimable = (
        work_order.status == Status.OPEN
        and work_order.assignee_id is None
        and (work_order.organization.technicians_can_claim or work_order.type == WorkOrder.Type.EMERGENCY)
        and bool(request.membership)
        and role_allows(request.membership.role, Action.EXECUTE_WORK)
    )
    actions = [action for action in services.allowed_actions(work_order) if action in LIFECYCLE_ACTIONS]
    if not may_act:
        actions = ["start"] if claimable and "start" in actions else []
    entries = list(work_order.time_entries.select_related("technician").order_by("-created_at"))
    running = TimeEntry.objects.filter(technician=user, minutes__isnull=True).select_related("work_order").first()
    # What higher apps add to the page (the inventory: the parts planned and used, the part-use form).
    extensions, extension_forms = {}, {}
    for contribution in hooks.technician_order_page(request, work_order):
        extension_forms.update(contribution.get("forms", {}))
        extensions.update({key: value for key, value in contribution.items() if key != "forms"})
    forms = {
        "hold": HoldForm(),
        "complete": CompleteForm(work_order=work_order),
        "note": NoteForm(initial={"client_id": new_client_id()}),
        "time": TimeForm(initial={"client_id": new_client_id()}),
        "photo": PhotoForm(),
        "plan": PlanForm(initial={"scheduled_start": work_order.scheduled_start}),
        **extension_forms,
        **(forms or {}),
    }
    return {
        "wo": work_order,
        "may_act": may_act,
        "may_annotate": work_order.is_open and may_annotate(work_order, user),
        "editable": may_act and work_order.is_open,
        # every step's form is on the page (those not possible now hidden): offline, the phone moves between them
        "offline_steps": may_act and work_order.is_open,
        "claimable": claimable,
        "actions": actions,
        "overdue": work_order.is_overdue,
        "checklist": list(work_order.checklist.select_related("done_by", "follow_up")),
        "attachments": list(work_order.attachments.all()),
        "comments": list(work_order.comments.select_related("author")),
        "history": _history(work_order),
        "time_entries": entries,
        "total_minutes": sum(entry.minutes or 0 for entry in entries),
        "running": running,
        "running_here": running is not None and running.work_order_id == work_order.pk,
        "forms": forms,
        "error": error,
        "error_form": error_form,
        "own_changes": request.session.get(OWN_CHANGES_KEY, []),
        **extensions,
    }


def render_order(request, work_order: WorkOrder, *, status: int = 200, **kwargs):
    return render(request, "technician/order.html", order_context(request, work_order, **kwargs), status=status)


def refused(request, pk, exc: DomainError, *, form_name: str = "", forms: dict | None = None):
    """Show the order again with the service's refusal next to the form that caused it."""
    if isinstance(exc, PermissionDeniedError):
        raise exc
    return render_order(
        request, order_or_404(request, pk), status=exc.status_code, error=exc.message, error_form=form_name, forms=forms
    )


def done(request, work_order: WorkOrder, message: str, anchor: str = ""):
    remember_own_change(request)
    messages.success(request, message)
    return redirect(reverse("technician:order", args=[work_order.pk]) + (f"#{anchor}" if anchor else ""))


@never_cache
@technician_view
def order_detail(request, pk):
    return render_order(request, order_or_404(request, pk))


DONE_MESSAGES = {
    "start": gettext_lazy("{number} started."),
    "claim": gettext_lazy("{number} is yours: started."),
    "hold": gettext_lazy("{number} is on hold."),
    "resume": gettext_lazy("{number} resumed."),
    "complete": gettext_lazy("{number} completed. Well done."),
}


@require_POST
@technician_view
def order_action(request, pk, action):
    """Start (or claim and start), hold with a reason, resume, complete."""
    if action not in DONE_MESSAGES:
        raise Http404
    work_order, user = order_or_404(request, pk), request.user
    hold_form, complete_form = HoldForm(request.POST), CompleteForm(request.POST, work_order=work_order)
    try:
        if action in ("start", "claim"):
            work_order = services.start(work_order, actor=user)
        elif action == "hold":
            hold_form.is_valid()
            work_order = services.hold(work_order, reason=hold_form.cleaned_data.get("reason", ""), actor=user)
        elif action == "resume":
            work_order = services.resume(work_order, actor=user)
        else:
            complete_form.is_valid()
            work_order = services.complete(
                work_order,
                notes=complete_form.cleaned_data.get("notes", ""),
                failure_codes=complete_form.failure_codes(),
                actor=user,
            )
    except DomainError as exc:
        return refused(request, pk, exc, form_name=action, forms={"hold": hold_form, "complete": complete_form})
    return done(request, work_order, DONE_MESSAGES[action].format(number=work_order.number))


def item_or_404(request, pk, item_pk) -> ChecklistItem:
    return get_object_or_404(
        ChecklistItem.objects.for_tenant(request.organization).select_related("work_order"),
        pk=item_pk,
        work_order_id=pk,
    )


@require_POST
@technician_view
def checklist_result(request, pk, item_pk):
    item = item_or_404(request, pk, item_pk)
    form = ChecklistResultForm(request.POST)
    form.is_valid()
    try:
        item = services.record_checklist_result(item, actor=request.user, **form.service_kwargs())
    except DomainError as exc:
        return refused(request, pk, exc, form_name=f"item-{item_pk}")
    message = _("“%(item)s”: done.") if item.done else _("“%(item)s”: not done.")
    return done(request, item.work_order, message % {"item": item.text}, anchor=f"item-{item.pk}")


@require_POST
@technician_view
def checklist_follow_up(request, pk, item_pk):
    """A failed pass/fail item opens a follow-up order."""
    item = item_or_404(request, pk, item_pk)
    try:
        follow_up = services.raise_follow_up(item, actor=request.user)
    except DomainError as exc:
        return refused(request, pk, exc, form_name=f"item-{item_pk}")
    return done(
        request,
        item.work_order,
        _("Follow-up %(number)s opened.") % {"number": follow_up.number},
        anchor=f"item-{item.pk}",
    )


@require_POST
@technician_view
def plan_start(request, pk):
    """The technician plans when they start their order (`services.schedule`); empty unplans it."""
    work_order = order_or_404(request, pk)
    form = PlanForm(request.POST)
    if not form.is_valid():
        return render_order(
            request, work_order, status=400, forms={"plan": form}, error_form="plan", error=_("Give a date and a time.")
        )
    try:
        services.schedule(work_order, actor=request.user, scheduled_start=form.cleaned_data["scheduled_start"])
    except DomainError as exc:
        return refused(request, pk, exc, form_name="plan", forms={"plan": form})
    return done(request, work_order, _("Planned start saved."), anchor="about-title")


@require_POST
@technician_view
def add_note(request, pk):
    work_order = order_or_404(request, pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return render_order(
            request,
            work_order,
            status=400,
            forms={"note": form},
            error_form="note",
            error=_("Write something in the note first."),
        )
    try:
        services.add_comment(
            work_order, actor=request.user, body=form.cleaned_data["body"], client_id=form.cleaned_data["client_id"]
        )
    except DomainError as exc:
        return refused(request, pk, exc, form_name="note", forms={"note": form})
    return done(request, work_order, _("Note added."), anchor="notes")


@require_POST
@technician_view
def log_time(request, pk):
    work_order = order_or_404(request, pk)
    form = TimeForm(request.POST)
    if not form.is_valid():
        return render_order(
            request,
            work_order,
            status=400,
            forms={"time": form},
            error_form="time",
            error=_("Enter the minutes worked, from 1 to 1440."),
        )
    try:
        entry = services.log_time(
            work_order,
            actor=request.user,
            minutes=form.cleaned_data["minutes"],
            note=form.cleaned_data["note"],
            client_id=form.cleaned_data["client_id"],
        )
    except DomainError as exc:
        return refused(request, pk, exc, form_name="time", forms={"time": form})
    return done(request, work_order, _("%(minutes)s min logged.") % {"minutes": entry.minutes}, anchor="time")


@require_POST
@technician_view
def timer(request, pk, action):
    if action not in ("start", "stop"):
        raise Http404
    work_order = order_or_404(request, pk)
    try:
        if action == "start":
            services.start_timer(work_order, actor=request.user)
            message = _("Timer started.")
        else:
            entry = services.stop_timer(work_order, actor=request.user)
            message = _("Timer stopped: %(minutes)s min logged.") % {"minutes": entry.minutes}
    except DomainError as exc:
        return refused(request, pk, exc, form_name="time")
    return done(request, work_order, message, anchor="time")


@require_POST
@technician_view
def add_photo(request, pk):
    """A photo from the phone's camera: downscaled and stripped of EXIF (GPS too) before it is stored."""
    work_order = order_or_404(request, pk)
    form = PhotoForm(request.POST, request.FILES)
    if not form.is_valid():
        return render_order(
            request,
            work_order,
            status=400,
            forms={"photo": form},
            error_form="photo",
            error=_("Take or choose a photo first."),
        )
    try:
        photo = prepare_photo(form.cleaned_data["photo"])
        services.add_attachment(uploaded=photo, actor=request.user, work_order=work_order)
    except DomainError as exc:
        return refused(request, pk, exc, form_name="photo")
    return done(request, work_order, _("Photo attached."), anchor="attachments")


@require_GET
@technician_view
def attachment_download(request, token):
    """A file of an order of my organisation; anything else is a 404 (it does not say whether it exists)."""
    attachment = get_object_or_404(
        Attachment.objects.for_tenant(request.organization).filter(work_order__isnull=False), token=token
    )
    if not role_allows(request.membership.role, Action.VIEW):
        raise PermissionDeniedError(_("Your role may not see this organisation's files."))
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    inline = attachment.content_type.startswith("image/") or attachment.content_type == "application/pdf"
    response = FileResponse(
        handle, as_attachment=not inline, filename=attachment.original_name, content_type=attachment.content_type
    )
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    return response


# --- assets (the QR label) ----------------------------------------------------------------------------


@never_cache
@technician_view
def asset_page(request, public_token):
    """Where the QR label leads: the asset's open work, its recent history, meter readings, report a problem."""
    asset = get_object_or_404(
        Asset.objects.for_tenant(request.organization).select_related("location", "asset_type"),
        public_token=public_token,
    )
    open_orders = _mark(
        list(
            _urgent_first(
                services.with_extensions(WorkOrder.objects.for_tenant(request.organization).open()).filter(asset=asset)
            )
        ),
        timezone.now(),
    )
    return render(
        request,
        "technician/asset.html",
        {
            "asset": asset,
            "open_orders": open_orders,
            "history": asset_history(asset, limit=20),
            "meters": list(asset.meters.order_by("name")),
            "meter_form": MeterReadingForm(initial={"client_id": new_client_id()}),
            "report_url": reverse("public-report-asset", args=[asset.public_token]),
            "health": health_charts.asset_panel(asset),
        },
    )


@require_POST
@technician_view
def meter_reading(request, public_token, meter_pk):
    asset = get_object_or_404(Asset.objects.for_tenant(request.organization), public_token=public_token)
    meter = get_object_or_404(asset.meters.all(), pk=meter_pk)
    form = MeterReadingForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter the reading as a number."))
        return redirect("technician:asset", public_token=public_token)
    try:
        record_meter_reading(meter, request.user, form.cleaned_data["value"], form.cleaned_data["read_at"])
    except DomainError as exc:
        if isinstance(exc, PermissionDeniedError):
            raise
        messages.error(request, exc.message)
        return redirect("technician:asset", public_token=public_token)
    remember_own_change(request)
    value = number_format(form.cleaned_data["value"].normalize())
    messages.success(
        request,
        _("%(meter)s: %(value)s %(unit)s recorded.") % {"meter": meter.name, "value": value, "unit": meter.unit},
    )
    return redirect("technician:asset", public_token=public_token)


# --- plumbing for the scripts: CSRF token, service worker ----------------------------------------------


@never_cache
@require_GET
def csrf_token(request):
    """A fresh CSRF token, fetched before queued entries are replayed (a sign-in since they were queued
    rotated the old one). 401 when the session has ended."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": {"message": _("Sign in again to send what is waiting.")}}, status=401)
    return JsonResponse({"csrfToken": get_token(request), "user": request.user.pk})


def static_url_if_present(path: str) -> str | None:
    """The URL of a static file, or None when it is not there (an npm library not installed: the manifest
    storage refuses to name a file it does not have)."""
    try:
        return static(path)
    except ValueError:
        return None


@technician_view
def service_worker(request):
    """The service worker, served from /t/ so that its scope covers the technician's pages."""
    prefix = reverse("technician:my-work")
    config = {
        "version": SERVICE_WORKER_VERSION,
        "prefix": prefix,
        # Never cached: signing in and out, tokens, the worker itself, the JSON endpoints, files, searches.
        "exclude": [
            reverse("technician:login"),
            reverse("technician:logout"),
            reverse("technician:csrf"),
            reverse("technician:service-worker"),
            prefix + "api/",
            prefix + "attachments/",
            reverse("technician:part-search"),
        ],
        # the app's manifest and icons too: kept with the static files, not with the pages a sign-out deletes
        "static": [url for url in map(static_url_if_present, STATIC_FILES) if url]
        + [reverse("technician:manifest")]
        + [reverse("technician:icon", args=[size]) for size in ICON_SIZES],
    }
    body = render_to_string("technician/sw.js", {"config": json.dumps(config)})
    response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = prefix
    response["Cache-Control"] = "no-cache"
    return response


# --- installing the app: manifest and icons -------------------------------------------------------------

ICON_SIZES = (192, 512)
THEME_COLOR = "#1b1f24"
ACCENT_COLOR = "#0b57a4"


@require_GET
def manifest(request):
    """The web app manifest: the technician's view installs as "My work", opening at /t/ full screen. Public
    (browsers fetch it without cookies); it says nothing of anyone's work."""
    prefix = reverse("technician:my-work")
    icons = [
        {"src": reverse("technician:icon", args=[size]), "sizes": f"{size}x{size}", "type": "image/png"}
        for size in ICON_SIZES
    ]
    icons.append({**icons[-1], "purpose": "maskable"})
    body = {
        "name": _("Maintenance — My work"),
        "short_name": _("My work"),
        "description": _("Your assigned work orders, also without signal."),
        "id": prefix,
        "start_url": prefix,
        "scope": prefix,
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f3f4f6",
        "theme_color": THEME_COLOR,
        "icons": icons,
    }
    response = JsonResponse(body, content_type="application/manifest+json", json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "public, max-age=86400"
    return response


@functools.cache
def _icon_png(size: int) -> bytes:
    """The app's icon, drawn here (nothing copied from elsewhere): a blue disc on the dark theme colour, with a
    white wrench — a ring and a handle — inside the maskable safe zone (the middle 80 %)."""
    scale = 4  # drawn large and scaled down: smooth edges
    side = size * scale
    image = Image.new("RGB", (side, side), THEME_COLOR)
    draw = ImageDraw.Draw(image)
    margin = side * 0.14
    draw.ellipse((margin, margin, side - margin, side - margin), fill=ACCENT_COLOR)
    # the wrench: a handle from the lower left to the middle, a ring at its upper right end with its jaw open
    width = side * 0.11
    draw.line((side * 0.33, side * 0.67, side * 0.56, side * 0.44), fill="white", width=int(width))
    end = width / 2
    draw.ellipse((side * 0.33 - end, side * 0.67 - end, side * 0.33 + end, side * 0.67 + end), fill="white")
    ring = (side * 0.50, side * 0.28, side * 0.72, side * 0.50)
    draw.ellipse(ring, fill="white")
    jaw = side * 0.055
    centre_x, centre_y = side * 0.61, side * 0.39
    draw.ellipse((centre_x - jaw, centre_y - jaw, centre_x + jaw, centre_y + jaw), fill=ACCENT_COLOR)
    draw.polygon([(centre_x, centre_y), (side * 0.70, side * 0.22), (side * 0.78, side * 0.30)], fill=ACCENT_COLOR)
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    buffer = BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@require_GET
def icon(request, size):
    if size not in ICON_SIZES:
        raise Http404
    response = HttpResponse(_icon_png(size), content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"
    return response
