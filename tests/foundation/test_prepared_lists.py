"""The work-order list's page query kept per list shape (maintenance_site.api.prepared): a shape asked before is
answered without building or compiling a queryset, and the answer is the ordinary path's, byte for byte: every page
of every shape, cursors on null values included, the tenant, the refusals and the number of queries unchanged."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Case, CharField, F, Value, When
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maintenance_site import hooks
from maintenance_site.api import prepared
from maintenance_site.api.pagination import cursor_for
from workorders.models import WorkOrder

from .test_list_paging import URL, make_orders

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def empty_store():
    prepared.clear()
    yield
    prepared.clear()


@pytest.fixture
def orders(org_a):
    """17 orders with every kind of value the list's orders meet: null and equal due dates, all priorities and two
    statuses, equal creation times (ties broken by id)."""
    make_orders(org_a, 17)
    now = timezone.now()
    rows = list(WorkOrder.objects.filter(organization=org_a).order_by("pk"))
    for index, order in enumerate(rows):
        WorkOrder.objects.filter(pk=order.pk).update(
            due_at=None if index % 3 == 0 else now + timedelta(days=index % 4),
            priority=["low", "medium", "high", "critical"][index % 4],
            status="open" if index % 2 else "assigned",
            created_at=now - timedelta(minutes=index // 2),
        )
    return rows


def sla_columns(queryset):
    """A `work_order_list` receiver giving the SLA columns a value per row."""
    return queryset.annotate(
        response_due_at=F("created_at"),
        resolution_due_at=F("updated_at"),
        sla_state=Case(
            When(priority="high", then=Value("breached")), default=Value("on_track"), output_field=CharField()
        ),
    )


SHAPES = [
    {},
    {"page_size": 4},
    {"page_size": 4, "ordering": "due_at"},
    {"page_size": 4, "ordering": "-due_at"},
    {"page_size": 3, "ordering": "priority"},
    {"page_size": 3, "ordering": "-priority", "status": "open,assigned"},
    {"page_size": 5, "status": "open", "priority": "high,low"},
    {"page_size": 4, "updated_after": "2000-01-01T00:00:00Z"},
    {"page_size": 2, "search": "Order 1"},
]


def pages(client, params):
    """Every page of the list, by following `next`: the bodies as bytes."""
    bodies, response = [], client.get(URL, params)
    while True:
        assert response.status_code == 200, response.content
        bodies.append(response.content)
        following = response.json()["next"]
        if not following:
            return bodies
        response = client.get(following)


@pytest.mark.parametrize("params", SHAPES, ids=lambda params: "&".join(f"{k}={v}" for k, v in params.items()) or "-")
def test_every_page_of_every_shape_is_the_ordinary_paths(api, planner_a, orders, params, monkeypatch):
    # The SLA columns filled and different on every row (the orders have no clocks): a kept query reading its columns
    # in another order than the ORM would show here.
    monkeypatch.setattr(hooks.work_order_list, "receivers", [sla_columns])
    client = api(planner_a)
    with monkeypatch.context() as ordinary_only:
        ordinary_only.setattr(prepared, "prepare", lambda *args: None)  # every page built, compiled and read by the ORM
        ordinary = pages(client, params)
    assert pages(client, params) == ordinary  # every page's shape kept, its rows read through it
    kept = len(prepared._store)
    assert kept >= 1
    compiled = []
    original = SQLCompiler.as_sql

    def counting(self, *args, **kwargs):
        compiled.append(self.query.model)
        return original(self, *args, **kwargs)

    SQLCompiler.as_sql = counting
    try:
        again = pages(client, params)
    finally:
        SQLCompiler.as_sql = original
    assert again == ordinary
    assert WorkOrder not in compiled  # no work-order query built: every page read through its kept query
    assert len(prepared._store) == kept


def test_a_kept_shape_answers_with_as_many_queries(api, planner_a, orders):
    client = api(planner_a)
    with CaptureQueriesContext(connection) as ordinary:
        first = client.get(URL, {"page_size": 4})
    with CaptureQueriesContext(connection) as kept:
        assert client.get(URL, {"page_size": 4}).content == first.content
    assert len(kept) == len(ordinary)
    assert [q["sql"] for q in kept][-1] == [q["sql"] for q in ordinary][-1]  # the same page query, as compiled


def test_one_organisations_kept_shape_never_answers_another(api, planner_a, org_b, orders):
    from maintenance_site.tenancy import services as tenancy_services

    make_orders(org_b, 3, start=500)
    ours = api(planner_a).get(URL).json()
    _, secret = tenancy_services.create_api_key(org_b, name="theirs")
    theirs = api().get(URL, HTTP_AUTHORIZATION=f"Api-Key {secret}").json()
    assert {row["number"] for row in theirs["results"]} == {"WO-000500", "WO-000501", "WO-000502"}
    assert len(ours["results"]) == 17
    assert len(prepared._store) == 2


@pytest.mark.parametrize(
    "params",
    [{"location": "1"}, {"overdue": "true"}, {"mine": "true"}, {"page": "1"}, {"format": "json"}, {"unknown": "x"}],
)
def test_a_parameter_whose_sql_depends_on_more_than_its_value_is_never_kept(api, planner_a, orders, params):
    client = api(planner_a)
    for _ in range(2):
        assert client.get(URL, params).status_code in (200, 400)
    assert prepared._store == {}


def test_an_overdue_filter_reads_the_time_of_each_request(api, planner_a, orders):
    """(Why `overdue` is not kept: the same shape a day later holds other orders.)"""
    client = api(planner_a)
    WorkOrder.objects.filter(organization=orders[0].organization).update(due_at=timezone.now() + timedelta(seconds=1))
    assert client.get(URL, {"overdue": "true"}).json()["results"] == []
    WorkOrder.objects.filter(organization=orders[0].organization).update(due_at=timezone.now() - timedelta(seconds=1))
    assert len(client.get(URL, {"overdue": "true", "page_size": 50}).json()["results"]) == 17


def test_refusals_are_the_ordinary_paths_on_a_kept_shape(api, planner_a, orders):
    client = api(planner_a)
    client.get(URL, {"page_size": 4})
    assert client.get(client.get(URL, {"page_size": 4}).json()["next"]).status_code == 200
    assert len(prepared._store) == 2  # the first page's shape and the following pages'

    for params in (
        {"page_size": 4, "cursor": "not-a-cursor"},
        {"page_size": 4, "cursor": cursor_for(["yesterday", 1])},  # a value the column refuses
        {"page_size": 4, "cursor": cursor_for([timezone.now(), 1], ordering=("-due_at", "-id"))},  # another order
        {"page_size": "0"},
        {"page_size": 4, "status": "nonsense"},
    ):
        kept_answer = client.get(URL, params)
        prepared.clear()
        ordinary = client.get(URL, params)
        assert kept_answer.status_code == ordinary.status_code == 400
        assert kept_answer.json() == ordinary.json()


def test_a_cursor_whose_value_reads_as_null_takes_the_ordinary_path(api, planner_a, orders):
    """A cursor value the column reads as null ("" for a date-time) does not fit a kept query whose slot holds a
    value: the ordinary path answers, as without the store."""
    client = api(planner_a)
    at = cursor_for([timezone.now(), orders[5].pk])
    client.get(URL, {"cursor": at})  # the shape (a date-time and an id) kept
    odd = cursor_for(["", orders[5].pk])
    kept_answer = client.get(URL, {"cursor": odd})
    prepared.clear()
    assert kept_answer.status_code == client.get(URL, {"cursor": odd}).status_code
    assert kept_answer.content == client.get(URL, {"cursor": odd}).content


def test_a_new_receiver_of_the_list_hook_is_not_answered_by_a_kept_query(api, planner_a, orders):
    client = api(planner_a)
    client.get(URL)
    client.get(URL)

    def flag_everything(queryset):
        from django.db.models import CharField, Value

        return queryset.annotate(sla_state=Value("breached", output_field=CharField()))

    receivers = list(hooks.work_order_list.receivers)
    hooks.work_order_list.receivers[:] = [flag_everything]
    try:
        states = {row["sla_state"] for row in client.get(URL).json()["results"]}
    finally:
        hooks.work_order_list.receivers[:] = receivers
    assert states == {"breached"}
    assert {row["sla_state"] for row in client.get(URL).json()["results"]} == {None}


def test_the_store_is_bounded(api, planner_a, orders, monkeypatch):
    monkeypatch.setattr(prepared, "LIMIT", 3)
    client = api(planner_a)
    for size in range(1, 7):
        client.get(URL, {"page_size": size})
    assert len(prepared._store) == 3
