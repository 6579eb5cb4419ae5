"""`/api/v1/analytics/*`: who may read, what another organisation sees, CSV downloads, bad questions, the failure
codes on completion, and a query count that does not grow with the data."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assets.models import Asset, Downtime
from maintenance_site.analytics.definitions import KPIS, VERSION
from workorders import services as work_orders
from workorders.models import TimeEntry, WorkOrder

ENDPOINTS = [
    "/api/v1/analytics/overview/",
    "/api/v1/analytics/trends/?kpi=availability,mttr,total_cost,pm_compliance,response_compliance,stock_outs",
    "/api/v1/analytics/costs/",
    "/api/v1/analytics/costs/?group_by=asset",
    "/api/v1/analytics/costs/?group_by=period&interval=week",
    "/api/v1/analytics/device-performance/?group_by=asset",
    "/api/v1/analytics/definitions/",
    "/api/v1/analytics/pm-compliance/",
    "/api/v1/analytics/pm-compliance/?group_by=asset",
    "/api/v1/analytics/sla/",
    "/api/v1/analytics/sla/?group_by=period&interval=week",
    "/api/v1/analytics/sla/?group_by=asset",
]
PERIOD = "from=2026-03-01&to=2026-03-31"


def _with_period(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{PERIOD}"


def history(org, technician, assets: int, orders_per_asset: int):
    """`assets` assets, each with `orders_per_asset` completed corrective orders in March, a downtime per order
    and a time entry per order."""
    start = datetime(2026, 3, 2, tzinfo=UTC)
    first = Asset.objects.count()
    for a in range(first, first + assets):
        asset = Asset.objects.create(organization=org, code=f"A-{a}", name=f"Asset {a}")
        for o in range(orders_per_asset):
            moment = start + timedelta(days=o, hours=a)
            order = WorkOrder.objects.create(
                organization=org,
                number=f"WO-{a}-{o}",
                title="t",
                asset=asset,
                status="completed",
                completed_at=moment + timedelta(hours=2),
                estimated_minutes=60,
            )
            Downtime.objects.create(
                organization=org, asset=asset, started_at=moment, ended_at=moment + timedelta(hours=1), reason="x"
            )
            TimeEntry.objects.create(
                organization=org, work_order=order, technician=technician, entered_by=technician, minutes=30
            )


def test_every_member_reads_and_strangers_are_refused(api, org_a, viewer_a, technician_a):
    anonymous = api()
    viewer = api(viewer_a)
    for url in ENDPOINTS:
        assert anonymous.get(_with_period(url)).status_code == 401, url
        response = viewer.get(_with_period(url))
        assert response.status_code == 200, (url, response.content[:300])
    overview = viewer.get(f"/api/v1/analytics/overview/?{PERIOD}").json()
    assert overview["from"] == "2026-03-01" and overview["to"] == "2026-03-31"
    assert overview["time_zone"] == "Europe/Berlin" and overview["definitions_version"] == VERSION
    assert overview["links"]["predictive_insights"] == "/api/v1/analytics/predictive-insights"
    assert overview["links"]["pm_compliance"] == "/api/v1/analytics/pm-compliance"
    assert overview["links"]["sla"] == "/api/v1/analytics/sla"
    assert [tile["kpi"] for tile in overview["kpis"]][:3] == ["availability", "mtbf", "mttr"]


def test_another_organisation_sees_none_of_a(api, org_a, technician_a, manager_b, org_b):
    history(org_a, technician_a, assets=1, orders_per_asset=3)
    theirs = api(manager_b).get(f"/api/v1/analytics/device-performance/?group_by=asset&{PERIOD}").json()
    assert theirs["rows"] == [] and theirs["totals"]["failures"] == 0
    asset_of_a = Asset.objects.get(organization=org_a)
    refused = api(manager_b).get(f"/api/v1/analytics/overview/?asset={asset_of_a.pk}&{PERIOD}")
    assert refused.status_code == 404 and "asset" in refused.json()["error"]["fields"]
    ours = api(technician_a).get(f"/api/v1/analytics/device-performance/?group_by=asset&{PERIOD}").json()
    assert ours["totals"]["failures"] == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-03-31&to=2026-03-01", "from"),
        ("from=2016-01-01&to=2025-12-31&kpi=mttr&interval=day", "interval"),
        ("kpi=uptime", "kpi"),
        ("kpi=", "kpi"),
        ("kpi=mttr&interval=hour", "interval"),
        ("kpi=mttr&from=yesterday", "from"),
        ("kpi=mttr&location=abc", "location"),
        ("kpi=mttr&from=9999-12-31", "from"),
        ("kpi=mttr&to=0001-01-01", "to"),
    ],
)
def test_bad_questions_get_a_400_that_says_what_to_ask(api, viewer_a, query, field):
    response = api(viewer_a).get(f"/api/v1/analytics/trends/?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("pm-compliance/?group_by=priority", "group_by"),
        ("pm-compliance/?interval=hour", "interval"),
        ("pm-compliance/?from=2016-01-01&to=2025-12-31&interval=day", "interval"),
        ("sla/?group_by=schedule", "group_by"),
        ("sla/?group_by=period&interval=year", "interval"),
        ("sla/?from=2026-03-31&to=2026-03-01", "from"),
    ],
)
def test_bad_pm_and_sla_questions_get_a_400(api, viewer_a, url, field):
    response = api(viewer_a).get(f"/api/v1/analytics/{url}")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize("path", ["overview", "pm-compliance", "sla", "device-performance"])
@pytest.mark.parametrize("kind", ["asset", "location", "team", "asset_type"])
def test_another_organisations_filter_is_not_found(api, org_b, manager_b, viewer_a, path, kind):
    from assets.models import AssetType, Location
    from workorders.models import Team

    theirs = {
        "asset": lambda: Asset.objects.create(organization=org_b, code="THEIRS", name="Theirs"),
        "location": lambda: Location.objects.create(organization=org_b, name="Their site"),
        "team": lambda: Team.objects.create(organization=org_b, name="Their team"),
        "asset_type": lambda: AssetType.objects.create(organization=org_b, name="Their type"),
    }[kind]()
    response = api(viewer_a).get(f"/api/v1/analytics/{path}/?{kind}={theirs.pk}&{PERIOD}")
    assert response.status_code == 404, response.content
    assert kind in response.json()["error"]["fields"]


def test_costs_download_as_csv(api, org_a, technician_a, viewer_a):
    history(org_a, technician_a, assets=1, orders_per_asset=2)
    response = api(viewer_a).get(f"/api/v1/analytics/costs/?format=csv&{PERIOD}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0] == "category,amount,share" and lines[1].startswith("labour,")
    trend = api(viewer_a).get(f"/api/v1/analytics/trends/?kpi=failures&interval=week&format=csv&{PERIOD}")
    assert trend.content.decode().splitlines()[0] == "period,failures"


def test_definitions_are_published(api, viewer_a):
    body = api(viewer_a).get("/api/v1/analytics/definitions/").json()
    assert body["version"] == VERSION
    assert {kpi["key"] for kpi in body["kpis"]} == set(KPIS)
    mtbf = next(kpi for kpi in body["kpis"] if kpi["key"] == "mtbf")
    assert "failures" in mtbf["formula"] and mtbf["unit"] == "hours"


def test_the_schema_describes_the_kpis(api, viewer_a):
    schema = api(viewer_a).get("/api/schema/?format=json").json()
    description = schema["paths"]["/api/v1/analytics/device-performance/"]["get"]["description"]
    assert "**mtbf**" in description and "Scheduled downtime" in description


@pytest.mark.parametrize("url", ENDPOINTS)
def test_query_count_does_not_grow_with_the_data(api, org_a, technician_a, viewer_a, url):
    client = api(viewer_a)
    history(org_a, technician_a, assets=1, orders_per_asset=1)
    client.get(_with_period(url))  # warm: the session's one-time look-ups
    with CaptureQueriesContext(connection) as small:
        assert client.get(_with_period(url)).status_code == 200
    history(org_a, technician_a, assets=6, orders_per_asset=5)
    with CaptureQueriesContext(connection) as large:
        assert client.get(_with_period(url)).status_code == 200
    assert len(large) == len(small), url


# --- failure codes ------------------------------------------------------------------------------------------------


def test_completion_needs_failure_codes_when_the_organisation_says_so(api, org_a, planner_a, technician_a):
    org_a.require_failure_codes = True
    org_a.save()
    client = api(planner_a)
    codes = {}
    for kind, code in (("problem", "LEAK"), ("cause", "SEAL-WEAR"), ("remedy", "REPLACED")):
        response = client.post("/api/v1/failure-codes/", {"kind": kind, "code": code, "name": code.title()})
        assert response.status_code == 201, response.content
        codes[f"{kind}_code"] = response.json()["id"]
    order = work_orders.create_work_order(org_a, title="Leak", actor=planner_a, assignee=technician_a)
    work_orders.start(order, actor=technician_a)
    technician = api(technician_a)
    refused = technician.post(f"/api/v1/work-orders/{order.pk}/complete/", {"cause_code": codes["cause_code"]})
    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {"problem_code", "remedy_code"}
    wrong_kind = technician.post(
        f"/api/v1/work-orders/{order.pk}/complete/", {**codes, "problem_code": codes["remedy_code"]}
    )
    assert wrong_kind.status_code == 400 and "problem_code" in wrong_kind.json()["error"]["fields"]
    done = technician.post(f"/api/v1/work-orders/{order.pk}/complete/", codes)
    assert done.status_code == 200, done.content
    assert {name: done.json()[name] for name in codes} == codes
    in_use = client.delete(f"/api/v1/failure-codes/{codes['cause_code']}/")
    assert in_use.status_code == 409


def test_preventive_work_completes_without_codes(org_a, planner_a, technician_a):
    org_a.require_failure_codes = True
    org_a.save()
    order = work_orders.create_work_order(
        org_a, title="Lube", type="preventive", actor=planner_a, assignee=technician_a
    )
    work_orders.start(order, actor=technician_a)
    assert work_orders.complete(order, actor=technician_a).status == "completed"


def test_budget_status_endpoint(api, org_a, manager_a, viewer_a):
    created = api(manager_a).post(
        "/api/v1/budgets/",
        {"name": "Year", "period": "year", "starts_on": "2026-01-01", "amount": "1200.00", "thresholds": [90]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["ends_on"] == "2026-12-31"
    assert api(viewer_a).post("/api/v1/budgets/", {"name": "x"}, format="json").status_code == 403
    status = api(viewer_a).get(f"/api/v1/budgets/{created.json()['id']}/status/").json()
    assert status["amount"] == "1200.00" and status["actual"] == "0.00"
    assert date.fromisoformat(status["to"]) == date(2026, 12, 31)
