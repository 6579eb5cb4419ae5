"""The SLA back office: managers edit calendars (hours, holidays) and policies (escalation steps) through the
services; invalid policies are form errors; planners only read; another organisation's rows are 404s;
violations and clocks are read-only."""

from sla import services
from sla.models import BusinessCalendar, EscalationStep, SLAPolicy
from tests.sla.conftest import berlin
from workorders import services as work_orders

CALENDARS = "/admin/sla/businesscalendar/"
POLICIES = "/admin/sla/slapolicy/"
VIOLATIONS = "/admin/sla/slaviolation/"
CLOCKS = "/admin/sla/slaclock/"


def formset(prefix, rows=(), initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"{prefix}-{index}-{name}"] = value
    return data


def calendar_form(name="Office", always_open=False, hours=(), holidays=()):
    data = {"name": name, "time_zone": "", **formset("hours", hours), **formset("holidays", holidays)}
    if always_open:
        data["always_open"] = "on"
    return data


def policy_form(calendar, steps=(), **fields):
    data = {
        "name": "Critical",
        "is_active": "on",
        "priority": "critical",
        "work_order_type": "",
        "asset_criticality": "",
        "location": "",
        "calendar": calendar.pk,
        "response_minutes": "60",
        "resolution_minutes": "240",
        "warning_percent": "80",
        "pause_statuses": ["on_hold"],
        **formset("escalation_steps", steps),
    }
    data.update(fields)
    return data


def errors_of(response) -> str:
    adminform = response.context["adminform"]
    messages = [str(error) for errors in adminform.form.errors.values() for error in errors]
    for inline in response.context["inline_admin_formsets"]:
        messages += [str(error) for error in inline.formset.non_form_errors()]
        messages += [
            str(error) for form_errors in inline.formset.errors for errors in form_errors.values() for error in errors
        ]
    return " ".join(messages)


def test_manager_adds_a_calendar_with_two_spans_and_a_holiday(client, manager_a, org_a):
    client.force_login(manager_a)
    hours = [{"weekday": "0", "start": "07:00", "end": "12:00"}, {"weekday": "0", "start": "12:30", "end": "16:00"}]
    response = client.post(
        f"{CALENDARS}add/", calendar_form(hours=hours, holidays=[{"date": "2026-12-25", "name": "Christmas"}])
    )
    assert response.status_code == 302, errors_of(response)
    calendar = BusinessCalendar.objects.get(name="Office")
    assert calendar.organization == org_a
    assert calendar.hours.count() == 2 and calendar.holidays.get().name == "Christmas"
    assert calendar.history.get().history_user == manager_a
    page = client.get(f"{CALENDARS}{calendar.pk}/change/").content.decode()
    assert "12:30" in page and "Christmas" in page


def test_a_calendar_without_working_time_or_with_overlaps_is_a_form_error(client, manager_a):
    client.force_login(manager_a)
    empty = client.post(f"{CALENDARS}add/", calendar_form())
    assert empty.status_code == 200
    assert "needs working time" in errors_of(empty)
    overlapping = [
        {"weekday": "0", "start": "07:00", "end": "12:00"},
        {"weekday": "0", "start": "11:00", "end": "13:00"},
    ]
    overlap = client.post(f"{CALENDARS}add/", calendar_form(hours=overlapping))
    assert overlap.status_code == 200 and "overlaps" in errors_of(overlap)
    backwards = client.post(
        f"{CALENDARS}add/", calendar_form(hours=[{"weekday": "0", "start": "12:00", "end": "07:00"}])
    )
    assert backwards.status_code == 200 and "must end after it starts" in errors_of(backwards)
    assert not BusinessCalendar.objects.exists()
    assert client.post(f"{CALENDARS}add/", calendar_form(name="24/7", always_open=True)).status_code == 302


