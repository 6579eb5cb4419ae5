"""`/api/v1/chat-channels/`: the organisation's chat channels (Slack, Teams Workflows, generic JSON webhooks) and
the notification kinds routed to each, for managers and integrators (`manage_webhooks`, like webhooks).

    GET/POST          chat-channels/        list / create
    GET/PATCH/DELETE  chat-channels/{id}/   one channel

The URL is a credential (a Slack or Teams webhook URL lets anyone post): it is written, never read back (responses
carry `url_hint`, its host and the start of its path), stored encrypted, and checked like a webhook target (public
hosts only, after DNS resolution) when saved and again before each send.
"""

from rest_framework import serializers

from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantModelViewSet
from maintenance_site.notifications import services
from maintenance_site.notifications.models import ChatChannel
from maintenance_site.tenancy.roles import Action

MANAGE = Action.MANAGE_WEBHOOKS


class ChatChannelSerializer(serializers.ModelSerializer):
    url = serializers.URLField(
        max_length=2000,
        write_only=True,
        help_text="The incoming webhook's URL (Slack, Teams Workflows, or any JSON receiver): written, never shown "
        "again; public hosts only.",
    )
    kinds = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=50,
        help_text="Notification kinds or wildcards routed here: “sla:*”, “inventory:low-stock”, “*”.",
    )

    class Meta:
        model = ChatChannel
        fields = ["id", "name", "kind", "url", "url_hint", "kinds", "is_active", "created_at", "updated_at"]
        read_only_fields = ["url_hint", "created_at", "updated_at"]


class ChatChannelViewSet(TenantModelViewSet):
    queryset = ChatChannel.objects.all()
    serializer_class = ChatChannelSerializer
    filterset_fields = ["kind", "is_active"]
    search_fields = ["name"]
    ordering_fields = ["name", "id", "created_at"]
    ordering = ["name", "id"]
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    write_action = MANAGE  # a method outside http_method_names (PUT) passes the check and gets its 405
    action_permissions = {
        "list": MANAGE,
        "retrieve": MANAGE,
        "create": MANAGE,
        "partial_update": MANAGE,
        "destroy": MANAGE,
    }

    def perform_create(self, serializer):
        channel = services.create_chat_channel(self.organization, actor=self.request.user, **serializer.validated_data)
        self.written(serializer, channel)

    def perform_update(self, serializer):
        channel = services.update_chat_channel(
            serializer.instance, actor=self.request.user, **serializer.validated_data
        )
        self.written(serializer, channel)

    def perform_destroy(self, instance):
        services.delete_chat_channel(instance, actor=self.request.user)


router.register("chat-channels", ChatChannelViewSet, basename="chat-channel")
