"""POST /api/v1/iot/metrics and the ingest service: whole-batch validation by position, duplicates, tenancy, clock
skew, late points, units, the response's counts, the ingest log; meters fed from telemetry."""

from datetime import timedelta

import pytest
from django.utils import timezone

from assets import meters
from assets import services as asset_services
from assets.models import Meter, MeterReading
from assets.telemetry import services
from assets.telemetry.models import Anomaly, IngestBatch, Series, TelemetryPoint
from maintenance_site.errors import InvalidInput, PermissionDeniedError
from maintenance_site.events.models import Event
from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from tests.scheduling.preventive.support import Schedule, make_schedule, occurrences_of, owed_from, tick

URL = "/api/v1/iot/metrics/"


@pytest.fixture
def pump(org_a):
    return asset_services.create_asset(org_a, code="PMP-1", name="Pump")


@pytest.fixture
def foreign(org_b):
    return asset_services.create_asset(org_b, code="PMP-1", name="Their pump")


def points(asset, metric="temp", values=(50,) * 10, start=None, step=timedelta(minutes=1), **extra):
    start = start or timezone.now() - timedelta(hours=1)
    return [
        {"asset_id": asset.pk, "metric": metric, "ts": (start + n * step).isoformat(), "value": value, **extra}
        for n, value in enumerate(values)
    ]


