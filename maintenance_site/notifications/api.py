"""`/api/v1/notifications/`: the caller's own notifications in the active organisation, and their choices.

    GET  notifications/               the caller's list (?unread=true, ?kind=..., paginated)
    GET  notifications/{id}           one of them (another person's is a 404)
    POST notifications/{id}/read      mark it read
    POST notifications/read-all       mark all read
    GET  notifications/unread-count   {"unread": n}
    GET  notifications/preferences    channels per kind, the phone number, the channels available
    PUT  notifications/preferences    change some of them

Every member may do all of this for themselves: each action needs only Action.VIEW.
"""

import django_filters
from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from maintenance_site.api.pagination import CursorPagination
from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantGenericViewSet
from maintenance_site.notifications import services
from maintenance_site.notifications.kinds import enabled_channels, get_kind, is_registered
from maintenance_site.notifications.models import Channel, Notification
from maintenance_site.tenancy.roles import Action


class NotificationSerializer(serializers.ModelSerializer):
    kind_label = serializers.SerializerMethodField()
    is_read = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "kind_label", "title", "body", "url", "data", "is_read", "read_at", "created_at"]
        read_only_fields = fields

    def get_kind_label(self, obj) -> str:
        return get_kind(obj.kind).label if is_registered(obj.kind) else obj.kind


class KindPreferenceSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=64)
    label = serializers.CharField(read_only=True)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        allow_null=True,
        help_text="The channels for this kind (in_app is always added); null goes back to the defaults.",
    )
    default_channels = serializers.ListField(child=serializers.CharField(), read_only=True)
    customised = serializers.BooleanField(read_only=True)


class PreferencesSerializer(serializers.Serializer):
    phone_number = serializers.CharField(
        max_length=16, allow_blank=True, required=False, help_text="For SMS, in international form (+4915112345678)."
    )
    time_zone = serializers.CharField(
        max_length=64,
        allow_blank=True,
        required=False,
        help_text="For quiet hours and the digest; empty: the organisation's.",
    )
    quiet_hours_start = serializers.TimeField(allow_null=True, required=False, help_text="Non-urgent news waits from…")
    quiet_hours_end = serializers.TimeField(allow_null=True, required=False, help_text="…until (may be past midnight).")
    daily_digest = serializers.BooleanField(required=False, help_text="Non-urgent e-mails as one a day.")
    digest_time = serializers.TimeField(required=False, help_text="When the digest goes (local time).")
    available_channels = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The channels this deployment can send through."
    )
    kinds = KindPreferenceSerializer(many=True, required=False)


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull", label="Only unread ones")

    class Meta:
        model = Notification
        fields = ["kind"]


class NotificationViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    queryset = Notification.objects.all()
    serializer_class = NotificationSerializer
    pagination_class = CursorPagination
    filterset_class = NotificationFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"\d+"
    action_permissions = {
        "list": Action.VIEW,
        "retrieve": Action.VIEW,
        "read": Action.VIEW,
        "read_all": Action.VIEW,
        "unread_count": Action.VIEW,
        "preferences": Action.VIEW,
    }

    def get_queryset(self):
        return super().get_queryset().for_recipient(self.request.user)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = services.mark_read(self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=inline_serializer("ReadAll", {"marked_read": serializers.IntegerField()}))
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"marked_read": services.mark_all_read(self.organization, request.user)})

    @extend_schema(responses=inline_serializer("UnreadCount", {"unread": serializers.IntegerField()}))
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"unread": services.unread_count(self.organization, request.user)})

    @extend_schema(methods=["GET"], request=None, responses=PreferencesSerializer)
    @extend_schema(methods=["PUT"], request=PreferencesSerializer, responses=PreferencesSerializer)
    @action(detail=False, methods=["get", "put"], serializer_class=PreferencesSerializer)
    def preferences(self, request):
        if request.method == "PUT":
            serializer = PreferencesSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            with transaction.atomic():  # all of it or nothing
                if "phone_number" in data:
                    services.set_phone_number(request.user, data["phone_number"])
                times = {name: data[name] for name in services.DELIVERY_TIME_FIELDS if name in data}
                if times:
                    services.set_delivery_times(request.user, **times)
                if "kinds" in data:
                    services.set_preferences(
                        self.organization, request.user, {item["kind"]: item["channels"] for item in data["kinds"]}
                    )
        return Response(
            {
                "phone_number": services.phone_number_of(request.user),
                **services.delivery_times_of(request.user),
                "available_channels": enabled_channels(),
                "kinds": services.preferences_of(self.organization, request.user),
            }
        )


router.register("notifications", NotificationViewSet, basename="notification")
