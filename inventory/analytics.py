"""The KPIs computed from the stock ledger (definitions in `maintenance_site.analytics.definitions`): parts cost,
inventory turns, stock-out events; and the committed spend of open purchase orders (budgets). Registered in
`InventoryConfig.ready()`. One query per figure."""

from decimal import Decimal

from django.db import connection
from django.db.models import DecimalField, ExpressionWrapper, F, Sum

from inventory.models import MovementKind, PurchaseOrder, PurchaseOrderLine, StockLevel, StockMovement
from maintenance_site.analytics import periods, registry

MONEY = DecimalField(max_digits=24, decimal_places=6)
CENT = Decimal("0.01")
GROUP = {
    "asset": "work_order__asset_id",
    "asset_type": "work_order__asset__asset_type_id",
    "location": "work_order__location_id",
}
OPEN_PURCHASES = (PurchaseOrder.Status.ORDERED, PurchaseOrder.Status.PARTLY_RECEIVED)
# What takes stock away: a movement of these kinds that leaves the running sum at or below zero is a stock-out.
REMOVALS = (MovementKind.ISSUE, MovementKind.TRANSFER_OUT, MovementKind.WRITE_OFF, MovementKind.ADJUSTMENT)


def _money(value) -> Decimal:
    return (value or Decimal(0)).quantize(CENT)


def _issued(scope):
    """Issues to and returns from work orders in the period (returns are positive quantities: they subtract)."""
    return StockMovement.objects.filter(
        organization=scope.organization,
        kind__in=(MovementKind.ISSUE, MovementKind.RETURN),
        work_order__isnull=False,
        created_at__gte=scope.start,
        created_at__lt=scope.end,
    )


ISSUED_VALUE = Sum(ExpressionWrapper(-F("quantity") * F("unit_cost"), output_field=MONEY))


def parts_cost(scope, keys, *, interval=None, group_by=None, money=_money) -> dict:
    """Parts cost per group, per bucket, per bucket and group ({bucket: {group: amount}}), or in all: one query."""
    rows = _issued(scope).filter(
        periods.scope_q(
            scope,
            asset="work_order__asset_id",
            asset_type="work_order__asset__asset_type_id",
            location="work_order__location",
            team="work_order__team_id",
        )
    )
    if group_by is not None and interval:
        field = GROUP[group_by]
        grouped = rows.annotate(bucket=periods.trunc("created_at", interval, scope.zone)).values("bucket", field)
        answer = {}
        for r in grouped.annotate(amount=ISSUED_VALUE).order_by():
            answer.setdefault(periods.bucket_key(r["bucket"], scope.zone), {})[r[field]] = money(r["amount"])
    elif group_by is not None:
        field = GROUP[group_by]
        answer = {r[field]: money(r["amount"]) for r in rows.values(field).annotate(amount=ISSUED_VALUE).order_by()}
    elif interval:
        grouped = rows.annotate(bucket=periods.trunc("created_at", interval, scope.zone)).values("bucket")
        answer = {
            periods.bucket_key(r["bucket"], scope.zone): money(r["amount"])
            for r in grouped.annotate(amount=ISSUED_VALUE).order_by()
        }
    else:
        answer = {None: money(rows.aggregate(amount=ISSUED_VALUE)["amount"])}
    return {"parts_cost": answer}


def parts_measures(scope, keys, *, interval=None, group_by=None) -> dict:
    """Parts cost per bucket (and group of `group_by`: {bucket: {group: sums}}), unrounded (rounded to cents over
    the whole period in `parts_finish`)."""
    answer = parts_cost(scope, keys, interval=interval, group_by=group_by, money=lambda value: value or 0)
    answer = answer["parts_cost"]
    if group_by is None:
        return {bucket: {"parts_cost": value} for bucket, value in answer.items()}
    if interval is None:  # a live segment of a grouped question: one bucket, the whole segment
        answer = {None: answer}
    return {
        bucket: {group: {"parts_cost": value} for group, value in groups.items()} for bucket, groups in answer.items()
    }


def parts_finish(scope, keys, raw, *, group_by=None) -> dict:
    if group_by is not None:
        return {"parts_cost": {group: _money(sums.get("parts_cost")) for group, sums in raw.items()}}
    return {"parts_cost": {None: _money(raw.get("parts_cost"))}}


def stock_kpis(scope, keys, *, interval=None, group_by=None) -> dict:
    """Inventory turns and stock-out events of the organisation (whole stock: the location filters are about
    assets and work, not store rooms)."""
    buckets = periods.buckets(scope, interval)
    out = {key: {} for key in keys}
    if "inventory_turns" in keys:
        on_hand = StockLevel.objects.filter(organization=scope.organization, on_hand__gt=0).aggregate(
            value=Sum(ExpressionWrapper(F("on_hand") * F("part__average_cost"), output_field=MONEY))
        )["value"]
        if interval:
            grouped = _issued(scope).annotate(bucket=periods.trunc("created_at", interval, scope.zone))
            issued = {
                periods.bucket_key(r["bucket"], scope.zone): r["amount"]
                for r in grouped.values("bucket").annotate(amount=ISSUED_VALUE).order_by()
            }
        else:
            issued = {None: _issued(scope).aggregate(amount=ISSUED_VALUE)["amount"]}
        for b in buckets:
            value = issued.get(b.key) or Decimal(0)
            out["inventory_turns"][b.key] = round(float(value / on_hand), 4) if on_hand else None
    if "stock_outs" in keys:
        out["stock_outs"] = stock_outs(scope, buckets)
    return out


def stock_outs(scope, buckets) -> dict:
    """Removals that left their part's running ledger sum at a location ≤ 0, per bucket: one query (a window
    over the ledger up to the period's end; the same SQL on PostgreSQL and SQLite)."""
    table = StockMovement._meta.db_table
    cases = ", ".join(
        f"SUM(CASE WHEN created_at >= %s AND created_at < %s THEN 1 ELSE 0 END) AS b{i}" for i in range(len(buckets))
    )
    kinds = ", ".join(["%s"] * len(REMOVALS))
    sql = (
        f"SELECT {cases} FROM (SELECT kind, created_at, quantity, SUM(quantity) OVER "  # noqa: S608 (no user input)
        f"(PARTITION BY part_id, location_id ORDER BY created_at, id) AS running FROM {table} "
        f"WHERE organization_id = %s AND created_at < %s) ledger "
        f"WHERE quantity < 0 AND running <= 0 AND kind IN ({kinds})"
    )
    params = [value for b in buckets for value in (b.start, b.end)]
    params += [scope.organization.pk, scope.end, *REMOVALS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return {b.key: int(row[i] or 0) for i, b in enumerate(buckets)}


def committed_spend(organization) -> Decimal:
    """What open purchase orders (ordered, partly received) still commit: outstanding quantity × unit price."""
    value = PurchaseOrderLine.objects.filter(
        organization=organization, purchase_order__status__in=OPEN_PURCHASES
    ).aggregate(
        value=Sum(ExpressionWrapper((F("quantity") - F("received_quantity")) * F("unit_price"), output_field=MONEY))
    )["value"]
    return _money(value)


def register() -> None:
    registry.register_provider(
        ("parts_cost",),
        parts_cost,
        group_bys=tuple(GROUP),
        rollup=("parts", parts_measures, parts_finish),
        rollup_breakdowns=("asset_type", "location"),
    )
    registry.register_provider(("inventory_turns", "stock_outs"), stock_kpis)
    registry.register_function("committed_spend", committed_spend)
