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
        has_limits = any(
            v is not None for v in (config.warning_low, config.warning_high, config.critical_low, config.critical_high)
        )
        for ts, value in points:
            judged: dict[str, Finding | None] = {}
            prev_ts = self.prev_ts
            dt = ts - prev_ts if prev_ts is not None else None
            gap = dt is not None and dt > max(MIN_GAP_SECONDS, GAP_FACTOR * (self.interval or 0.0))
            if dt is not None and dt > 0 and not gap:
                self.interval = dt if self.interval is None else 0.9 * self.interval + 0.1 * dt

            # sensor range: a reading the sensor cannot give tells nothing else
            if (config.sensor_min is not None and value < config.sensor_min) or (
                config.sensor_max is not None and value > config.sensor_max
            ):
                bound = (
                    config.sensor_min
                    if config.sensor_min is not None and value < config.sensor_min
                    else config.sensor_max
                )
                self._abnormal(
                    Finding(
                        SENSOR,
                        WARNING,
                        ts,
                        value,
                        bound,
                        abs(value - bound),
                        f"{value:g} is outside the sensor's range: check the sensor and its wiring",
                    ),
                    events,
                )
                self.prev_ts, self.prev_value = ts, value
                continue
            judged[SENSOR] = None

            if has_limits:
                judged[LIMIT] = _limit_finding(config, ts, value)

            if config.max_rate_per_minute is not None and dt is not None and dt > 0 and not gap:
                rate = abs(value - self.prev_value) / (dt / 60.0)
                judged[RATE] = (
                    Finding(
                        RATE,
                        WARNING,
                        ts,
                        value,
                        config.max_rate_per_minute,
                        rate,
                        f"changed by {rate:g} per minute (limit {config.max_rate_per_minute:g})",
                    )
                    if rate > config.max_rate_per_minute
                    else None
                )

            if flat_seconds is not None:
                if gap or self.flat_since is None or abs(value - self.flat_value) > 1e-6 * max(1.0, abs(value)):
                    self.flat_since, self.flat_value = ts, value
                    judged[FLATLINE] = None
                elif ts - self.flat_since >= flat_seconds:
                    minutes = (ts - self.flat_since) / 60
                    judged[FLATLINE] = Finding(
                        FLATLINE,
                        WARNING,
                        ts,
                        value,
                        None,
                        minutes,
                        f"{value:g} unchanged for {minutes:.0f} minutes: is the sensor stuck?",
                    )
                else:
                    judged[FLATLINE] = None

            spike = False
            if config.statistical:
                if gap:
                    self.ewma = None
                if self.n >= config.warmup_points:
                    sigma = self.sigma()
                    deviation = abs(value - self.mean) / sigma
                    if deviation > config.spike_sigmas:
                        spike = True
                        severity = CRITICAL if deviation > 2 * config.spike_sigmas else WARNING
                        judged[SPIKE] = Finding(
                            SPIKE,
                            severity,
                            ts,
                            value,
                            self.mean,
                            deviation,
                            f"{value:g} is {deviation:.1f} σ from the baseline {self.mean:g}",
                        )
                    else:
                        judged[SPIKE] = None
                        self.ewma = value if self.ewma is None else lam * value + (1 - lam) * self.ewma
                        offset = self.ewma - self.mean
                        shift = abs(offset) / sigma
                        # the chart's own spread, learnt: a daily cycle moves the average every day, not a drift
                        spread = max(config.drift_sigmas * math.sqrt(self.dvar), chart_width * sigma)
                        learnt = self.n >= 2 * config.warmup_points
                        if learn and DRIFT not in self.episodes:
                            self.dvar = (1 - config.baseline_alpha) * self.dvar + config.baseline_alpha * offset**2
                        judged[DRIFT] = (
                            Finding(
                                DRIFT,
                                WARNING,
                                ts,
                                value,
                                self.mean,
                                abs(offset) / spread,
                                f"the recent average {self.ewma:g} drifted {shift:.1f} σ "
                                f"from the baseline {self.mean:g}",
                            )
                            if learnt and abs(offset) > spread
                            else None
                        )
                if learn and not spike and not (judged.get(LIMIT) and judged[LIMIT].severity == CRITICAL):
                    self.n += 1
                    alpha = max(config.baseline_alpha, 1.0 / self.n)
                    if DRIFT in self.episodes and self.n > config.warmup_points:
                        alpha /= 10
                    diff = value - self.mean
                    increment = alpha * diff
                    self.mean += increment
                    self.var = (1 - alpha) * (self.var + diff * increment)
                    if self.n <= config.warmup_points:
                        self.ewma = self.mean

            for detector, finding in judged.items():
                if finding is None:
                    self._normal(detector, ts, events)
                else:
                    self._abnormal(finding, events)
            self.prev_ts, self.prev_value = ts, value
        return events
