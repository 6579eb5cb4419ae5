"""The only writers of telemetry: ingest (`ingest_points`), metric definitions, settings, the anomalies' workflow
(acknowledge, resolve) and the periodic storage jobs (partitions ahead, retention).

Ingest, for a batch of up to MAX_POINTS points, in one transaction:

1. every point is checked and every problem named by its position (`points[17].ts`); any problem refuses the whole
   batch (400) and nothing is written;
2. the batch's series are found or created, then locked in id order (two batches of one series take turns, so
   the detectors' state and the rollups stay consistent);
3. points are stored with their rollups in one statement (`storage.insert_points`); a point already stored (same
   asset, metric and moment) is a duplicate, left as it was;
4. the detectors (`assets.telemetry.detection`) run over the new points of each series in time order. A late point
   (older than the series' newest analysed point) re-runs detection over the stored points from it onwards if that
   span is at most TELEMETRY_REANALYSE_WINDOW; an older one is stored and rolled up but not analysed;
5. episodes open, grow and end as `Anomaly` rows; each new one publishes `iot:anomaly` (the outbox) and notifies
   the organisation's chosen roles (one summary when a batch opens many: never a flood);
6. a metric mapped to a meter writes the series' newest new point as a meter reading through
   `assets.meters.record_readings`, the one writer of readings (so meter-based preventive schedules fire);
7. the batch is recorded in the ingest log (`IngestBatch`).
"""

import math
import time
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assets import meters
from assets.models import Asset, Meter, MeterReading
from assets.telemetry import storage
from assets.telemetry.detection import Config, SeriesDetector
from assets.telemetry.messages import lazy_localized
from assets.telemetry.models import (
    METRIC_NAME,
    SEVERITY_RANK,
    Anomaly,
    Grain,
    IngestBatch,
    MetricDefinition,
    Series,
    Severity,
    TelemetrySettings,
)
from assets.telemetry.units import converter
from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput, NotFound
from maintenance_site.events.services import publish, publish_many
from maintenance_site.events.types import DATE_TIME, INTEGER, STRING, register_event_type
from maintenance_site.notifications.kinds import register_kind
from maintenance_site.notifications.models import Channel
from maintenance_site.notifications.services import notify
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import Action
from maintenance_site.validation import assign_editable, checked_reason, validated

MAX_POINTS = 10_000
VALUE_LIMIT = 1e15
EVENT_ANOMALY = "iot:anomaly"
EVENT_ANOMALY_UPDATED = "iot:anomaly-updated"
NOTIFY_ONE_BY_ONE = 5  # a batch opening more anomalies than this sends one summary notification instead
register_kind(EVENT_ANOMALY, "Telemetry anomaly detected", [Channel.EMAIL, Channel.PUSH])
_ANOMALY_PROPERTIES = {
    "id": INTEGER,
    "asset": INTEGER,
    "metric": STRING,
    "detector": STRING,
    "severity": STRING,
    "status": STRING,
    "started_at": DATE_TIME,
    "ended_at": DATE_TIME,
    "peak_value": {"type": ["number", "null"]},
    "message": STRING,
}
register_event_type(EVENT_ANOMALY, "Telemetry anomaly detected", _ANOMALY_PROPERTIES)
register_event_type(EVENT_ANOMALY_UPDATED, "Telemetry anomaly acknowledged or resolved", _ANOMALY_PROPERTIES)

DEFINITION_FIELDS = {
    "metric",
    "asset",
    "asset_type",
    "label",
    "unit",
    "convert_units",
    "sensor_min",
    "sensor_max",
    "warning_low",
    "warning_high",
    "critical_low",
    "critical_high",
    "max_rate_per_minute",
    "flatline_minutes",
    "statistical",
    "spike_sigmas",
    "drift_sigmas",
    "ewma_lambda",
    "baseline_alpha",
    "warmup_points",
    "clear_after_minutes",
    "feeds_meter",
}
SETTINGS_FIELDS = {"raw_retention_days", "hourly_retention_days", "daily_retention_days", "notify", "notify_roles"}


def _require(organization_id: int, action: Action, actor) -> None:
    tenancy_services.require_role(organization_id, action, actor=actor)


# Settings and definitions change rarely and every batch reads them: each process keeps them CACHE_SECONDS (a
# change made by this process applies at once; made by another, within CACHE_SECONDS).
CACHE_SECONDS = 10.0
_cache: dict[tuple[str, int], tuple[float, object, object]] = {}


def _cached(kind: str, organization, load):
    """`load()`'s value for the organisation, kept CACHE_SECONDS (an id rolled back and given again, as SQLite
    does, names another organisation: the creation time tells them apart)."""
    now = time.monotonic()
    hit = _cache.get((kind, organization.pk))
    if hit is not None and hit[0] > now and hit[1] == organization.created_at:
        return hit[2]
    value = load()
    _cache[(kind, organization.pk)] = (now + CACHE_SECONDS, organization.created_at, value)
    return value


def _forget(organization_id: int) -> None:
    def forget():
        for kind in ("settings", "definitions"):
            _cache.pop((kind, organization_id), None)

    forget()
    transaction.on_commit(forget)


