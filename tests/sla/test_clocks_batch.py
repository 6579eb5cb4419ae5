"""`on_work_orders_created`, the batch form of the "order created" hook (the preventive generator's): the same
clocks as `on_work_order_created` gives one order at a time — the most specific policy, business deadlines,
a pause for an order created on hold, a late response recorded — in a number of queries that does not grow
with the orders."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from maintenance_site import audit
from maintenance_site.tenancy import SYSTEM
from sla import services
from sla.models import SLAClock, SLAPolicy
from tests.sla.conftest import berlin
from workorders import services as work_orders

COMPARED = [
    "work_order_id",
    "policy_id",
    "calendar_id",
    "response_minutes",
    "resolution_minutes",
    "warning_percent",
    "pause_statuses",
    "started_at",
    "paused_since",
    "paused_seconds",
    "response_due_at",
    "response_warning_at",
    "response_state",
    "response_met_at",
    "response_breached_at",
    "resolution_due_at",
    "resolution_warning_at",
    "resolution_state",
]


def _clocks(orders) -> list[tuple]:
    rows = SLAClock.objects.filter(work_order__in=orders).order_by("work_order_id")
    return [tuple(getattr(clock, name) for name in COMPARED) for clock in rows]


def _policies(org_a, business, always, site):
    def policy(name, calendar=business, **criteria):
        return services.create_policy(
            org_a, name=name, calendar=calendar, response_minutes=60, resolution_minutes=240, actor=SYSTEM, **criteria
        )

    policy("Default")
    policy("High", calendar=always, priority="high")
    policy("High on critical assets", priority="high", asset_criticality="critical")
    policy("Plant", location=site["plant"])
    policy("Hall", location=site["hall"])
    policy("High in plant", calendar=always, priority="high", location=site["plant"])


def _orders(org_a, org_b, manager_b, planner_a, site, pump, count: int):
    def order(**fields):
        return work_orders.create_work_order(org_a, title="x", actor=planner_a, **fields)

    kinds = [
        {},
        {"location": site["depot"]},
        {"location": site["plant"]},
        {"asset": pump},
        {"priority": "high", "location": site["depot"]},
        {"priority": "high", "asset": pump},
    ]
    made = [order(**kinds[n % len(kinds)]) for n in range(count)]
    made.append(work_orders.create_work_order(org_b, title="theirs", actor=manager_b))
    return made


def test_the_batch_gives_the_clocks_one_by_one_gives(
    clock, org_a, org_b, manager_b, planner_a, business, always, site, pump
):
    _policies(org_a, business, always, site)
    orders = _orders(org_a, org_b, manager_b, planner_a, site, pump, 12)
    one_by_one = _clocks(orders)  # the work-order service called on_work_order_created for each
    winners = {row[COMPARED.index("policy_id")] for row in one_by_one}
    assert len(one_by_one) == 12 and len(winners) == 5  # org B has no policy; each kind of order its own policy
    SLAClock.objects.all().delete()
    SLAClock.history.model.objects.all().delete()  # the rows of the clocks and of their deletion
    with audit.acting_as(audit.system_user()):
        services.on_work_orders_created(orders)
    assert _clocks(orders) == one_by_one
    reasons = set(SLAClock.history.model.objects.values_list("history_change_reason", flat=True))
    names = SLAPolicy.objects.filter(pk__in=winners).values_list("name", flat=True)
    assert reasons == {f"started under “{name}”" for name in names}
    assert set(SLAClock.history.model.objects.values_list("history_user__username", flat=True)) == {
        audit.SYSTEM_USERNAME
    }


def test_an_order_started_or_on_hold_gets_the_same_clock_as_one_by_one(clock, org_a, planner_a, technician_a, business):
    services.create_policy(
        org_a,
        name="Medium",
        priority="medium",
        calendar=business,
        response_minutes=60,
        resolution_minutes=240,
        pause_statuses=["on_hold"],
        actor=SYSTEM,
    )
    order = work_orders.create_work_order(org_a, title="Late start", actor=planner_a, assignee=technician_a)
    clock.set(berlin(2026, 3, 2, 11, 0))  # two business hours later: the response is late
    order = work_orders.start(order, actor=technician_a)
    order = work_orders.hold(order, reason="waiting for a part", actor=technician_a)
    SLAClock.objects.all().delete()
    services.on_work_order_created(order)
    one_by_one = _clocks([order])
    assert one_by_one[0][COMPARED.index("response_state")] == "breached"
    assert one_by_one[0][COMPARED.index("paused_since")] == berlin(2026, 3, 2, 11, 0)
    SLAClock.objects.all().delete()
    services.on_work_orders_created([order])
    assert _clocks([order]) == one_by_one


def test_the_queries_do_not_grow_with_the_orders(
    clock, org_a, org_b, manager_b, planner_a, business, always, site, pump
):
    _policies(org_a, business, always, site)
    counts = []
    for size in (6, 30):  # every kind of order (so every calendar) in both
        orders = _orders(org_a, org_b, manager_b, planner_a, site, pump, size)
        SLAClock.objects.filter(work_order__in=orders).delete()
        with CaptureQueriesContext(connection) as captured:
            services.on_work_orders_created(orders)
        assert SLAClock.objects.filter(work_order__in=orders).count() == size  # not the org B order
        counts.append(len(captured))
    assert counts[0] == counts[1]
