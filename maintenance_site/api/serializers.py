"""Serializer base: related fields only accept the organisation's own objects, and the model's
`clean()` runs so the API and the admin refuse the same things with the same words."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import UniqueConstraint
from rest_framework import serializers


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
                article = "An" if noun[:1].lower() in "aeiou" else "A"
                raise serializers.ValidationError({named[0]: [f"{article} {noun} with {described} already exists."]})
