"""Daily rollups: each provider's additive sums (`registry`, `rollup=`) per organisation and local day, so an
organisation-wide figure over a year reads ~365 stored rows per provider instead of a year of work orders.

Reading (`compute`, called by `registry.compute` for a whole-period figure without filters or breakdown):
the rolled-up days of the period are summed in SQL (one query for every provider), the days not rolled up yet
(today, the last days, anything before the first rolled day) are measured live by the provider itself, and the
provider's `finish` turns the sums into the figures. So a figure from the rollups is the figure computed live, by
construction: the sums add up over disjoint days (durations in integer microseconds, money unrounded), and a test
asserts equality on PostgreSQL. Breakdowns: a provider that registers `rollup_breakdowns` also has its sums kept
per day and group (asset type, location; SLA per priority), so a breakdown over a year reads ~365 × groups rows the
same way (`registry.compute` with `group_by`). A figure that does not add up (the SLA's 90th-percentile minutes)
keeps the day's sorted values (`samples`), and `grouped` computes the exact nearest-rank percentile over the
period's values in SQL, the live days' values passed along. The rollups are not used (the figure is computed live)
when:
- the organisation has no rollups yet, or they were cut in another time zone than the organisation's today, or have
  another row layout (`LAYOUT`: the next refresh rebuilds them);
- a change recorded by the triggers (`models.RollupDirty`) touches the period's rolled-up days and the refresh has
  not recomputed them yet;
- the database is not PostgreSQL (no triggers), or `ANALYTICS_ROLLUPS` is off.

Refreshing (`refresh`, the beat task `rollup_analytics` every ANALYTICS_ROLLUP_INTERVAL seconds): rolls up the days
that ended more than the PM on-time tolerance ago (so no sum still depends on "now": an open downtime has counted
up to their end, no PM occurrence of theirs is still "open"), and recomputes the days the recorded changes touched.
Safe to run twice or on two machines at once: each organisation's refresh holds an advisory lock (a second one
skips it), writes are upserts of the same values, and only the change records it read are deleted. Moving the
horizon takes the writers' advisory lock exclusive, so a writer that read the old horizon has committed (and its
change is seen by the recomputation) before the new days are computed.
"""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from maintenance_site.analytics import periods, registry
from maintenance_site.analytics.definitions import PM_ON_TIME_TOLERANCE_HOURS
from maintenance_site.analytics.models import DailyRollup, RollupDirty, RollupState
from maintenance_site.analytics.periods import Scope, local_midnight
from maintenance_site.tenancy.models import Organization

LOCK_KEY = 7321  # with the organisation's id: the writers' (shared, in the triggers) and the horizon's lock
REFRESH_LOCK_KEY = 7322  # with the organisation's id: one refresh at a time
CHUNK_DAYS = 31  # days measured per query while refreshing
SETTLE = timedelta(hours=PM_ON_TIME_TOLERANCE_HOURS)

LAYOUT = 3  # the rows' shape (`RollupState.layout`; 3: breakdowns, samples, failure codes): bump it with a new source

SUMS = """
SELECT r.source, {bucket}, m.key, SUM(m.value::numeric)
FROM analytics_dailyrollup r CROSS JOIN LATERAL jsonb_each_text(r.measures) m
WHERE r.organization_id = %s AND r.source = ANY(%s) AND r.breakdown = %s AND r.day BETWEEN %s AND %s
GROUP BY 1, 2, 3
"""
SUMS_WHOLE = SUMS.format(bucket="NULL")
SUMS_BY_BUCKET = SUMS.format(bucket="date_trunc(%s, r.day::timestamp)::date")
SUMS_BY_GROUP = SUMS.format(bucket="r.group_key")
# The exact percentile (nearest rank, as `percentile_disc`) of each sample over the period, per group and overall
# (GROUPING(...) = 1): the stored days' sorted values and the live days' values (three parallel arrays) together.
# Samples are whole numbers (business seconds): sorted as bigint.
PERCENTILES = """
WITH v AS (
  SELECT r.group_key AS g, s.key AS k, e.value::bigint AS v
  FROM analytics_dailyrollup r CROSS JOIN LATERAL jsonb_each(r.samples) s
  CROSS JOIN LATERAL jsonb_array_elements_text(s.value) e
  WHERE r.organization_id = %s AND r.source = %s AND r.breakdown = %s AND r.day BETWEEN %s AND %s
  UNION ALL
  SELECT x.g, x.k, x.v FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS x(g, k, v)
)
SELECT GROUPING(v.g), v.g, v.k, percentile_disc(%s) WITHIN GROUP (ORDER BY v.v)
FROM v GROUP BY GROUPING SETS ((v.g, v.k), (v.k))
"""
STATE = """
SELECT s.time_zone, s.rolled_from, s.rolled_through, s.layout,
  EXISTS (SELECT 1 FROM analytics_rollupdirty d WHERE d.organization_id = s.organization_id
          AND d.since < %s AND d.until >= %s)
FROM analytics_rollupstate s WHERE s.organization_id = %s
"""


