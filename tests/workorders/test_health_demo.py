"""The demo's drifting pump (PMP-002) shows a falling health score with its reasons and one predictive order."""

import io

from django.core.management import call_command

from workorders.health.models import AssetHealth, HealthSnapshot, PredictiveAlert
from workorders.models import WorkOrder


def test_the_drifting_pump_has_a_falling_score_and_one_predictive_order(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent
    health = AssetHealth.objects.get(asset__organization__slug="acme", asset__code="PMP-002")
    scores = list(
        HealthSnapshot.objects.filter(asset=health.asset).order_by("computed_at").values_list("score", flat=True)
    )
    assert scores[0] > scores[-1] and health.risk in ("high", "critical")
    assert any(term["penalty"] > 0 for term in health.terms if term["name"] == "anomalies")
    assert WorkOrder.objects.filter(asset=health.asset, type=WorkOrder.Type.PREDICTIVE).count() == 1
    assert PredictiveAlert.objects.filter(asset=health.asset).count() == 1
