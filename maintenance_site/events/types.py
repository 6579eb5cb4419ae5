"""The registry of event types: what `publish()` may send, with a label and the JSON schema of its payload.

Webhook subscriptions are validated against it (`work-order:*` must match a registered type), and the OpenAPI
document publishes each type as an OpenAPI 3.1 `webhooks` entry, so a client can generate types for the event
stream and the webhooks. An app that publishes a new type registers it once, at import (its `AppConfig.ready()`
or the module that publishes it):

    from maintenance_site.events.types import register_event_type
    register_event_type("purchase-order:approved", "Purchase order approved", {"id": INTEGER, "number": STRING})

`publish()` does not refuse an unregistered type (a type registered late must not break a running change); a
subscription simply cannot name one.
"""

import fnmatch
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")
# A subscription's pattern: an exact type, `area:*`, or `*` (everything).
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9-]*:(\*|[a-z][a-z0-9-]*))$")

INTEGER = {"type": "integer"}
STRING = {"type": "string"}
NULLABLE_INTEGER = {"type": ["integer", "null"]}
NULLABLE_STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": ["string", "null"], "format": "date-time"}


@dataclass(frozen=True)
class EventType:
    name: str
    label: str
    properties: dict = field(default_factory=dict, hash=False, compare=False)

    def payload_schema(self) -> dict:
        """The JSON schema of the event's payload (extra properties allowed: payloads only grow)."""
        return {"type": "object", "properties": dict(self.properties), "additionalProperties": True}


_TYPES: dict[str, EventType] = {}


def register_event_type(name: str, label: str, properties: dict | None = None) -> EventType:
    """Add a type (again with the same label is harmless)."""
    if not EVENT_TYPE.match(name):
        raise ValueError(f"Event type {name!r} must look like 'work-order:created'.")
    existing = _TYPES.get(name)
    if existing is not None and existing.label != label:
        raise ValueError(f"Event type {name!r} is already registered as {existing.label!r}.")
    event_type = EventType(name=name, label=label, properties=dict(properties or {}))
    _TYPES[name] = event_type
    return event_type


def is_registered(name: str) -> bool:
    return name in _TYPES


def all_event_types() -> list[EventType]:
    return sorted(_TYPES.values(), key=lambda item: item.name)


def matches(pattern: str, event_type: str) -> bool:
    """Whether a subscription's pattern (`work-order:*`, `*`, an exact type) covers `event_type`."""
    return fnmatch.fnmatchcase(event_type, pattern)


def validate_patterns(patterns) -> list[str]:
    """Check a subscription's event types: a list of exact types or wildcards (`work-order:*`, `*`), each of
    which must match at least one registered type. Returns the cleaned, de-duplicated list; raises ValueError
    naming what is wrong."""
    if not isinstance(patterns, list) or not patterns or not all(isinstance(item, str) for item in patterns):
        raise ValueError(gettext("Give at least one event type, e.g. [“work-order:created”] or [“work-order:*”]."))
    cleaned = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not EVENT_PATTERN.match(pattern):
            raise ValueError(
                gettext("“%(pattern)s” is not an event type or a wildcard such as “work-order:*”.")
                % {"pattern": pattern[:80]}
            )
        if not any(matches(pattern, name) for name in _TYPES):
            known = ", ".join(sorted(_TYPES))
            raise ValueError(
                gettext("“%(pattern)s” matches no event type; the types are: %(known)s.")
                % {"pattern": pattern, "known": known}
            )
        if pattern not in cleaned:
            cleaned.append(pattern)
    return cleaned


_WORK_ORDER = {
    "id": INTEGER,
    "number": STRING,
    "title": STRING,
    "status": STRING,
    "priority": STRING,
    "type": STRING,
    "asset": NULLABLE_INTEGER,
    "assignee": NULLABLE_INTEGER,
    "team": NULLABLE_INTEGER,
    "due_at": DATE_TIME,
}
_WINDOW = {"id": INTEGER, "title": STRING, "status": STRING, "starts_at": DATE_TIME, "ends_at": DATE_TIME}
_SLA = {"work_order": INTEGER, "policy": NULLABLE_INTEGER, "level": STRING, "due_at": DATE_TIME}

# The platform's event types (DESIGN.md, "Events"); apps add their own with register_event_type(). Scenario events
# are not among them: scenarios belong to no organisation, so theirs go to the superusers' platform stream
# (maintenance_site/events/platform.py), never to a tenant's stream or webhooks.
for _name, _label, _properties in [
    ("work-order:created", "Work order created", _WORK_ORDER),
    ("work-order:updated", "Work order updated", {**_WORK_ORDER, "change": STRING}),
    ("work-order:completed", "Work order completed", _WORK_ORDER),
    ("work-request:submitted", "Work request submitted", {"id": INTEGER, "asset": NULLABLE_INTEGER}),
    ("inventory:low-stock", "Stock below its reorder point", {"part": INTEGER, "quantity": STRING}),
    ("sla:warning", "SLA deadline approaching", _SLA),
    ("sla:violation", "SLA violated", _SLA),
    ("predictive:alert", "Predictive maintenance alert", {"asset": INTEGER, "score": {"type": "number"}}),
    ("maintenance:window-scheduled", "Maintenance window scheduled", _WINDOW),
    ("maintenance:window-started", "Maintenance window started", _WINDOW),
    ("maintenance:window-ended", "Maintenance window ended", _WINDOW),
    ("maintenance:window-failed", "Maintenance window failed", _WINDOW),
    ("maintenance:window-cancelled", "Maintenance window cancelled", _WINDOW),
    ("maintenance:mode-changed", "Maintenance mode switched", {"enabled": {"type": "boolean"}}),
    ("notification:created", "Notification for a member", {"id": INTEGER, "kind": STRING}),
    ("webhook:test", "Test event of a webhook subscription", {"message": STRING}),
]:
    register_event_type(_name, _label, _properties)
