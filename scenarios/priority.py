"""The priority score the runner claims due runs by, highest first:

    score = (impact × w_impact + urgency × w_urgency + effort × w_effort + success_rate × w_success)
            × category multiplier × priority adjustment

with the weights 0.4 / 0.3 / 0.2 / 0.1 unless settings.SCENARIO_PRIORITY_WEIGHTS overrides them. Each term is
on a 0–100 scale:

- impact: the mean of the task's five impact figures (code quality, security, performance,
  maintainability, user experience; each 0–100).
- urgency: how long the run has waited past its slot, relative to the task's period (its interval, or
  one hour for a cron task): 0 when just due, 100 when a whole period late or more; a retry counts 100.
- effort: cheaper is sooner: 100 minus the mean of complexity and risk (1–10, scaled to 0–100) and the
  estimated duration (0 minutes → 0, two hours or more → 100), plus 5 per task that depends on it (at most
  20: a task others wait for goes first), capped at 100.
- success_rate: the percentage of the task's last 20 finished runs that succeeded (50 with no history).

The category multiplier (security and security scanning 1.2; performance, performance optimisation, data and
dependency updates 1.1; monitoring, code quality, test maintenance and other 1.0; housekeeping, documentation and
configuration cleanup 0.9)
and the priority adjustment (low 0.8, medium 1.0, high 1.2, critical 1.5) scale the sum.
"""

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from scenarios.models import Category, Priority, Scenario, ScenarioRun

# The score's weights; settings.SCENARIO_PRIORITY_WEIGHTS overrides any of them.
WEIGHTS = {"impact": 0.4, "urgency": 0.3, "effort": 0.2, "success_rate": 0.1}

CATEGORY_MULTIPLIER = {
    Category.SECURITY: 1.2,
    Category.SECURITY_SCANNING: 1.2,
    Category.DEPENDENCY_UPDATES: 1.1,
    Category.PERFORMANCE_OPTIMIZATION: 1.1,
    Category.CODE_QUALITY: 1.0,
    Category.TEST_MAINTENANCE: 1.0,
    Category.DOCUMENTATION: 0.9,
    Category.CONFIG_CLEANUP: 0.9,
    Category.PERFORMANCE: 1.1,
    Category.DATA: 1.1,
    Category.MONITORING: 1.0,
    Category.HOUSEKEEPING: 0.9,
    Category.OTHER: 1.0,
}
PRIORITY_ADJUSTMENT = {Priority.LOW: 0.8, Priority.MEDIUM: 1.0, Priority.HIGH: 1.2, Priority.CRITICAL: 1.5}
SUCCESS_WINDOW = 20
DEPENDENT_BONUS, DEPENDENT_BONUS_MAX = 5.0, 20.0  # effort points per dependent task, and their cap


def success_rate(scenario: Scenario, window: int = SUCCESS_WINDOW) -> float | None:
    """Percentage of the last `window` finished runs (skipped and cancelled ones aside) that succeeded."""
    statuses = list(
        ScenarioRun.objects.filter(scenario=scenario)
        .filter(status__in=[ScenarioRun.Status.SUCCEEDED, ScenarioRun.Status.FAILED, ScenarioRun.Status.TIMED_OUT])
        .order_by("-finished_at", "-pk")
        .values_list("status", flat=True)[:window]
    )
    if not statuses:
        return None
    return 100.0 * statuses.count(ScenarioRun.Status.SUCCEEDED) / len(statuses)


def analyze_priority(scenario: Scenario, run: ScenarioRun | None = None, now: datetime | None = None) -> dict:
    """Every term of the score with its inputs, and the score."""
    now = now or timezone.now()
    weights = {**WEIGHTS, **settings.SCENARIO_PRIORITY_WEIGHTS}
    impacts = {
        "code_quality": scenario.impact_code_quality,
        "security": scenario.impact_security,
        "performance": scenario.impact_performance,
        "maintainability": scenario.impact_maintainability,
        "user_experience": scenario.impact_user_experience,
    }
    impact = sum(impacts.values()) / len(impacts)
    period = scenario.interval_seconds or 3600
    waited = max(0.0, (now - run.slot).total_seconds()) if run is not None else 0.0
    is_retry = run is not None and run.attempt > 1
    urgency = 100.0 if is_retry else min(100.0, 100.0 * waited / period)
    complexity = (scenario.complexity - 1) / 9 * 100
    risk = (scenario.risk - 1) / 9 * 100
    duration = min(100.0, scenario.estimated_minutes / 120 * 100)
    dependents = scenario.dependents.count() if scenario.pk else 0
    effort = min(
        100.0, 100.0 - (complexity + risk + duration) / 3 + min(DEPENDENT_BONUS_MAX, DEPENDENT_BONUS * dependents)
    )
    rate = success_rate(scenario)
    success = 50.0 if rate is None else rate
    terms = {"impact": impact, "urgency": urgency, "effort": effort, "success_rate": success}
    base = sum(terms[name] * weights[name] for name in terms)
    multiplier = CATEGORY_MULTIPLIER.get(scenario.category, 1.0)
    adjustment = PRIORITY_ADJUSTMENT.get(scenario.priority, 1.0)
    return {
        "task": scenario.key,
        "score": round(base * multiplier * adjustment, 2),
        "terms": {name: round(value, 2) for name, value in terms.items()},
        "weights": weights,
        "inputs": {
            "impact": impacts,
            "urgency": {"waited_seconds": round(waited), "period_seconds": period, "retry": is_retry},
            "effort": {
                "complexity": scenario.complexity,
                "risk": scenario.risk,
                "estimated_minutes": scenario.estimated_minutes,
                "dependents": dependents,
            },
            "success_rate": {"rate": rate, "window": SUCCESS_WINDOW},
        },
        "category": scenario.category,
        "category_multiplier": multiplier,
        "priority": scenario.priority,
        "priority_adjustment": adjustment,
    }


def score(scenario: Scenario, run: ScenarioRun | None = None, now: datetime | None = None) -> float:
    return analyze_priority(scenario, run, now)["score"]