def settings_of(organization) -> TelemetrySettings:
    """The organisation's telemetry settings (defaults, unsaved, until someone changes them)."""
    found = TelemetrySettings.objects.filter(organization_id=organization.pk).first()
    return found or TelemetrySettings(organization=organization)


def _settings_cached(organization) -> TelemetrySettings:
    return _cached("settings", organization, lambda: settings_of(organization))


# --- ingest: checking a batch -----------------------------------------------------------------------------


@dataclass
class IngestResult:
    """What became of a batch: `stored` new points, `duplicates` (already stored, or twice in the batch),
    `not_analysed` (stored, but too late for detection), `anomalies` opened."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    not_analysed: int = 0
    anomalies: int = 0
    batch_id: int | None = None


def _refused(problems: list[tuple[str, str]]) -> InvalidInput:
    shown = "; ".join(f"{where}: {message}" for where, message in problems[:20])
    more = _(" (and %(count)s more)") % {"count": len(problems) - 20} if len(problems) > 20 else ""
    fields: dict[str, list[str]] = {}
    for where, message in problems:
        fields.setdefault(where, []).append(message)
    return InvalidInput(
        _("%(count)s problem(s) in the batch, nothing stored — %(shown)s%(more)s.")
        % {"count": len(problems), "shown": shown, "more": more},
        fields=fields,
    )


def _moment(raw) -> datetime:
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, str) and 10 <= len(raw) <= 40:
        moment = datetime.fromisoformat(raw.strip())  # ValueError when it is not ISO 8601
    else:
        raise ValueError
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        raise TypeError
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise ValueError from None


def _value(raw) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError
    value = float(raw)
    if not math.isfinite(value) or abs(value) >= VALUE_LIMIT:
        raise OverflowError
    return value


def _parse(points, now: datetime, oldest: datetime):
    """Each point's (index, asset reference, metric, ts, value, unit), the problems found, by position, each
    distinct moment's epoch seconds (`{ts: epoch}`: the detectors and the rollups read those, once per moment), and
    whether any point names a unit."""
    problems: list[tuple[str, str]] = []
    parsed = []
    latest = now + timedelta(seconds=settings.TELEMETRY_MAX_CLOCK_SKEW)
    known_metrics: set[str] = set()  # metric names checked already in this batch
    # the batch's time stamps read once each (a batch of many devices' samples repeats its moments): the text's
    # moment when it is a usable UTC time for the shortest path below, else None
    stamps: dict[str, datetime | None] = {}
    epochs: dict[datetime, float] = {}
    fromisoformat, limit, largest_id = datetime.fromisoformat, VALUE_LIMIT, 2**63
    with_units = False
    for index, raw in enumerate(points):
        # The usual point (an asset id, a known metric, a UTC time, a number, no unit) by the shortest path; any
        # other goes through the checks below, which name what is wrong.
        if type(raw) is dict and "unit" not in raw and "asset_code" not in raw:
            asset_id, metric, stamp, value = raw.get("asset_id"), raw.get("metric"), raw.get("ts"), raw.get("value")
            if (
                type(asset_id) is int
                and 0 < asset_id < largest_id
                and type(metric) is str
                and metric in known_metrics
                and type(stamp) is str
                and (type(value) is float or type(value) is int)
                and -limit < value < limit  # NaN fails this
            ):
                ts = stamps.get(stamp, False)
                if ts is False:
                    try:
                        ts = fromisoformat(stamp)
                    except ValueError:
                        ts = None
                    if ts is not None and not (ts.tzinfo is UTC and oldest <= ts <= latest):
                        ts = None
                    stamps[stamp] = ts
                    if ts is not None:
                        epochs[ts] = ts.timestamp()
                if ts is not None:
                    parsed.append((index, asset_id, metric, ts, float(value), ""))
                    continue
        where = f"points[{index}]"
        if not isinstance(raw, dict):
            problems.append((where, "A point is an object with asset_id or asset_code, metric, ts and value."))
            continue
        asset_id, asset_code = raw.get("asset_id"), raw.get("asset_code")
        if (asset_id is None) == (asset_code is None):
            problems.append((f"{where}.asset_id", "Give exactly one of asset_id and asset_code."))
            continue
        if asset_id is not None and (
            isinstance(asset_id, bool) or not isinstance(asset_id, int) or not 0 < asset_id < 2**63
        ):
            problems.append((f"{where}.asset_id", "An asset id is a whole number."))
            continue
        if asset_code is not None and (not isinstance(asset_code, str) or not asset_code.strip()):
            problems.append((f"{where}.asset_code", "An asset code is a non-empty text."))
            continue
        metric = raw.get("metric")
        if not isinstance(metric, str) or not METRIC_NAME.match(metric):
            problems.append((f"{where}.metric", "A metric name is 1 to 64 letters, digits, “_”, “.”, “:”, “/” or “-”."))
            continue
        known_metrics.add(metric)
        try:
            ts = _moment(raw.get("ts"))
        except TypeError:
            problems.append((f"{where}.ts", "Add a time zone (Z for UTC, or an offset such as +01:00)."))
            continue
        except ValueError:
            problems.append((f"{where}.ts", "Not an ISO 8601 date-time such as 2026-01-31T12:00:00Z."))
            continue
        if ts > latest:
            problems.append(
                (
                    f"{where}.ts",
                    f"{ts.isoformat()} is more than {settings.TELEMETRY_MAX_CLOCK_SKEW} s in the future: "
                    "check the device's clock.",
                )
            )
            continue
        if ts < oldest:
            problems.append(
                (f"{where}.ts", f"{ts.isoformat()} is older than the raw retention ({oldest:%Y-%m-%d}): not stored.")
            )
            continue
        try:
            value = _value(raw.get("value"))
        except (ValueError, TypeError):
            problems.append((f"{where}.value", "Not a number."))
            continue
        except OverflowError:
            problems.append((f"{where}.value", "Not a usable value (infinite, NaN or beyond ±1e15)."))
            continue
        unit = raw.get("unit")
        if unit is not None and (not isinstance(unit, str) or len(unit) > 20):
            problems.append((f"{where}.unit", "A unit is a text of at most 20 characters."))
            continue
        asset_ref = asset_id if asset_id is not None else asset_code.strip()
        unit = unit.strip() if unit else ""
        with_units = with_units or bool(unit)
        parsed.append((index, asset_ref, metric, ts, value, unit))
        if ts not in epochs:
            epochs[ts] = ts.timestamp()
    return parsed, problems, epochs, with_units


def _assets(organization, parsed) -> dict:
    """The organisation's assets the batch names, by id and by code (another organisation's are simply absent)."""
    ids = {ref for _, ref, *_ in parsed if isinstance(ref, int)}
    codes = {ref for _, ref, *_ in parsed if isinstance(ref, str)}
    if not ids and not codes:
        return {}
    found = {}
    for asset_id, code, type_id in (
        Asset.objects.filter(organization=organization)
        .filter(Q(pk__in=ids) | Q(code__in=codes))
        .values_list("pk", "code", "asset_type_id")
    ):
        if asset_id in ids:
            found[asset_id] = (asset_id, type_id)
        if code in codes:
            found[code] = (asset_id, type_id)
    return found


def _known_series(organization, parsed):
    """The usual batch (every point for a series that exists) in one query: the assets it names, its series (locked
    in id order) by (asset id, metric) and by (asset reference, metric) as the points name them. (…, None, None)
    when a point's asset or series is not among them."""
    # one pass over the points (5,000 in a full batch); the rest works on the distinct (asset, metric) pairs
    pairs = {(ref, metric) for _, ref, metric, *_ in parsed}
    ids = {ref for ref, _ in pairs if isinstance(ref, int)}
    codes = {ref for ref, _ in pairs if isinstance(ref, str)}
    metrics = {metric for _, metric in pairs}
    if not metrics:
        return {}, None, None
    found = storage.locked_series(organization.pk, ids, codes, metrics)
    assets, series_of = {}, {}
    for series, asset_code, type_id in found:
        assets[series.asset_id] = assets[asset_code] = (series.asset_id, type_id)
        series_of[(series.asset_id, series.metric)] = series
    by_reference = {}
    for ref, metric in pairs:
        asset = assets.get(ref)
        series = series_of.get((asset[0], metric)) if asset is not None else None
        if series is None:
            return None, None, None
        by_reference[(ref, metric)] = series
    batch_series = {(series.asset_id, series.metric): series for series in by_reference.values()}
    return {ref: asset for ref, asset in assets.items() if ref in ids or ref in codes}, batch_series, by_reference


