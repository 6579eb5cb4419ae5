"""`/api/v1/me` (who am I, where) and `/api/v1/api-keys` (managers create and revoke keys)."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from maintenance_site.api.permissions import resolve_request_tenant
from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantGenericViewSet
from maintenance_site.tenancy import services
from maintenance_site.tenancy.models import ApiKeyScope, OrganizationAPIKey
from maintenance_site.tenancy.roles import PERMISSIONS, Action


class MembershipSummarySerializer(serializers.Serializer):
    organization = serializers.CharField(source="organization.slug")
    organization_name = serializers.CharField(source="organization.name")
    role = serializers.CharField()


class MeView(APIView):
    """The caller, the organisation they act in now, their role there and what it allows."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        membership = resolve_request_tenant(request)
        return Response(
            {
                "username": request.user.get_username(),
                "organization": membership.organization.slug,
                "role": membership.role,
                "allowed_actions": sorted(PERMISSIONS[membership.role]),
                "memberships": MembershipSummarySerializer(services.memberships_of(request.user), many=True).data,
            }
        )


class ApiKeySerializer(serializers.ModelSerializer):
    # The model's field has default=None, which DRF would read as "optional": a key always needs a name.
    name = serializers.CharField(max_length=50, help_text="Who or what uses the key.")
    scope = serializers.ChoiceField(choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    key = serializers.SerializerMethodField(help_text="Shown once, in the response that creates the key.")

    class Meta:
        model = OrganizationAPIKey
        fields = ["prefix", "name", "scope", "created", "expiry_date", "last_used_at", "revoked", "key"]
        read_only_fields = ["prefix", "created", "last_used_at", "revoked"]

    def get_key(self, obj) -> str | None:
        return self.context.get("new_key")


class ApiKeyViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, TenantGenericViewSet):
    queryset = OrganizationAPIKey.objects.all()
    serializer_class = ApiKeySerializer
    lookup_field = "prefix"  # the key's public part; its primary key embeds the hash
    action_permissions = {
        "list": Action.MANAGE_KEYS,
        "retrieve": Action.MANAGE_KEYS,
        "create": Action.MANAGE_KEYS,
        "revoke": Action.MANAGE_KEYS,
    }
    filterset_fields = ["revoked", "scope"]
    ordering_fields = ["created", "last_used_at"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, key = services.create_api_key(self.organization, created_by=request.user, **serializer.validated_data)
        return Response(
            self.get_serializer(api_key, context={**self.get_serializer_context(), "new_key": key}).data,
            status=201,
        )

    @action(detail=True, methods=["post"])
    def revoke(self, request, prefix=None):
        api_key = services.revoke_api_key(self.get_object())
        return Response(self.get_serializer(api_key).data)


router.register("api-keys", ApiKeyViewSet, basename="api-key")
