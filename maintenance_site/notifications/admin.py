"""Back office: what was notified and how each delivery went (read-only), and retrying failed ones."""

from django import forms
from django.contrib import admin, messages
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from maintenance_site.notifications import services
from maintenance_site.notifications.kinds import all_kinds
from maintenance_site.notifications.models import ChatChannel, Notification, NotificationDelivery
from maintenance_site.tenancy.admin_base import (
    ReadOnlyTenantAdmin,
    ReadOnlyTenantInline,
    ServiceAdmin,
    ServiceForm,
    adopt,
    submitted,
)
from maintenance_site.tenancy.roles import Action


class KindFilter(admin.SimpleListFilter):
    """Choices from the kind registry, so the filter never lists another organisation's values."""

    title = _("kind")
    parameter_name = "kind"
    field_path = "kind"

    def lookups(self, request, model_admin):
        return [(kind.name, kind.label) for kind in all_kinds()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field_path: self.value()})
        return queryset


class DeliveryKindFilter(KindFilter):
    field_path = "notification__kind"


class ReadFilter(admin.SimpleListFilter):
    title = _("read")
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("yes", _("Read")), ("no", _("Unread"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(read_at__isnull=self.value() == "no")
        return queryset


class DeliveryInline(ReadOnlyTenantInline):
    model = NotificationDelivery
    fields = ["channel", "status", "attempts", "last_error", "sent_at"]
    show_change_link = True


@admin.register(Notification)
class NotificationAdmin(ReadOnlyTenantAdmin):
    """What was notified (written only by the notification services; no history table of its own)."""

    list_display = ["title", "kind", "recipient", "organization", "created_at", "read_at"]
    list_filter = [KindFilter, ReadFilter]
    list_select_related = ["recipient", "organization"]
    search_fields = ["title", "recipient__username"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [DeliveryInline]


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyTenantAdmin):
    write_action = Action.MANAGE_SETTINGS  # who may retry
    list_display = ["id", "notification_title", "channel", "status", "attempts", "short_error", "sent_at", "created_at"]
    list_filter = ["status", "channel", DeliveryKindFilter]
    list_select_related = ["notification"]
    search_fields = ["notification__title", "notification__recipient__username"]
    show_full_result_count = False
    actions = ["retry_failed"]

    @admin.display(description=_("notification"), ordering="notification__title")
    def notification_title(self, obj):
        return obj.notification.title

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return obj.last_error[:80] + ("…" if len(obj.last_error) > 80 else "")

    def has_retry_permission(self, request):
        return self._may_write(request)

    @admin.action(description=_("Retry the selected failed deliveries"), permissions=["retry"])
    def retry_failed(self, request, queryset):
        count = services.retry_deliveries(queryset.filter(status=NotificationDelivery.Status.FAILED))
        if count:
            messages.success(
                request,
                ngettext(
                    "Queued %(count)s failed delivery for another round of attempts.",
                    "Queued %(count)s failed deliveries for another round of attempts.",
                    count,
                )
                % {"count": count},
            )
        else:
            messages.warning(request, _("None of the selected deliveries had failed; nothing to retry."))


class KindsField(forms.CharField):
    """Notification kinds routed to a chat channel as one line: `sla:*, inventory:low-stock`."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value)
        return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


class ChatChannelForm(ServiceForm):
    url = forms.URLField(
        max_length=2000,
        required=False,
        assume_scheme="https",
        help_text=_(
            "The incoming webhook's URL (Slack, Teams Workflows, or any JSON receiver). Stored encrypted; "
            "leave empty to keep the current one."
        ),
    )
    kinds = KindsField(
        help_text=format_lazy(
            _("Notification kinds routed here, comma-separated; wildcards such as sla:* or * for all. Kinds: {kinds}"),
            kinds=", ".join(kind.name for kind in all_kinds()),
        )
    )

    class Meta:
        model = ChatChannel
        fields = ["name", "kind", "url", "kinds", "is_active"]

    def clean_url(self):
        url = self.cleaned_data.get("url")
        if not url and self.instance.pk is None:
            raise forms.ValidationError(_("A new channel needs its webhook URL."))
        return url


@admin.register(ChatChannel)
class ChatChannelAdmin(ServiceAdmin):
    """The organisation's Slack / Teams / JSON webhooks and the notification kinds each receives. Seen and changed
    with `manage_webhooks`, the action the chat-channel API checks (in the back office: managers)."""

    write_action = Action.MANAGE_WEBHOOKS  # as chat_api.MANAGE
    form = ChatChannelForm
    list_display = ["name", "kind", "url_hint", "routed", "is_active", "organization"]
    list_filter = ["kind", "is_active"]
    list_select_related = ["organization"]
    search_fields = ["name"]
    readonly_fields = ["url_hint", "created_at", "updated_at"]

    def has_view_permission(self, request, obj=None):
        # the API lists channels only to those who may change them; the back office says the same
        return super().has_view_permission(request, obj) and self._may_write(request, obj)

    @admin.display(description=_("kinds"))
    def routed(self, obj):
        return ", ".join(obj.kinds)

    def get_fields(self, request, obj=None):
        fields = ["name", "kind", "url", "kinds", "is_active"]
        if request.user.is_superuser and obj is None:
            fields.insert(0, "organization")
        return fields if obj is None else [*fields, *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.CHAT_CHANNEL_FIELDS, changed=change)
        if not fields.get("url"):
            fields.pop("url", None)
        if change:
            adopt(obj, services.update_chat_channel(obj, actor=request.user, **fields))
        else:
            adopt(obj, services.create_chat_channel(self.new_organization(request, form), actor=request.user, **fields))

    def delete_model(self, request, obj):
        services.delete_chat_channel(obj, actor=request.user)