def _series_locked(organization, keys: set[tuple[int, str]]) -> dict[tuple[int, str], Series]:
    """The series of these (asset id, metric) pairs, created when new, locked in id order."""
    asset_ids = {asset_id for asset_id, _ in keys}
    metrics = {metric for _, metric in keys}

    def fetch():
        return {
            (series.asset_id, series.metric): series
            for series in Series.objects.select_for_update()
            .filter(organization=organization, asset_id__in=asset_ids, metric__in=metrics)
            .order_by("pk")
            if (series.asset_id, series.metric) in keys
        }

    found = fetch()
    missing = keys - set(found)
    if missing:
        Series.objects.bulk_create(
            [Series(organization=organization, asset_id=a, metric=m) for a, m in sorted(missing)],
            ignore_conflicts=True,
        )
        found = fetch()
    return found


def _definitions(organization, keys, type_of: dict[int, int | None]) -> dict[tuple[int, str], MetricDefinition]:
    """The definition that applies to each (asset id, metric): the asset's, else its type's, else the
    organisation's."""
    by_asset, by_type, by_org = {}, {}, {}
    for definition in _cached(
        "definitions", organization, lambda: list(MetricDefinition.objects.filter(organization=organization))
    ):
        if definition.asset_id:
            by_asset[(definition.asset_id, definition.metric)] = definition
        elif definition.asset_type_id:
            by_type[(definition.asset_type_id, definition.metric)] = definition
        else:
            by_org[definition.metric] = definition
    chosen = {}
    for asset_id, metric in keys:
        definition = (
            by_asset.get((asset_id, metric)) or by_type.get((type_of.get(asset_id), metric)) or by_org.get(metric)
        )
        if definition is not None:
            chosen[(asset_id, metric)] = definition
    return chosen


