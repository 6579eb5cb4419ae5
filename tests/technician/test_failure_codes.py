"""The technician chooses the failure codes when completing corrective work on the phone."""

import json
import re
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from workorders import services
from workorders.models import WorkOrder


@pytest.fixture
def codes(org_a, planner_a):
    return {
        f"{kind}_code": services.create_failure_code(org_a, kind=kind, code=code, name=code.title(), actor=planner_a)
        for kind, code in (("problem", "LEAK"), ("cause", "SEAL-WEAR"), ("remedy", "REPLACED"))
    }


def started_where_codes_are_required(org_a, planner_a, technician_a, pump) -> WorkOrder:
    """An order in progress for the technician, in an organisation that requires failure codes to complete."""
    org_a.require_failure_codes = True
    org_a.save()
    order = services.create_work_order(org_a, title="Leak", asset=pump, actor=planner_a, assignee=technician_a)
    services.start(order, actor=technician_a)
    return order


def test_completion_offers_the_codes_and_requires_them_when_the_organisation_does(
    client_of, org_a, planner_a, technician_a, pump, codes
):
    order = started_where_codes_are_required(org_a, planner_a, technician_a, pump)
    client = client_of(technician_a)
    page = client.get(reverse("technician:order", args=[order.pk])).content.decode()
    assert 'name="cause_code"' in page and "SEAL-WEAR" in page
    action = reverse("technician:order-action", args=[order.pk, "complete"])
    refused = client.post(action, {"notes": "done", "cause_code": codes["cause_code"].pk})
    assert refused.status_code == 400
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.IN_PROGRESS
    client.post(action, {name: code.pk for name, code in codes.items()})
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.COMPLETED
    assert (order.problem_code, order.cause_code, order.remedy_code) == tuple(codes.values())


def complete_offline(client, order, **codes):
    """The phone's queued completion: the codes picked offline travel with it."""
    body = {
        "client_id": str(uuid.uuid4()),
        "occurred_at": timezone.now().isoformat(),
        "version": order.version,
        "notes": "Seal replaced offline",
        **{name: str(code.pk) for name, code in codes.items()},
    }
    path = reverse("technician:api-step", args=[order.pk, "complete"])
    return client.post(path, json.dumps(body), content_type="application/json")


def test_codes_picked_offline_reach_the_order_and_missing_ones_are_asked_for_first(
    client_of, org_a, planner_a, technician_a, pump, codes
):
    order = started_where_codes_are_required(org_a, planner_a, technician_a, pump)
    client = client_of(technician_a)
    page = client.get(reverse("technician:order", args=[order.pk])).content.decode()
    # the phone asks for them before the completion is queued (offline the service cannot say it yet)
    assert re.search(r'<select name="problem_code"[^>]*\brequired\b', page)

    missing = complete_offline(client, order, cause_code=codes["cause_code"])
    assert missing.status_code == 400, missing.json()
    assert {"problem_code", "remedy_code"} <= set(missing.json()["error"]["fields"])
    done = complete_offline(client, order, **codes)
    assert done.status_code == 201, done.json()
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.COMPLETED
    assert (order.problem_code, order.cause_code, order.remedy_code) == tuple(codes.values())
    assert order.completion_notes == "Seal replaced offline"


def test_another_organisations_code_is_not_a_choice_offline(
    client_of, org_a, org_b, planner_a, manager_b, technician_a, pump, codes
):
    order = services.create_work_order(org_a, title="Leak", asset=pump, actor=planner_a, assignee=technician_a)
    services.start(order, actor=technician_a)
    theirs = services.create_failure_code(org_b, kind="problem", code="LEAK", name="Leak", actor=manager_b)
    answer = complete_offline(client_of(technician_a), order, problem_code=theirs)
    assert answer.status_code == 400 and "problem_code" in answer.json()["error"]["fields"]
    order.refresh_from_db()
    assert order.status == WorkOrder.Status.IN_PROGRESS and order.problem_code is None