def test_manager_adds_a_policy_with_escalation_steps(client, manager_a, technician_a, business):
    client.force_login(manager_a)
    steps = [
        {"position": "1", "level": "warning", "target": "any", "kind": "notify", "notify_roles": ["planner"]},
        {
            "position": "2",
            "level": "breach",
            "target": "response",
            "kind": "reassign",
            "reassign_to": technician_a.pk,
            "notify_roles": [],
        },
    ]
    response = client.post(f"{POLICIES}add/", policy_form(business, steps))
    assert response.status_code == 302, errors_of(response)
    policy = SLAPolicy.objects.get(name="Critical")
    assert list(policy.escalation_steps.values_list("kind", "notify_roles")) == [
        ("notify", ["planner"]),
        ("reassign", []),
    ]
    assert policy.history.get().history_user == manager_a
    assert EscalationStep.objects.get(kind="reassign").history.get().history_user == manager_a

    change = client.post(f"{POLICIES}{policy.pk}/change/", policy_form(business, response_minutes="30"))
    assert change.status_code == 302, errors_of(change)
    policy.refresh_from_db()
    assert policy.response_minutes == 30 and policy.escalation_steps.count() == 0  # the form sent no step


def test_invalid_policies_are_form_errors(client, manager_a, business, medium_policy):
    client.force_login(manager_a)
    shorter = client.post(f"{POLICIES}add/", policy_form(business, resolution_minutes="30"))
    assert shorter.status_code == 200
    assert "cannot be shorter than the response target" in errors_of(shorter)
    overlapping = client.post(f"{POLICIES}add/", policy_form(business, priority="medium", name="Medium 2"))
    assert overlapping.status_code == 200
    assert "just as specific" in errors_of(overlapping) and "“Medium”" in errors_of(overlapping)
    no_roles = client.post(
        f"{POLICIES}add/",
        policy_form(business, [{"position": "1", "level": "breach", "target": "any", "kind": "notify"}]),
    )
    assert no_roles.status_code == 200 and "roles to notify" in errors_of(no_roles)
    assert SLAPolicy.objects.count() == 1


def test_planner_reads_but_does_not_change(client, planner_a, business, medium_policy):
    client.force_login(planner_a)
    assert client.get(POLICIES).status_code == 200
    assert client.get(CALENDARS).status_code == 200
    assert client.get(f"{POLICIES}{medium_policy.pk}/change/").status_code == 200  # the view-only page
    assert client.get(f"{POLICIES}add/").status_code == 403
    refused = client.post(f"{POLICIES}{medium_policy.pk}/change/", policy_form(business, name="Mine"))
    assert refused.status_code == 403
    assert client.post(f"{CALENDARS}{business.pk}/delete/", {"post": "yes"}).status_code == 403
    medium_policy.refresh_from_db()
    assert medium_policy.name == "Medium"


def test_another_organisations_rows_are_404(client, manager_b, business, medium_policy):
    client.force_login(manager_b)
    assert client.get(f"{POLICIES}{medium_policy.pk}/change/").status_code == 404
    assert client.get(f"{CALENDARS}{business.pk}/change/").status_code == 404
    assert client.get(f"{CALENDARS}{business.pk}/history/").status_code == 404
    assert list(client.get(POLICIES).context["cl"].result_list) == []


def test_violations_and_clocks_are_read_only(client, manager_a, clock, org_a, planner_a, medium_policy):
    order = work_orders.create_work_order(org_a, title="Leak", actor=planner_a)
    clock.set(berlin(2026, 3, 2, 10, 30))
    services.monitor_clocks()
    client.force_login(manager_a)
    page = client.get(VIOLATIONS).content.decode()
    assert order.number in page and "Breach" in page
    assert client.get(f"{VIOLATIONS}add/").status_code == 403
    assert client.get(CLOCKS).status_code == 200
    assert client.get(f"{CLOCKS}add/").status_code == 403


def test_a_policy_in_use_is_not_deleted(client, manager_a, clock, org_a, planner_a, medium_policy):
    work_orders.create_work_order(org_a, title="Leak", actor=planner_a)
    client.force_login(manager_a)
    response = client.post(f"{POLICIES}{medium_policy.pk}/delete/", {"post": "yes"})
    assert response.status_code in (200, 403)  # Django lists the protected clocks instead of deleting
    assert SLAPolicy.objects.filter(pk=medium_policy.pk).exists()
