"""The detectors, run per series in time order, with their state kept between batches (a JSON dict on `Series`),
so that ingest costs O(points) and never re-reads history. Pure Python: no database here.

What each detector flags, at each point:

- **sensor** (warning): the value is outside the definition's sensor range (`sensor_min`/`sensor_max`): the
  sensor or its wiring is at fault, so the point teaches the baseline nothing and the other detectors skip it.
- **limit** (warning or critical): above `warning_high` / below `warning_low` (warning), above `critical_high` /
  below `critical_low` (critical). Fixed limits from the definition; the reference an engineer sets.
- **rate** (warning): the value moved faster than `max_rate_per_minute` since the previous point (either way).
  Not judged across a gap (see below): a change spread over an outage is not a jump.
- **spike** (warning; critical beyond twice the threshold): one point more than `spike_sigmas` standard deviations
  from the baseline (a Shewhart individuals chart). Spikes are outliers: they do not teach the baseline and do
  not move the drift chart.
- **drift** (warning): an EWMA control chart (Roberts, 1959): z = λ·x + (1 − λ)·z over the non-spike points
  leaves the baseline by more than `drift_sigmas` times the chart's own learnt spread (at least the textbook
  σ·√(λ / (2 − λ)) of independent points). Learning the spread keeps a daily cycle, which moves the recent average
  every day, from flagging daily. It sees a persistent shift (a bearing warming up a degree a day) that no single
  point shows. It flags nothing before twice `warmup_points` points.
- **flatline** (warning): the same value (to a millionth) for `flatline_minutes`: a stuck or dead sensor.

The baseline (mean and variance) is an exponentially weighted estimate (`baseline_alpha`; a plain running mean for
the first points) learnt from normal points only, and at a tenth of the rate while a drift goes on, so that a drift
is not learnt away while it is being flagged. Statistics flag nothing before `warmup_points` points. σ is at least
1 % of the mean's magnitude (a perfectly quiet sensor would otherwise flag its first rounding step).

A gap (no point for more than max(1 hour, 20 × the usual interval)) restarts the drift chart and the flat-line
timer, and the rate detector skips the point after it; the baseline is kept.

Episodes: a detector's abnormal point opens an episode (an `Anomaly`) or extends the open one (its peak is the point
farthest from its reference); the episode ends once that detector found the series normal for
`clear_after_minutes`. A point a detector cannot judge (warm-up, the point after a gap) neither extends nor ends its
episode. Re-analysis (`learn=False`) replays stored points through the same detectors without teaching the
baseline, so a point sent twice never counts twice.
"""

import math
from dataclasses import dataclass

SENSOR, LIMIT, RATE, SPIKE, DRIFT, FLATLINE = "sensor", "limit", "rate", "spike", "drift", "flatline"
DETECTORS = (SENSOR, LIMIT, RATE, SPIKE, DRIFT, FLATLINE)
WARNING, CRITICAL = "warning", "critical"
MIN_GAP_SECONDS = 3600.0
GAP_FACTOR = 20.0


@dataclass(frozen=True)
class Config:
    """A definition's detection settings (defaults when the metric has no definition)."""

    sensor_min: float | None = None
    sensor_max: float | None = None
    warning_low: float | None = None
    warning_high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None
    max_rate_per_minute: float | None = None
    flatline_minutes: int | None = None
    statistical: bool = True
    spike_sigmas: float = 5.0
    drift_sigmas: float = 3.0
    ewma_lambda: float = 0.1
    baseline_alpha: float = 0.01
    warmup_points: int = 30
    clear_after_minutes: int = 15

    @classmethod
    def of(cls, definition) -> "Config":
        if definition is None:
            return cls()
        return cls(**{name: getattr(definition, name) for name in cls.__dataclass_fields__})


@dataclass
class Finding:
    """What one detector saw at one point: how bad, the point, its reference (limit or baseline), and a sentence."""

    detector: str
    severity: str
    ts: float
    value: float
    reference: float | None
    score: float
    message: str


def _limit_finding(config: Config, ts: float, value: float) -> Finding | None:
    for severity, low, high in (
        (CRITICAL, config.critical_low, config.critical_high),
        (WARNING, config.warning_low, config.warning_high),
    ):
        if high is not None and value > high:
            return Finding(
                LIMIT, severity, ts, value, high, value - high, f"{value:g} is above the {severity} limit {high:g}"
            )
        if low is not None and value < low:
            return Finding(
                LIMIT, severity, ts, value, low, low - value, f"{value:g} is below the {severity} limit {low:g}"
            )
    return None


