"""Seed 000's Python API — `MaintenanceService(config)` — as a thin facade over the window and mode services,
for a script or a Django shell:

    from scheduling.windows.facade import MaintenanceService

    service = MaintenanceService(config={"organization": "acme", "maintenance_check_interval": 300})
    await service.start()
    window_id = await service.schedule_maintenance(
        maintenance_type="system_update", start_time=datetime.now() + timedelta(hours=1), duration=30,
        description="System update to version 2.0",
    )
    service.get_maintenance_schedule(); service.get_maintenance_history(); service.is_in_maintenance_mode()
    await service.stop()

The platform is multi-tenant, so `config` names the organisation (its slug, id or the object). The other keys
map onto the settings, which are their defaults: `maintenance_check_interval` (or the seed's YAML spelling
`check_interval`) → MAINTENANCE_CHECK_INTERVAL, seconds between the ticks `start()` runs; `max_history_size` →
MAINTENANCE_MAX_HISTORY, the most finished windows `get_maintenance_history()` returns (the beat job keeps no
more than the setting). `notification_channels` (e.g. `["email", "slack"]`): the chat kinds among them (slack,
teams, webhook) route the maintenance notices to the organisation's chat channels of that kind (see
`_route_to_chat`); e-mail, in-app, SMS and push are the people's own choice. `actor` (a user) is who the history names;
the system user without it.

Everything writes through `scheduling.windows.services`, so the checks (overlaps, emergencies with a reason, a
naive `datetime.now()` read in the organisation's time zone) and the audit are the API's. The synchronous
getters work inside a running event loop too (the seed calls them from `async def` without `await`): there
they run in a worker thread, as Django refuses database access on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.utils.translation import gettext as _

from maintenance_site.errors import InvalidInput
from maintenance_site.notifications import services as notification_services
from maintenance_site.notifications.kinds import enabled_channels
from maintenance_site.notifications.models import ChatChannel
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.models import Organization
from scheduling.windows import mode, services
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.notifications import window_payload
from scheduling.windows.tick import tick

logger = logging.getLogger(__name__)

MAINTENANCE_NOTICES = "maintenance:*"  # the notification kinds of windows and the mode
MAINTENANCE_KIND = "maintenance:window-scheduled"  # one of them, to test whether a channel's routes cover them

KNOWN_KEYS = {
    "organization",
    "maintenance_check_interval",
    "check_interval",
    "max_history_size",
    "notification_channels",
    "actor",
}


def _in_thread(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    finally:
        connections.close_all()  # the worker thread's own connections


def _blocking(function, *args, **kwargs):
    """Call a function that uses the database, from synchronous code or from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="maintenance-service") as pool:
        return pool.submit(_in_thread, function, *args, **kwargs).result()


async def _off_loop(function, *args, **kwargs):
    """Await a function that uses the database, in a worker thread whose connections are closed after it."""
    return await sync_to_async(_in_thread, thread_sensitive=False)(function, *args, **kwargs)


