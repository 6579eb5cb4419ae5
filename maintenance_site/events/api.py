"""`/api/v1/events/`: catch up on the organisation's events; `/api/v1/events/ticket`: a ticket for the
event socket (`/ws/events/?ticket=…`) for clients that cannot send the session cookie."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from maintenance_site.api.permissions import RolePermission, resolve_request_tenant
from maintenance_site.api.routers import router
from maintenance_site.api.viewsets import TenantAPIMixin
from maintenance_site.events import services
from maintenance_site.tenancy.roles import Action, role_allows


class EventPermission(RolePermission):
    """The role table, except that asking for a socket ticket counts as reading: it changes nothing, so
    a read-only API key may ask for one too."""

    def has_permission(self, request, view):
        if getattr(view, "action", None) != "ticket" or not (request.user and request.user.is_authenticated):
            return super().has_permission(request, view)
        membership = resolve_request_tenant(request)
        if not role_allows(membership.role, Action.VIEW):
            raise PermissionDenied(
                _("Your role (%(role)s) may not %(action)s.")
                % {"role": membership.get_role_display(), "action": Action.VIEW.label},
                code="role_forbids",
            )
        return True


class EventMessageSerializer(serializers.Serializer):
    """An event as clients receive it (documentation only: the data comes from Event.as_message())."""

    sequence = serializers.IntegerField()
    type = serializers.CharField()
    organization = serializers.IntegerField()
    user = serializers.IntegerField(allow_null=True, help_text="The user the event concerns, if any.")
    payload = serializers.JSONField()
    created_at = serializers.DateTimeField()
    correlation_id = serializers.CharField()


@extend_schema_serializer(many=False)  # a list action that answers one object, not an array
class EventCatchUpSerializer(serializers.Serializer):
    events = EventMessageSerializer(many=True)
    last_sequence = serializers.IntegerField(
        help_text="The highest sequence returned, else `after`: ask again with it."
    )
    has_more = serializers.BooleanField()


class EventViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """The active organisation's events, numbered 1, 2, 3… without gaps in the order they were committed.

    Events concerning one user (`user` set) are organisation events all the same: every member who may
    see the organisation's data gets them here and on the socket.
    """

    serializer_class = EventMessageSerializer  # for the schema; the data comes from the services
    pagination_class = None
    filter_backends = []
    permission_classes = [EventPermission]
    action_permissions = {"list": Action.VIEW, "ticket": Action.VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", int, description="The last sequence number you have (0, the default, for all kept)."
            ),
            OpenApiParameter(
                "limit",
                int,
                description=f"At most this many events (default {services.CATCH_UP_DEFAULT_LIMIT}, "
                f"max {services.CATCH_UP_MAX_LIMIT}).",
            ),
        ],
        responses=EventCatchUpSerializer,
    )
    def list(self, request, *args, **kwargs):
        """Events numbered after `after`, oldest first; when `has_more`, ask again with `after=last_sequence`."""
        params = request.query_params
        return Response(services.catch_up(self.organization, after=params.get("after"), limit=params.get("limit")))

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "EventSocketTicket", {"ticket": serializers.CharField(), "expires_in": serializers.IntegerField()}
            )
        },
    )
    @action(detail=False, methods=["post"])
    def ticket(self, request, *args, **kwargs):
        """A single-use ticket for `/ws/events/?ticket=…`, valid 60 seconds, for you in this organisation."""
        return Response(services.issue_websocket_ticket(request.user, self.organization), status=201)


router.register("events", EventViewSet, basename="event")
