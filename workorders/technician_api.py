"""Small JSON endpoints of the technician's view (`/t/api/`), for what a phone may enter offline: checklist
results, notes, time, meter readings, and the lifecycle steps (start, hold, resume, complete) dated by the
device; also what the phone saves for offline use and its Web Push subscription. `static/technician/technician.js`
posts to them directly when online and replays its queue through them when the connection returns.

Session authentication with the CSRF header (`X-CSRFToken`, fetched fresh from `/t/csrf/` before a replay).
Every body carries the entry's `client_id`, and the services apply a client id once, so a replay after a lost
response changes nothing. Answers: `{"ok": true, "message": ..., "html": ...}` (the updated fragment, when
there is one) or `{"error": {"message", "code", "fields"}}` with the service's status: 401 signed out, 403 not
allowed (the order was reassigned), 404 not in my organisation, 409 conflict (the order was cancelled), 400.
"""

import functools
import json

from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from assets.models import Asset
from maintenance_site import client_ids
from maintenance_site.errors import DomainError, InvalidInput
from maintenance_site.notifications import services as notification_services
from maintenance_site.notifications import webpush
from workorders import services
from workorders.technician_forms import (
    ChecklistResultForm,
    CompleteForm,
    MeterReadingForm,
    NoteForm,
    OfflineStepForm,
    TimeForm,
)
from workorders.technician_views import (
    DONE_MESSAGES,
    item_or_404,
    may_work_on,
    offline_bundle_context,
    order_or_404,
    record_meter_reading,
)


def error(message: str, status: int, code: str = "invalid", fields: dict | None = None, **extra) -> JsonResponse:
    """`extra`: what the service's refusal adds (e.g. `existing`, the record that already has a client id)."""
    return JsonResponse({"error": {"message": message, "code": code, "fields": fields or {}, **extra}}, status=status)


def ok(message: str, status: int = 200, **extra) -> JsonResponse:
    return JsonResponse({"ok": True, "message": message, **extra}, status=status)


def form_error(form) -> JsonResponse:
    fields = {name: [str(message) for message in errors] for name, errors in form.errors.items()}
    first = next(iter(fields.values()), [_("Check what you entered.")])[0]
    return error(first, 400, "invalid", fields)


def json_endpoint(view):
    """POST with a JSON (or form) body by a signed-in member; errors as JSON, never a redirect to the login
    page (a replay must not take that for success)."""

    @functools.wraps(view)
    @never_cache
    @require_POST
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return error(_("Your session has ended: sign in again to send this."), 401, "not_authenticated")
        organization = request.organization
        if not organization:
            return error(_("Your account is not a member of any organisation."), 403, "no_membership")
        if request.content_type == "application/json":
            try:
                payload = json.loads(request.body or b"{}")
            except ValueError:
                return error(_("The request body is not JSON."), 400, "invalid_json")
            if not isinstance(payload, dict):
                return error(_("Send a JSON object."), 400, "invalid_json")
        else:
            payload = request.POST.dict()
        with timezone.override(organization.zone):
            try:
                response = view(request, payload, *args, **kwargs)
            except Http404:
                return error(_("This is not in your organisation, or it no longer exists."), 404, "not_found")
            except DomainError as exc:
                return error(exc.message, exc.status_code, exc.code, exc.fields, **exc.extra)
        return response

    return wrapper


@json_endpoint
def checklist_result(request, payload, pk, item_pk):
    item = item_or_404(request, pk, item_pk)
    form = ChecklistResultForm(payload)
    if not form.is_valid():
        return form_error(form)
    item = services.record_checklist_result(item, actor=request.user, **form.service_kwargs())
    work_order = order_or_404(request, pk)
    html = render_to_string(
        "technician/_checklist_item.html",
        {"item": item, "wo": work_order, "editable": work_order.is_open and may_work_on(work_order, request.user)},
        request=request,
    )
    message = _("“%(item)s”: done.") if item.done else _("“%(item)s”: not done.")
    return ok(message % {"item": item.text}, html=html, done=item.done)


@json_endpoint
def add_note(request, payload, pk):
    work_order = order_or_404(request, pk)
    form = NoteForm(payload)
    if not form.is_valid():
        return form_error(form)
    comment = services.add_comment(
        work_order,
        actor=request.user,
        body=form.cleaned_data["body"],
        client_id=form.cleaned_data["client_id"],
        occurred_at=form.cleaned_data["occurred_at"],
    )
    html = render_to_string("technician/_note.html", {"comment": comment}, request=request)
    if client_ids.was_replayed(comment):
        return ok(_("Note already added."), html=html)
    return ok(_("Note added."), status=201, html=html)


@json_endpoint
def log_time(request, payload, pk):
    work_order = order_or_404(request, pk)
    form = TimeForm(payload)
    if not form.is_valid():
        return form_error(form)
    entry = services.log_time(
        work_order,
        actor=request.user,
        minutes=form.cleaned_data["minutes"],
        note=form.cleaned_data["note"],
        client_id=form.cleaned_data["client_id"],
        occurred_at=form.cleaned_data["occurred_at"],
    )
    total = sum(minutes or 0 for minutes in work_order.time_entries.values_list("minutes", flat=True))
    if client_ids.was_replayed(entry):
        message = _("%(minutes)s min already logged on %(number)s.")
        return ok(message % {"minutes": entry.minutes, "number": work_order.number}, total_minutes=total)
    message = _("%(minutes)s min logged on %(number)s.")
    return ok(message % {"minutes": entry.minutes, "number": work_order.number}, status=201, total_minutes=total)