def _units(parsed_by_series, series_of, definitions, problems) -> None:
    """Check (and where allowed convert) each point's unit against its definition's, else its series'. Rewrites
    the values in place; a series without a unit takes its first point's."""
    for key, items in parsed_by_series.items():
        definition = definitions.get(key)
        series = series_of[key]
        expected = definition.unit if definition is not None and definition.unit else series.unit
        may_convert = definition.convert_units if definition is not None else False
        for position, (index, ts, value, unit) in enumerate(items):
            if not unit:
                continue
            if not expected:
                expected = series.unit = unit
                continue
            convert = converter(unit, expected)
            if convert is None or (not may_convert and unit.casefold() != expected.casefold()):
                hint = " (the definition converts none)" if convert is not None else ""
                problems.append((f"points[{index}].unit", f"“{unit}” is not {key[1]}'s unit “{expected}”{hint}."))
                continue
            items[position] = (index, ts, convert(value), unit)
        if not series.unit and expected:
            series.unit = expected


# --- ingest ---------------------------------------------------------------------------------------------


@audit.attributed
def ingest_points(organization, points, *, actor) -> IngestResult:
    """Store a batch of points (dicts with `asset_id` or `asset_code`, `metric`, `ts`, `value`, optional `unit`),
    all or nothing, and run detection over them (see the module's docstring). The points go in by a plain COPY;
    when the batch holds points stored already, that transaction is rolled back and the batch runs again through
    INSERT … ON CONFLICT DO NOTHING (a retried batch costs twice; a new one pays for no savepoint)."""
    try:
        return _ingest(organization, points, actor=actor, copy=True)
    except storage.StoredAlready:
        return _ingest(organization, points, actor=actor, copy=False)


