"""The work-order lifecycle and its rules, at the service level."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from assets import services as asset_services
from assets.models import Asset
from maintenance_site.errors import Conflict, InvalidInput, PermissionDeniedError
from maintenance_site.events.models import Event
from maintenance_site.tenancy import services as tenancy
from maintenance_site.tenancy.roles import Role
from tests.conftest import make_user
from workorders import services
from workorders.models import TRANSITIONS, ItemKind, Procedure, ProcedureItem, WorkOrder

S = WorkOrder.Status


def in_status(order, status, planner, technician, **extra):
    """Walk an order to `status` through the services."""
    path = {
        S.OPEN: [],
        S.ASSIGNED: [("assign", {"assignee": technician})],
        S.IN_PROGRESS: [("assign", {"assignee": technician}), ("start", {})],
        S.ON_HOLD: [("assign", {"assignee": technician}), ("start", {}), ("hold", {"reason": "waiting"})],
        S.COMPLETED: [("assign", {"assignee": technician}), ("start", {}), ("complete", {})],
        S.VERIFIED: [("assign", {"assignee": technician}), ("start", {}), ("complete", {}), ("verify", {})],
        S.CANCELLED: [("cancel", {"reason": "duplicate"})],
    }[status]
    for action, kwargs in path:
        order = services.transition(order, action, actor=planner, **kwargs)
    return order


def test_numbers_come_from_a_per_organisation_counter(org_a, org_b, planner_a, manager_b):
    first = services.create_work_order(org_a, title="a", actor=planner_a)
    second = services.create_work_order(org_a, title="b", actor=planner_a)
    other = services.create_work_order(org_b, title="c", actor=manager_b)
    assert (first.number, second.number, other.number) == ("WO-000001", "WO-000002", "WO-000001")


def test_location_defaults_to_the_assets(order, pump):
    assert order.location == pump.location


def test_creation_is_audited_and_published(order, planner_a):
    assert order.history.get().history_user == planner_a
    assert Event.objects.filter(type="work-order:created", payload__number=order.number).exists()


# --- every transition, allowed and refused ----------------------------------------------------------

ALLOWED = [(action, source) for action, (sources, _) in TRANSITIONS.items() for source in sources]
REFUSED = [
    (action, source) for action, (sources, _) in TRANSITIONS.items() for source in S.values if source not in sources
]


@pytest.mark.parametrize(("action", "source"), ALLOWED)
def test_allowed_transition(org_a, order, planner_a, technician_a, action, source):
    org_a.require_verification = True
    org_a.save()
    order = in_status(order, source, planner_a, technician_a)
    kwargs = {"assignee": technician_a} if action == "assign" else {}
    if action in ("hold", "reject", "reopen", "cancel"):
        kwargs["reason"] = "because"
    result = services.transition(order, action, actor=planner_a, **kwargs)
    assert result.status == (TRANSITIONS[action][1] or source)


@pytest.mark.parametrize(("action", "source"), REFUSED)
def test_refused_transition_names_the_state_and_the_options(org_a, order, planner_a, technician_a, action, source):
    org_a.require_verification = True
    org_a.save()
    order = in_status(order, source, planner_a, technician_a)
    with pytest.raises(Conflict) as refused:
        services.transition(order, action, actor=planner_a, reason="r", assignee=technician_a)
    error = refused.value
    assert error.code == "invalid_transition"
    assert WorkOrder.Status(source).label.lower() in error.message
    assert error.extra["allowed_actions"] == services.allowed_actions(order)
    order.refresh_from_db()
    assert order.status == source


@pytest.mark.parametrize("action", ["hold", "cancel"])
def test_reason_is_required(order, planner_a, technician_a, action):
    order = in_status(order, S.IN_PROGRESS, planner_a, technician_a)
    with pytest.raises(InvalidInput, match="reason"):
        services.transition(order, action, actor=planner_a, reason="  ")


def test_verification_off_makes_completion_final(order, planner_a, technician_a):
    order = in_status(order, S.COMPLETED, planner_a, technician_a)
    with pytest.raises(Conflict, match="does not require verification"):
        services.transition(order, "verify", actor=planner_a)
    assert "verify" not in services.allowed_actions(order)


def test_verification_on_verify_or_send_back(org_a, order, planner_a, technician_a):
    org_a.require_verification = True
    org_a.save()
    order = in_status(order, S.COMPLETED, planner_a, technician_a)
    sent_back = services.transition(order, "reject", actor=planner_a, reason="leaking still")
    assert sent_back.status == S.IN_PROGRESS and sent_back.completed_at is None
    services.complete(sent_back, actor=technician_a)
    verified = services.transition(sent_back, "verify", actor=planner_a)
    assert verified.status == S.VERIFIED and verified.verified_at


def test_technician_cannot_verify(org_a, order, planner_a, technician_a):
    org_a.require_verification = True
    org_a.save()
    order = in_status(order, S.COMPLETED, planner_a, technician_a)
    with pytest.raises(PermissionDeniedError):
        services.transition(order, "verify", actor=technician_a)


def test_reopen_only_within_the_period(org_a, order, planner_a, technician_a):
    order = in_status(order, S.COMPLETED, planner_a, technician_a)
    WorkOrder.objects.filter(pk=order.pk).update(
        completed_at=timezone.now() - timedelta(days=org_a.reopen_period_days + 1)
    )
    with pytest.raises(Conflict, match="follow-up"):
        services.transition(order, "reopen", actor=planner_a, reason="failed again")
    WorkOrder.objects.filter(pk=order.pk).update(completed_at=timezone.now() - timedelta(days=1))
    assert services.transition(order, "reopen", actor=planner_a, reason="failed again").status == S.IN_PROGRESS


# --- who may act --------------------------------------------------------------------------------------


def test_technician_acts_only_on_own_work(org_a, order, planner_a, technician_a):
    other = make_user("other-tech")
    tenancy.add_member(org_a, other, Role.TECHNICIAN)
    services.assign(order, technician_a, actor=planner_a)
    with pytest.raises(PermissionDeniedError, match="not assigned to you"):
        services.start(order, actor=other)
    assert services.start(order, actor=technician_a).status == S.IN_PROGRESS


def test_technician_claims_open_work_when_allowed(org_a, order, technician_a):
    started = services.start(order, actor=technician_a)
    assert (started.status, started.assignee) == (S.IN_PROGRESS, technician_a)


def test_claiming_refused_when_the_organisation_disallows_it(org_a, order, technician_a):
    org_a.technicians_can_claim = False
    org_a.save()
    with pytest.raises(Conflict, match="does not let technicians claim"):
        services.start(order, actor=technician_a)


def test_emergency_starts_from_open_even_without_claiming(org_a, planner_a, technician_a):
    org_a.technicians_can_claim = False
    org_a.save()
    emergency = services.create_work_order(org_a, title="Flood", type="emergency", actor=planner_a)
    assert services.start(emergency, actor=technician_a).status == S.IN_PROGRESS


def test_assignee_must_be_a_technician_of_the_organisation(org_a, order, planner_a, manager_b, viewer_a):
    with pytest.raises(InvalidInput, match="not a member"):
        services.assign(order, manager_b, actor=planner_a)
    with pytest.raises(InvalidInput, match="cannot carry out work"):
        services.assign(order, viewer_a, actor=planner_a)


def test_asset_of_another_organisation_is_refused(org_a, org_b, planner_a):
    foreign = asset_services.create_asset(org_b, code="X", name="x")
    with pytest.raises(InvalidInput, match="another organisation"):
        services.create_work_order(org_a, title="t", asset=foreign, actor=planner_a)


def test_viewer_cannot_create(org_a, viewer_a):
    with pytest.raises(PermissionDeniedError):
        services.create_work_order(org_a, title="t", actor=viewer_a)


def test_stranger_cannot_touch_the_order(order, manager_b):
    with pytest.raises(PermissionDeniedError):
        services.transition(order, "cancel", actor=manager_b, reason="mine now")


# --- checklists ----------------------------------------------------------------------------------------


@pytest.fixture
def procedure(org_a):
    proc = Procedure.objects.create(organization=org_a, name="Pump service")
    for position, (text, kind, required) in enumerate(
        [
            ("Isolate power", ItemKind.TICK, True),
            ("Seal intact", ItemKind.PASS_FAIL, True),
            ("Vibration", ItemKind.NUMBER, True),
            ("Remarks", ItemKind.TEXT, False),
        ]
    ):
        ProcedureItem.objects.create(
            organization=org_a,
            procedure=proc,
            position=position,
            text=text,
            kind=kind,
            required=required,
            unit="mm/s" if kind == ItemKind.NUMBER else "",
        )
    return proc


def test_completion_refused_naming_unfinished_required_items(org_a, planner_a, technician_a, procedure):
    order = services.create_work_order(
        org_a, title="Service", actor=planner_a, procedure=procedure, assignee=technician_a
    )
    services.start(order, actor=technician_a)
    isolate = order.checklist.get(text="Isolate power")
    services.record_checklist_result(isolate, actor=technician_a)
    with pytest.raises(Conflict) as refused:
        services.complete(order, actor=technician_a)
    assert refused.value.extra["missing_items"] == ["Seal intact", "Vibration"]
    assert "“Seal intact”; “Vibration”" in refused.value.message
    services.record_checklist_result(order.checklist.get(text="Seal intact"), actor=technician_a, passed=True)
    services.record_checklist_result(order.checklist.get(text="Vibration"), actor=technician_a, number_value="2.5")
    assert services.complete(order, actor=technician_a).status == S.COMPLETED


def test_checklist_results_are_validated(org_a, planner_a, technician_a, procedure):
    order = services.create_work_order(
        org_a, title="Service", actor=planner_a, procedure=procedure, assignee=technician_a
    )
    with pytest.raises(InvalidInput, match="pass or a fail"):
        services.record_checklist_result(order.checklist.get(text="Seal intact"), actor=technician_a)
    with pytest.raises(InvalidInput, match="not a number"):
        services.record_checklist_result(order.checklist.get(text="Vibration"), actor=technician_a, number_value="abc")


def test_checklist_replay_with_the_same_client_id_applies_once(org_a, planner_a, technician_a, procedure):
    order = services.create_work_order(
        org_a, title="Service", actor=planner_a, procedure=procedure, assignee=technician_a
    )
    item = order.checklist.get(text="Isolate power")
    services.record_checklist_result(item, actor=technician_a, client_id="offline-1")
    services.record_checklist_result(item, actor=technician_a, client_id="offline-1")
    assert item.history.count() == 2  # creation + one tick


def test_failed_item_raises_a_linked_follow_up(org_a, planner_a, technician_a, procedure):
    order = services.create_work_order(
        org_a, title="Service", actor=planner_a, procedure=procedure, assignee=technician_a
    )
    seal = order.checklist.get(text="Seal intact")
    services.record_checklist_result(seal, actor=technician_a, passed=False)
    follow_up = services.raise_follow_up(seal, actor=technician_a)
    assert follow_up.parent == order and follow_up.source == WorkOrder.Source.FOLLOW_UP
    assert "Seal intact" in follow_up.title
    assert services.raise_follow_up(seal, actor=technician_a) == follow_up  # once
    passed = order.checklist.get(text="Isolate power")
    with pytest.raises(Conflict):
        services.raise_follow_up(passed, actor=technician_a)


# --- costs ----------------------------------------------------------------------------------------------


def test_cost_totals_are_computed_from_time_and_cost_lines(org_a, order, planner_a, technician_a):
    tenancy.add_member(org_a, technician_a, Role.TECHNICIAN, hourly_rate=Decimal("60"))
    services.assign(order, technician_a, actor=planner_a)
    services.log_time(order, actor=technician_a, minutes=90)
    tenancy.add_member(org_a, technician_a, Role.TECHNICIAN, hourly_rate=Decimal("100"))  # later raise
    services.log_time(order, actor=technician_a, minutes=30)
    services.add_cost_line(order, actor=planner_a, description="Crane hire", amount="250.00")
    totals = services.cost_totals(order)
    assert totals == {
        "labour": Decimal("140.00"),  # 90 min at 60 + 30 min at 100: the rate copied at entry time
        "parts": Decimal("0.00"),
        "other": Decimal("250.00"),
        "total": Decimal("390.00"),
    }


@pytest.mark.parametrize("minutes", [0, -5, "ten", 2000])
def test_bad_minutes_are_refused(order, planner_a, technician_a, minutes):
    services.assign(order, technician_a, actor=planner_a)
    with pytest.raises(InvalidInput):
        services.log_time(order, actor=technician_a, minutes=minutes)
    assert not order.time_entries.exists()


def test_one_running_timer_per_person(org_a, order, planner_a, technician_a):
    services.assign(order, technician_a, actor=planner_a)
    services.start_timer(order, actor=technician_a)
    with pytest.raises(Conflict, match="already running"):
        services.start_timer(order, actor=technician_a)
    entry = services.stop_timer(order, actor=technician_a)
    assert entry.minutes >= 1


# --- downtime and deletion -------------------------------------------------------------------------------


def test_work_needing_downtime_records_it(org_a, planner_a, technician_a, pump):
    order = services.create_work_order(
        org_a, title="Overhaul", asset=pump, needs_downtime=True, actor=planner_a, assignee=technician_a
    )
    services.start(order, actor=technician_a)
    pump.refresh_from_db()
    assert pump.status == Asset.Status.DOWN
    services.complete(order, actor=technician_a)
    pump.refresh_from_db()
    downtime = pump.downtimes.get()
    assert pump.status == Asset.Status.OPERATIONAL
    assert downtime.ended_at
    assert downtime.work_order_link.caused_by == order and downtime.work_order_link.ended_by == order


def test_marking_an_asset_down_and_up_records_downtime(org_a, pump):
    asset_services.update_asset(pump, status=Asset.Status.DOWN, downtime_reason="bearing noise")
    asset_services.update_asset(pump, status=Asset.Status.OPERATIONAL)
    downtime = pump.downtimes.get()
    assert downtime.reason == "bearing noise" and downtime.ended_at is not None


def test_deleting_an_order_with_activity_is_refused(order, planner_a):
    services.add_comment(order, actor=planner_a, body="checked the spares")
    with pytest.raises(Conflict, match="cancel it instead"):
        services.delete_work_order(order, actor=planner_a)
    assert WorkOrder.objects.filter(pk=order.pk).exists()


def test_deleting_a_fresh_order_works(order, planner_a):
    services.delete_work_order(order, actor=planner_a)
    assert not WorkOrder.objects.filter(pk=order.pk).exists()


# --- events after commit ---------------------------------------------------------------------------------


def test_completion_publishes_completed(order, planner_a, technician_a):
    in_status(order, S.COMPLETED, planner_a, technician_a)
    types = list(Event.objects.filter(payload__id=order.pk).order_by("id").values_list("type", flat=True))
    assert types == ["work-order:created", "work-order:updated", "work-order:updated", "work-order:completed"]


def test_events_of_a_failed_transition_do_not_exist(order, planner_a):
    before = Event.objects.count()
    with pytest.raises(Conflict):
        services.transition(order, "complete", actor=planner_a)
    assert Event.objects.count() == before


def test_dispatch_runs_only_after_commit(org_a, planner_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.create_work_order(org_a, title="later", actor=planner_a)
        assert Event.objects.numbered().count() == 0
    assert len(callbacks) == 1  # one dispatch per transaction
