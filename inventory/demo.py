"""Demo inventory for one organisation: two vendors and what they sell, ten maintenance spares (counted in
each, litres and metres), a warehouse and two vans, stock received through the ledger (every level is the sum
of its movements, so the inventory-reconciliation scenario finds nothing), one part below its reorder point,
parts used on the work order in progress, a reservation and a placed purchase order.

Runs after assets.demo and workorders.demo (it uses their work order in progress); idempotent: it does
nothing when the organisation already has parts."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from inventory import services
from inventory.models import Part
from maintenance_site.tenancy.roles import Role
from workorders.models import WorkOrder

VENDORS = {
    "Rhein Industrial Supply": {
        "contact_name": "Petra Lang",
        "email": "orders@rhein-supply.example",
        "phone": "+49 221 555 0140",
        "website": "https://rhein-supply.example",
    },
    "Northwind Fluid Power": {
        "contact_name": "Sam Ortega",
        "email": "sales@northwind-fluid.example",
        "phone": "+1 312 555 0199",
        "website": "https://northwind-fluid.example",
    },
}

# sku, name, category, unit, manufacturer, mpn, reorder point, reorder quantity, lead time, vendor, price
PARTS = [
    (
        "BRG-6205-2RS",
        "Deep groove ball bearing 6205-2RS",
        "Bearings",
        "each",
        "SKF",
        "6205-2RSH",
        4,
        12,
        5,
        "Rhein Industrial Supply",
        "8.40",
    ),
    (
        "BRG-22210",
        "Spherical roller bearing 22210 E",
        "Bearings",
        "each",
        "SKF",
        "22210 E",
        1,
        2,
        10,
        "Rhein Industrial Supply",
        "96.00",
    ),
    (
        "SEAL-M7N-35",
        "Mechanical seal M7N, 35 mm",
        "Seals",
        "each",
        "EagleBurgmann",
        "M7N/35-G60",
        2,
        4,
        14,
        "Rhein Industrial Supply",
        "142.50",
    ),
    (  # the monthly pump service of the preventive demo uses it (scheduling/demo.py finds it by SKU)
        "SEAL-CR32",
        "Mechanical seal kit CR 32",
        "Seals",
        "each",
        "Grundfos",
        "96525459",
        2,
        6,
        14,
        "Rhein Industrial Supply",
        "186.00",
    ),
    (
        "BELT-SPA-1250",
        "V-belt SPA 1250",
        "Belts",
        "each",
        "Optibelt",
        "SPA 1250 LW",
        6,
        12,
        7,
        "Rhein Industrial Supply",
        "11.20",
    ),
    (
        "OIL-HLP-46",
        "Hydraulic oil HLP 46",
        "Lubricants",
        "litre",
        "Shell",
        "Tellus S2 MX 46",
        40,
        200,
        5,
        "Northwind Fluid Power",
        "3.15",
    ),
    (
        "FLT-HYD-10",
        "Hydraulic return filter element 10 µm",
        "Filters",
        "each",
        "HYDAC",
        "0160 R 010 BN4HC",
        3,
        6,
        10,
        "Northwind Fluid Power",
        "38.90",
    ),
    (
        "FLT-AHU-G4",
        "Air filter panel G4 592×592",
        "Filters",
        "each",
        "Camfil",
        "30/30 G4",
        10,
        24,
        7,
        "Rhein Industrial Supply",
        "9.75",
    ),
    (
        "FUSE-GG-16",
        "Fuse gG 16 A 10×38",
        "Electrical",
        "each",
        "Siemens",
        "3NW6005-1",
        10,
        50,
        3,
        "Rhein Industrial Supply",
        "1.85",
    ),
    (
        "CBL-H07RNF-3G2.5",
        "Cable H07RN-F 3G2.5",
        "Electrical",
        "metre",
        "Lapp",
        "1600105",
        25,
        100,
        5,
        "Rhein Industrial Supply",
        "2.60",
    ),
]

# Where the stock is (warehouse, van 1, van 2) and what it cost.
STOCK = {
    "BRG-6205-2RS": (10, 2, 1, "8.10"),
    "BRG-22210": (2, 0, 0, "94.00"),
    "SEAL-M7N-35": (1, 0, 0, "139.00"),  # below its reorder point of 2: the low part
    "SEAL-CR32": (8, 0, 0, "182.00"),
    "BELT-SPA-1250": (14, 2, 2, "10.90"),
    "OIL-HLP-46": (180, 10, 0, "3.05"),
    "FLT-HYD-10": (6, 0, 0, "37.50"),
    "FLT-AHU-G4": (30, 0, 0, "9.40"),
    "FUSE-GG-16": (60, 10, 10, "1.70"),
    "CBL-H07RNF-3G2.5": (150, "20.5", 0, "2.45"),
}


def seed(organization, users):
    if Part.objects.for_tenant(organization).exists():
        return
    storekeeper, planner, technician = users[Role.STOREKEEPER], users[Role.PLANNER], users[Role.TECHNICIAN]

    vendors = {
        name: services.create_vendor(organization, name=name, actor=storekeeper, **details)
        for name, details in VENDORS.items()
    }
    warehouse = services.create_stock_location(
        organization, name="Central warehouse", kind="warehouse", actor=storekeeper
    )
    van_1 = services.create_stock_location(organization, name="Van 1", kind="van", holder=technician, actor=storekeeper)
    van_2 = services.create_stock_location(organization, name="Van 2", kind="van", actor=storekeeper)

    parts = {}
    for sku, name, category, unit, maker, mpn, point, quantity, lead, vendor, price in PARTS:
        part = services.create_part(
            organization,
            sku=sku,
            name=name,
            category=category,
            unit=unit,
            manufacturer=maker,
            manufacturer_part_number=mpn,
            reorder_point=Decimal(point),
            reorder_quantity=Decimal(quantity),
            lead_time_days=lead,
            preferred_vendor=vendors[vendor],
            actor=storekeeper,
        )
        services.create_vendor_part(
            organization,
            vendor=vendors[vendor],
            part=part,
            vendor_sku=f"{mpn}",
            price=Decimal(price),
            lead_time_days=lead,
            actor=storekeeper,
        )
        parts[sku] = part

    for sku, (in_warehouse, in_van_1, in_van_2, cost) in STOCK.items():
        for location, quantity in ((warehouse, in_warehouse), (van_1, in_van_1), (van_2, in_van_2)):
            if Decimal(str(quantity)) > 0:
                services.receive_stock(parts[sku], location, quantity, cost, actor=storekeeper, reason="Opening stock")
    # Vans keep a few of the fast movers; the transfer suggestions refill them from the warehouse.
    for sku, minimum, maximum in (("BRG-6205-2RS", 2, 4), ("FUSE-GG-16", 10, 20), ("BELT-SPA-1250", 2, 4)):
        services.set_stock_limits(parts[sku], van_1, min_quantity=minimum, max_quantity=maximum, actor=storekeeper)
        services.set_stock_limits(parts[sku], van_2, min_quantity=minimum, max_quantity=maximum, actor=storekeeper)

    in_progress = WorkOrder.objects.for_tenant(organization).filter(status=WorkOrder.Status.IN_PROGRESS).first()
    if in_progress is not None:
        services.issue_to_work_order(in_progress, parts["BRG-6205-2RS"], warehouse, 2, actor=storekeeper)
        services.issue_to_work_order(in_progress, parts["OIL-HLP-46"], warehouse, "7.5", actor=storekeeper)
        services.reserve(in_progress, parts["SEAL-M7N-35"], warehouse, 1, actor=planner)

    order = services.create_purchase_order(
        organization,
        vendor=vendors["Rhein Industrial Supply"],
        actor=storekeeper,
        expected_at=(timezone.now() + timedelta(days=10)).date(),
        notes="Seals and bearings for the pump overhaul.",
        lines=[{"part": parts["SEAL-M7N-35"], "quantity": 4}, {"part": parts["BRG-22210"], "quantity": 2}],
    )
    services.place_purchase_order(order, actor=storekeeper)