@transaction.atomic
def _ingest(organization, points, *, actor, copy: bool) -> IngestResult:
    started = time.perf_counter()
    _require(organization.pk, Action.INGEST_TELEMETRY, actor)
    if not isinstance(points, list | tuple) or not points:
        raise InvalidInput(_("Send at least one point."), fields={"points": [_("Empty.")]})
    if len(points) > MAX_POINTS:
        raise InvalidInput(
            _("%(count)s points in one batch; send at most %(most)s at a time.")
            % {"count": len(points), "most": MAX_POINTS},
            fields={"points": [_("At most %(most)s.") % {"most": MAX_POINTS}]},
        )
    now = timezone.now()
    options = _settings_cached(organization)
    parsed, problems, epochs, with_units = _parse(points, now, now - timedelta(days=options.raw_retention_days))
    assets, series_of, by_reference = _known_series(organization, parsed)
    result = IngestResult(received=len(points))
    if series_of is not None and not problems and not with_units:
        # the usual batch (its series all exist, no unit named): grouped and de-duplicated in one pass
        type_of = dict(assets.values())
        definitions = _definitions(organization, set(series_of), type_of)
        _units({key: [] for key in series_of}, series_of, definitions, problems)  # a series' unit from its definition
        rows, points_of = _rows_of_usual(parsed, by_reference, result, problems)
    else:
        if series_of is None:  # a new series, or a reference no series answers: find the assets first
            assets = _assets(organization, parsed)
        by_series: dict[tuple[int, str], list] = defaultdict(list)
        type_of: dict[int, int | None] = {}
        for index, asset_ref, metric, ts, value, unit in parsed:
            asset = assets.get(asset_ref)
            if asset is None:
                name = "asset_id" if isinstance(asset_ref, int) else "asset_code"
                problems.append((f"points[{index}].{name}", "No such asset."))
                continue
            type_of[asset[0]] = asset[1]
            by_series[(asset[0], metric)].append((index, ts, value, unit))
        if problems:
            raise _refused(problems)

        if series_of is None or not set(by_series) <= set(series_of):
            series_of = _series_locked(organization, set(by_series))
        else:
            series_of = {key: series_of[key] for key in by_series}
        definitions = _definitions(organization, set(by_series), type_of)
        _units(by_series, series_of, definitions, problems)
        if problems:
            raise _refused(problems)
        rows, points_of = _rows_of(by_series, series_of, result, problems)
    if problems:
        raise _refused(problems)

    stored = storage.insert_points(rows, copy=copy, moments=epochs)
    if stored is storage.ALL:
        new_by_series = points_of
        result.stored = len(rows)
    else:
        new_by_series = defaultdict(list)
        for series_id, ts, value in rows:
            if (series_id, ts) in stored:
                new_by_series[series_id].append((ts, value))
        result.stored = len(stored)
    result.duplicates += len(rows) - result.stored

    opened = _detect(organization, series_of, definitions, new_by_series, result, epochs)
    _feed_meters(organization, series_of, definitions, new_by_series, parsed, assets, actor)
    result.anomalies = len(opened)
    _announce(organization, options, opened)
    if stored is storage.ALL:  # every series' points are in time order now (_detect sorted them)
        first = [points[0][0] for points in points_of.values() if points]
        last = [points[-1][0] for points in points_of.values() if points]
    else:
        first = last = [ts for _, ts, _ in rows]
    batch = IngestBatch(
        organization=organization,
        received_by=audit.as_user(actor),
        points=result.received,
        stored=result.stored,
        duplicates=result.duplicates,
        not_analysed=result.not_analysed,
        anomalies_opened=result.anomalies,
        series=len(series_of),
        first_ts=min(first) if first else None,
        last_ts=max(last) if last else None,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    # the series' new state, the rollups of a COPY's rows and the ingest log: one statement
    _save_series(series_of, new_by_series, new_by_series if stored is storage.ALL else None, epochs, batch)
    result.batch_id = batch.pk
    return result


def _rows_of(by_series, series_of, result, problems):
    """The batch's rows (series id, ts, value) and each series' (ts, value) pairs, by series id. Twice in the batch:
    the same value is a replay (one stored, counted as a duplicate), another value a contradiction (a problem)."""
    rows = []
    points_of: dict[int, list[tuple[datetime, float]]] = {}
    for key, items in by_series.items():
        series_id = series_of[key].pk
        seen: dict[datetime, tuple[int, float]] = {}
        mine = points_of[series_id] = []
        for index, ts, value, _unit in items:
            earlier = seen.get(ts)
            if earlier is None:
                seen[ts] = (index, value)
                rows.append((series_id, ts, value))
                mine.append((ts, value))
            elif earlier[1] == value:
                result.duplicates += 1
            else:
                problems.append((f"points[{index}].ts", f"points[{earlier[0]}] has the same asset, metric and moment."))
    return rows, points_of


def _rows_of_usual(parsed, by_reference, result, problems):
    """`_rows_of` for the usual batch, straight from the parsed points (every one valid, so a point's index is its
    place in `parsed`; every series known, by the points' (asset reference, metric))."""
    ids = {key: series.pk for key, series in by_reference.items()}
    points_of: dict[int, list[tuple[datetime, float]]] = {series_id: [] for series_id in ids.values()}
    rows = []
    seen: dict[tuple[int, datetime], int] = {}
    for index, ref, metric, ts, value, _unit in parsed:
        series_id = ids[(ref, metric)]
        earlier = seen.get((series_id, ts))
        if earlier is None:
            seen[(series_id, ts)] = index
            rows.append((series_id, ts, value))
            points_of[series_id].append((ts, value))
        elif parsed[earlier][4] == value:
            result.duplicates += 1
        else:
            problems.append((f"points[{index}].ts", f"points[{earlier}] has the same asset, metric and moment."))
    return rows, points_of


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _moment_of(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _detect(organization, series_of, definitions, new_by_series, result, epochs) -> list[Anomaly]:
    """Run the detectors over each series' new points (sorted in place: time order); returns the anomalies opened
    (saved). `epochs` holds each point's moment in epoch seconds."""
    if not new_by_series:
        return []
    window = settings.TELEMETRY_REANALYSE_WINDOW
    key_of = {series.pk: key for key, series in series_of.items()}
    # only series whose state holds an episode have an ongoing anomaly: no query for a healthy batch
    with_episodes = [s.id for s in series_of.values() if s.id in new_by_series and s.state.get("episodes")]
    ongoing = {
        (anomaly.series_id, anomaly.detector): anomaly
        for anomaly in (Anomaly.objects.ongoing().filter(series_id__in=with_episodes) if with_episodes else [])
    }
    created: list[Anomaly] = []
    changed: dict[int, Anomaly] = {}
    for series_id, points in new_by_series.items():
        series = series_of[key_of[series_id]]
        config = Config.of(definitions.get(key_of[series_id]))
        points.sort()
        until = series.analysed_until
        if until is None or points[0][0] > until:  # the usual batch: all after the series' newest analysed point
            fresh, late = points, []
        else:
            cut = bisect_right(points, until, key=itemgetter(0))
            fresh, late = points[cut:], points[:cut]
        if late:
            replayable = [point for point in late if (until - point[0]).total_seconds() <= window]
            result.not_analysed += len(late) - len(replayable)
            if replayable:
                _reanalyse(series, config, replayable[0][0], until, created)
        if not fresh:
            continue
        detector = SeriesDetector(config, series.state)
        events = detector.run([(epochs[ts], value) for ts, value in fresh])
        for kind, detector_name, episode in events:
            if kind == "open":
                anomaly = _new_anomaly(series, detector_name, episode)
                ongoing[(series_id, detector_name)] = anomaly
                created.append(anomaly)
            else:
                anomaly = ongoing.pop((series_id, detector_name), None)
                if anomaly is not None:
                    _refresh(anomaly, episode)
                    anomaly.ended_at = _moment_of(episode["ended"])
                    changed[id(anomaly)] = anomaly
        for detector_name, episode in detector.episodes.items():
            anomaly = ongoing.get((series_id, detector_name))
            if anomaly is not None:
                _refresh(anomaly, episode)
                changed[id(anomaly)] = anomaly
        series.state = detector.dump()
        series.analysed_until = fresh[-1][0]
    new_ids = {id(anomaly) for anomaly in created}
    _save_anomalies(created, [a for key, a in changed.items() if key not in new_ids])
    return created


def _new_anomaly(series, detector_name: str, episode: dict) -> Anomaly:
    anomaly = Anomaly(
        organization_id=series.organization_id,
        series=series,
        asset_id=series.asset_id,
        metric=series.metric,
        detector=detector_name,
        started_at=_moment_of(episode["started"]),
    )
    _refresh(anomaly, episode)
    return anomaly


def _refresh(anomaly: Anomaly, episode: dict) -> None:
    anomaly.severity = episode["severity"]
    anomaly.last_seen_at = _moment_of(episode["last"])
    anomaly.peak_value = episode["peak"]
    anomaly.peak_at = _moment_of(episode["peak_at"])
    anomaly.limit = episode["reference"]
    anomaly.points = episode["points"]
    anomaly.message = episode["message"]


def _reanalyse(series, config: Config, since: datetime, until: datetime, created: list) -> None:
    """Replay detection over the series' stored points from `since` (a late point) to `until` (its newest analysed
    point) with the baseline it has now, learning nothing; an episode found there that no known anomaly of its
    detector covers is recorded, ended (the live detectors own the present)."""
    replay = storage.stored_points(series.pk, since, until)
    fresh_state = {**series.state, "ewma": None, "prev_ts": None, "flat_since": None, "episodes": {}}
    detector = SeriesDetector(config, fresh_state)
    events = detector.run([(_epoch(ts), value) for ts, value in replay], learn=False)
    found = [(name, episode) for kind, name, episode in events if kind == "close"]
    found += [(name, {**episode, "ended": episode["last"]}) for name, episode in detector.episodes.items()]
    if not found:
        return
    clear = timedelta(minutes=config.clear_after_minutes)
    known = list(
        Anomaly.objects.filter(series=series, last_seen_at__gte=since - clear).values_list(
            "detector", "started_at", "last_seen_at"
        )
    )
    for name, episode in found:
        start, last = _moment_of(episode["started"]), _moment_of(episode["last"])
        if any(d == name and s <= last + clear and seen + clear >= start for d, s, seen in known):
            continue
        anomaly = _new_anomaly(series, name, episode)
        anomaly.ended_at = max(_moment_of(episode["ended"]), anomaly.started_at)
        created.append(anomaly)
        known.append((name, start, last))


def _save_anomalies(created: list[Anomaly], changed: list[Anomaly]) -> None:
    """Ended or grown episodes first (an ended one frees its detector's slot), then the new ones, with history."""
    ended = [anomaly for anomaly in changed if anomaly.ended_at is not None]
    growing = [anomaly for anomaly in changed if anomaly.ended_at is None]
    fields = ["severity", "last_seen_at", "peak_value", "peak_at", "limit", "points", "message", "updated_at"]
    now = timezone.now()
    for anomaly in changed:
        anomaly.updated_at = now
    if ended:
        audit.bulk_update_with_history(ended, Anomaly, [*fields, "ended_at"])
    if growing:
        Anomaly.objects.bulk_update(growing, fields)  # peaks move every batch: data, not history
    if created:
        for anomaly in created:
            anomaly.created_at = anomaly.updated_at = now
        audit.bulk_create_with_history(created, Anomaly)


def _save_series(series_of, new_by_series, rollup_points, epochs, batch: IngestBatch) -> None:
    """Each series' first and newest point, then `storage.save_batch`: the series, `rollup_points`' rollups (the
    rows a COPY stored) and the batch's ingest log, written together."""
    touched = []
    for series in series_of.values():
        points = new_by_series.get(series.pk)
        if points:
            first, last = points[0], points[-1]  # in time order (_detect sorted them)
            if series.first_ts is None or first[0] < series.first_ts:
                series.first_ts = first[0]
            if series.last_ts is None or last[0] >= series.last_ts:
                series.last_ts, series.last_value = last
        touched.append(series)
    storage.save_batch(touched, rollup_points=rollup_points, epochs=epochs, log=batch)


def _feed_meters(organization, series_of, definitions, new_by_series, parsed, assets, actor) -> None:
    """Each series whose definition feeds a meter writes its newest new point as a reading of the asset's meter of
    that name, through `assets.meters.record_readings` (so counters stay monotonic and schedules see it). A
    refused reading refuses the batch, named by the point's position."""
    wanted = {}
    for key, definition in definitions.items():
        series = series_of[key]
        if definition.feeds_meter and new_by_series.get(series.pk):
            wanted[key] = definition.feeds_meter
    if not wanted:
        return
    found = {
        (meter.asset_id, meter.name): meter
        for meter in Meter.objects.filter(
            organization=organization,
            asset_id__in={asset_id for asset_id, _ in wanted},
            name__in=set(wanted.values()),
        )
    }
    readings, sources = [], []
    for key, meter_name in wanted.items():
        meter = found.get((key[0], meter_name))
        if meter is None:
            continue  # the definition names a meter this asset does not have: nothing to feed
        ts, value = max(new_by_series[series_of[key].pk])
        readings.append({"meter": meter, "value": repr(value), "read_at": ts})
        sources.append((key[0], key[1], ts))
    if not readings:
        return
    # each reading's point, by its position in the batch (the first with that asset, metric and moment)
    index_of: dict[tuple, int] = {}
    wanted_points = set(sources)
    for index, ref, metric, ts, *_rest in parsed:
        source = (assets[ref][0], metric, ts)
        if source in wanted_points:
            index_of.setdefault(source, index)
    positions = [index_of[source] for source in sources]
    try:
        meters.record_readings(organization, readings, actor=actor, source=MeterReading.Source.API)
    except InvalidInput as exc:
        fields = {}
        for where, messages in exc.fields.items():
            if where.startswith("readings["):
                number, _sep, rest = where.removeprefix("readings[").partition("]")
                where = f"points[{positions[int(number)]}].value" if number.isdigit() else where
            fields.setdefault(where, []).extend(messages)
        raise InvalidInput(
            _("A meter refused a reading from this batch: %(message)s") % {"message": exc.message}, fields=fields
        ) from None


def _announce(organization, options: TelemetrySettings, opened: list[Anomaly]) -> None:
    """One `iot:anomaly` event per new anomaly; notifications per the organisation's settings, one per anomaly up to
    NOTIFY_ONE_BY_ONE, else one summary."""
    if not opened:
        return
    publish_many(organization, EVENT_ANOMALY, [anomaly_payload(anomaly) for anomaly in opened])
    if options.notify == TelemetrySettings.Notify.NONE:
        return
    floor = SEVERITY_RANK[Severity(options.notify)]
    worth = [anomaly for anomaly in opened if SEVERITY_RANK[Severity(anomaly.severity)] >= floor]
    if not worth:
        return
    roles = options.roles_notified
    if len(worth) <= NOTIFY_ONE_BY_ONE:
        codes = dict(Asset.objects.filter(pk__in={a.asset_id for a in worth}).values_list("pk", "code"))
        for anomaly in worth:
            notify(
                organization,
                roles,
                EVENT_ANOMALY,
                {
                    "title": format_lazy(
                        "{severity}: {asset} {metric}",
                        severity=lazy(anomaly.get_severity_display, str)(),
                        asset=codes.get(anomaly.asset_id),
                        metric=anomaly.metric,
                    ),
                    "body": format_lazy(
                        gettext_lazy("{detector} since {since} UTC: {message}."),
                        detector=lazy(anomaly.get_detector_display, str)(),
                        since=f"{anomaly.started_at:%Y-%m-%d %H:%M}",
                        message=lazy_localized(anomaly.message),
                    ),
                    "url": f"/api/v1/iot/anomalies/{anomaly.pk}/",
                    "anomaly": anomaly.pk,
                },
            )
        return
    assets = len({anomaly.asset_id for anomaly in worth})
    notify(
        organization,
        roles,
        EVENT_ANOMALY,
        {
            "title": format_lazy(
                gettext_lazy("{count} telemetry anomalies on {assets} asset(s)"), count=len(worth), assets=assets
            ),
            "body": gettext_lazy("Several anomalies opened at once; see the anomalies list."),
            "url": "/api/v1/iot/anomalies/?status=open",
            "anomalies": [anomaly.pk for anomaly in worth[:100]],
        },
    )


def anomaly_payload(anomaly: Anomaly) -> dict:
    return {
        "id": anomaly.pk,
        "asset": anomaly.asset_id,
        "metric": anomaly.metric,
        "detector": anomaly.detector,
        "severity": anomaly.severity,
        "status": anomaly.status,
        "started_at": anomaly.started_at,
        "ended_at": anomaly.ended_at,
        "peak_value": anomaly.peak_value,
        "message": anomaly.message,
    }


# --- anomalies: people's workflow ---------------------------------------------------------------------------


def _locked_anomaly(anomaly: Anomaly) -> Anomaly:
    return Anomaly.objects.select_for_update().get(pk=anomaly.pk)


@audit.attributed
@transaction.atomic
def acknowledge_anomaly(anomaly: Anomaly, *, comment: str = "", actor) -> Anomaly:
    """Someone has seen it and says what they do about it: open → acknowledged, with the comment (history keeps
    who and when). Acknowledging a resolved anomaly is refused (409)."""
    anomaly = _locked_anomaly(anomaly)
    _require(anomaly.organization_id, Action.MANAGE_ASSETS, actor)
    comment = checked_reason(comment, "comment")
    if anomaly.status == Anomaly.Status.RESOLVED:
        raise Conflict(_("This anomaly is resolved already."), code="resolved")
    anomaly.status = Anomaly.Status.ACKNOWLEDGED
    anomaly.acknowledged_by = audit.as_user(actor)
    anomaly.acknowledged_at = timezone.now()
    if comment:
        anomaly.comment = comment
    audit.save_with_reason(anomaly, comment or "acknowledged")
    publish(anomaly.organization, EVENT_ANOMALY_UPDATED, anomaly_payload(anomaly))
    return anomaly


@audit.attributed
@transaction.atomic
def resolve_anomaly(anomaly: Anomaly, *, comment: str = "", actor) -> Anomaly:
    """Close the anomaly for people. An episode still going on ends now as well (the detector starts afresh: if
    the series is still abnormal, its next point opens a new anomaly)."""
    anomaly = _locked_anomaly(anomaly)
    _require(anomaly.organization_id, Action.MANAGE_ASSETS, actor)
    comment = checked_reason(comment, "comment")
    if anomaly.status == Anomaly.Status.RESOLVED:
        raise Conflict(_("This anomaly is resolved already."), code="resolved")
    now = timezone.now()
    anomaly.status = Anomaly.Status.RESOLVED
    anomaly.resolved_by = audit.as_user(actor)
    anomaly.resolved_at = now
    if comment:
        anomaly.comment = comment
    if anomaly.ended_at is None:
        anomaly.ended_at = max(now, anomaly.started_at)
        series = Series.objects.select_for_update().get(pk=anomaly.series_id)
        episodes = dict(series.state.get("episodes", {}))
        if episodes.pop(anomaly.detector, None) is not None:
            series.state = {**series.state, "episodes": episodes}
            series.save(update_fields=["state"])
    audit.save_with_reason(anomaly, comment or "resolved")
    publish(anomaly.organization, EVENT_ANOMALY_UPDATED, anomaly_payload(anomaly))
    return anomaly


# --- definitions and settings --------------------------------------------------------------------------------


def _clean_definition_changes(changes: dict) -> dict:
    return {
        name: value.strip() if isinstance(value, str) and name in {"metric", "label", "unit", "feeds_meter"} else value
        for name, value in changes.items()
    }


@audit.attributed
@transaction.atomic
def create_definition(organization, *, actor, **fields) -> MetricDefinition:
    """Define a metric for an asset, an asset type, or (neither) every asset of the organisation."""
    _require(organization.pk, Action.MANAGE_ASSETS, actor)
    definition = assign_editable(
        MetricDefinition(organization=organization),
        _clean_definition_changes(fields),
        DEFINITION_FIELDS,
        gettext_lazy("A metric"),
    )
    validated(definition).save()
    _forget(organization.pk)
    return definition


@audit.attributed
@transaction.atomic
def update_definition(definition: MetricDefinition, *, actor, **changes) -> MetricDefinition:
    """Change a definition; it applies from the next batch on (series keep their learnt baseline)."""
    definition = MetricDefinition.objects.select_for_update().get(pk=definition.pk)
    _require(definition.organization_id, Action.MANAGE_ASSETS, actor)
    validated(
        assign_editable(definition, _clean_definition_changes(changes), DEFINITION_FIELDS, gettext_lazy("A metric"))
    ).save()
    _forget(definition.organization_id)
    return definition


@audit.attributed
@transaction.atomic
def delete_definition(definition: MetricDefinition, *, actor) -> None:
    """Remove a definition: its series fall back to a broader one, or to the statistical detectors alone."""
    _require(definition.organization_id, Action.MANAGE_ASSETS, actor)
    definition.delete()
    _forget(definition.organization_id)


@audit.attributed
@transaction.atomic
def update_settings(organization, *, actor, **changes) -> TelemetrySettings:
    """Change the organisation's retention and notification settings (created on first change)."""
    _require(organization.pk, Action.MANAGE_SETTINGS, actor)
    current, _ = TelemetrySettings.objects.select_for_update().get_or_create(organization=organization)
    validated(assign_editable(current, changes, SETTINGS_FIELDS, gettext_lazy("Telemetry settings"))).save()
    _forget(organization.pk)
    return current


@audit.attributed
@transaction.atomic
def delete_series(series: Series, *, actor) -> None:
    """Forget a series: its points, rollups and anomalies (a sensor removed, a metric renamed)."""
    series = Series.objects.select_for_update().get(pk=series.pk)
    _require(series.organization_id, Action.MANAGE_ASSETS, actor)
    storage.delete_series_data([series.pk])
    series.delete()


def device_of(organization, asset_id) -> Asset:
    asset = Asset.objects.filter(organization=organization, pk=asset_id).first()
    if asset is None:
        raise NotFound(_("No such asset."))
    return asset


# --- periodic jobs ---------------------------------------------------------------------------------------------


def create_partitions_ahead(*, now: datetime | None = None) -> list[str]:
    """The periodic job: this month's and the next TELEMETRY_PARTITIONS_AHEAD months' partitions exist (PostgreSQL;
    idempotent, safe on two machines at once)."""
    return storage.ensure_partitions(now=now)


def apply_retention(*, now: datetime | None = None) -> dict:
    """The periodic job: per organisation, delete raw points and rollups older than its settings keep them; then
    drop the monthly partitions that every organisation's raw retention has passed. Idempotent."""
    now = now or timezone.now()
    chosen = {row.organization_id: row for row in TelemetrySettings.objects.all()}
    default = TelemetrySettings()
    deleted = {"points": 0, "hourly": 0, "daily": 0, "partitions": []}
    longest = default.raw_retention_days
    for organization_id in Organization.objects.values_list("pk", flat=True).order_by("pk"):
        options = chosen.get(organization_id, default)
        longest = max(longest, options.raw_retention_days)
        series_ids = list(Series.objects.filter(organization_id=organization_id).values_list("pk", flat=True))
        if not series_ids:
            continue
        with transaction.atomic():
            deleted["points"] += storage.delete_points(series_ids, now - timedelta(days=options.raw_retention_days))
            deleted["hourly"] += storage.delete_rollups(
                series_ids, Grain.HOUR, now - timedelta(days=options.hourly_retention_days)
            )
            deleted["daily"] += storage.delete_rollups(
                series_ids, Grain.DAY, now - timedelta(days=options.daily_retention_days)
            )
    deleted["partitions"] = storage.drop_partitions_before(now - timedelta(days=longest))
    return deleted
