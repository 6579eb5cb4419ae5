"""Demo locations, asset types and assets for one organisation."""

from assets import services
from assets.models import Asset, Location


def seed(organization, users):
    if Location.objects.for_tenant(organization).exists():
        return
    site = services.create_location(organization, name=f"{organization.name} main site", kind="site")
    hall = services.create_location(organization, name="Production hall", kind="building", parent=site)
    utilities = services.create_location(organization, name="Utilities room", kind="area", parent=hall)
    office = services.create_location(organization, name="Office block", kind="building", parent=site)
    types = {
        name: services.create_asset_type(organization, name=name)
        for name in ("Pump", "Compressor", "Conveyor", "HVAC unit", "Forklift")
    }
    specs = [
        ("PMP-001", "Cooling water pump 1", "Pump", utilities, "high", "operational", "Grundfos", "CR 32-2"),
        ("PMP-002", "Cooling water pump 2", "Pump", utilities, "high", "degraded", "Grundfos", "CR 32-2"),
        (
            "CMP-001",
            "Air compressor",
            "Compressor",
            utilities,
            "critical",
            "operational",
            "Atlas Copco",
            "GA 30",
        ),
        ("CNV-001", "Line 1 conveyor", "Conveyor", hall, "medium", "operational", "Interroll", "RM 8"),
        ("CNV-002", "Line 2 conveyor", "Conveyor", hall, "medium", "down", "Interroll", "RM 8"),
        ("HVAC-01", "Office air handling unit", "HVAC unit", office, "low", "operational", "Daikin", "D-AHU"),
        ("FLT-01", "Forklift 1", "Forklift", hall, "medium", "operational", "Linde", "E20"),
    ]
    for code, name, type_name, location, criticality, status, maker, model in specs:
        if not Asset.objects.for_tenant(organization).filter(code=code).exists():
            services.create_asset(
                organization,
                code=code,
                name=name,
                asset_type=types[type_name],
                location=location,
                criticality=criticality,
                status=status,
                manufacturer=maker,
                model=model,
                serial_number=f"{code}-{organization.slug.upper()}",
            )
