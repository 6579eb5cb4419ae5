"""`actor` is required on every service that checks a role: a user, or `SYSTEM` for automation.

The services are found by introspection (every public function of the apps' modules with an `actor` parameter),
so a new service that forgets the rule fails here. A forgotten actor and `actor=None` are TypeErrors, never a
silent allow; `SYSTEM` passes the role checks and history names the system user, as it always has for automation.
"""

import copy
import importlib
import inspect
import pickle
import pkgutil

import pytest

from inventory import services as inventory_services
from inventory.models import Part, StockLocation
from maintenance_site import audit
from maintenance_site.errors import PermissionDeniedError
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.actors import is_system
from maintenance_site.tenancy.roles import Action
from scenarios import services as scenario_services
from scenarios.models import ScenarioActivity
from sla import services as sla_services
from workorders import services as work_orders
from workorders.models import WorkOrder

APPS = ["maintenance_site", "assets", "workorders", "inventory", "sla", "scheduling", "scenarios"]
# The actor machinery itself (its parameter is the actor being checked or resolved), and what only runs as a process.
NOT_SERVICES = {
    "maintenance_site.audit",
    "maintenance_site.tenancy.actors",
    "maintenance_site.asgi",
    "maintenance_site.wsgi",
}

# Services that must be found: one or more per app and kind (a discovery that finds nothing proves nothing).
KNOWN = {
    "maintenance_site.tenancy.services.require_role",
    "assets.meters.create_meter",
    "assets.meters.record_readings",
    "workorders.services.create_work_order",
    "workorders.services.transition",
    "workorders.services.check_may_work_on",
    "workorders.services.add_comment",
    "workorders.services.approve_request",
    "inventory.services.issue_to_work_order",
    "inventory.services.receive_stock",
    "inventory.services.create_purchase_order",
    "sla.services.create_policy",
    "sla.services.start_clocks_for_open_orders",
    "scheduling.preventive.services.create_schedule",
    "scheduling.preventive.services.generate_now",
    "scheduling.preventive.generation.generate_due_work_orders",
    "scheduling.windows.services.create_window",
    "scheduling.windows.mode.enter_maintenance_mode",
    "scenarios.services.activate_scenario",
    "scenarios.services.stop_all",
    "scenarios.presets.apply_preset",
    "scenarios.rollback.rollback",
}


def _modules():
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{app}."):
            parts = info.name.split(".")
            if "migrations" in parts or "management" in parts or info.name in NOT_SERVICES:
                continue
            yield importlib.import_module(info.name)


def _services_taking_an_actor() -> dict[str, object]:
    found = {}
    for module in _modules():
        for name, function in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(function) or function.__module__ != module.__name__:
                continue
            if "actor" in inspect.signature(function).parameters:  # follows functools.wraps to the service
                found[f"{module.__name__}.{name}"] = function
    return found


SERVICES = _services_taking_an_actor()


def _placeholders(function) -> tuple[list, dict]:
    """Stand-ins for every required argument except `actor` (never used: the actor is checked first)."""
    args, kwargs = [], {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == "actor" or parameter.default is not inspect.Parameter.empty:
            continue
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            args.append(object())
        elif parameter.kind == parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = object()
    return args, kwargs


def test_the_discovery_finds_the_role_checking_services():
    assert len(SERVICES) >= 100, sorted(SERVICES)
    assert not KNOWN - set(SERVICES), sorted(KNOWN - set(SERVICES))


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_actor_is_keyword_only_and_has_no_default(name):
    parameter = inspect.signature(SERVICES[name]).parameters["actor"]
    assert parameter.kind == parameter.KEYWORD_ONLY, f"{name}: write `*, actor`"
    assert parameter.default is inspect.Parameter.empty, f"{name}: actor has a default ({parameter.default!r})"


# No database: the actor is checked before anything else (a query would fail these tests).
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_a_call_without_actor_is_a_type_error(name):
    args, kwargs = _placeholders(SERVICES[name])
    with pytest.raises(TypeError, match="actor"):
        SERVICES[name](*args, **kwargs)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_actor_none_is_a_type_error_not_an_allow(name):
    args, kwargs = _placeholders(SERVICES[name])
    with pytest.raises(TypeError, match="None is not an actor"):
        SERVICES[name](*args, actor=None, **kwargs)


def test_none_is_refused_with_real_arguments_and_changes_nothing(org_a):
    logged = ScenarioActivity.objects.count()
    with pytest.raises(TypeError, match="None is not an actor"):
        work_orders.create_work_order(org_a, title="Nobody asked", actor=None)
    with pytest.raises(TypeError, match="None is not an actor"):
        tenancy_services.require_role(org_a.pk, Action.MANAGE_SLA, actor=None)
    with pytest.raises(TypeError, match="None is not an actor"):
        scenario_services.stop_all(actor=None, reason="test")
    assert not WorkOrder.objects.exists()
    assert ScenarioActivity.objects.count() == logged


def test_system_passes_the_role_check_a_person_is_checked_as_before(org_a, viewer_a, manager_b):
    assert tenancy_services.require_role(org_a.pk, Action.MANAGE_SLA, actor=SYSTEM) is None
    with pytest.raises(PermissionDeniedError, match="Viewer"):
        tenancy_services.require_role(org_a.pk, Action.MANAGE_SLA, actor=viewer_a)
    with pytest.raises(PermissionDeniedError, match="not a member"):
        tenancy_services.require_role(org_a.pk, Action.VIEW, actor=manager_b)


def test_what_system_writes_history_names_the_system_user(org_a):
    order = work_orders.create_work_order(org_a, title="Generated check", actor=SYSTEM)
    work_orders.transition(order, "cancel", actor=SYSTEM, reason="Not needed")
    system = audit.system_user()
    assert {row.history_user for row in order.history.all()} == {system}
    assert system.username == audit.SYSTEM_USERNAME and not system.is_active
    assert WorkOrder.objects.get(pk=order.pk).requested_by == system


def test_the_ledger_and_the_scenario_log_name_the_system_user_too(org_a):
    part = inventory_services.create_part(org_a, sku="F-1", name="Filter", actor=SYSTEM)
    store = inventory_services.create_stock_location(org_a, name="Store", actor=SYSTEM)
    movement = inventory_services.receive_stock(part, store, 4, "2.50", actor=SYSTEM)
    assert movement.user == audit.system_user()
    assert Part.objects.get(pk=part.pk).history.latest().history_user == audit.system_user()
    assert StockLocation.objects.get(pk=store.pk).history.get().history_user == audit.system_user()
    scenario_services.stop_all(actor=SYSTEM, reason="test")
    assert ScenarioActivity.objects.latest("pk").actor == audit.system_user()


def test_a_person_keeps_their_name_in_history(org_a, manager_a):
    calendar = sla_services.create_calendar(org_a, name="24/7", always_open=True, actor=manager_a)
    assert calendar.history.get().history_user == manager_a


def test_system_is_one_sentinel_that_says_what_it_is():
    assert repr(SYSTEM) == "SYSTEM"
    assert copy.deepcopy(SYSTEM) is SYSTEM and pickle.loads(pickle.dumps(SYSTEM)) is SYSTEM
    assert is_system(SYSTEM)
    with pytest.raises(TypeError, match="None is not an actor"):
        is_system(None)
