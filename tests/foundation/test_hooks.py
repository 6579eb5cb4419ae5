"""The hook points (`maintenance_site.hooks`): how a lower app lets a higher one react without importing it."""

from decimal import Decimal

import pytest

from inventory import services as inventory_services
from maintenance_site import hooks
from maintenance_site.errors import Conflict
from scheduling.windows import reports as window_reports
from sla import services as sla_services
from workorders import services as wo_services
from workorders.models import WorkOrder


@pytest.fixture
def point():
    point = hooks.HookPoint("tests_only", "A point of these tests.")
    yield point
    del hooks.POINTS["tests_only"]


def test_a_point_without_receivers_does_nothing(point):
    assert point("anything", key="value") == []
    assert point.pipe("value", "extra") == "value"


def test_several_receivers_run_in_registration_order(point):
    point.register(lambda value: f"first {value}")
    second = point.register(lambda value: f"second {value}")
    point.register(second)  # once only
    assert point("call") == ["first call", "second call"]

    piped = hooks.HookPoint("tests_only_pipe", "A pipe of these tests.")
    try:
        piped.register(lambda value, suffix: value + suffix)
        piped.register(lambda value, suffix: value * 2)
        assert piped.pipe("a", "b") == "abab"
    finally:
        del hooks.POINTS["tests_only_pipe"]


def test_a_point_is_declared_once_and_says_when_it_fires():
    with pytest.raises(ValueError, match="declared twice"):
        hooks.HookPoint("work_order_created", "again")
    for name, point in hooks.POINTS.items():
        assert point.name == name and len(point.__doc__ or "") > 40, name


def test_the_higher_apps_register_in_ready():
    assert hooks.work_order_created.receivers == [sla_services.on_work_order_created]
    assert hooks.work_orders_created.receivers == [sla_services.on_work_orders_created]
    assert hooks.work_order_edited.receivers == [sla_services.on_work_order_edited]
    assert hooks.work_order_transitioned.receivers == [sla_services.on_work_order_transition]
    assert hooks.work_order_sla.receivers == [sla_services.clock_summary]
    assert hooks.work_order_list.receivers == [sla_services.for_work_order_lists]
    assert hooks.work_order_closing.receivers == [inventory_services.release_reservations_for]
    assert hooks.work_order_cancelling.receivers == [inventory_services.settle_parts_on_cancel]
    assert hooks.work_order_parts_cost.receivers == [inventory_services.parts_cost_for]
    assert hooks.work_order_planning.receivers == [window_reports.refuse_work_in_window]


def test_whoever_reacts_to_one_new_order_reacts_to_a_batch_of_them():
    """An app that receives `work_order_created` receives `work_orders_created` too (and the other way round):
    an order created by `create_work_orders_bulk` gets what one created by `create_work_order` gets."""

    def apps(point):
        return sorted(receiver.__module__.split(".")[0] for receiver in point.receivers)

    assert apps(hooks.work_order_created) == apps(hooks.work_orders_created)


@pytest.mark.django_db
def test_a_receiver_refusing_rolls_the_whole_change_back(org_a, planner_a, technician_a):
    order = wo_services.create_work_order(org_a, title="Check", actor=planner_a, assignee=technician_a)

    def refuse(work_order, action, previous_status):
        raise Conflict(f"{work_order.number} may not {action} now.")

    hooks.work_order_transitioned.register(refuse)
    try:
        with pytest.raises(Conflict, match="may not start now"):
            wo_services.start(order, actor=technician_a)
    finally:
        hooks.work_order_transitioned.unregister(refuse)
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.ASSIGNED and order.started_at is None


@pytest.mark.django_db
def test_costs_add_up_what_every_receiver_answers(org_a, planner_a):
    order = wo_services.create_work_order(org_a, title="Check", actor=planner_a)
    assert wo_services.parts_cost(order) == Decimal("0.00")  # the inventory: nothing issued

    def fixed(work_order):
        return Decimal("12.50")

    hooks.work_order_parts_cost.register(fixed)
    try:
        assert wo_services.cost_totals(order)["parts"] == Decimal("12.50")
    finally:
        hooks.work_order_parts_cost.unregister(fixed)
