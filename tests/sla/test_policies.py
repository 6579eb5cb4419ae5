"""Calendars and policies at the service level: invalid ones refused with a clear message, the most specific
policy matching, and who may change them."""

from datetime import date, time

import pytest

from maintenance_site.errors import Conflict, InvalidInput, PermissionDeniedError
from maintenance_site.tenancy import SYSTEM
from sla import services
from sla.models import EscalationStep, SLAClock, SLAPolicy, WorkingHours
from tests.sla.conftest import WORKING_HOURS
from workorders import services as work_orders

# --- invalid policies and calendars ------------------------------------------------------------------


def test_resolution_shorter_than_response_is_refused(org_a, business):
    with pytest.raises(InvalidInput) as refused:
        services.create_policy(
            org_a, name="Odd", calendar=business, response_minutes=120, resolution_minutes=60, actor=SYSTEM
        )
    assert "resolution target (60 min) cannot be shorter than the response target (120 min)" in refused.value.message
    assert list(refused.value.fields) == ["resolution_minutes"]
    assert not SLAPolicy.objects.exists()


def test_a_calendar_without_working_time_is_refused(org_a):
    with pytest.raises(InvalidInput, match="needs working time: add working hours, or make it 24/7") as refused:
        services.create_calendar(org_a, name="Empty", actor=SYSTEM)
    assert "hours" in refused.value.fields


def test_a_policy_on_a_calendar_without_working_time_is_refused(org_a, business):
    WorkingHours.objects.filter(calendar=business).delete()  # as an old row or a direct edit could leave it
    with pytest.raises(InvalidInput, match="has no working time") as refused:
        services.create_policy(
            org_a, name="P", calendar=business, response_minutes=10, resolution_minutes=20, actor=SYSTEM
        )
    assert "calendar" in refused.value.fields


def test_equally_specific_overlapping_policies_are_refused(org_a, business, medium_policy):
    with pytest.raises(InvalidInput) as refused:
        services.create_policy(
            org_a,
            name="Also medium",
            priority="medium",
            calendar=business,
            response_minutes=30,
            resolution_minutes=90,
            actor=SYSTEM,
        )
    message = refused.value.message
    assert "“Medium”" in message and "just as specific" in message and "could match both" in message
    # priority medium vs type emergency: both one criterion, and a medium emergency would match both
    with pytest.raises(InvalidInput, match="just as specific"):
        services.create_policy(
            org_a,
            name="Emergencies",
            work_order_type="emergency",
            calendar=business,
            response_minutes=5,
            resolution_minutes=60,
            actor=SYSTEM,
        )


def test_policies_that_cannot_match_the_same_order_or_differ_in_specificity_are_accepted(org_a, business, site):
    def policy(name, **criteria):
        return services.create_policy(
            org_a, name=name, calendar=business, response_minutes=60, resolution_minutes=240, actor=SYSTEM, **criteria
        )

    policy("Default")  # no criterion: the fallback
    policy("Low", priority="low")
    policy("High", priority="high")  # excludes "Low"
    policy("High emergencies", priority="high", work_order_type="emergency")  # more specific
    policy("Plant", location=site["plant"])
    policy("Hall", location=site["hall"])  # deeper location: more specific than Plant
    policy("Depot", location=site["depot"])  # apart from Plant
    assert SLAPolicy.objects.count() == 7
    with pytest.raises(InvalidInput, match="“Plant”"):
        policy("Plant again", location=site["plant"])


def test_a_retired_policy_does_not_count_as_an_overlap(org_a, business, medium_policy):
    services.update_policy(medium_policy, is_active=False, actor=SYSTEM)
    services.create_policy(
        org_a,
        name="Medium v2",
        priority="medium",
        calendar=business,
        response_minutes=30,
        resolution_minutes=90,
        actor=SYSTEM,
    )
    with pytest.raises(InvalidInput, match="just as specific"):
        services.update_policy(medium_policy, is_active=True, actor=SYSTEM)


def test_overlapping_or_malformed_working_hours_are_refused(org_a):
    with pytest.raises(InvalidInput, match="overlaps"):
        services.create_calendar(
            org_a,
            name="Overlap",
            hours=[
                {"weekday": 0, "start": time(8), "end": time(12)},
                {"weekday": 0, "start": time(11), "end": time(13)},
            ],
            actor=SYSTEM,
        )
    with pytest.raises(InvalidInput, match="must end after it starts") as refused:
        services.create_calendar(
            org_a, name="Backwards", hours=[{"weekday": 0, "start": time(12), "end": time(8)}], actor=SYSTEM
        )
    assert "hours.0.end" in refused.value.fields


def test_calendar_update_replaces_rows_and_records_history(org_a, manager_a, business):
    services.update_calendar(
        business, actor=manager_a, hours=WORKING_HOURS[:2], holidays=[{"date": date(2026, 12, 25), "name": "Xmas"}]
    )
    assert business.hours.count() == 2
    assert list(business.holidays.values_list("name", flat=True)) == ["Xmas"]
    assert business.holidays.get().history.get().history_user == manager_a
    with pytest.raises(InvalidInput, match="needs working time"):
        services.update_calendar(business, hours=[], actor=SYSTEM)