def _positive_int(config: dict, key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(
            _("config[%(key)s] must be a whole number of at least 1, not %(value)s.")
            % {"key": repr(key), "value": repr(value)},
            fields={key: []},
        )
    return value


def _organization(reference) -> Organization:
    if isinstance(reference, Organization):
        return reference
    if reference is None or reference == "":
        raise InvalidInput(
            _("config['organization'] is required: the organisation's slug or id (the platform is multi-tenant)."),
            fields={"organization": [_("Required.")]},
        )
    lookup = {"pk": reference} if isinstance(reference, int) else {"slug": str(reference)}
    found = Organization.objects.filter(**lookup).first()
    if found is None:
        raise InvalidInput(
            _("No organisation %(reference)s.") % {"reference": repr(reference)},
            fields={"organization": [_("Unknown organisation.")]},
        )
    return found


class MaintenanceService:
    """Seed 000's maintenance service for one organisation: schedule windows, read the schedule and the
    history, ask whether maintenance mode is on, and (between `start()` and `stop()`) run the tick that opens
    and closes windows every `maintenance_check_interval` seconds — the job beat runs, safe to run beside it."""

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        unknown = sorted(set(config) - KNOWN_KEYS)
        if unknown:
            raise InvalidInput(
                _("Unknown config key(s): %(unknown)s. Known: %(known)s.")
                % {"unknown": ", ".join(unknown), "known": ", ".join(sorted(KNOWN_KEYS))},
                fields={key: [_("Unknown key.")] for key in unknown},
            )
        interval_key = "maintenance_check_interval" if "maintenance_check_interval" in config else "check_interval"
        self.check_interval = _positive_int(config, interval_key, settings.MAINTENANCE_CHECK_INTERVAL)
        self.max_history_size = _positive_int(config, "max_history_size", settings.MAINTENANCE_MAX_HISTORY)
        self.actor = config.get("actor") or SYSTEM
        self.organization = _blocking(_organization, config.get("organization"))
        channels = config.get("notification_channels")
        self.notification_channels = None if channels is None else self._check_channels(channels)
        if self.notification_channels:
            _blocking(self._route_to_chat)
        self._loop_task: asyncio.Task | None = None

    def _check_channels(self, channels) -> list[str]:
        if isinstance(channels, str) or not all(isinstance(name, str) for name in channels):
            raise InvalidInput(
                _("config['notification_channels'] is a list of channel names, e.g. ['email', 'slack']."),
                fields={"notification_channels": [_("A list of names.")]},
            )
        known = set(enabled_channels()) | set(ChatChannel.Kind.values)
        unknown = [name for name in channels if name not in known]
        if unknown:
            raise InvalidInput(
                _("Channel(s) %(unknown)s cannot send here; use %(known)s.")
                % {"unknown": ", ".join(unknown), "known": ", ".join(sorted(known))},
                fields={"notification_channels": [_("Unavailable: %(unknown)s.") % {"unknown": ", ".join(unknown)}]},
            )
        return list(dict.fromkeys(channels))

    def _route_to_chat(self) -> None:
        """The chat kinds among `notification_channels` (slack, teams, webhook) are the organisation's own chat
        channels (maintenance_site.notifications: one per organisation, routed by notification kind): each active
        channel of those kinds gets the maintenance notices (`maintenance:*`) routed to it. A kind the organisation
        has no channel of is refused, naming where to add one. People's channels (e-mail, in-app, SMS, push) stay
        their own choice (notification preferences)."""
        wanted = [name for name in self.notification_channels if name in ChatChannel.Kind.values]
        channels = list(ChatChannel.objects.for_tenant(self.organization).filter(kind__in=wanted, is_active=True))
        missing = sorted(set(wanted) - {channel.kind for channel in channels})
        if missing:
            raise InvalidInput(
                _(
                    "%(organization)s has no active %(kinds)s chat channel: add one in the admin "
                    "(Settings › Chat channels), then name it here."
                )
                % {"organization": self.organization.slug, "kinds": ", ".join(missing)},
                fields={"notification_channels": [_("No %(kinds)s channel.") % {"kinds": ", ".join(missing)}]},
            )
        for channel in channels:
            if not any(fnmatch.fnmatchcase(MAINTENANCE_KIND, pattern) for pattern in channel.kinds):
                notification_services.update_chat_channel(
                    channel, kinds=[*channel.kinds, MAINTENANCE_NOTICES], actor=self.actor
                )

    # --- running ----------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        """Tick now and then every `check_interval` seconds until `stop()`. Starting twice is harmless."""
        if self.running:
            return
        await _off_loop(tick)
        self._loop_task = asyncio.create_task(self._loop(), name="maintenance-service-tick")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await _off_loop(tick)
            except Exception:  # one failed tick must not end the loop; the next one retries
                logger.exception("Maintenance tick failed; retrying in %s s", self.check_interval)

    async def stop(self) -> None:
        """Stop ticking (beat goes on ticking where it runs)."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> MaintenanceService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    # --- scheduling -------------------------------------------------------------------------------------

    async def schedule_maintenance(
        self, maintenance_type: str, start_time: datetime, duration: int, description: str = "", **options
    ) -> int:
        """Schedule a system-wide window of `duration` minutes and return its id. A naive `start_time` is read
        in the organisation's time zone. `options`: title, emergency, emergency_reason, notify_users, scope,
        location, assets, recurrence. Overlaps are refused (409) unless `emergency=True` with a reason."""
        return await _off_loop(self._schedule, maintenance_type, start_time, duration, description, options)

    def _schedule(self, maintenance_type, start_time, duration, description, options) -> int:
        return services.schedule_maintenance(
            self.organization, maintenance_type, start_time, duration, description, actor=self.actor, **options
        )

    # --- reading ----------------------------------------------------------------------------------------

    def get_maintenance_schedule(self) -> list[dict]:
        """Windows scheduled or running, the soonest first."""
        return _blocking(self._schedule_rows)

    def _schedule_rows(self) -> list[dict]:
        windows = (
            MaintenanceWindow.objects.for_tenant(self.organization)
            .occurrences()
            .planned()
            .prefetch_related("assets")
            .order_by("starts_at", "pk")
        )
        return [self._row(window) for window in windows]

    def get_maintenance_history(self) -> list[dict]:
        """Finished windows (completed or failed), the latest first, at most `max_history_size`."""
        return _blocking(self._history_rows)

    def _history_rows(self) -> list[dict]:
        windows = (
            MaintenanceWindow.objects.for_tenant(self.organization)
            .occurrences()
            .finished()
            .prefetch_related("assets")
            .order_by("-ends_at", "-pk")[: self.max_history_size]
        )
        return [self._row(window) for window in windows]

    @staticmethod
    def _row(window: MaintenanceWindow) -> dict:
        return {
            **window_payload(window),
            "description": window.description,
            "duration": window.duration_minutes,
            "status_reason": window.status_reason,
        }

    def is_in_maintenance_mode(self) -> bool:
        """Whether the organisation is in maintenance mode now (its own or the platform's)."""
        return _blocking(mode.is_in_maintenance_mode, self.organization)
