"""OpenAPI: describe the Api-Key scheme, and make the generated schema tell the truth where drf-spectacular's
defaults do not (generated clients trust it)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from maintenance_site.events.types import (
    all_event_types,  # filled by the apps as they load, read when the schema is built
)

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
            # OpenAPI 3.1: a nullable field's type is already ["string", "null"]; keep it
            schema = {**schema, **LOCAL_TIME, "type": schema.get("type", "string")}
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


# --- the document as a whole: error responses per operation, the event types as OpenAPI 3.1 webhooks ----------

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error of the API: a sentence a person can act on and, per field, what was wrong.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
            "required": ["status", "code", "message"],
        }
    },
    "required": ["error"],
}
ERRORS = {
    "400": "The input is invalid: `fields` says what is wrong with each field.",
    "401": "Not signed in: send `Authorization: Bearer <JWT>` or `Authorization: Api-Key <key>`.",
    "403": "Signed in, but your role in the organisation may not do this.",
    "404": "No such object in your organisation (another organisation's objects are not found either).",
    "409": "The object's state does not allow this now (e.g. a work order's status); the message says why.",
}
WRITE_METHODS = {"post", "put", "patch", "delete"}


def _error_statuses(path: str, method: str, operation: dict) -> list[str]:
    public = {} in operation.get("security", [{}]) or operation.get("security") == []
    statuses = []
    if operation.get("requestBody") or operation.get("parameters") or method in WRITE_METHODS:
        statuses.append("400")
    if not public:
        statuses += ["401", "403"]
    if "{" in path or not public:
        statuses.append("404")  # an object not found, or an organisation named by X-Organization not one's own
    if method in WRITE_METHODS and not public:
        statuses.append("409")
    return statuses


def webhook_documents() -> dict:
    """Each registered event type as an OpenAPI 3.1 `webhooks` entry: what a subscription receives."""
    documents = {}
    for event_type in all_event_types():
        body = {
            "type": "object",
            "properties": {
                "type": {"type": "string", "const": event_type.name},
                "timestamp": {"type": "string", "format": "date-time"},
                "organization": {"type": "string", "description": "The organisation's slug."},
                "sequence": {
                    "type": ["integer", "null"],
                    "description": "The event's number in the organisation: order by it (delivery is unordered).",
                },
                "data": event_type.payload_schema(),
            },
            "required": ["type", "timestamp", "organization", "sequence", "data"],
        }
        documents[event_type.name] = {
            "post": {
                "summary": event_type.label,
                "description": "Signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`"
                " headers); at-least-once: de-duplicate by `webhook-id`. The websocket stream and "
                "GET /api/v1/events/ carry the same `data` as `payload`.",
                "tags": ["webhooks"],
                "requestBody": {"content": {"application/json": {"schema": body}}, "required": True},
                "responses": {"2XX": {"description": "Received; any other answer is retried (410 unsubscribes)."}},
            }
        }
    return documents


def postprocess(result, generator, request, public):
    """drf-spectacular's post-processing hook: the error envelope on every operation that can answer it, and the
    event types as `webhooks` (OpenAPI 3.1) or `x-webhooks` (3.0)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status in _error_statuses(path, method, operation):
                operation["responses"].setdefault(
                    status,
                    {
                        "description": ERRORS[status],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    # OpenAPI 3.1's `webhooks`; a 3.0 document carries them as the extension `x-webhooks` (same content).
    if str(result.get("openapi", "")).startswith("3.1"):
        result["webhooks"] = webhook_documents()
        _drop_nullable(result)
    else:
        result["x-webhooks"] = webhook_documents()
    return result


def _drop_nullable(node) -> None:
    """OpenAPI 3.1 schemas are JSON Schema 2020-12, which has no `nullable`: the parts written for 3.0 (DRF's
    pagination envelope, ours) say `"nullable": true`, rewritten here as `type: [..., "null"]` (or a `oneOf` with
    `null` around a reference)."""
    if isinstance(node, list):
        for item in node:
            _drop_nullable(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _drop_nullable(value)
    if "nullable" not in node or isinstance(node["nullable"], dict):  # a property named "nullable" is not the flag
        return
    if not node.pop("nullable"):
        return
    kind = node.get("type")
    if isinstance(kind, str):
        node["type"] = [kind, "null"]
    elif isinstance(kind, list):
        node["type"] = [*kind, "null"] if "null" not in kind else kind
    else:  # a $ref or a combination: one of it or null
        inner = {key: node.pop(key) for key in list(node) if key in ("$ref", "allOf", "oneOf", "anyOf")}
        if inner:
            node["oneOf"] = [inner, {"type": "null"}]
    if "enum" in node and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]