def test_a_batch_is_stored_and_a_replay_stores_nothing(api, integrator_a, pump):
    batch = points(pump, values=range(20))
    response = api(integrator_a).post(URL, {"points": batch}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {
        "received": 20,
        "stored": 20,
        "duplicates": 0,
        "not_analysed": 0,
        "anomalies": 0,
        "batch_id": IngestBatch.objects.get().pk,
    }
    again = api(integrator_a).post(URL, batch, format="json").json()  # the bare list is accepted too
    assert (again["stored"], again["duplicates"]) == (0, 20)
    assert TelemetryPoint.objects.count() == 20
    log = IngestBatch.objects.order_by("pk")
    assert [(b.points, b.stored, b.duplicates, b.received_by) for b in log] == [
        (20, 20, 0, integrator_a),
        (20, 0, 20, integrator_a),
    ]


def test_points_by_asset_code(org_a, pump):
    batch = [{"asset_code": "PMP-1", "metric": "temp", "ts": timezone.now().isoformat(), "value": "12.5"}]
    assert services.ingest_points(org_a, batch, actor=SYSTEM).stored == 1
    assert Series.objects.get().last_value == 12.5


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"ts": "yesterday"}, "points[17].ts", "ISO 8601"),
        ({"ts": "2026-01-01T10:00:00"}, "points[17].ts", "time zone"),
        ({"ts": "2999-01-01T00:00:00Z"}, "points[17].ts", "future"),
        ({"value": "lots"}, "points[17].value", "Not a number"),
        ({"value": "NaN"}, "points[17].value", "usable"),
        ({"value": True}, "points[17].value", "Not a number"),
        ({"metric": "bad metric!"}, "points[17].metric", "metric name"),
        ({"asset_id": 999999}, "points[17].asset_id", "No such asset"),
        ({"asset_code": "PMP-1"}, "points[17].asset_id", "exactly one"),
        ({"unit": "x" * 30}, "points[17].unit", "20 characters"),
        ({"metric": ["temp"]}, "points[17].metric", "metric name"),
        ({"value": "1e400"}, "points[17].value", "usable"),
        ({"ts": "0001-01-01T00:00:00+01:00"}, "points[17].ts", "ISO 8601"),
    ],
)
def test_one_bad_point_refuses_the_whole_batch_naming_it(api, integrator_a, pump, change, key, words):
    batch = points(pump, values=range(30))
    batch[17].update(change)
    response = api(integrator_a).post(URL, {"points": batch}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert key in body["fields"] and words in " ".join(body["fields"][key])
    assert not TelemetryPoint.objects.exists() and not Series.objects.exists() and not IngestBatch.objects.exists()


def test_another_organisations_asset_is_no_such_asset(api, integrator_a, pump, foreign):
    batch = points(pump, values=range(3)) + points(foreign, values=[1])
    response = api(integrator_a).post(URL, {"points": batch}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"points[3].asset_id": ["No such asset."]}
    by_code = [{"asset_code": "NOT-OURS", "metric": "t", "ts": timezone.now().isoformat(), "value": 1}]
    assert "points[0].asset_code" in api(integrator_a).post(URL, by_code, format="json").json()["error"]["fields"]
    assert not TelemetryPoint.objects.exists()


def test_who_may_post_points(api, viewer_a, manager_b, technician_a, pump):
    batch = {"points": points(pump, values=[1])}
    assert api(viewer_a).post(URL, batch, format="json").status_code == 403
    assert api(technician_a).post(URL, batch, format="json").status_code == 201
    with pytest.raises(PermissionDeniedError):
        services.ingest_points(pump.organization, batch["points"], actor=manager_b)


def test_clock_skew_is_tolerated_up_to_the_setting(org_a, pump, settings):
    settings.TELEMETRY_MAX_CLOCK_SKEW = 120
    soon = timezone.now() + timedelta(seconds=60)
    assert services.ingest_points(org_a, points(pump, values=[1], start=soon), actor=SYSTEM).stored == 1
    with pytest.raises(InvalidInput) as refused:
        services.ingest_points(org_a, points(pump, values=[1], start=soon + timedelta(minutes=5)), actor=SYSTEM)
    assert "points[0].ts" in refused.value.fields


def test_the_same_moment_twice_in_a_batch(org_a, pump):
    moment = timezone.now() - timedelta(minutes=5)
    same = points(pump, values=[1, 1], start=moment, step=timedelta(0))
    result = services.ingest_points(org_a, same, actor=SYSTEM)
    assert (result.stored, result.duplicates) == (1, 1)
    with pytest.raises(InvalidInput) as refused:
        services.ingest_points(org_a, points(pump, values=[1, 2], start=moment, step=timedelta(0)), actor=SYSTEM)
    assert "points[1].ts" in refused.value.fields


def test_a_batch_over_the_limit_is_refused(org_a, pump):
    with pytest.raises(InvalidInput) as refused:
        services.ingest_points(org_a, [{}] * (services.MAX_POINTS + 1), actor=SYSTEM)
    assert "points" in refused.value.fields


def test_units_are_checked_against_the_definition_and_converted_where_allowed(org_a, pump):
    services.create_definition(org_a, actor=SYSTEM, metric="temp", asset=pump, unit="°C")
    now = timezone.now() - timedelta(minutes=10)
    services.ingest_points(org_a, points(pump, values=[212], start=now, unit="°F"), actor=SYSTEM)
    assert TelemetryPoint.objects.get().value == pytest.approx(100)
    with pytest.raises(InvalidInput) as refused:
        services.ingest_points(org_a, points(pump, values=[5], start=now, unit="bar"), actor=SYSTEM)
    assert "points[0].unit" in refused.value.fields and "°C" in refused.value.message


def test_without_a_definition_a_series_keeps_its_first_unit(org_a, pump):
    now = timezone.now() - timedelta(minutes=10)
    services.ingest_points(org_a, points(pump, values=[1], start=now, unit="mm/s"), actor=SYSTEM)
    with pytest.raises(InvalidInput) as refused:
        services.ingest_points(
            org_a, points(pump, values=[1], start=now + timedelta(minutes=1), unit="g"), actor=SYSTEM
        )
    assert "points[0].unit" in refused.value.fields
    assert Series.objects.get().unit == "mm/s"


def test_late_points_are_stored_and_analysed_within_the_window(org_a, pump, settings):
    settings.TELEMETRY_REANALYSE_WINDOW = 6 * 3600
    services.create_definition(org_a, actor=SYSTEM, metric="temp", asset=pump, warning_high=80, statistical=False)
    now = timezone.now()
    services.ingest_points(org_a, points(pump, values=[50] * 60, start=now - timedelta(hours=1)), actor=SYSTEM)
    # a device that was offline sends what it measured three hours ago: above the limit
    late = services.ingest_points(org_a, points(pump, values=[90, 91], start=now - timedelta(hours=3)), actor=SYSTEM)
    assert (late.stored, late.not_analysed, late.anomalies) == (2, 0, 1)
    anomaly = Anomaly.objects.get()
    assert anomaly.ended_at is not None and anomaly.peak_value == 91
    older = services.ingest_points(org_a, points(pump, values=[95], start=now - timedelta(hours=20)), actor=SYSTEM)
    assert (older.stored, older.not_analysed, older.anomalies) == (1, 1, 0)
    assert Anomaly.objects.count() == 1


def test_re_analysis_does_not_repeat_a_known_anomaly(org_a, pump):
    services.create_definition(org_a, actor=SYSTEM, metric="temp", asset=pump, warning_high=80, statistical=False)
    start = timezone.now() - timedelta(hours=2)
    batch = points(pump, values=[50] * 30 + [90] * 5 + [50] * 30, start=start)
    services.ingest_points(org_a, batch, actor=SYSTEM)
    assert Anomaly.objects.count() == 1
    late = [{**batch[31], "ts": (start + timedelta(minutes=31, seconds=30)).isoformat(), "value": 92}]
    assert services.ingest_points(org_a, late, actor=SYSTEM).anomalies == 0
    assert Anomaly.objects.count() == 1


def test_an_episode_is_one_anomaly_one_event_one_notification(
    org_a, pump, manager_a, django_capture_on_commit_callbacks
):
    services.create_definition(org_a, actor=SYSTEM, metric="temp", asset=pump, critical_high=90, statistical=False)
    start = timezone.now() - timedelta(hours=3)
    for hour in range(3):  # three batches of a sensor stuck above its critical limit
        batch = points(pump, values=[95] * 60, start=start + timedelta(hours=hour))
        services.ingest_points(org_a, batch, actor=SYSTEM)
    anomaly = Anomaly.objects.get()
    assert (anomaly.points, anomaly.ended_at, anomaly.severity) == (180, None, "critical")
    assert Event.objects.filter(type="iot:anomaly").count() == 1
    assert Notification.objects.filter(recipient=manager_a).count() == 1


def test_many_anomalies_in_one_batch_notify_once(org_a, manager_a):
    services.create_definition(org_a, actor=SYSTEM, metric="temp", critical_high=90, statistical=False)
    assets = [asset_services.create_asset(org_a, code=f"A-{n}", name="a") for n in range(8)]
    batch = [p for asset in assets for p in points(asset, values=[95] * 3)]
    assert services.ingest_points(org_a, batch, actor=SYSTEM).anomalies == 8
    assert Event.objects.filter(type="iot:anomaly").count() == 8
    [notification] = Notification.objects.filter(recipient=manager_a)
    assert notification.title.startswith("8 telemetry anomalies")


def test_a_metric_feeds_its_meter_through_the_readings_writer_and_fires_a_meter_schedule(org_a, pump):
    meter = meters.create_meter(org_a, asset=pump, name="Bearing temperature", kind=Meter.Kind.GAUGE, actor=SYSTEM)
    services.create_definition(
        org_a, actor=SYSTEM, metric="bearing_temp", asset=pump, feeds_meter="Bearing temperature", statistical=False
    )
    start = timezone.now() - timedelta(hours=1)
    schedule = owed_from(
        make_schedule(
            org_a,
            asset=pump,
            trigger=Schedule.Trigger.METER,
            skip_if_open=False,
            meter_name="Bearing temperature",
            meter_mode="above",
            meter_threshold=80,
        ),
        start - timedelta(hours=1),
    )
    services.ingest_points(org_a, points(pump, "bearing_temp", [60, 70, 85], start=start), actor=SYSTEM)
    reading = MeterReading.objects.get(meter=meter)  # the newest point of the batch
    assert float(reading.value) == 85
    tick(timezone.now())
    assert occurrences_of(schedule).count() == 1


def test_a_reading_the_meter_refuses_refuses_the_batch_naming_the_point(org_a, pump):
    meter = meters.create_meter(org_a, asset=pump, name="Run hours", kind=Meter.Kind.CUMULATIVE, actor=SYSTEM)
    services.create_definition(org_a, actor=SYSTEM, metric="hours", asset=pump, feeds_meter="Run hours")
    start = timezone.now() - timedelta(hours=2)
    services.ingest_points(org_a, points(pump, "hours", [100, 110], start=start), actor=SYSTEM)
    # the series exists now (the usual batch's path): the counter going back is refused, named by the point it came
    # from (the batch's newest, sent second), and nothing of the batch is stored
    later = [
        *points(pump, "hours", [95], start=start + timedelta(minutes=20)),
        *points(pump, "hours", [90], start=start + timedelta(minutes=30)),
        *points(pump, "hours", [50], start=start + timedelta(minutes=5)),
    ]
    with pytest.raises(InvalidInput) as refused:
        services.ingest_points(org_a, later, actor=SYSTEM)
    assert list(refused.value.fields) == ["points[1].value"]
    assert MeterReading.objects.filter(meter=meter).count() == 1
    assert TelemetryPoint.objects.filter(series__asset=pump).count() == 2


def test_a_replayed_batch_of_a_known_series_counts_duplicates_within_and_against_the_stored(org_a, pump):
    moment = timezone.now() - timedelta(minutes=5)
    services.ingest_points(org_a, points(pump, values=[1], start=moment), actor=SYSTEM)
    again = points(pump, values=[1, 1], start=moment, step=timedelta(0)) + points(
        pump, values=[2], start=moment + timedelta(seconds=1)
    )
    result = services.ingest_points(org_a, again, actor=SYSTEM)
    assert (result.received, result.stored, result.duplicates) == (3, 1, 2)
    assert IngestBatch.objects.filter(organization=org_a).order_by("-id").first().stored == 1
