"""Demo asset health: the drifting pump of the telemetry demo (PMP-002) had two corrective repairs this month; its
score is recorded day by day over the last week (falling as its bearing warms up and anomalies open), then the
health job and the predictive check run, so the demo shows a falling score with its reasons and one predictive
work order. Idempotent: nothing is done when the organisation already has health rows."""

from datetime import timedelta

from django.utils import timezone

from assets.models import Asset
from maintenance_site.tenancy import SYSTEM
from workorders import services as work_orders
from workorders.health import scoring, services
from workorders.health.models import AssetHealth, HealthSnapshot
from workorders.models import WorkOrder


def seed(organization, users):
    if AssetHealth.objects.filter(organization=organization).exists():
        return
    pump = Asset.objects.filter(organization=organization, code="PMP-002").first()
    now = timezone.now()
    if pump is not None:
        for days, title in ((24, "Bearing noise: regreased"), (12, "Seal leak: replaced mechanical seal")):
            repair = work_orders.create_work_order(
                organization, title=title, type=WorkOrder.Type.CORRECTIVE, asset=pump, actor=SYSTEM
            )
            WorkOrder.objects.filter(pk=repair.pk).update(created_at=now - timedelta(days=days))
        snapshots = []
        for days in range(7, 0, -1):
            moment = now - timedelta(days=days)
            health = scoring.compute([pump], moment)[pump.pk]
            snapshots.append(
                HealthSnapshot(
                    organization=organization, asset=pump, score=health.score, risk=health.risk, computed_at=moment
                )
            )
        HealthSnapshot.objects.bulk_create(snapshots)
        services.run_diagnostic(pump, actor=SYSTEM)  # the last diagnostics the asset pages show
    services.refresh_health(now, organization_id=organization.pk, force=True)
    services.run_predictive_checks(now, organization_id=organization.pk)
