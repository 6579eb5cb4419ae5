"""The registry of notification kinds: each has a human label and the channels it uses by default.

An app that notifies about something new registers its kind once, at import (its `AppConfig.ready()` or
the module that calls `notify`):

    from maintenance_site.notifications.kinds import register_kind
    register_kind("purchase-order:approved", "Purchase order approved", [Channel.IN_APP, Channel.EMAIL])

`notify()` refuses a kind that is not registered, so a typo fails in the first test that runs it.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from maintenance_site.notifications.models import Channel

KIND_NAME = re.compile(r"^[a-z][a-z0-9-]*([.:][a-z][a-z0-9-]*)+$")


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    default_channels: tuple[str, ...]
    urgent: bool = False  # passes quiet hours and the daily digest (critical news)


_KINDS: dict[str, Kind] = {}


def ordered_channels(channels: Iterable[str]) -> list[str]:
    """The channels in their canonical order (in_app, email, slack, sms, push, webpush), without duplicates."""
    wanted = set(channels)
    return [channel for channel in Channel.values if channel in wanted]


def register_kind(
    name: str, label: str, default_channels: Iterable[str] = (Channel.IN_APP, Channel.EMAIL), *, urgent: bool = False
) -> Kind:
    """Add a kind. Registering the same kind again with the same label and channels is harmless. An `urgent` kind
    reaches people during their quiet hours and is never held for the daily digest."""
    if not KIND_NAME.match(name):
        raise ValueError(f"Notification kind {name!r} must look like 'sla:violation' or 'inventory.low-stock'.")
    channels = list(default_channels)
    unknown = set(channels) - set(Channel.values)
    if unknown:
        raise ValueError(f"Unknown channel(s) {sorted(unknown)} for kind {name!r}; choose from {Channel.values}.")
    kind = Kind(
        name=name,
        label=label,
        default_channels=tuple(ordered_channels([Channel.IN_APP, *channels])),
        urgent=urgent,
    )
    existing = _KINDS.get(name)
    if existing is not None and existing != kind:
        raise ValueError(f"Notification kind {name!r} is already registered differently: {existing}.")
    _KINDS[name] = kind
    return kind


def get_kind(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(
            f"Unknown notification kind {name!r}: register it with "
            "maintenance_site.notifications.kinds.register_kind() first."
        ) from None


def is_registered(name: str) -> bool:
    return name in _KINDS


def all_kinds() -> list[Kind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.name)


def enabled_channels() -> list[str]:
    """The channels this deployment can send through: in-app, e-mail and Web Push always (its VAPID key is
    generated when not configured; a person without a subscribed phone is skipped), the others when their
    endpoint is configured (SLACK_WEBHOOK_URL, SMS_API_URL, PUSH_SERVICE_URL)."""
    channels = [Channel.IN_APP, Channel.EMAIL, Channel.WEBPUSH]
    if settings.SLACK_WEBHOOK_URL:
        channels.append(Channel.SLACK)
    if settings.SMS_API_URL:
        channels.append(Channel.SMS)
    if settings.PUSH_SERVICE_URL:
        channels.append(Channel.PUSH)
    return [str(channel) for channel in ordered_channels(channels)]


# Critical news: through quiet hours, never held for a digest.
URGENT_KINDS = frozenset({"sla:violation", "maintenance:mode-changed"})

# The platform's notification kinds; an app may add its own with register_kind().
_C = Channel
for _name, _label, _channels in [
    ("work-order:assigned", "Work order assigned to you", [_C.EMAIL, _C.PUSH]),
    ("work-order:urgent", "Urgent work order for your team", [_C.PUSH]),
    ("work-order:completed", "Work order completed", []),
    ("work-order:verification-needed", "Completed work waits for verification", [_C.EMAIL]),
    ("sla:warning", "SLA deadline approaching", [_C.EMAIL, _C.PUSH]),
    ("sla:violation", "SLA violated", [_C.EMAIL, _C.SLACK, _C.PUSH]),
    ("inventory:low-stock", "Stock below its reorder point", [_C.EMAIL]),
    ("predictive:alert", "Predictive maintenance alert", [_C.EMAIL, _C.SLACK]),
    ("maintenance:window-started", "Maintenance window started", [_C.SLACK]),
    ("maintenance:window-ended", "Maintenance window ended", [_C.SLACK]),
    ("maintenance:mode-changed", "Maintenance mode switched", [_C.EMAIL, _C.SLACK]),
]:
    register_kind(_name, _label, _channels, urgent=_name in URGENT_KINDS)
