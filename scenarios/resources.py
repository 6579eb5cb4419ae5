"""The machine's resource use over time: the samples behind the scenario board's charts.

`sample_resources()` is the core job `core: resource sampling` (every RESOURCE_SAMPLE_INTERVAL seconds, always
on, not a scenario: the board and the load ceiling need the history whichever scenarios are active). It records
at most one `ResourceSample` per host and slot (the moment rounded down to the interval) under a unique
constraint, so a second beat, a task delivered twice or two workers at once add nothing; the sample that is new
is announced to the board as the platform event `platform:resources-sampled`, after commit. Samples older than
RESOURCE_SAMPLE_RETENTION_HOURS are deleted by the same job, so the table holds at most retention ÷ interval rows
per host (10,080 with the defaults).

`usage_history(window)` reads one host's samples over a window (the newest sample's host: the machine that runs
the workers), averaged into at most MAX_POINTS points.
"""

import socket
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import dateformat, timezone

from maintenance_site import formats
from maintenance_site.events.platform import publish_platform
from scenarios.models import ResourceSample
from scenarios.services import iso, resource_usage

# The windows the board offers: key → hours.
WINDOWS = {"1h": 1, "6h": 6, "24h": 24, "7d": 168}
DEFAULT_WINDOW = "1h"
MAX_POINTS = 120


def host_name() -> str:
    return socket.gethostname()[:120]


def slot_of(moment: datetime, interval: int | None = None) -> datetime:
    """The sampling slot a moment falls in: rounded down to a multiple of the interval (seconds since the epoch)."""
    interval = interval or settings.RESOURCE_SAMPLE_INTERVAL
    seconds = int(moment.timestamp()) // interval * interval
    return datetime.fromtimestamp(seconds, tz=UTC)


def as_point(sample: ResourceSample) -> dict:
    """A sample as the board's chart and the `platform:resources-sampled` event carry it, with the chart's labels
    for it (the one date format, in the platform's zone: TIME_ZONE)."""
    local = timezone.localtime(sample.slot, zoneinfo.ZoneInfo(settings.TIME_ZONE))
    return {
        "host": sample.host,
        "slot": iso(sample.slot),
        "label_time": dateformat.format(local, formats.TIME),
        "label_date_time": dateformat.format(local, formats.DATE_TIME),
        "cpu_percent": sample.cpu_percent,
        "memory_percent": sample.memory_percent,
        "disk_percent": sample.disk_percent,
        "load_1": sample.load_1,
        "load_5": sample.load_5,
        "load_15": sample.load_15,
    }


def sample_resources(now: datetime | None = None) -> ResourceSample | None:
    """Record this machine's CPU, memory, disk and load for the current slot, once per host and slot, and delete
    samples past the retention. Returns the new sample, or None when this host has one for the slot already."""
    now = now or timezone.now()
    host, slot = host_name(), slot_of(now)
    created = None
    if not ResourceSample.objects.filter(host=host, slot=slot).exists():  # spare the measurement (0.1 s of CPU)
        usage = resource_usage()
        load = usage.get("load_average") or [None, None, None]
        with transaction.atomic():
            sample, is_new = ResourceSample.objects.get_or_create(
                host=host,
                slot=slot,
                defaults={
                    "sampled_at": now,
                    "cpu_percent": max(0.0, usage["cpu_percent"]),
                    "memory_percent": max(0.0, usage["memory_percent"]),
                    "disk_percent": usage.get("disk_percent"),
                    "load_1": load[0],
                    "load_5": load[1],
                    "load_15": load[2],
                },
            )
            if is_new:
                publish_platform("platform:resources-sampled", as_point(sample))
                created = sample
    prune_samples(now)
    return created


def prune_samples(now: datetime | None = None) -> int:
    """Delete the samples older than RESOURCE_SAMPLE_RETENTION_HOURS (every host's)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.RESOURCE_SAMPLE_RETENTION_HOURS)
    deleted, _ = ResourceSample.objects.filter(slot__lt=cutoff).delete()
    return deleted


@dataclass
class History:
    """One host's samples over a window, averaged into buckets of `step_seconds`."""

    window: str
    host: str | None
    step_seconds: int
    slots: list[datetime]
    cpu: list[float | None]
    memory: list[float | None]
    disk: list[float | None]
    load: list[float | None]


def _mean(values: list) -> float | None:
    present = [value for value in values if value is not None]
    return round(sum(present) / len(present), 2) if present else None


def usage_history(window: str = DEFAULT_WINDOW, now: datetime | None = None) -> History:
    """The newest sampling host's resource use over `window` (a key of WINDOWS), in at most MAX_POINTS points:
    each the mean of the samples in its bucket. Two queries (the host, its samples)."""
    now = now or timezone.now()
    hours = WINDOWS.get(window, WINDOWS[DEFAULT_WINDOW])
    interval = settings.RESOURCE_SAMPLE_INTERVAL
    per_point = -(-hours * 3600 // MAX_POINTS)  # ceiling division
    step = max(interval, -(-per_point // interval) * interval)
    host = ResourceSample.objects.order_by("-slot").values_list("host", flat=True).first()
    history = History(window, host, step, [], [], [], [], [])
    if host is None:
        return history
    # the window, and never more than MAX_POINTS buckets
    start = max(now - timedelta(hours=hours), slot_of(now, step) - (MAX_POINTS - 1) * timedelta(seconds=step))
    rows = (
        ResourceSample.objects.filter(host=host, slot__gte=start)
        .order_by("slot")
        .values_list("slot", "cpu_percent", "memory_percent", "disk_percent", "load_1")
    )
    buckets: dict[datetime, list[tuple]] = {}
    for row in rows:
        buckets.setdefault(slot_of(row[0], step), []).append(row[1:])
    for slot, values in buckets.items():
        history.slots.append(slot)
        history.cpu.append(_mean([value[0] for value in values]))
        history.memory.append(_mean([value[1] for value in values]))
        history.disk.append(_mean([value[2] for value in values]))
        history.load.append(_mean([value[3] for value in values]))
    return history
