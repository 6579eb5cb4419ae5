"""Serializer base: related fields only accept the organisation's own objects, and the model's
`clean()` runs so the API and the admin refuse the same things with the same words."""

from datetime import UTC, datetime

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import UniqueConstraint
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import ISO_8601, serializers
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """Another organisation's object is "does not exist", exactly like a missing one."""

    def get_queryset(self):
        queryset = super().get_queryset()
        organization = self.context.get("organization")
        model = queryset.model
        if organization is None:
            return queryset.none()
        if any(f.name == "organization" for f in model._meta.get_fields()):
            return queryset.filter(organization=organization)
        if model._meta.label == "auth.User" or model._meta.model_name == "user":
            return queryset.filter(memberships__organization=organization, memberships__is_active=True)
        return queryset


class TenantModelSerializer(serializers.ModelSerializer):
    serializer_related_field = TenantPrimaryKeyRelatedField

    @property
    def data(self):
        # A PATCH validates partially, but answers the whole object: DRF would leave out every field whose
        # value falls back to its default (`CharField(source="site.name", default=None)` with no site), so
        # the response would lack fields the schema says are always there.
        partial, self.partial = self.partial, False
        try:
            return super().data
        finally:
            self.partial = partial

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        instance = self.instance or model()
        many_to_many = {f.name for f in model._meta.many_to_many}
        for name, value in attrs.items():
            if name not in many_to_many:
                setattr(instance, name, value)
        organization = self.context.get("organization")
        if organization is not None and hasattr(instance, "organization_id") and not instance.organization_id:
            instance.organization = organization
        self._check_unique_per_organization(instance)
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            ) from None
        return attrs

    def _check_unique_per_organization(self, instance):
        """Unique-per-organisation constraints, checked here so a duplicate is a 400, not a 500."""
        model = type(instance)
        for constraint in model._meta.constraints:
            if not isinstance(constraint, UniqueConstraint) or constraint.condition is not None:
                continue
            fields = list(constraint.fields)
            if "organization" not in fields or not fields:
                continue
            lookup = {}
            for name in fields:
                field = model._meta.get_field(name)
                lookup[field.attname] = getattr(instance, field.attname)
            if any(value is None for value in lookup.values()):
                continue
            clash = model._default_manager.filter(**lookup)
            if instance.pk:
                clash = clash.exclude(pk=instance.pk)
            if clash.exists():
                named = [f for f in fields if f != "organization"]
                described = ", ".join(f"{f} “{getattr(instance, f)}”" for f in named)
                noun = str(model._meta.verbose_name)
                if noun[:1].lower() in "aeiou":
                    message = _("An %(noun)s with %(described)s already exists.")
                else:
                    message = _("A %(noun)s with %(described)s already exists.")
                raise serializers.ValidationError({named[0]: [message % {"noun": noun, "described": described}]})


# --- lists ---------------------------------------------------------------------------------------------------


def _datetime_text(field, zone):
    def text(value):
        # DRF's DateTimeField: in the current time zone, ISO 8601, UTC written "Z" (anything unusual: DRF itself).
        if not isinstance(value, datetime) or value.tzinfo is None:
            return field.to_representation(value)
        try:
            value = value.astimezone(zone).isoformat()
        except OverflowError:
            return field.to_representation(value)
        return value[:-6] + "Z" if value.endswith("+00:00") else value

    return text


def datetime_for_json(zone=None):
    """Like `datetime_text`, but a UTC date-time in a UTC current time zone (every value of a UTC database connection,
    in the API's default zone) is left as it is: the API's renderers write it as DRF's field would (orjson with
    `OPT_UTC_Z`, DRF's encoder as its fallback: ISO 8601, microseconds when there are any, UTC as "Z"), in C, where
    the field's text costs ~2 µs a value (200 a page of work orders). Anything else goes through `datetime_text`."""
    zone = zone or timezone.get_current_timezone()
    text = datetime_text(zone)
    if zone is not UTC and getattr(zone, "key", None) != "UTC":
        return text

    def value_or_text(value):
        if type(value) is datetime and value.tzinfo is UTC and 1000 <= value.year <= 9999:
            return value
        return text(value)

    return value_or_text


def datetime_text(zone=None):
    """A writer of date-times as DRF's DateTimeField writes them (ISO 8601 in the current time zone, UTC as "Z"), for
    lists that build their items without serializer fields."""
    return _datetime_text(serializers.DateTimeField(), zone or timezone.get_current_timezone())


def _walk(attrs: list[str]):
    """A reader of `obj.a.b.c`: None when a link of the chain is None or missing (as DRF reads `source="a.b"`)."""
    if len(attrs) == 1:
        name = attrs[0]

        def read_one(obj):
            try:
                return getattr(obj, name)
            except (AttributeError, ObjectDoesNotExist):
                return None

        return read_one

    def read(obj):
        for name in attrs:
            if obj is None:
                return None
            try:
                obj = getattr(obj, name)
            except (AttributeError, ObjectDoesNotExist):
                return None
        return obj

    return read


def _row_plan(serializer) -> list[tuple[str, object, object]]:
    """(name, read, format) per readable field of `serializer`: `format(read(obj))` is what DRF would give for a
    non-null value (None stays None), with DRF's own `to_representation` for anything not plain."""
    zone = timezone.get_current_timezone()
    plan = []
    for field in serializer._readable_fields:
        if isinstance(field, serializers.SerializerMethodField):
            plan.append((field.field_name, getattr(serializer, field.method_name), None))
            continue
        if (
            type(field) in (serializers.PrimaryKeyRelatedField, TenantPrimaryKeyRelatedField)
            and field.pk_field is None
            and len(field.source_attrs) == 1
        ):
            model_field = serializer.Meta.model._meta.get_field(field.source_attrs[0])
            plan.append((field.field_name, _walk([model_field.attname]), None))  # the id, without the row
            continue
        read = _walk(field.source_attrs)
        if type(field) in (serializers.CharField, serializers.ChoiceField, serializers.ReadOnlyField):
            text = type(field) is serializers.CharField
            plan.append((field.field_name, read, str if text else None))
        elif type(field) in (serializers.IntegerField, serializers.BooleanField):
            plan.append((field.field_name, read, int if type(field) is serializers.IntegerField else bool))
        elif type(field) is serializers.DateTimeField and _iso_8601(field):
            plan.append((field.field_name, read, _datetime_text(field, zone)))
        else:
            plan.append((field.field_name, _drf_read(field), None))
    return plan


def _iso_8601(field) -> bool:
    output = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return isinstance(output, str) and output.lower() == ISO_8601 and not hasattr(field, "timezone")


def _drf_read(field):
    """DRF's own way, for a field that is not plain."""

    def read(obj):
        attribute = field.get_attribute(obj)
        check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        return None if check is None else field.to_representation(attribute)

    return read


class FastListSerializer(serializers.ListSerializer):
    """A list of a read-only serializer's rows, built without DRF's per-field machinery (which costs more than the
    query on a page of 50): each field becomes one attribute read and, where DRF converts, the same conversion. The
    output is DRF's to the byte (a test compares them); the schema is the child serializer's. Use it with
    `Meta.list_serializer_class = FastListSerializer` on a serializer whose fields are model attributes, dotted
    sources, method fields and plain types."""

    def to_representation(self, data):
        rows = data.all() if isinstance(data, models.manager.BaseManager) else data
        plan = _row_plan(self.child)
        out = []
        for row in rows:
            item = {}
            for name, read, convert in plan:
                value = read(row)
                item[name] = value if value is None or convert is None else convert(value)
            out.append(item)
        return out
