"""Base classes for the API's views: tenant-scoped, role-checked, with ETags, If-Match and
Idempotency-Key. App viewsets stay a few lines: queryset, serializer, filters, write action, and for writes a
`perform_create` / `perform_update` / `perform_destroy` that each name the app's service."""

import hashlib

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.translation import gettext as _
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


class InputMixin:
    """For a generic view's own actions: read the body with a serializer (`input`) and answer with one (`one`,
    `many`); serializers see the active organisation in their context (for the tenant's related fields)."""

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["organization"] = getattr(self.request, "organization", None)
        return context

    def input(self, serializer_class, **kwargs) -> dict:
        """The request body, validated by `serializer_class` (a 400 naming each field that is wrong)."""
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context(), **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def many(self, serializer_class, rows, paginate=False) -> Response:
        context = self.get_serializer_context()
        if paginate:
            page = self.paginate_queryset(rows)
            return self.get_paginated_response(serializer_class(page, many=True, context=context).data)
        return Response(serializer_class(rows, many=True, context=context).data)

    def one(self, serializer_class, instance, status=200) -> Response:
        return Response(serializer_class(instance, context=self.get_serializer_context()).data, status=status)


class TenantGenericViewSet(InputMixin, TenantAPIMixin, viewsets.GenericViewSet):
    """A viewset over one tenant model. Subclasses set `queryset` (with its select_related),
    `serializer_class`, `write_action` (the role-table action for writes) and filters."""

    def get_queryset(self):
        return super().get_queryset().filter(organization=self.organization)

    def written(self, serializer, instance) -> None:
        """The row a service wrote is the response's (read back through `output()`), and its ETag the response's."""
        serializer.instance = self._written_instance = self.output(instance)

    def output(self, instance):
        """The row as responses show it: a subclass reads it back with its annotations or prefetches."""
        return instance

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
                    _(
                        "This %(thing)s changed since you read it: fetch it again (current ETag %(etag)s) and "
                        "reapply your change."
                    )
                    % {"thing": instance._meta.verbose_name, "etag": current},
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
    """CRUD over a tenant model, written only by the app's services. A subclass writes `perform_create`,
    `perform_update` and `perform_destroy`, each calling its service by name (with `actor=self.request.user` where
    the service takes one) and handing the row it wrote to `written()`:

        def perform_create(self, serializer):
            data = serializer.validated_data
            self.written(serializer, services.create_team(self.organization, actor=self.request.user, **data))

    DRF's own default (`serializer.save()`) would write around the service: here it is refused."""

    def perform_create(self, serializer):
        raise ImproperlyConfigured(f"{type(self).__name__}.perform_create must call its app's service.")

    def perform_update(self, serializer):
        raise ImproperlyConfigured(f"{type(self).__name__}.perform_update must call its app's service.")

    def perform_destroy(self, instance):
        raise ImproperlyConfigured(f"{type(self).__name__}.perform_destroy must call its app's service.")


class TenantReadOnlyViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """List and retrieve only."""