def test_escalation_steps_are_checked(org_a, business, technician_a, viewer_a):
    def create(steps):
        return services.create_policy(
            org_a,
            name="P",
            calendar=business,
            response_minutes=10,
            resolution_minutes=20,
            escalation_steps=steps,
            actor=SYSTEM,
        )

    with pytest.raises(InvalidInput, match="Escalation step 1: .*roles to notify"):
        create([{"kind": "notify"}])
    with pytest.raises(InvalidInput, match="Escalation step 2: .*who to reassign"):
        create([{"kind": "notify", "notify_roles": ["manager"]}, {"kind": "reassign"}])
    with pytest.raises(InvalidInput, match="cannot be given work"):
        create([{"kind": "reassign", "reassign_to": viewer_a}])
    with pytest.raises(InvalidInput, match="not a role"):
        create([{"kind": "notify", "notify_roles": ["boss"]}])
    policy = create([{"kind": "reassign", "reassign_to": technician_a}, {"kind": "raise_priority", "level": "warning"}])
    assert list(policy.escalation_steps.values_list("position", "kind")) == [(1, "reassign"), (2, "raise_priority")]


def test_a_policy_in_use_cannot_be_deleted_only_retired(org_a, planner_a, medium_policy, clock):
    work_orders.create_work_order(org_a, title="Covered", actor=planner_a)
    with pytest.raises(Conflict, match="retire it instead"):
        services.delete_policy(medium_policy, actor=SYSTEM)
    unused = services.create_policy(
        org_a,
        name="Unused",
        priority="low",
        calendar=medium_policy.calendar,
        response_minutes=1,
        resolution_minutes=2,
        actor=SYSTEM,
    )
    services.delete_policy(unused, actor=SYSTEM)
    assert not SLAPolicy.objects.filter(pk=unused.pk).exists()


def test_only_roles_that_manage_slas_change_them(org_a, manager_a, planner_a, business):
    with pytest.raises(PermissionDeniedError, match="may not manage SLA policies"):
        services.create_policy(
            org_a, name="P", calendar=business, response_minutes=1, resolution_minutes=2, actor=planner_a
        )
    policy = services.create_policy(
        org_a, name="P", calendar=business, response_minutes=1, resolution_minutes=2, actor=manager_a
    )
    assert policy.history.get().history_user == manager_a


def test_another_organisations_calendar_or_location_is_refused(org_a, org_b):
    calendar_b = services.create_calendar(org_b, name="B hours", always_open=True, actor=SYSTEM)
    with pytest.raises(InvalidInput, match="another organisation"):
        services.create_policy(
            org_a, name="P", calendar=calendar_b, response_minutes=1, resolution_minutes=2, actor=SYSTEM
        )


# --- which policy applies ----------------------------------------------------------------------------


def test_the_most_specific_policy_wins(org_a, planner_a, business, site, pump):
    def policy(name, **criteria):
        return services.create_policy(
            org_a, name=name, calendar=business, response_minutes=60, resolution_minutes=240, actor=SYSTEM, **criteria
        )

    default = policy("Default")
    high = policy("High", priority="high")
    high_critical_assets = policy("High on critical assets", priority="high", asset_criticality="critical")
    plant = policy("Plant", location=site["plant"])
    hall = policy("Hall", location=site["hall"])
    high_in_plant = policy("High in plant", priority="high", location=site["plant"])

    def order(**fields):
        return work_orders.create_work_order(org_a, title="x", actor=planner_a, **fields)

    assert services.match_policy(order()) == default
    assert services.match_policy(order(location=site["depot"])) == default
    assert services.match_policy(order(location=site["plant"])) == plant
    assert services.match_policy(order(asset=pump)) == hall  # the pump room is inside Hall 1, inside Plant
    assert services.match_policy(order(priority="high", location=site["depot"])) == high
    assert services.match_policy(order(priority="high", asset=pump)) == high_in_plant
    pump.criticality = "critical"
    pump.save()
    assert services.match_policy(order(priority="high", location=site["depot"], asset=pump)) == high_critical_assets


def test_inactive_policies_do_not_match(org_a, planner_a, medium_policy):
    services.update_policy(medium_policy, is_active=False, actor=SYSTEM)
    order = work_orders.create_work_order(org_a, title="x", actor=planner_a)
    assert services.match_policy(order) is None
    assert not SLAClock.objects.filter(work_order=order).exists()


def test_escalation_step_kinds_are_described(org_a, business, technician_a):
    policy = services.create_policy(
        org_a,
        name="P",
        calendar=business,
        response_minutes=1,
        resolution_minutes=2,
        escalation_steps=[
            {"kind": "notify", "notify_roles": ["manager"], "notify_assignee": True},
            {"kind": "raise_priority", "raise_to": "critical"},
            {"kind": "reassign", "reassign_to": technician_a},
        ],
        actor=SYSTEM,
    )
    descriptions = [step.describe() for step in policy.escalation_steps.all()]
    assert descriptions == ["notify managers, the assignee", "raise priority to critical", "reassign to technician-a"]
    assert EscalationStep.objects.count() == 3
