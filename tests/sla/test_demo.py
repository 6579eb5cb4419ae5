"""The demo SLA data: calendars, a policy per priority, and clocks for the demo orders already open."""

import io

import pytest
from django.core.management import call_command

from maintenance_site.ops.management.commands import seed_demo
from sla.models import BusinessCalendar, SLAClock, SLAPolicy
from workorders.models import WorkOrder


@pytest.fixture
def with_sla_demo(monkeypatch):
    if "sla.demo" not in seed_demo.DEMO_MODULES:
        monkeypatch.setattr(seed_demo, "DEMO_MODULES", [*seed_demo.DEMO_MODULES, "sla.demo"])


def test_demo_seeds_calendars_policies_and_clocks_idempotently(db, with_sla_demo):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    business = BusinessCalendar.objects.get(organization__slug="acme", name="Business hours")
    assert business.hours.count() == 10 and business.holidays.count() == 3
    assert BusinessCalendar.objects.get(organization__slug="acme", name="24/7").always_open
    assert set(SLAPolicy.objects.filter(organization__slug="acme").values_list("priority", flat=True)) == {
        "critical",
        "high",
        "medium",
        "low",
    }
    for slug in ("acme", "globex"):
        open_orders = WorkOrder.objects.filter(organization__slug=slug).open()
        assert SLAClock.objects.filter(work_order__in=open_orders).count() == open_orders.count() > 0
    held = SLAClock.objects.get(work_order__organization__slug="acme", work_order__status="on_hold")
    assert held.is_paused
    assert SLAPolicy.objects.get(organization__slug="acme", priority="critical").escalation_steps.count() == 3
