"""Demo procedures, a team and work orders in every state for one organisation."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from assets.models import Asset
from maintenance_site.tenancy.roles import Role
from workorders import services
from workorders.capacity import demo as capacity_demo
from workorders.health import demo as health_demo
from workorders.models import ItemKind, Procedure, ProcedureItem, Team

PROCEDURES = {
    "Pump quarterly service": [
        ("Isolate and lock out the pump", ItemKind.TICK, "", True),
        ("Mechanical seal shows no leak", ItemKind.PASS_FAIL, "", True),
        ("Bearing vibration", ItemKind.NUMBER, "mm/s", True),
        ("Remarks", ItemKind.TEXT, "", False),
    ],
    "Compressor weekly inspection": [
        ("Drain condensate", ItemKind.TICK, "", True),
        ("Discharge pressure", ItemKind.NUMBER, "bar", True),
        ("Oil level in range", ItemKind.PASS_FAIL, "", True),
    ],
}


FAILURE_CODES = [
    ("problem", "LEAK", "Leak"),
    ("problem", "NOISE", "Abnormal noise"),
    ("problem", "NO-START", "Does not start"),
    ("cause", "BRG-WEAR", "Bearing wear"),
    ("cause", "SEAL-WEAR", "Seal wear"),
    ("cause", "MISALIGN", "Misalignment"),
    ("cause", "ELEC", "Electrical fault"),
    ("remedy", "REPLACED", "Part replaced"),
    ("remedy", "ADJUSTED", "Adjusted or realigned"),
    ("remedy", "REPAIRED", "Repaired in place"),
]


def seed(organization, users):
    _seed_orders(organization, users)
    health_demo.seed(organization, users)  # after the orders: the drifting pump's history counts them
    capacity_demo.seed(organization, users)


def _seed_orders(organization, users):
    if Procedure.objects.for_tenant(organization).exists():
        return
    planner, technician = users[Role.PLANNER], users[Role.TECHNICIAN]
    procedures = {}
    for name, steps in PROCEDURES.items():
        procedure = Procedure.objects.create(organization=organization, name=name)
        for position, (text, kind, unit, required) in enumerate(steps):
            ProcedureItem.objects.create(
                organization=organization,
                procedure=procedure,
                position=position,
                text=text,
                kind=kind,
                unit=unit,
                required=required,
            )
        procedures[name] = procedure
    team = Team.objects.create(organization=organization, name="Mechanical crew")
    team.members.add(technician)

    assets = {a.code: a for a in Asset.objects.for_tenant(organization)}
    now = timezone.now()

    def order(title, code, **fields):
        return services.create_work_order(organization, title=title, asset=assets.get(code), actor=planner, **fields)

    order("Noisy bearing on conveyor 2", "CNV-002", priority="high", due_at=now + timedelta(days=1))
    order("Check office AHU filters", "HVAC-01", type="inspection", priority="low", due_at=now + timedelta(days=7))
    order("Forklift horn not working", "FLT-01", assignee=technician, due_at=now + timedelta(days=2))
    pump = order(
        "Quarterly pump service",
        "PMP-001",
        type="preventive",
        assignee=technician,
        procedure=procedures["Pump quarterly service"],
        due_at=now - timedelta(days=1),
        estimated_minutes=90,
    )
    services.start(pump, actor=technician)
    services.log_time(pump, actor=technician, minutes=45, note="Seal inspection")
    held = order("Replace compressor belt", "CMP-001", assignee=technician, priority="critical")
    services.start(held, actor=technician)
    services.hold(held, reason="Waiting for the belt from the supplier", actor=technician)
    done = order(
        "Weekly compressor inspection",
        "CMP-001",
        type="inspection",
        assignee=technician,
        procedure=procedures["Compressor weekly inspection"],
    )
    services.start(done, actor=technician)
    for item in done.checklist.all():
        services.record_checklist_result(
            item,
            actor=technician,
            passed=True if item.kind == ItemKind.PASS_FAIL else None,
            number_value="7.1" if item.kind == ItemKind.NUMBER else None,
        )
    services.log_time(done, actor=technician, minutes=30)
    services.add_cost_line(done, actor=planner, description="Condensate drain valve", amount=Decimal("38.50"))
    services.complete(done, actor=technician, notes="All readings normal.")
    if organization.require_verification:
        services.transition(done, "verify", actor=planner)
    duplicate = order("Duplicate: pump 2 leak", "PMP-002")
    services.cancel(duplicate, reason="Duplicate of the quarterly service", actor=planner)
    order("Team job: conveyor alignment", "CNV-001", team=team, priority="medium")

    # A small failure-code library and this month's budget, so analytics have something to show.
    manager = users[Role.MANAGER]
    for kind, code, name in FAILURE_CODES:
        services.create_failure_code(organization, kind=kind, code=code, name=name, actor=manager)
    month = timezone.localdate(now, organization.zone).replace(day=1)
    services.create_budget(
        organization, name="Maintenance", period="month", starts_on=month, amount=Decimal("5000.00"), actor=manager
    )
