"""The API's JSON is written by orjson (maintenance_site.api.renderers) and is, byte for byte, what DRF wrote."""

from decimal import Decimal

from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from maintenance_site.api.renderers import JSONRenderer
from workorders.models import WorkOrder


def test_the_json_renderer_writes_drfs_bytes(api, planner_a, org_a):
    WorkOrder.objects.bulk_create(WorkOrder(organization=org_a, number=f"WO-{i}", title=f"Order {i}") for i in range(3))
    data = api(planner_a).get("/api/v1/work-orders/").data
    payload = {**data, "text": 'tab\t, quote", line\u2028separator, é', "amount": Decimal("1.50"), 7: None}
    assert JSONRenderer().render(payload) == DRFJSONRenderer().render(payload)


def test_pretty_printing_and_what_orjson_refuses_fall_back_to_drf():
    huge = {"n": 2**70}
    assert JSONRenderer().render(huge) == DRFJSONRenderer().render(huge)
    indented = JSONRenderer().render({"a": [1]}, "application/json; indent=2")
    assert indented == DRFJSONRenderer().render({"a": [1]}, "application/json; indent=2")
