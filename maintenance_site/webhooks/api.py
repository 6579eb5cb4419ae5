"""`/api/v1/webhooks/` (subscriptions) and `/api/v1/webhook-deliveries/` (the delivery log), for managers and
integrators (`manage_webhooks`).

    GET/POST          webhooks/                        list / create (the response carries the secret, once)
    GET/PATCH/DELETE  webhooks/{id}/                   one subscription
    POST              webhooks/{id}/rotate-secret/     a new secret (returned once); the old one signs too for a while
    POST              webhooks/{id}/test/              queue a `webhook:test` delivery
    POST              webhooks/{id}/replay/            re-send everything after a sequence number ({"after": n})
    GET               webhook-deliveries/              the log (?subscription=, ?status=, ?event_type=)
    GET               webhook-deliveries/{id}/         one delivery with its attempts (the failed ones and its success)
    POST              webhook-deliveries/{id}/replay/  send it again, same webhook-id
"""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantGenericViewSet, TenantModelViewSet
from maintenance_site.events.services import parse_sequence_number
from maintenance_site.tenancy.roles import Action
from maintenance_site.webhooks import services
from maintenance_site.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

MANAGE = Action.MANAGE_WEBHOOKS


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    url = serializers.URLField(max_length=2000, help_text="Where events are POSTed; public hosts only.")
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=50,
        help_text="Event types or wildcards: “work-order:created”, “work-order:*”, “*”.",
    )
    secret = serializers.SerializerMethodField(
        help_text="The whsec_ signing secret: only in the response that creates or rotates it."
    )

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_reason",
            "secret_prefix",
            "secret",
            "previous_secret_expires_at",
            "last_sequence",
            "failing_since",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "disabled_reason",
            "secret_prefix",
            "previous_secret_expires_at",
            "last_sequence",
            "failing_since",
            "created_at",
            "updated_at",
        ]

    def get_secret(self, obj) -> str | None:
        return self.context.get("new_secret")


class AttemptSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="null for the delivery's success, which the delivery keeps (its request rebuilt from the event: "
        "the same body and headers, the signature left out as in every attempt).",
    )

    class Meta:
        model = WebhookAttempt
        fields = [
            "id",
            "attempted_at",
            "status_code",
            "latency_ms",
            "error",
            "request_headers",
            "request_body",
            "response_body",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.SerializerMethodField(help_text="The webhook-id header of every attempt.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "webhook_id",
            "event_type",
            "sequence",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "first_attempt_at",
            "succeeded_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_webhook_id(self, obj) -> str:
        return f"msg_{obj.message_id.hex}"


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    attempt_log = serializers.SerializerMethodField(help_text="Every attempt, newest first: failures and the success.")

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "attempt_log"]
        read_only_fields = fields

    @extend_schema_field(AttemptSerializer(many=True))
    def get_attempt_log(self, obj) -> list:
        return AttemptSerializer(services.attempt_log(obj), many=True).data


class RotateSerializer(serializers.Serializer):
    grace_hours = serializers.FloatField(
        required=False, min_value=0, max_value=720, help_text="How long the old secret keeps signing too."
    )


class ReplaySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, max_value=2**63 - 1, help_text="Re-send events after this sequence.")


class WebhookSubscriptionViewSet(TenantModelViewSet):
    queryset = WebhookSubscription.objects.all()
    serializer_class = WebhookSubscriptionSerializer
    filterset_fields = ["is_active"]
    ordering_fields = ["created_at", "id"]
    ordering = ["id"]
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    write_action = MANAGE  # a method outside http_method_names (PUT) passes the check and gets its 405
    action_permissions = {
        "list": MANAGE,
        "retrieve": MANAGE,
        "create": MANAGE,
        "partial_update": MANAGE,
        "destroy": MANAGE,
        "rotate_secret": MANAGE,
        "test": MANAGE,
        "replay": MANAGE,
    }

    def perform_create(self, serializer):
        subscription, secret = services.create_subscription(
            self.organization, actor=self.request.user, **serializer.validated_data
        )
        serializer.context["new_secret"] = secret  # in this response only
        self.written(serializer, subscription)

    def perform_update(self, serializer):
        self.written(
            serializer,
            services.update_subscription(serializer.instance, actor=self.request.user, **serializer.validated_data),
        )

    def perform_destroy(self, instance):
        services.delete_subscription(instance, actor=self.request.user)

    @extend_schema(request=RotateSerializer, responses=WebhookSubscriptionSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        subscription = self.get_object()  # another organisation's is a 404 before the body is read
        data = self.input(RotateSerializer)
        subscription, secret = services.rotate_secret(
            subscription, actor=request.user, grace_hours=data.get("grace_hours")
        )
        context = {**self.get_serializer_context(), "new_secret": secret}
        return Response(WebhookSubscriptionSerializer(subscription, context=context).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = services.send_test_event(self.get_object(), actor=request.user)
        return self.one(WebhookDeliverySerializer, delivery, status=202)

    @extend_schema(
        request=ReplaySerializer,
        responses={
            202: inline_serializer(
                "WebhookReplay",
                {
                    "replayed": serializers.IntegerField(),
                    "last_sequence": serializers.IntegerField(),
                    "has_more": serializers.BooleanField(),
                },
            )
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        subscription = self.get_object()  # another organisation's is a 404 before the body is read
        after = parse_sequence_number(self.input(ReplaySerializer)["after"], "after")
        result = services.replay_since(subscription, actor=request.user, after=after)
        return Response(result, status=202)


class WebhookDeliveryFilter(django_filters.FilterSet):
    subscription = django_filters.NumberFilter(field_name="subscription_id", label="The subscription's id")

    class Meta:
        model = WebhookDelivery
        fields = ["subscription", "status", "event_type"]


class WebhookDeliveryViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    queryset = WebhookDelivery.objects.all()
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]
    lookup_value_regex = r"\d+"
    write_action = MANAGE
    action_permissions = {"list": MANAGE, "retrieve": MANAGE, "replay": MANAGE}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = services.with_sent_payload(queryset).prefetch_related("attempt_log")
        return queryset

    def get_serializer_class(self):
        return WebhookDeliveryDetailSerializer if self.action == "retrieve" else WebhookDeliverySerializer

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        delivery = services.replay_delivery(self.get_object(), actor=request.user)
        return self.one(WebhookDeliverySerializer, delivery, status=202)


router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