class SeriesDetector:
    """The detectors of one series, resumed from its stored state. `run(points)` takes (epoch seconds, value) pairs
    in time order and returns the episode events: ("open", detector, episode) and ("close", detector, episode); the
    episodes still going on are in `episodes` afterwards (their peaks updated). `dump()` is the state to store."""

    def __init__(self, config: Config, state: dict | None = None):
        self.config = config
        state = state or {}
        self.n = state.get("n", 0)
        self.mean = state.get("mean", 0.0)
        self.var = state.get("var", 0.0)
        self.ewma = state.get("ewma")
        self.dvar = state.get("dvar", 0.0)
        self.prev_ts = state.get("prev_ts")
        self.prev_value = state.get("prev_value")
        self.interval = state.get("interval")
        self.flat_since = state.get("flat_since")
        self.flat_value = state.get("flat_value")
        self.episodes: dict[str, dict] = {key: dict(value) for key, value in state.get("episodes", {}).items()}

    def dump(self) -> dict:
        return {
            "n": self.n,
            "mean": self.mean,
            "var": self.var,
            "ewma": self.ewma,
            "dvar": self.dvar,
            "prev_ts": self.prev_ts,
            "prev_value": self.prev_value,
            "interval": self.interval,
            "flat_since": self.flat_since,
            "flat_value": self.flat_value,
            "episodes": self.episodes,
        }

    def sigma(self) -> float:
        return max(math.sqrt(max(self.var, 0.0)), 0.01 * abs(self.mean), 1e-9)

    # --- episodes ---------------------------------------------------------------------------------------------
    def _abnormal(self, finding: Finding, events: list) -> None:
        episode = self.episodes.get(finding.detector)
        if episode is None:
            episode = {
                "started": finding.ts,
                "last": finding.ts,
                "severity": finding.severity,
                "peak": finding.value,
                "peak_at": finding.ts,
                "score": finding.score,
                "reference": finding.reference,
                "message": finding.message,
                "points": 1,
                "normal_since": None,
            }
            self.episodes[finding.detector] = episode
            events.append(("open", finding.detector, episode))
            return
        episode["last"] = finding.ts
        episode["points"] += 1
        episode["normal_since"] = None
        escalated = finding.severity == CRITICAL and episode["severity"] != CRITICAL
        if escalated:
            episode["severity"] = CRITICAL
        if escalated or (finding.severity == episode["severity"] and finding.score > episode["score"]):
            episode.update(
                peak=finding.value,
                peak_at=finding.ts,
                score=finding.score,
                reference=finding.reference,
                message=finding.message,
            )

    def _normal(self, detector: str, ts: float, events: list) -> None:
        episode = self.episodes.get(detector)
        if episode is None:
            return
        if episode["normal_since"] is None:
            episode["normal_since"] = ts
        if ts - episode["normal_since"] >= self.config.clear_after_minutes * 60:
            episode["ended"] = episode["normal_since"]
            del self.episodes[detector]
            events.append(("close", detector, episode))

    # --- the detectors ----------------------------------------------------------------------------------------
    def run(self, points, *, learn: bool = True) -> list:
        config = self.config
        events: list = []
        lam = config.ewma_lambda
        chart_width = config.drift_sigmas * math.sqrt(lam / (2 - lam))
        flat_seconds = config.flatline_minutes * 60 if config.flatline_minutes else None
        highs = [v for v in (config.warning_high, config.critical_high) if v is not None]
        lows = [v for v in (config.warning_low, config.critical_low) if v is not None]
        has_limits = bool(highs or lows)
        # within these a point breaks no limit (the usual point skips _limit_finding)
        upper, lower = min(highs, default=math.inf), max(lows, default=-math.inf)
        sensor_min, sensor_max = config.sensor_min, config.sensor_max
        has_sensor = sensor_min is not None or sensor_max is not None
        max_rate = config.max_rate_per_minute
        statistical, warmup, spike_sigmas = config.statistical, config.warmup_points, config.spike_sigmas
        drift_sigmas, alpha_base = config.drift_sigmas, config.baseline_alpha
        episodes = self.episodes
        abnormal, normal = self._abnormal, self._normal
        sqrt = math.sqrt
        # the state in locals for the loop (written back at the end): attribute access is most of a point's cost
        n, mean, var, dvar, ewma = self.n, self.mean, self.var, self.dvar, self.ewma
        prev_ts, prev_value, interval = self.prev_ts, self.prev_value, self.interval
        flat_since, flat_value = self.flat_since, self.flat_value
        for ts, value in points:
            dt = ts - prev_ts if prev_ts is not None else None
            gap = dt is not None and dt > MIN_GAP_SECONDS and dt > GAP_FACTOR * (interval or 0.0)
            if dt is not None and dt > 0 and not gap:
                interval = dt if interval is None else 0.9 * interval + 0.1 * dt

            # sensor range: a reading the sensor cannot give tells nothing else
            if has_sensor and (
                (sensor_min is not None and value < sensor_min) or (sensor_max is not None and value > sensor_max)
            ):
                bound = sensor_min if sensor_min is not None and value < sensor_min else sensor_max
                message = f"{value:g} is outside the sensor's range: check the sensor and its wiring"
                abnormal(Finding(SENSOR, WARNING, ts, value, bound, abs(value - bound), message), events)
                prev_ts, prev_value = ts, value
                continue
            if episodes and SENSOR in episodes:
                normal(SENSOR, ts, events)

            critical_limit = False
            if has_limits:
                finding = None if lower <= value <= upper else _limit_finding(config, ts, value)
                if finding is not None:
                    critical_limit = finding.severity == CRITICAL
                    abnormal(finding, events)
                elif LIMIT in episodes:
                    normal(LIMIT, ts, events)

            if max_rate is not None and dt is not None and dt > 0 and not gap:
                rate = abs(value - prev_value) / (dt / 60.0)
                if rate > max_rate:
                    message = f"changed by {rate:g} per minute (limit {max_rate:g})"
                    abnormal(Finding(RATE, WARNING, ts, value, max_rate, rate, message), events)
                elif RATE in episodes:
                    normal(RATE, ts, events)

            if flat_seconds is not None:
                magnitude = value if value >= 0 else -value
                if (
                    gap
                    or flat_since is None
                    or abs(value - flat_value) > 1e-6 * (magnitude if magnitude > 1.0 else 1.0)
                ):
                    flat_since, flat_value = ts, value
                    if FLATLINE in episodes:
                        normal(FLATLINE, ts, events)
                elif ts - flat_since >= flat_seconds:
                    minutes = (ts - flat_since) / 60
                    message = f"{value:g} unchanged for {minutes:.0f} minutes: is the sensor stuck?"
                    abnormal(Finding(FLATLINE, WARNING, ts, value, None, minutes, message), events)
                elif FLATLINE in episodes:
                    normal(FLATLINE, ts, events)

            if statistical:
                spike = False
                if gap:
                    ewma = None
                if n >= warmup:
                    # max(√var, 1 % of |mean|, 1e-9), spelt out: max() is a call per point
                    sigma = sqrt(var) if var > 0 else 0.0
                    floor = 0.01 * (mean if mean >= 0 else -mean)
                    if floor > sigma:
                        sigma = floor
                    if sigma < 1e-9:
                        sigma = 1e-9
                    deviation = abs(value - mean) / sigma
                    if deviation > spike_sigmas:
                        spike = True
                        severity = CRITICAL if deviation > 2 * spike_sigmas else WARNING
                        message = f"{value:g} is {deviation:.1f} σ from the baseline {mean:g}"
                        abnormal(Finding(SPIKE, severity, ts, value, mean, deviation, message), events)
                    else:
                        if SPIKE in episodes:
                            normal(SPIKE, ts, events)
                        ewma = value if ewma is None else lam * value + (1 - lam) * ewma
                        offset = ewma - mean
                        # the chart's own spread, learnt: a daily cycle moves the average every day, not a drift
                        spread = drift_sigmas * sqrt(dvar)
                        if chart_width * sigma > spread:
                            spread = chart_width * sigma
                        drifting = DRIFT in episodes
                        if learn and not drifting:
                            dvar = (1 - alpha_base) * dvar + alpha_base * offset * offset
                        if n >= 2 * warmup and abs(offset) > spread:
                            message = (
                                f"the recent average {ewma:g} drifted {abs(offset) / sigma:.1f} σ "
                                f"from the baseline {mean:g}"
                            )
                            abnormal(Finding(DRIFT, WARNING, ts, value, mean, abs(offset) / spread, message), events)
                        elif drifting:
                            normal(DRIFT, ts, events)
                if learn and not spike and not critical_limit:
                    n += 1
                    alpha = 1.0 / n
                    if alpha_base > alpha:
                        alpha = alpha_base
                    if n > warmup and DRIFT in episodes:
                        alpha /= 10
                    diff = value - mean
                    increment = alpha * diff
                    mean += increment
                    var = (1 - alpha) * (var + diff * increment)
                    if n <= warmup:
                        ewma = mean
            prev_ts, prev_value = ts, value
        self.n, self.mean, self.var, self.dvar, self.ewma = n, mean, var, dvar, ewma
        self.prev_ts, self.prev_value, self.interval = prev_ts, prev_value, interval
        self.flat_since, self.flat_value = flat_since, flat_value
        return events
