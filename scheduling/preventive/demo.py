"""Demo preventive schedules for one organisation: a daily routine round without an asset, a weekly compressor
inspection, a monthly pump service with parts, and a compressor service every 500 run hours (with a meter and a
few readings). Runs after the assets and work-order demos (it uses their assets and procedures)."""

from datetime import time, timedelta
from decimal import Decimal

from django.utils import timezone

from assets import meters
from assets.models import Asset, AssetType, Location, Meter
from inventory import services as inventory_services
from inventory.models import Part, StockLocation
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.roles import Role
from scheduling.preventive import services
from scheduling.preventive.models import PreventiveSchedule
from workorders.models import Procedure

Schedule = PreventiveSchedule


def _part_and_store(organization, storekeeper):
    """The seal kit the pump service reserves, and the store it is kept in: the inventory demo's, or (when this
    demo runs alone) made through the inventory services, so the stock ledger accounts for every unit."""
    store = StockLocation.objects.filter(organization=organization).order_by("pk").first()
    if store is None:
        store = inventory_services.create_stock_location(
            organization, name="Main store", kind="warehouse", actor=storekeeper
        )
    part = Part.objects.filter(organization=organization, sku="SEAL-CR32").first()
    if part is None:
        part = inventory_services.create_part(
            organization,
            sku="SEAL-CR32",
            name="Mechanical seal kit CR 32",
            unit="each",
            reorder_point=Decimal("2"),
            reorder_quantity=Decimal("6"),
            actor=storekeeper,
        )
        inventory_services.receive_stock(
            part, store, Decimal("8"), Decimal("45"), actor=storekeeper, reason="Opening stock"
        )
    return part, store


def seed(organization, users):
    if Schedule.objects.for_tenant(organization).exists():
        return
    planner, technician = users[Role.PLANNER], users[Role.TECHNICIAN]
    assets = {a.code: a for a in Asset.objects.for_tenant(organization)}
    procedures = {p.name: p for p in Procedure.objects.for_tenant(organization)}
    today = timezone.localdate(timezone.now(), organization.zone)
    site = Location.objects.for_tenant(organization).filter(parent__isnull=True).order_by("pk").first()

    services.create_schedule(
        organization,
        actor=planner,
        name="Daily plant walk-round",
        coverage=Schedule.Coverage.ROUTINE,
        location=site,
        trigger=Schedule.Trigger.CRON,
        cron_expression="30 7 * * 1-5",
        work_type="routine",
        title="Walk-round {due_date}",
        instructions="Walk the plant: leaks, noises, smells, blocked exits.",
        priority="low",
        estimated_minutes=30,
        start_date=today,
    )
    if "CMP-001" in assets:
        services.create_schedule(
            organization,
            actor=planner,
            name="Weekly compressor inspection",
            asset=assets["CMP-001"],
            trigger=Schedule.Trigger.RRULE,
            rrule="FREQ=WEEKLY;BYDAY=MO",
            time_of_day=time(6, 0),
            work_type="inspection",
            title="Compressor inspection",
            assignee=technician,
            estimated_minutes=20,
            procedure=procedures.get("Compressor weekly inspection"),
            lead_days=1,
            start_date=today,
        )
    pump_type = AssetType.objects.for_tenant(organization).filter(name="Pump").first()
    if pump_type is not None:
        part, store = _part_and_store(organization, users[Role.STOREKEEPER])
        services.create_schedule(
            organization,
            actor=planner,
            name="Monthly pump service",
            coverage=Schedule.Coverage.ASSETS,
            asset_type=pump_type,
            trigger=Schedule.Trigger.INTERVAL,
            interval_count=1,
            interval_unit="months",
            time_of_day=time(8, 0),
            title="Monthly service {asset_code}",
            priority="medium",
            procedure=procedures.get("Pump quarterly service"),
            estimated_minutes=90,
            lead_days=3,
            misfire_policy=Schedule.Misfire.COALESCE,
            start_date=today + timedelta(days=5),
            parts=[{"part": part, "stock_location": store, "quantity": 1}],
        )
    if "CMP-001" in assets:
        compressor = assets["CMP-001"]
        meter = Meter.objects.filter(asset=compressor, name="Run hours").first()
        if meter is None:
            meter = meters.create_meter(organization, asset=compressor, name="Run hours", unit="h", actor=SYSTEM)
            now = timezone.now()
            meters.record_readings(
                organization,
                [{"meter": meter, "value": 4120 + 8 * n, "read_at": now - timedelta(days=10 - n)} for n in range(10)],
                source="manual",
                actor=SYSTEM,
            )
        services.create_schedule(
            organization,
            actor=planner,
            name="Compressor service every 500 h",
            asset=compressor,
            trigger=Schedule.Trigger.METER,
            meter_name="Run hours",
            meter_mode=Schedule.MeterMode.EVERY,
            meter_interval=Decimal("500"),
            title="500 h service {asset_code}",
            priority="high",
            estimated_minutes=120,
            start_date=today - timedelta(days=30),
        )
