"""Base classes for the API's views: tenant-scoped, role-checked, with ETags, If-Match and
Idempotency-Key. App viewsets stay a few lines: queryset, serializer, filters, write action."""

import hashlib

from django.db import transaction
from rest_framework import mixins, viewsets
from rest_framework.response import Response

from maintenance_site.api import idempotency
from maintenance_site.errors import PreconditionFailed


def etag_for(instance) -> str:
    stamp = getattr(instance, "updated_at", None)
    raw = f"{instance._meta.label}:{instance.pk}:{stamp.isoformat() if stamp else ''}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


WRITE_METHODS = ("PUT", "PATCH", "DELETE")


class TenantAPIMixin:
    """Everything an API view of the platform shares, viewset or not."""

    _idempotency_record = None

    def dispatch(self, request, *args, **kwargs):
        """PUT, PATCH and DELETE run in one transaction, so that the row `get_object` locks stays locked until
        the write commits, whatever the view (a refused write rolls back whatever it had begun)."""
        if request.method not in WRITE_METHODS:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
            if response.status_code >= 400:
                transaction.set_rollback(True)
            return response

    @property
    def organization(self):
        return self.request.organization

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.user and request.user.is_authenticated and getattr(request, "organization", None):
            self._idempotency_record = idempotency.claim(request)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record, self._idempotency_record = self._idempotency_record, None
        if record is not None:
            idempotency.complete(record, response)
        return response


class TenantGenericViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """A viewset over one tenant model. Subclasses set `queryset` (with its select_related),
    `serializer_class`, `write_action` (the role-table action for writes) and filters."""

    def get_queryset(self):
        return super().get_queryset().filter(organization=self.organization)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["organization"] = getattr(self.request, "organization", None)
        return context

    # --- ETag / If-Match ---------------------------------------------------------------------------
    def get_object(self):
        if self.request.method in WRITE_METHODS and self.action != "metadata":
            # Lock the row for the check-then-write below (dispatch runs writes inside atomic()). OPTIONS asks
            # get_object whether a PUT would be allowed, through a copy of the request whose method is PUT: no lock.
            self.queryset = self.queryset.select_for_update(of=("self",))
        instance = super().get_object()
        if_match = self.request.headers.get("If-Match")
        if if_match and self.request.method in WRITE_METHODS:
            current = etag_for(instance)
            offered = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
            if "*" not in offered and current not in offered:
                raise PreconditionFailed(
                    f"This {instance._meta.verbose_name} changed since you read it: fetch it again "
                    f"(current ETag {current}) and reapply your change.",
                    code="etag_mismatch",
                )
        return instance

    def retrieve(self, request, *args, **kwargs):
        instance = self.get_object()
        return Response(self.get_serializer(instance).data, headers={"ETag": etag_for(instance)})

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        instance = getattr(self, "_written_instance", None)
        if instance is not None and 200 <= response.status_code < 300:
            response["ETag"] = etag_for(instance)
        return response


class TenantModelViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantGenericViewSet,
):
    """CRUD over a tenant model. Writes go through the app's services, named by `create_with`,
    `update_with` and `delete_with` (wrap them in `staticmethod`)."""

    create_with = None  # (organization, **validated_data) -> instance
    update_with = None  # (instance, **validated_data) -> instance
    delete_with = None  # (instance) -> None

    def perform_create(self, serializer):
        serializer.instance = self.create_with(self.organization, **serializer.validated_data)
        self._written_instance = serializer.instance

    def perform_update(self, serializer):
        serializer.instance = self.update_with(serializer.instance, **serializer.validated_data)
        self._written_instance = serializer.instance

    def perform_destroy(self, instance):
        self.delete_with(instance)


class TenantReadOnlyViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """List and retrieve only."""
