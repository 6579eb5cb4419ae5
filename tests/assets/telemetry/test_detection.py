"""Each detector on crafted series (no database): what it flags, and that an episode is one anomaly, not one per
point."""

import math
import random

from assets.telemetry.detection import Config, SeriesDetector

MINUTE = 60.0


def series(values, step=MINUTE, start=0.0):
    return [(start + n * step, float(v)) for n, v in enumerate(values)]


def noisy(n, level=50.0, sd=0.5, seed=1):
    rng = random.Random(seed)
    return [level + rng.gauss(0, sd) for _ in range(n)]


def opened(events, detector=None):
    return [e for kind, d, e in events if kind == "open" and (detector is None or d == detector)]


def run(values, config=None, **kwargs):
    detector = SeriesDetector(config or Config())
    events = detector.run(series(values, **kwargs))
    return detector, events


def test_a_quiet_series_flags_nothing():
    _, events = run(noisy(2000))
    assert events == []


def test_a_spike_is_one_anomaly_and_does_not_teach_the_baseline():
    values = noisy(300)
    values[200] = 80.0
    detector, events = run(values)
    [spike] = opened(events, "spike")
    assert spike["peak"] == 80.0 and spike["severity"] == "critical"
    assert abs(detector.mean - 50) < 0.5  # the outlier left the baseline alone
    assert opened(events, "drift") == []  # nor did it move the drift chart


def test_a_slow_drift_is_seen_by_the_drift_chart_before_any_limit():
    values = noisy(400) + [v + 0.01 * n for n, v in enumerate(noisy(600, seed=2))]  # +6 over 600 points
    config = Config(warning_high=60)
    _, events = run(values, config)
    [drift] = opened(events, "drift")
    assert drift["started"] < 1000 * MINUTE
    first_limit = opened(events, "limit")
    assert not first_limit or first_limit[0]["started"] > drift["started"]


def test_a_daily_cycle_is_not_a_drift():
    rng = random.Random(3)
    values = [50 + 3 * math.sin(2 * math.pi * n / 96) + rng.gauss(0, 0.5) for n in range(96 * 14)]
    _, events = run(values, Config(warmup_points=200), step=15 * MINUTE)
    assert opened(events, "drift") == []


def test_a_sensor_stuck_out_of_range_for_a_week_is_one_anomaly():
    config = Config(warning_high=80, critical_high=90, clear_after_minutes=15)
    values = noisy(100) + [95.0] * (7 * 24 * 60)
    _, events = run(values, config)
    [limit] = opened(events, "limit")
    assert limit["severity"] == "critical" and limit["points"] == 7 * 24 * 60
    assert [kind for kind, d, _ in events if d == "limit"] == ["open"]


def test_a_flat_line_is_a_stuck_sensor():
    config = Config(flatline_minutes=60, statistical=False)
    _, events = run(noisy(100) + [51.25] * 200, config)
    [flat] = opened(events, "flatline")
    assert flat["started"] == (100 + 60) * MINUTE


def test_a_gap_restarts_rate_and_flatline_without_false_alarms():
    config = Config(max_rate_per_minute=1.0, flatline_minutes=30)
    before = series(noisy(200, sd=0.2))
    after = series(noisy(200, level=55, sd=0.2, seed=4), start=before[-1][0] + 6 * 3600)  # 6 h offline, +5
    detector = SeriesDetector(config)
    events = detector.run(before) + detector.run(after)
    assert opened(events, "rate") == [] and opened(events, "flatline") == []


def test_too_fast_a_change_is_a_rate_anomaly():
    config = Config(max_rate_per_minute=2.0, statistical=False)
    _, events = run([50, 50.5, 51, 58, 58.2, 58.1], config)
    [rate] = opened(events, "rate")
    assert rate["peak"] == 58


def test_outside_the_sensor_range_is_a_sensor_fault_and_nothing_else():
    config = Config(sensor_min=-40, sensor_max=200, critical_high=90)
    detector, events = run([*noisy(100), 850.0, *noisy(10)], config)
    assert [d for kind, d, _ in events if kind == "open"] == ["sensor"]
    assert abs(detector.mean - 50) < 1


def test_an_episode_ends_after_the_series_is_normal_long_enough_and_a_new_one_opens_after():
    config = Config(warning_high=60, clear_after_minutes=10, statistical=False)
    values = [50] * 10 + [65] * 5 + [50] * 5 + [65] * 2 + [50] * 20 + [66] * 3
    _, events = run(values, config)
    kinds = [(kind, round(e["started"] / MINUTE)) for kind, d, e in events]
    # the short dip back to normal (5 min < 10) does not end the first episode; 20 normal minutes do
    assert kinds == [("open", 10), ("close", 10), ("open", 42)]


def test_the_state_resumes_across_batches():
    values = noisy(600)
    values[500] = 90
    whole = SeriesDetector(Config())
    whole_events = whole.run(series(values))
    first = SeriesDetector(Config())
    first.run(series(values)[:250])
    second = SeriesDetector(Config(), first.dump())
    split_events = second.run(series(values)[250:])
    assert [(k, d) for k, d, _ in whole_events] == [(k, d) for k, d, _ in split_events]
    assert second.mean == whole.mean