def encode_group(group) -> str:
    """A group id or value as the rows keep it: "" for the group "(none)"."""
    return "" if group is None else str(group)


def decode_group(key: str):
    """The group as the live breakdowns give it: None, an id (int), or a value (a priority)."""
    if key == "":
        return None
    return int(key) if key.lstrip("-").isdigit() else key


def _number(value: Decimal):
    return int(value) if value.as_tuple().exponent >= 0 else value


def enabled() -> bool:
    return getattr(settings, "ANALYTICS_ROLLUPS", True) and connection.vendor == "postgresql"


def _unfiltered(scope: Scope) -> bool:
    return (
        scope.location_ids is None and scope.asset_type_id is None and scope.asset_id is None and scope.team_id is None
    )


def _add(total: dict, measures: dict) -> None:
    for name, value in measures.items():
        total[name] = total.get(name, 0) + (value or 0)


def _usable(scope: Scope) -> tuple[date, date] | None:
    """The rolled-up days of the scope's period that may be read ((first, last)), or None: the rollups cannot be
    used (off, filtered, none yet, another time zone or layout, a pending change in the period)."""
    if not enabled() or not _unfiltered(scope):
        return None
    organization = scope.organization
    with connection.cursor() as cursor:
        cursor.execute(STATE, [scope.end, scope.start, organization.pk])
        state = cursor.fetchone()
    if state is None:
        return None
    zone, rolled_from, rolled_through, layout, dirty = state
    first, last = max(scope.first_day, rolled_from), min(scope.last_day, rolled_through)
    if zone != organization.time_zone or layout != LAYOUT or dirty or first > last:
        return None
    return first, last


def _live_segments(scope: Scope, first: date, last: date) -> list[Scope]:
    """The parts of the scope's period outside the rolled-up days [first, last]: measured live."""
    segments = []
    if scope.first_day < first:
        segments.append(replace(scope, first_day=scope.first_day, last_day=first - timedelta(days=1)))
    if last < scope.last_day:
        segments.append(replace(scope, first_day=last + timedelta(days=1), last_day=scope.last_day))
    return segments