@json_endpoint
def meter_reading(request, payload, public_token, meter_pk):
    asset = get_object_or_404(Asset.objects.for_tenant(request.organization), public_token=public_token)
    meter = get_object_or_404(asset.meters.all(), pk=meter_pk)
    form = MeterReadingForm(payload)
    if not form.is_valid():
        return form_error(form)
    value = form.cleaned_data["value"]
    if value is None:
        raise InvalidInput(_("Enter the reading as a number."))
    record_meter_reading(meter, request.user, value, form.cleaned_data["read_at"])
    message = _("%(meter)s: %(value)s %(unit)s recorded.")
    return ok(
        message % {"meter": meter.name, "value": number_format(value.normalize()), "unit": meter.unit}, status=201
    )


@json_endpoint
def order_step(request, payload, pk, action):
    """Start, hold (with `reason`), resume or complete (with `notes` and, on corrective work, the failure codes the
    technician picked: `problem_code`, `cause_code`, `remedy_code`, ids of the organisation's codes) an order, at
    `occurred_at` (the device's time, now when absent). Applied once per client id
    (`workorders.services.apply_offline_action`)."""
    if action not in services.OFFLINE_STEPS:
        raise Http404
    work_order = order_or_404(request, pk)
    form = OfflineStepForm(payload)
    if not form.is_valid():
        return form_error(form)
    failure_codes = None
    if action == "complete":
        codes = CompleteForm(payload, work_order=work_order)  # only this organisation's codes are choices
        if not codes.is_valid():
            return form_error(codes)
        failure_codes = codes.failure_codes()
    data = form.cleaned_data
    record = services.apply_offline_action(
        work_order,
        action,
        actor=request.user,
        client_id=data["client_id"],
        occurred_at=data["occurred_at"] or timezone.now(),
        text=data["reason"] if action == "hold" else data["notes"] if action == "complete" else "",
        version=data["version"],
        failure_codes=failure_codes,
    )
    work_order.refresh_from_db()
    answer = {"order_status": work_order.status, "status_label": work_order.get_status_display()}
    if client_ids.was_replayed(record):
        return ok(_("%(number)s: already done.") % {"number": work_order.number}, **answer)
    return ok(DONE_MESSAGES[action].format(number=work_order.number), status=201, **answer)


@never_cache
def offline_bundle(request):
    """GET: what the phone keeps for offline use — the pages of my open orders, of their assets, and my van's
    parts — as a list of URLs for the service worker to fetch and save (`technician.js`, "Save for offline")."""
    if request.method != "GET":
        return error(_("Use GET."), 405, "method_not_allowed")
    if not request.user.is_authenticated:
        return error(_("Your session has ended: sign in again."), 401, "not_authenticated")
    if not request.organization:
        return error(_("Your account is not a member of any organisation."), 403, "no_membership")
    return JsonResponse(offline_bundle_context(request))


@never_cache
def push_key(request):
    """GET: the VAPID public key this phone subscribes with (`PushManager.subscribe`'s applicationServerKey)."""
    if not request.user.is_authenticated:
        return error(_("Your session has ended: sign in again."), 401, "not_authenticated")
    return JsonResponse({"publicKey": webpush.application_server_key()})


def _subscription_fields(payload) -> dict:
    endpoint = payload.get("endpoint")
    keys = payload.get("keys")
    fields = {}
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")) or len(endpoint) > 1000:
        fields["endpoint"] = [_("Send the subscription's endpoint URL.")]
    if not isinstance(keys, dict) or not all(isinstance(keys.get(name), str) and keys.get(name) for name in KEY_NAMES):
        fields["keys"] = [_("Send the subscription's keys p256dh and auth.")]
    elif len(keys["p256dh"]) > 200 or len(keys["auth"]) > 100:
        fields["keys"] = [_("These keys are too long for a Web Push subscription.")]
    if fields:
        raise InvalidInput(_("This is not a Web Push subscription."), fields=fields)
    return {"endpoint": endpoint, "p256dh": keys["p256dh"], "auth": keys["auth"]}


KEY_NAMES = ("p256dh", "auth")


@json_endpoint
def push_subscribe(request, payload):
    """This phone's push subscription (`PushSubscription.toJSON()`): Web Push for new urgent assignments, urgent
    orders of my teams and SLA warnings on my orders, also when the page is closed."""
    subscription = notification_services.subscribe_webpush(
        request.organization,
        actor=request.user,
        user_agent=request.headers.get("User-Agent", ""),
        **_subscription_fields(payload),
    )
    return ok(_("This phone will be notified of urgent work."), status=201, id=subscription.pk)


@json_endpoint
def push_unsubscribe(request, payload):
    endpoint = payload.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidInput(_("Send the subscription's endpoint."), fields={"endpoint": [_("Required.")]})
    removed = notification_services.unsubscribe_webpush(request.organization, actor=request.user, endpoint=endpoint)
    return ok(_("This phone will no longer be notified.") if removed else _("This phone was not subscribed."))
