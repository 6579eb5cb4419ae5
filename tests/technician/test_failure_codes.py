"""The technician chooses the failure codes when completing corrective work on the phone."""

import pytest
from django.urls import reverse

from workorders import services
from workorders.models import WorkOrder


@pytest.fixture
def codes(org_a, planner_a):
    return {
        f"{kind}_code": services.create_failure_code(org_a, kind=kind, code=code, name=code.title(), actor=planner_a)
        for kind, code in (("problem", "LEAK"), ("cause", "SEAL-WEAR"), ("remedy", "REPLACED"))
    }


def test_completion_offers_the_codes_and_requires_them_when_the_organisation_does(
    client_of, org_a, planner_a, technician_a, pump, codes
):
    org_a.require_failure_codes = True
    org_a.save()
    order = services.create_work_order(org_a, title="Leak", asset=pump, actor=planner_a, assignee=technician_a)
    services.start(order, actor=technician_a)
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
