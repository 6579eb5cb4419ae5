"""Meter triggers of preventive schedules: every N units of an asset meter (run hours, cycles…), or a reading
above or below a threshold with a cooldown. Read in bulk from the meter readings, a fixed number of queries per
OR_BATCH meters whatever the number of readings.
"""

from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Min, Q

from assets.models import Meter, MeterReading
from maintenance_site.recurrence import to_local, to_utc
from scheduling.preventive.models import PreventiveSchedule
from scheduling.preventive.targets import Target

Schedule = PreventiveSchedule

OR_BATCH = 300  # meter conditions per reading query


def _first_readings(conditions: dict[int, Q]) -> dict[int, tuple[datetime, Decimal]]:
    """For each meter id, the earliest reading matching its condition: (read_at, value). Two queries per
    OR_BATCH meters, whatever the number of readings (the (meter, read_at) index serves each branch)."""
    found: dict[int, tuple[datetime, Decimal]] = {}
    items = list(conditions.items())
    for start in range(0, len(items), OR_BATCH):
        batch = items[start : start + OR_BATCH]
        combined = Q()
        for meter_id, condition in batch:
            combined |= Q(meter_id=meter_id) & condition
        firsts = dict(
            MeterReading.objects.filter(combined)
            .values("meter_id")
            .annotate(first=Min("read_at"))
            .values_list("meter_id", "first")
        )
        if not firsts:
            continue
        exact = Q()
        for meter_id, read_at in firsts.items():
            exact |= Q(meter_id=meter_id, read_at=read_at)
        for meter_id, read_at, value in MeterReading.objects.filter(exact).values_list("meter_id", "read_at", "value"):
            found[meter_id] = (read_at, value)
    return found


def _in_rounds(items):
    """Split (schedule, target, meter, ...) tuples so that each meter appears once per round."""
    rounds: list[list] = []
    for item in items:
        meter_id = item[2].pk
        for bucket in rounds:
            if all(other[2].pk != meter_id for other in bucket):
                bucket.append(item)
                break
        else:
            rounds.append([item])
    return rounds


def plan_meters(schedules, targets, latest, now) -> dict[int, dict[Target, tuple[datetime, str, Decimal]]]:
    """Meter triggers. Every N units: due at the first reading that reaches the next mark (fixed: the next
    multiple of N above the last served value; floating: last served value + N); counting starts at the first
    reading on or after the start date. Threshold: due at the first reading above / below it, at most once per
    cooldown. Only meters with readings recorded since the schedule's last pass are looked at. Returns, per
    schedule and target, the reading that makes it due: (read_at, a note saying so, the value)."""
    if not schedules:
        return {}
    pairs = [(s, t) for s in schedules for t in targets[s.pk] if t.asset_id]
    names = {s.meter_name.strip() for s in schedules}
    meters = {
        (m.asset_id, m.name): m
        for m in Meter.objects.filter(asset_id__in={t.asset_id for _, t in pairs}, name__in=names)
    }
    margin = timedelta(minutes=5)
    work = []  # (schedule, target, meter, latest, since_utc)
    for s, t in pairs:
        meter = meters.get((t.asset_id, s.meter_name.strip()))
        if meter is None or meter.last_read_at is None:
            continue
        if s.last_run_at is not None and meter.updated_at < s.last_run_at - margin:
            continue  # no reading recorded since the last look
        start = to_utc(datetime.combine(s.start_date, time.min), ZoneInfo(t.zone_name))
        work.append((s, t, meter, latest.get((s.pk, t.key)), start))

    result: dict[int, dict[Target, tuple[datetime, str, Decimal]]] = defaultdict(dict)

    # Every N units without history: the baseline is the first reading on or after the start date.
    baselines: dict[tuple[int, int], tuple[datetime, Decimal]] = {}
    need_base = [w for w in work if w[0].meter_mode == Schedule.MeterMode.EVERY and w[3] is None]
    for bucket in _in_rounds(need_base):
        firsts = _first_readings({w[2].pk: Q(read_at__gte=w[4]) for w in bucket})
        for w in bucket:
            if w[2].pk in firsts:
                baselines[(w[0].pk, w[1].key)] = firsts[w[2].pk]

    crossing = []  # (schedule, target, meter, condition)
    for s, t, meter, last, start in work:
        if s.meter_mode == Schedule.MeterMode.EVERY:
            if last is not None:
                base_at, base_value = last.due_at, last.meter_value
                if base_value is None:
                    continue
            elif (s.pk, t.key) in baselines:
                base_at, base_value = baselines[(s.pk, t.key)]
            else:
                continue
            step = s.meter_interval
            mark = base_value + step if s.mode == Schedule.Mode.FLOATING else (base_value // step + 1) * step
            if meter.last_value is None or meter.last_value < mark:
                continue  # the newest reading has not reached it (counters only grow)
            crossing.append((s, t, meter, Q(read_at__gt=base_at, value__gte=mark), mark))
        else:
            since = start
            if last is not None:
                since = max(start, last.due_at + timedelta(minutes=s.cooldown_minutes))
            condition = Q(read_at__gte=since)
            if last is not None:
                condition &= Q(read_at__gt=last.due_at)
            if s.last_run_at is not None:
                condition &= Q(created_at__gte=s.last_run_at - margin)
            threshold = s.meter_threshold
            condition &= Q(value__gt=threshold) if s.meter_mode == Schedule.MeterMode.ABOVE else Q(value__lt=threshold)
            crossing.append((s, t, meter, condition, threshold))

    for bucket in _in_rounds(crossing):
        firsts = _first_readings({item[2].pk: item[3] for item in bucket})
        for s, t, meter, _, mark in bucket:
            if meter.pk not in firsts:
                continue
            read_at, value = firsts[meter.pk]
            if s.end_date is not None and to_local(read_at, ZoneInfo(t.zone_name)).date() > s.end_date:
                continue
            if s.meter_mode == Schedule.MeterMode.EVERY:
                note = f"{meter.name} reached {value:f} {meter.unit} (service mark {mark:f})."
            else:
                word = "above" if s.meter_mode == Schedule.MeterMode.ABOVE else "below"
                note = f"{meter.name} read {value:f} {meter.unit}, {word} the threshold of {mark:f}."
            result[s.pk][t] = (read_at, note.replace("  ", " "), value)
    return result
