"""Back office: webhook subscriptions (written through the services; the secret shown once) and the delivery log."""

import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from maintenance_site.errors import DomainError
from maintenance_site.events.types import all_event_types
from maintenance_site.tenancy.admin_base import (
    ReadOnlyTenantAdmin,
    ReadOnlyTenantInline,
    ServiceAdmin,
    ServiceForm,
    adopt,
    submitted,
)
from maintenance_site.tenancy.roles import Action
from maintenance_site.webhooks import services
from maintenance_site.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class EventTypesField(forms.CharField):
    """The subscription's event types as one line: `work-order:*, sla:violation`."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value)
        return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


class WebhookSubscriptionForm(ServiceForm):
    url = forms.URLField(
        max_length=2000, assume_scheme="https", help_text=_("Where events are POSTed; public hosts only.")
    )
    event_types = EventTypesField(
        help_text=format_lazy(
            _("Comma-separated event types or wildcards (work-order:*, * for all). Known types: {types}"),
            types=", ".join(item.name for item in all_event_types()),
        )
    )

    class Meta:
        model = WebhookSubscription
        fields = ["url", "description", "event_types", "is_active"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ServiceAdmin):
    """A subscription is created (its secret shown once), edited, rotated and tested through the services."""

    form = WebhookSubscriptionForm
    write_action = Action.MANAGE_WEBHOOKS
    list_display = ["url", "organization", "types", "is_active", "failing_since", "disabled_reason", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["organization"]
    search_fields = ["url", "description"]
    readonly_fields = [
        "secret_prefix",
        "previous_secret_expires_at",
        "disabled_reason",
        "failing_since",
        "last_sequence",
        "created_by",
        "created_at",
        "updated_at",
    ]
    actions = ["send_test", "rotate"]

    @admin.display(description=_("event types"))
    def types(self, obj):
        return ", ".join(obj.event_types)

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "event_types", "is_active"]
        if request.user.is_superuser and obj is None:
            fields.insert(0, "organization")
        return fields if obj is None else [*fields, *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.SUBSCRIPTION_FIELDS, changed=change)
        if change:
            adopt(obj, services.update_subscription(obj, actor=request.user, **fields))
            return
        subscription, secret = services.create_subscription(
            self.new_organization(request, form), actor=request.user, **fields
        )
        adopt(obj, subscription)
        messages.warning(
            request, _("The signing secret is %(secret)s — copy it now: it is shown only once.") % {"secret": secret}
        )

    def delete_model(self, request, obj):
        services.delete_subscription(obj, actor=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:webhooks_webhooksubscription_changelist"))

    def has_send_test_permission(self, request):
        return self._may_write(request)

    has_rotate_permission = has_send_test_permission

    @admin.action(description=_("Send a test event to the selected subscriptions"), permissions=["send_test"])
    def send_test(self, request, queryset):
        for subscription in queryset:
            services.send_test_event(subscription, actor=request.user)
        count = queryset.count()
        messages.success(
            request,
            ngettext(
                "Queued a test event for %(count)s subscription: see the deliveries.",
                "Queued a test event for %(count)s subscriptions: see the deliveries.",
                count,
            )
            % {"count": count},
        )

    @admin.action(
        description=_("Rotate the signing secret (the old one signs for the grace period)"), permissions=["rotate"]
    )
    def rotate(self, request, queryset):
        for subscription in queryset:
            try:
                secret = services.rotate_secret(subscription, actor=request.user)[1]
            except DomainError as exc:
                messages.error(request, exc.message)
                continue
            messages.warning(
                request,
                _("New secret of %(url)s: %(secret)s — copy it now: shown only once.")
                % {"url": subscription.url, "secret": secret},
            )


class AttemptInline(ReadOnlyTenantInline):
    """The attempt rows: the failed attempts (the success is the delivery's own `successful_attempt`)."""

    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "latency_ms", "error", "response_body"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyTenantAdmin):
    """The delivery log: what was sent where, how each attempt went; failed ones can be sent again."""

    write_action = Action.MANAGE_WEBHOOKS  # who may replay
    list_display = [
        "id",
        "event_type",
        "sequence",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
    ]
    list_filter = ["status", "event_type"]
    list_select_related = ["subscription"]
    search_fields = ["event_type", "subscription__url"]
    show_full_result_count = False
    readonly_fields = ["successful_attempt"]
    inlines = [AttemptInline]
    actions = ["replay"]

    @admin.display(description=_("Successful attempt"))
    def successful_attempt(self, obj):
        """The success the delivery keeps (the attempts below are the failed ones): when, the answer, the request
        rebuilt from the event."""
        if obj is None or obj.pk is None:
            return "—"
        attempt = services.success_attempt(services.with_sent_payload(WebhookDelivery.objects).get(pk=obj.pk))
        if attempt is None:
            return "—"
        return format_html(
            "{} · HTTP {} · {} ms<br>{}<pre>{}</pre><pre>{}</pre>",
            attempt.attempted_at,
            attempt.status_code,
            attempt.latency_ms,
            attempt.response_body,
            json.dumps(attempt.request_headers, indent=1),
            attempt.request_body,
        )

    def has_replay_permission(self, request):
        return self._may_write(request)

    @admin.action(description=_("Send the selected deliveries again (same webhook-id)"), permissions=["replay"])
    def replay(self, request, queryset):
        count = 0
        for delivery in queryset:
            services.replay_delivery(delivery, actor=request.user)
            count += 1
        messages.success(
            request,
            ngettext(
                "Queued %(count)s delivery to be sent again.", "Queued %(count)s deliveries to be sent again.", count
            )
            % {"count": count},
        )
