"""OpenAPI: describe the Api-Key scheme, and make the generated schema tell the truth where drf-spectacular's
defaults do not (generated clients trust it)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

# A wall-clock time such as 06:00 or 06:00:00 (business hours, schedule times): a local time with no offset,
# which JSON Schema's "time" format (RFC 3339 full-time, offset required) would reject.
LOCAL_TIME = {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$", "example": "06:00:00"}


class AutoSchema(SpectacularAutoSchema):
    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        # `CharField(source="team.name", read_only=True, default=None)`: null when the relation is empty.
        if isinstance(field, serializers.Field) and field.read_only and field.default is None:
            meta["nullable"] = True
        return meta

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.TimeField) and schema.get("format") == "time":
            schema = {**schema, **LOCAL_TIME}
            del schema["format"]
        return schema


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "maintenance_site.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: a per-organisation key created by a manager.",
        }
