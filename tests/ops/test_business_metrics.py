"""Business metrics on /metrics (issue 25): one grouped query per family, cached for the scrape interval, labels
per organisation only when the setting allows."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from maintenance_site.ops import business_metrics
from workorders import services as work_orders
from workorders.models import WorkOrder

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _open(settings):
    settings.DEBUG = True
    settings.METRICS_CACHE_SECONDS = 0


def samples(client) -> dict:
    text = client.get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_work_orders_open_and_overdue_are_counted(client, org_a, manager_a):
    work_orders.create_work_order(org_a, title="open", actor=manager_a)
    late = work_orders.create_work_order(org_a, title="late", actor=manager_a)
    WorkOrder.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(days=1))
    values = samples(client)
    assert values[("maintenance_work_orders_open", ())] == 2
    assert values[("maintenance_work_orders_overdue", ())] == 1
    assert values[("maintenance_mode_active", ())] == 0
    assert values[("maintenance_business_metrics_up", ())] == 1


def test_per_organisation_labels_only_when_allowed(client, org_a, org_b, manager_a, manager_b, settings):
    settings.METRICS_PER_ORGANIZATION = True
    work_orders.create_work_order(org_a, title="a", actor=manager_a)
    work_orders.create_work_order(org_b, title="b1", actor=manager_b)
    work_orders.create_work_order(org_b, title="b2", actor=manager_b)
    values = samples(client)
    assert values[("maintenance_work_orders_open", (("organization", "org-a"),))] == 1
    assert values[("maintenance_work_orders_open", (("organization", "org-b"),))] == 2


def test_one_query_per_family_and_cached_for_the_scrape_interval(
    org_a, manager_a, settings, django_assert_max_num_queries
):
    settings.METRICS_CACHE_SECONDS = 60
    for number in range(5):
        work_orders.create_work_order(org_a, title=f"order {number}", actor=manager_a)
    with django_assert_max_num_queries(7):  # seven families, one grouped query each
        first = business_metrics.cached_families()
    with django_assert_max_num_queries(0):
        assert business_metrics.cached_families() == first


def test_a_failing_source_is_reported_not_raised(client, monkeypatch):
    def broken():
        raise RuntimeError("database down")

    monkeypatch.setattr(business_metrics, "compute", broken)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"maintenance_business_metrics_up 0.0" in response.content
