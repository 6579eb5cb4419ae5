"""Back office: what was notified and how each delivery went (read-only), and retrying failed ones."""

from django.contrib import admin, messages

from maintenance_site.notifications import services
from maintenance_site.notifications.kinds import all_kinds
from maintenance_site.notifications.models import Notification, NotificationDelivery
from maintenance_site.tenancy.admin_base import ReadOnlyTenantAdmin, ReadOnlyTenantInline
from maintenance_site.tenancy.roles import Action


class KindFilter(admin.SimpleListFilter):
    """Choices from the kind registry, so the filter never lists another organisation's values."""

    title = "kind"
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
    title = "read"
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("yes", "Read"), ("no", "Unread")]

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

    @admin.display(description="notification", ordering="notification__title")
    def notification_title(self, obj):
        return obj.notification.title

    @admin.display(description="last error")
    def short_error(self, obj):
        return obj.last_error[:80] + ("…" if len(obj.last_error) > 80 else "")

    def has_retry_permission(self, request):
        return self._may_write(request)

    @admin.action(description="Retry the selected failed deliveries", permissions=["retry"])
    def retry_failed(self, request, queryset):
        count = services.retry_deliveries(queryset.filter(status=NotificationDelivery.Status.FAILED))
        if count:
            messages.success(request, f"Queued {count} failed deliveries for another round of attempts.")
        else:
            messages.warning(request, "None of the selected deliveries had failed; nothing to retry.")
