"""The board's resource history (scenarios/resources.py): one sample per host and slot whatever runs twice or at once
(proved on PostgreSQL), bounded by the retention, announced to the board once, averaged into at most MAX_POINTS
points, and drawn on the board by the theme's line chart with a constant number of queries."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maintenance_site.events.models import PlatformEvent
from scenarios import resources
from scenarios.models import ResourceSample
from scenarios.tasks import sample_resources

NOW = datetime(2026, 12, 7, 10, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def sampling(settings):
    settings.RESOURCE_SAMPLE_INTERVAL = 60
    settings.RESOURCE_SAMPLE_RETENTION_HOURS = 2
    return settings


def add_samples(count: int, *, host: str = "web-1", end: datetime = NOW, every: int = 60) -> None:
    ResourceSample.objects.bulk_create(
        ResourceSample(
            host=host,
            slot=resources.slot_of(end - timedelta(seconds=every * index)),
            sampled_at=end - timedelta(seconds=every * index),
            cpu_percent=float(index % 100),
            memory_percent=50.0,
            disk_percent=40.0,
            load_1=1.0,
        )
        for index in range(count)
    )


def test_one_sample_per_host_and_slot_and_one_event(db, load, sampling):
    # The job below samples at the real time: NOW's sample stays within the retention whatever day the suite runs.
    sampling.RESOURCE_SAMPLE_RETENTION_HOURS = 2 + int(abs(timezone.now() - NOW).total_seconds() // 3600)
    load.cpu = 12.0
    first = resources.sample_resources(NOW)
    assert first is not None and (first.cpu_percent, first.memory_percent) == (12.0, 30.0)
    assert first.slot == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert resources.sample_resources(NOW + timedelta(seconds=20)) is None  # same slot: a second beat adds nothing
    sample_resources.delay()  # the core job itself, now: another slot
    assert ResourceSample.objects.count() == 2
    events = list(PlatformEvent.objects.order_by("id").values_list("type", "payload"))
    assert [kind for kind, _ in events] == ["platform:resources-sampled"] * 2
    payload = events[0][1]
    assert (payload["slot"], payload["cpu_percent"], payload["host"]) == ("2026-12-07T10:00:00Z", 12.0, first.host)
    assert (payload["label_time"], payload["label_date_time"]) == ("10:00", "Mon 7 Dec 2026, 10:00")  # in TIME_ZONE


def test_retention_keeps_the_table_bounded(db):
    for minute in range(200):  # more than three hours of minutes, at a retention of two
        resources.sample_resources(NOW + timedelta(minutes=minute))
    last = NOW + timedelta(minutes=199)
    kept = ResourceSample.objects.order_by("slot").values_list("slot", flat=True)
    assert len(kept) == 120  # at most retention ÷ interval samples per host
    assert kept[0] >= last - timedelta(hours=2)
    add_samples(5, host="old-worker", end=NOW)  # a host that stopped sampling is forgotten as well
    resources.sample_resources(last + timedelta(minutes=1))
    assert not ResourceSample.objects.filter(host="old-worker").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_samplers_record_one_sample(load):
    """Four workers sample the same slot at once (each past the existence check): one row, one event."""
    start = threading.Barrier(4)
    results, errors = [], []
    original = ResourceSample.objects.filter

    def racing_filter(*args, **kwargs):  # every worker finds no sample yet, then they race to insert it
        found = original(*args, **kwargs)
        return found.none() if kwargs.get("slot") and threading.current_thread() is not main else found

    main = threading.current_thread()

    def worker():
        try:
            start.wait(timeout=30)
            results.append(resources.sample_resources(NOW))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    ResourceSample.objects.filter = racing_filter
    try:
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        ResourceSample.objects.filter = original
    assert errors == []
    assert len([sample for sample in results if sample is not None]) == 1
    assert ResourceSample.objects.count() == 1
    assert PlatformEvent.objects.filter(type="platform:resources-sampled").count() == 1


def test_history_is_averaged_into_at_most_max_points(db, sampling):
    sampling.RESOURCE_SAMPLE_RETENTION_HOURS = 168
    add_samples(24 * 60)  # a day of minutes
    history = resources.usage_history("24h", now=NOW)
    assert history.step_seconds == 720  # 24 h in 120 points: 12 minutes each
    assert 118 <= len(history.slots) <= resources.MAX_POINTS
    assert history.slots == sorted(history.slots) and history.memory[0] == 50.0
    hour = resources.usage_history("1h", now=NOW)
    assert hour.step_seconds == 60 and len(hour.slots) == 60 and hour.cpu[-1] == 0.0  # the newest sample last
    add_samples(3, host="web-2", end=NOW + timedelta(minutes=1))
    assert resources.usage_history("1h", now=NOW + timedelta(minutes=1)).host == "web-2"  # the newest host


def test_the_board_draws_the_chart_with_constant_queries(operator_client, synced, sampling):
    sampling.RESOURCE_SAMPLE_RETENTION_HOURS = 168
    add_samples(10, end=timezone.now())
    with CaptureQueriesContext(connection) as few:
        response = operator_client.get("/admin/scenarios/scenario/")
    assert response.status_code == 200
    chart = response.context["resource_chart"]
    assert chart["points"] == 10 and 'id="resource-chart"' in response.content.decode()
    data = json.loads(chart["data"])
    assert [dataset["label"] for dataset in data["datasets"]] == ["CPU (%)", "Memory (%)", "Disk (%)", "Load (1 min)"]
    assert json.loads(chart["live"])["step"] == 60
    ResourceSample.objects.all().delete()
    add_samples(2000, end=timezone.now(), every=300)
    with CaptureQueriesContext(connection) as many:
        response = operator_client.get("/admin/scenarios/scenario/?resources=7d&state=inactive")
    assert response.status_code == 200  # the window is the board's parameter, not a filter (no ?e=1)
    assert response.context["resource_chart"]["title"].startswith("Resource use, last 7 days")
    assert len(many) == len(few)
    assert response.context["cl"].result_count == 11  # the state filter still applies