def compute(scope: Scope, by_provider: dict, results: dict, interval: str | None = None, group_by=None) -> dict:
    """Fill `results` with the figures of the providers that have rollups usable for `scope` (the whole period, each
    bucket of `interval`, or each group of `group_by`); return the providers left to compute live."""
    rolled = {
        provider: keys
        for provider, keys in by_provider.items()
        if provider in registry.ROLLUP_OF
        and (group_by is None or group_by in registry.ROLLUP_BREAKDOWNS[registry.ROLLUP_OF[provider]])
    }
    if not rolled:
        return by_provider
    days = _usable(scope)
    if days is None:
        return by_provider
    first, last = days
    if group_by is not None:
        _compute_groups(scope, rolled, results, group_by, first, last)
        return {provider: keys for provider, keys in by_provider.items() if provider not in rolled}
    organization = scope.organization
    names = {provider: registry.ROLLUP_OF[provider] for provider in rolled}
    # sums[source][bucket key][measure]; the bucket key None for the whole period
    sums: dict = {name: {} for name in names.values()}
    sql, params = SUMS_WHOLE, [organization.pk, list(sums), "", first, last]
    if interval:
        sql, params = SUMS_BY_BUCKET, [interval, *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for source, bucket, key, value in cursor.fetchall():
            sums[source].setdefault(bucket, {})[key] = _number(value)
    live_segments = _live_segments(scope, first, last)
    buckets = periods.buckets(scope, interval)
    for provider, keys in rolled.items():
        name = names[provider]
        _, measures, finish = registry.ROLLUPS[name]
        totals = sums[name]
        for segment in live_segments:
            for bucket, raw in measures(segment, frozenset(keys), interval=interval).items():
                _add(totals.setdefault(bucket, {}), raw)
        answers = {key: {} for key in keys}
        for b in buckets:
            answer = finish(_bucket_scope(scope, b, interval), frozenset(keys), totals.get(b.key, {}))
            for key in keys:
                answers[key][b.key] = answer.get(key, {}).get(None)
        results.update(answers)
    return {provider: keys for provider, keys in by_provider.items() if provider not in rolled}


def _group_sums(scope: Scope, sources: list, breakdown: str, first: date, last: date) -> dict:
    """{source: {group: {measure: sum}}} of the rolled-up days [first, last], in one query."""
    sums: dict = {name: {} for name in sources}
    with connection.cursor() as cursor:
        cursor.execute(SUMS_BY_GROUP, [scope.organization.pk, list(sources), breakdown, first, last])
        for source, key, measure, value in cursor.fetchall():
            sums[source].setdefault(decode_group(key), {})[measure] = _number(value)
    return sums


def _compute_groups(scope: Scope, rolled: dict, results: dict, group_by: str, first: date, last: date) -> None:
    names = {provider: registry.ROLLUP_OF[provider] for provider in rolled}
    sums = _group_sums(scope, list(names.values()), group_by, first, last)
    live_segments = _live_segments(scope, first, last)
    for provider, keys in rolled.items():
        name = names[provider]
        _, measures, finish = registry.ROLLUPS[name]
        totals = sums[name]
        for segment in live_segments:
            for group, raw in measures(segment, frozenset(keys), group_by=group_by).get(None, {}).items():
                _add(totals.setdefault(group, {}), raw)
        answer = finish(scope, frozenset(keys), totals, group_by=group_by)
        results.update({key: answer.get(key, {}) for key in keys})


def bucketed(scope: Scope, source: str, interval: str) -> dict | None:
    """A provider's whole-organisation sums per bucket of `interval` (each local day, ISO week or month, keyed by its
    first day) over the scope's period, from the rollups and the days not rolled up (measured live), or None when
    the rollups cannot be used (the caller computes live): {bucket: {measure: sum}}, only the buckets with data.
    One query."""
    if source not in registry.ROLLUPS:
        return None
    days = _usable(scope)
    if days is None:
        return None
    first, last = days
    keys, measures, _finish = registry.ROLLUPS[source]
    totals: dict = {}
    with connection.cursor() as cursor:
        cursor.execute(SUMS_BY_BUCKET, [interval, scope.organization.pk, [source], "", first, last])
        for _source, bucket, key, value in cursor.fetchall():
            totals.setdefault(bucket, {})[key] = _number(value)
    for segment in _live_segments(scope, first, last):
        for bucket, raw in measures(segment, frozenset(keys), interval=interval).items():
            _add(totals.setdefault(bucket, {}), raw)
    return totals


def grouped(scope: Scope, source: str, breakdown: str, *, percentiles: dict | None = None) -> dict | None:
    """A provider's sums per group of `breakdown` over the scope's period, from the rollups and the days not rolled
    up (measured live), or None when the rollups cannot be used (the caller computes live):
    {"groups": {group: {measure: sum}}, "percentiles": {group or "overall": {sample: value}}}, the percentiles (the
    nearest-rank `share` of `percentiles` = {sample: share}, all samples one share) exact over every value of the
    period. Two queries."""
    if not registry.ROLLUP_BREAKDOWNS.get(source) or breakdown not in registry.ROLLUP_BREAKDOWNS[source]:
        return None
    days = _usable(scope)
    if days is None:
        return None
    first, last = days
    keys, measures, _finish = registry.ROLLUPS[source]
    totals = _group_sums(scope, [source], breakdown, first, last)[source]
    live_values: dict = {}
    for segment in _live_segments(scope, first, last):
        for group, raw in measures(segment, frozenset(keys), group_by=breakdown).get(None, {}).items():
            numbers = {name: value for name, value in raw.items() if not isinstance(value, list)}
            _add(totals.setdefault(group, {}), numbers)
            for name, value in raw.items():
                if isinstance(value, list):
                    live_values.setdefault((encode_group(group), name), []).extend(value)
    out: dict = {"groups": totals, "percentiles": {}}
    if percentiles:
        shares = set(percentiles.values())
        if len(shares) != 1:
            raise ValueError("One share for every sample.")
        groups, names, values = [], [], []
        for (group, name), found in live_values.items():
            groups += [group] * len(found)
            names += [name] * len(found)
            values += found
        with connection.cursor() as cursor:
            cursor.execute(
                PERCENTILES,
                [scope.organization.pk, source, breakdown, first, last, groups, names, values, shares.pop()],
            )
            for overall, key, name, value in cursor.fetchall():
                if name in percentiles:
                    group = "overall" if overall else decode_group(key)
                    out["percentiles"].setdefault(group, {})[name] = value
    return out


def _bucket_scope(scope: Scope, bucket, interval: str | None) -> Scope:
    """The scope of one bucket's days (already cut at the period's bounds), for `finish`."""
    if interval is None:
        return scope
    zone = scope.zone
    first = bucket.start.astimezone(zone).date()
    return replace(scope, first_day=first, last_day=bucket.end.astimezone(zone).date() - timedelta(days=1))


# --- refreshing ---------------------------------------------------------------------------------------------------


def sealed_through(organization, now) -> date:
    """The last local day that ended at least the PM tolerance ago: the last day the rollups may keep."""
    zone = ZoneInfo(organization.time_zone)
    return (now - SETTLE).astimezone(zone).date() - timedelta(days=1)


FIRST_MOMENT = """
SELECT (SELECT MIN(created_at) FROM workorders_workorder WHERE organization_id = %(org)s),
       (SELECT MIN(completed_at) FROM workorders_workorder WHERE organization_id = %(org)s),
       (SELECT MIN(started_at) FROM assets_downtime WHERE organization_id = %(org)s)
"""


def _first_day(organization) -> date:
    """The first local day to roll up: the organisation's creation, its first work order or completion, or its
    first downtime, whichever is earliest (anything older is measured live)."""
    with connection.cursor() as cursor:
        cursor.execute(FIRST_MOMENT, {"org": organization.pk})
        moments = [moment for moment in cursor.fetchone() if moment is not None]
    earliest = min([organization.created_at, *moments])
    return earliest.astimezone(ZoneInfo(organization.time_zone)).date()


def _runs(days: set) -> list[tuple[date, date]]:
    """Sorted days as contiguous runs of at most CHUNK_DAYS: [(first, last)]."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and day == out[-1][1] + timedelta(days=1) and (day - out[-1][0]).days < CHUNK_DAYS:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _json(value):
    if isinstance(value, Decimal):
        return str(value)
    return int(value or 0)


def _row(organization, name: str, day: date, values: dict, now, breakdown: str = "", group=None) -> DailyRollup:
    return DailyRollup(
        organization=organization,
        source=name,
        day=day,
        breakdown=breakdown,
        group_key=encode_group(group),
        measures={key: _json(value) for key, value in values.items() if not isinstance(value, list)},
        samples={key: sorted(value) for key, value in values.items() if isinstance(value, list)},
        computed_at=now,
    )


def _write(organization, days: set, now) -> None:
    """Measure `days` (each rollup source, whole and per breakdown: one query per run of days each) and upsert one
    row per source and day, and one per source, breakdown, day and group that has data that day (the days'
    earlier group rows are deleted first: a group may have lost its data, e.g. an asset changed type)."""
    computed: list[DailyRollup] = []
    for first, last in _runs(days):
        scope = Scope(organization, first, last, now)
        for name, (keys, measures, _finish) in registry.ROLLUPS.items():
            rows = measures(scope, frozenset(keys), interval="day")
            day = first
            while day <= last:
                computed.append(_row(organization, name, day, rows.get(day, {}), now))
                day += timedelta(days=1)
            for breakdown in registry.ROLLUP_BREAKDOWNS.get(name, ()):
                by_day = measures(scope, frozenset(keys), interval="day", group_by=breakdown)
                for day, groups in by_day.items():
                    for group, values in groups.items():
                        computed.append(_row(organization, name, day, values, now, breakdown, group))
    DailyRollup.objects.filter(organization=organization, day__in=sorted(days)).exclude(breakdown="").delete()
    for start in range(0, len(computed), 2000):
        DailyRollup.objects.bulk_create(
            computed[start : start + 2000],
            update_conflicts=True,
            unique_fields=["organization", "source", "breakdown", "day", "group_key"],
            update_fields=["measures", "samples", "computed_at"],
        )


def _dirty_days(ranges, zone: ZoneInfo, first: date, last: date) -> set:
    days: set = set()
    for since, until in ranges:
        day = max(since.astimezone(zone).date(), first)
        end = min(until.astimezone(zone).date(), last)
        while day <= end:
            days.add(day)
            day += timedelta(days=1)
    return days


def _try_lock(key: int, organization) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [key, organization.pk])
        return cursor.fetchone()[0]


def _move_horizon(organization, zone_name: str, first: date, through: date, now) -> None:
    """Record the new horizon for the triggers, once every writer that read the old one has committed (the writers'
    lock taken exclusive). Readers keep using `rolled_through` until the new days are written."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_KEY, organization.pk])
        zone = ZoneInfo(zone_name)
        until = local_midnight(through + timedelta(days=1), zone)
        state = RollupState.objects.select_for_update().filter(organization=organization).first()
        if state is None:
            # Nothing readable yet: rolled_through before rolled_from until the days are written.
            RollupState.objects.create(
                organization=organization,
                time_zone=zone_name,
                layout=LAYOUT,
                rolled_from=first,
                rolled_through=first - timedelta(days=1),
                rolled_until=until,
                refreshed_at=now,
            )
        elif state.rolled_until < until or state.time_zone != zone_name:
            state.rolled_until = max(state.rolled_until, until)
            state.save(update_fields=["rolled_until"])


def refresh(organization, now=None) -> dict:
    """Roll up the organisation's settled days and recompute the days changes touched; see the module's text.
    Returns what it did: {"days": n, "skipped": bool, "rebuilt": bool}."""
    now = now or timezone.now()
    if not enabled():
        return {"days": 0, "skipped": True, "rebuilt": False}
    zone_name = organization.time_zone
    zone = ZoneInfo(zone_name)
    through = sealed_through(organization, now)
    state = RollupState.objects.filter(organization=organization).first()
    rebuild = state is None or state.time_zone != zone_name or state.layout != LAYOUT
    first = _first_day(organization) if state is None else state.rolled_from
    if through < first:
        return {"days": 0, "skipped": False, "rebuilt": False}
    if rebuild and state is not None:
        with transaction.atomic():
            if not _try_lock(REFRESH_LOCK_KEY, organization):
                return {"days": 0, "skipped": True, "rebuilt": False}
            DailyRollup.objects.filter(organization=organization).delete()
            RollupState.objects.filter(organization=organization).delete()
        first = _first_day(organization)
    _move_horizon(organization, zone_name, first, through, now)
    with transaction.atomic():
        if not _try_lock(REFRESH_LOCK_KEY, organization):
            return {"days": 0, "skipped": True, "rebuilt": False}
        state = RollupState.objects.select_for_update().get(organization=organization)
        dirty = list(RollupDirty.objects.filter(organization_id=organization.pk).values_list("pk", "since", "until"))
        old_through = state.rolled_through
        days = _dirty_days([(since, until) for _, since, until in dirty], zone, state.rolled_from, old_through)
        day = max(old_through + timedelta(days=1), state.rolled_from)
        while day <= through:
            days.add(day)
            day += timedelta(days=1)
        _write(organization, days, now)
        state.rolled_through = max(through, old_through)
        state.refreshed_at = now
        state.save(update_fields=["rolled_through", "refreshed_at"])
        RollupDirty.objects.filter(pk__in=[pk for pk, _, _ in dirty]).delete()
    return {"days": len(days), "skipped": False, "rebuilt": rebuild}


def refresh_all(now=None, organizations=None) -> dict:
    """Refresh every active organisation's rollups (the beat task)."""
    done = {}
    for organization in organizations if organizations is not None else Organization.objects.all():
        done[organization.pk] = refresh(organization, now)
    return done
