"""Storage: monthly partitions created ahead (PostgreSQL), rollups kept by ingest, retention; reading: buckets
capped per response, the device metrics endpoint, the anomalies list and its workflow."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from assets import services as asset_services
from assets.telemetry import queries, services, storage
from assets.telemetry.models import Anomaly, Grain, MetricDefinition, Series, TelemetryPoint, TelemetryRollup
from maintenance_site.events.models import Event
from maintenance_site.tenancy import SYSTEM

POSTGRESQL = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="partitions are PostgreSQL's")


@pytest.fixture
def pump(org_a):
    return asset_services.create_asset(org_a, code="PMP-1", name="Pump")


def ingest(asset, values, start, step=timedelta(minutes=1), metric="temp"):
    batch = [
        {"asset_id": asset.pk, "metric": metric, "ts": (start + n * step).isoformat(), "value": value}
        for n, value in enumerate(values)
    ]
    return services.ingest_points(asset.organization, batch, actor=SYSTEM)


# --- partitions ---------------------------------------------------------------------------------------------


@POSTGRESQL
def test_partitions_are_created_ahead_idempotently(db):
    now = datetime(2031, 11, 20, tzinfo=UTC)
    created = storage.ensure_partitions(now=now, ahead=2)
    assert created == ["iot_device_metrics_203111", "iot_device_metrics_203112", "iot_device_metrics_203201"]
    assert storage.ensure_partitions(now=now, ahead=2) == []  # twice, or on two machines: nothing more
    assert {"iot_device_metrics_203111", "iot_device_metrics_203201"} <= set(storage.partitions())
    with connection.cursor() as cursor:  # each partition has the key and the BRIN index of the parent
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'iot_device_metrics_203112'")
        definitions = " ".join(row[0] for row in cursor.fetchall())
    assert "btree (series_id, ts)" in definitions and "brin (ts)" in definitions


@POSTGRESQL
def test_the_periodic_job_keeps_months_ahead_and_drops_what_retention_passed(org_a, pump, settings):
    settings.TELEMETRY_PARTITIONS_AHEAD = 1
    now = timezone.now()
    this_month = storage.month_start(now)
    services.create_partitions_ahead(now=now)
    assert storage.partition_name(storage.add_months(this_month, 1)) in storage.partitions()
    old_month = storage.add_months(this_month, -8)
    storage.ensure_partitions(since=old_month, now=now)
    dropped = services.apply_retention(now=now)["partitions"]
    assert storage.partition_name(old_month) in dropped  # 90 days by default: eight months back is gone
    assert storage.partition_name(this_month) in storage.partitions()


def test_a_late_point_in_a_month_never_created_ahead_gets_its_partition(org_a, pump):
    start = timezone.now() - timedelta(days=45)
    assert ingest(pump, [1, 2], start).stored == 2


# --- rollups and retention ----------------------------------------------------------------------------------


def test_rollups_are_kept_by_ingest_late_points_included_and_duplicates_not_counted(org_a, pump):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    ingest(pump, [10, 20, 30], hour + timedelta(minutes=1))
    ingest(pump, [10, 20, 30], hour + timedelta(minutes=1))  # sent again
    ingest(pump, [5], hour + timedelta(minutes=30))  # late, into the same hour
    series = Series.objects.get()
    hourly = TelemetryRollup.objects.get(series=series, grain=Grain.HOUR)
    assert (hourly.bucket, hourly.count, hourly.total, hourly.minimum, hourly.maximum) == (hour, 4, 65, 5, 30)
    daily = TelemetryRollup.objects.get(series=series, grain=Grain.DAY)
    assert daily.count == 4
    # rebuilt from the raw points, the same
    storage.rebuild_rollups([series.pk], hour, hour)
    assert TelemetryRollup.objects.get(series=series, grain=Grain.HOUR).count == 4


def test_retention_deletes_raw_points_per_organisation_and_keeps_rollups(org_a, org_b, pump, settings):
    theirs = asset_services.create_asset(org_b, code="X", name="x")
    start = timezone.now() - timedelta(days=20)
    ingest(pump, [1] * 3, start)
    ingest(theirs, [1] * 3, start)
    services.update_settings(org_a, actor=SYSTEM, raw_retention_days=10, hourly_retention_days=30)
    deleted = services.apply_retention()
    assert deleted["points"] == 3
    assert TelemetryPoint.objects.filter(series__organization=org_a).count() == 0
    assert TelemetryPoint.objects.filter(series__organization=org_b).count() == 3
    assert TelemetryRollup.objects.filter(series__organization=org_a).count() == 2  # the hour and the day
    assert services.apply_retention()["points"] == 0  # twice: nothing more


def test_a_point_older_than_the_retention_is_refused(org_a, pump):
    services.update_settings(org_a, actor=SYSTEM, raw_retention_days=7)
    with pytest.raises(Exception) as refused:
        ingest(pump, [1], timezone.now() - timedelta(days=8))
    assert "points[0].ts" in refused.value.fields


# --- reading ------------------------------------------------------------------------------------------------


@pytest.fixture
def week(pump):
    """A week of one point a minute (10,080 points)."""
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(days=7)
    values = [50 + (n % 60) / 10 for n in range(7 * 24 * 60)]
    for first in range(0, len(values), services.MAX_POINTS):
        ingest(pump, values[first : first + services.MAX_POINTS], start + timedelta(minutes=first))
    return start


def test_downsampling_caps_the_response_and_says_what_to_ask(api, viewer_a, pump, week, settings):
    settings.TELEMETRY_MAX_POINTS_PER_RESPONSE = 500
    url = f"/api/v1/iot/devices/{pump.pk}/metrics/"
    end = timezone.now()
    params = {"metric": "temp", "from": (end - timedelta(days=7)).isoformat(), "to": end.isoformat()}
    refused = api(viewer_a).get(url, {**params, "bucket": "raw"})
    assert refused.status_code == 400
    assert "bucket=hour" in refused.json()["error"]["fields"]["bucket"][0]  # 10,080 minutes > 500 ≥ 169 hours
    hourly = api(viewer_a).get(url, {**params, "bucket": "hour"}).json()
    assert hourly["bucket"] == "hour" and 168 <= len(hourly["points"]) <= 169
    assert sum(bucket["count"] for bucket in hourly["points"]) == 7 * 24 * 60
    auto = api(viewer_a).get(url, params).json()
    assert auto["bucket"] == "hour" and len(auto["points"]) <= 500
    minute = api(viewer_a).get(url, {**params, "bucket": "minute"})
    assert minute.status_code == 400 and "bucket=hour" in minute.json()["error"]["fields"]["bucket"][0]
    recent = api(viewer_a).get(url, {"metric": "temp", "from": (end - timedelta(hours=2)).isoformat()}).json()
    assert recent["bucket"] == "raw" and 100 <= len(recent["points"]) <= 120


def test_device_metrics_without_a_metric_lists_the_series_and_another_tenant_is_404(api, viewer_a, manager_b, pump):
    ingest(pump, [1, 2], timezone.now() - timedelta(minutes=5))
    url = f"/api/v1/iot/devices/{pump.pk}/metrics/"
    body = api(viewer_a).get(url).json()
    assert [s["metric"] for s in body["series"]] == ["temp"]
    assert api(manager_b).get(url).status_code == 404
    assert api(viewer_a).get(url, {"metric": "temp", "bucket": "week"}).status_code == 400
    assert api(viewer_a).get(url, {"metric": "temp", "from": "someday"}).status_code == 400


# --- anomalies -------------------------------------------------------------------------------------------------


@pytest.fixture
def anomalies(org_a):
    """`anomalies(n)`: n assets, each with one critical anomaly."""

    def make(n):
        if not MetricDefinition.objects.filter(organization=org_a, metric="temp").exists():
            services.create_definition(org_a, actor=SYSTEM, metric="temp", critical_high=90, statistical=False)
        assets = [asset_services.create_asset(org_a, code=f"A-{n}-{k}", name="a") for k in range(n)]
        batch = [{"asset_id": a.pk, "metric": "temp", "ts": timezone.now().isoformat(), "value": 95} for a in assets]
        services.ingest_points(org_a, batch, actor=SYSTEM)
        return list(Anomaly.objects.filter(asset__in=assets))

    return make


def test_the_anomalies_list_costs_the_same_at_any_length(api, viewer_a, anomalies, django_assert_max_num_queries):
    anomalies(3)
    client = api(viewer_a)
    client.get("/api/v1/iot/anomalies/")  # warm: sessions, the membership cache
    with django_assert_max_num_queries(8) as few:
        assert len(client.get("/api/v1/iot/anomalies/").json()["results"]) == 3
    anomalies(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get("/api/v1/iot/anomalies/").json()["results"]) == 33


def test_the_anomalies_list_filters(api, viewer_a, anomalies, pump):
    [anomaly] = anomalies(1)
    client = api(viewer_a)
    assert len(client.get("/api/v1/iot/anomalies/", {"severity": "critical"}).json()["results"]) == 1
    assert client.get("/api/v1/iot/anomalies/", {"severity": "warning"}).json()["results"] == []
    assert len(client.get("/api/v1/iot/anomalies/", {"asset": anomaly.asset_id}).json()["results"]) == 1
    assert client.get("/api/v1/iot/anomalies/", {"asset": pump.pk}).json()["results"] == []
    assert len(client.get("/api/v1/iot/anomalies/", {"status": "open", "ongoing": "true"}).json()["results"]) == 1
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/iot/anomalies/", {"started_after": future}).json()["results"] == []


def test_acknowledge_with_a_comment_then_resolve_audited(api, planner_a, viewer_a, manager_b, anomalies):
    [anomaly] = anomalies(1)
    url = f"/api/v1/iot/anomalies/{anomaly.pk}/"
    assert api(viewer_a).post(url + "acknowledge/", {"comment": "seen"}, format="json").status_code == 403
    assert api(manager_b).post(url + "acknowledge/", {"comment": "seen"}, format="json").status_code == 404
    response = api(planner_a).post(url + "acknowledge/", {"comment": "Bearing checked, greasing"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "acknowledged" and response.json()["comment"] == "Bearing checked, greasing"
    record = anomaly.history.first()
    assert (record.history_user, record.history_change_reason) == (planner_a, "Bearing checked, greasing")
    resolved = api(planner_a).post(url + "resolve/", {}, format="json").json()
    assert resolved["status"] == "resolved" and resolved["ended_at"] is not None
    assert api(planner_a).post(url + "resolve/", {}, format="json").status_code == 409
    assert Event.objects.filter(type="iot:anomaly-updated").count() == 2
    # the detector starts afresh: the series still above its limit opens a new anomaly
    series = Series.objects.get(pk=anomaly.series_id)
    assert "limit" not in series.state["episodes"]
    services.ingest_points(
        anomaly.organization,
        [{"asset_id": anomaly.asset_id, "metric": "temp", "ts": timezone.now().isoformat(), "value": 96}],
        actor=SYSTEM,
    )
    assert Anomaly.objects.filter(series=series).count() == 2


def test_read_functions_for_asset_health(org_a, pump, anomalies):
    ingest(pump, [1, 2, 3], timezone.now() - timedelta(minutes=10))
    assert queries.latest_values([pump.pk])[pump.pk]["temp"][1] == 3
    [anomaly] = anomalies(1)
    assert queries.open_anomaly_counts([anomaly.asset_id]) == {anomaly.asset_id: {"critical": 1}}
    assert queries.recent_anomalies(org_a, asset=anomaly.asset) == [anomaly]
    stats = queries.series_stats(Series.objects.get(asset=pump).pk, timezone.now() - timedelta(hours=2), timezone.now())
    assert (stats["count"], stats["min"], stats["max"]) == (3, 1, 3)


def test_settings_over_the_api(api, viewer_a, manager_a, planner_a):
    assert api(viewer_a).get("/api/v1/iot/settings/").json()["raw_retention_days"] == 90
    assert api(planner_a).patch("/api/v1/iot/settings/", {"notify": "warning"}, format="json").status_code == 403
    response = api(manager_a).patch(
        "/api/v1/iot/settings/", {"raw_retention_days": 30, "notify": "warning"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert api(viewer_a).get("/api/v1/iot/settings/").json()["raw_retention_days"] == 30
    refused = api(manager_a).patch("/api/v1/iot/settings/", {"hourly_retention_days": 5}, format="json")
    assert refused.status_code == 400 and "hourly_retention_days" in refused.json()["error"]["fields"]
