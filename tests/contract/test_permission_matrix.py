"""The permission matrix (issue 16): every operation of the OpenAPI schema, asked by each persona, answers what
the role table (`maintenance_site/tenancy/roles.py`) says, never what the code happens to do.

The rows (operation → what it requires) are the reviewed table in tests/contract/permission_table.py; an
operation of the schema without a row fails here, and so does an API route of the URL conf that the schema
leaves out. From a row and the role table each persona's expected answer follows:

- anonymous: 401, except for the public operations;
- a viewer, a technician and a storekeeper of organisation A: 403 when the role table does not grant their role
  the action (any of the actions, for a row that names several), and otherwise the request passes the permission
  checks: whatever it answers then is about the input (2xx, 400, 409, 412, 422), never 401, 403, 404 or 5xx;
- a manager of organisation B, and a read-write API key of organisation B: the same role rule for their role
  (manager, integrator), then a 404 for anything of organisation A, with the same status and body as for an id
  that exists nowhere: another organisation's object is indistinguishable from a missing one. An operation
  without an object answers for their own (empty) organisation, and no answer to them contains anything of A.

Requests carry an empty JSON body unless the row names one: the permission checks come before the input is
read, so the matrix sees them without valid input; the rules that depend on what the body names (a technician's
own van, their own work) have their own tests next to their services, and a row names a body to reach them.

One dataset for the module (the demo's data for organisation A plus a few objects it lacks), each request in a
savepoint rolled back after it, on PostgreSQL. The matrix's size is printed at the end of the run.
"""

import json
import re
import time
from collections import Counter
from datetime import timedelta
from importlib import import_module

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import AccessToken

from assets.models import Asset
from inventory import services as inventory_services
from inventory.models import Part, StockLocation
from maintenance_site.notifications import services as notification_services
from maintenance_site.notifications.services import notify
from maintenance_site.ops.management.commands.seed_demo import DEMO_MODULES
from maintenance_site.reports import services as report_services
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.models import ApiKeyScope
from maintenance_site.tenancy.roles import Action, Role, role_allows
from maintenance_site.webhooks import services as webhook_services
from scheduling.preventive import services as preventive_services
from scheduling.preventive.models import PreventiveSchedule
from sla import services as sla_services
from tests.contract import permission_table
from tests.contract.permission_table import PLATFORM, PUBLIC, SIGNED_IN, Needs
from tests.contract.routes import all_routes
from workorders import services as workorder_services
from workorders.health.models import DiagnosticRun

pytestmark = [pytest.mark.postgres]

CANARY = "Canary7Q"  # in organisation A's name and titles: no answer to organisation B may contain it
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f0005"
    "0001ff89993d1d0000000049454e44ae426082"
)
MISSING_ID = "2000000000"  # an id no object has: far beyond any sequence of the test database
MISSING_KEY = "nothing-here"

# The personas: who they are, and the role they act with.
OWN = ("viewer", "technician", "storekeeper")  # members of organisation A
FOREIGN = ("other_manager", "other_api_key")  # organisation B
PERSONAS = ("anonymous", *OWN, *FOREIGN)
ROLES = {
    "viewer": Role.VIEWER,
    "technician": Role.TECHNICIAN,
    "storekeeper": Role.STOREKEEPER,
    "other_manager": Role.MANAGER,
    "other_api_key": Role.INTEGRATOR,  # a key acts as its service user, an integrator
}

ALLOWED, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, UNKNOWN_REFERENCE = "allowed", "401", "403", "404", "400|404"

STATS = Counter()  # shown at the end of the run (conftest.py)


# --- the schema's operations ------------------------------------------------------------------------------


def schema_operations() -> list[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (path, method)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    )


OPERATIONS = schema_operations()


def test_every_operation_has_its_row_and_every_row_its_operation():
    operations = set(OPERATIONS)
    rows = permission_table.rows()
    missing = sorted(f"{method.upper()} {path}" for path, method in operations - rows)
    stale = sorted(f"{method.upper()} {path}" for path, method in rows - operations)
    assert not missing, "Operations without a row in tests/contract/permission_table.py (add one): " + ", ".join(
        missing
    )
    assert not stale, "Rows whose operation is gone (remove them): " + ", ".join(stale)


# Routes under /api/v1/ that are not operations of the schema, each with the reason.
NOT_IN_SCHEMA = {
    r"/api/v1/",  # DRF's API root: the links to the collections, no data
    # the iCalendar feed of the maintenance windows: its secret address is the credential (tests/scheduling)
    r"/api/v1/maintenance/calendar/[^/]+\.ics",
}


def test_every_api_route_of_the_url_conf_is_an_operation_of_the_schema():
    templates = [re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$") for path, _ in OPERATIONS]
    unlisted = [
        route.path
        for route in all_routes()
        if route.is_api
        and not any(template.match(route.path) for template in templates)
        and not any(re.fullmatch(pattern, route.path) for pattern in NOT_IN_SCHEMA)
    ]
    assert len(OPERATIONS) > 200
    assert not unlisted, f"API routes missing from the schema (so from the matrix): {unlisted}"


def test_the_table_names_only_real_actions():
    for path, methods in permission_table.TABLE.items():
        for method, needs in methods.items():
            actions = needs.actions if isinstance(needs, Needs) else (needs,)
            for action in actions:
                assert action in (PUBLIC, SIGNED_IN, PLATFORM) or isinstance(action, Action), (path, method)


# --- the expected answers ---------------------------------------------------------------------------------


def expected(needs, persona: str, *, addresses_object: bool) -> str:
    """What the role table says `persona` gets for an operation that `needs` this."""
    if needs == PUBLIC:
        return ALLOWED
    if persona == "anonymous":
        return UNAUTHENTICATED
    if needs == SIGNED_IN:
        return ALLOWED
    if needs == PLATFORM:
        return FORBIDDEN  # no persona is a platform administrator
    actions = needs.actions if isinstance(needs, Needs) else (needs,)
    if not any(role_allows(ROLES[persona], action) for action in actions):
        return FORBIDDEN
    if persona in FOREIGN:
        if addresses_object:
            return NOT_FOUND
        if isinstance(needs, Needs) and needs.body:
            return UNKNOWN_REFERENCE  # the body names objects of organisation A
        return ALLOWED
    if isinstance(needs, Needs) and needs.owner and needs.owner != persona:
        return NOT_FOUND
    return ALLOWED


def matches(outcome: str, status: int) -> bool:
    if outcome == ALLOWED:
        return status < 500 and status not in (401, 403, 404, 405)
    if outcome == UNKNOWN_REFERENCE:
        return status in (400, 404)
    return str(status) == outcome


def test_the_expectations_follow_the_role_table():
    # a few sentences the table above must produce, so that the matrix cannot pass by expecting nothing
    assert expected(Action.CREATE_WORK, "technician", addresses_object=True) == FORBIDDEN
    assert expected(Action.EXECUTE_WORK, "technician", addresses_object=True) == ALLOWED
    assert expected(permission_table.WORK_ON, "storekeeper", addresses_object=True) == FORBIDDEN
    assert expected(permission_table.WORK_ON, "other_api_key", addresses_object=True) == NOT_FOUND
    assert expected(permission_table.TRANSFER, "technician", addresses_object=False) == FORBIDDEN
    assert expected(Action.MANAGE_KEYS, "other_api_key", addresses_object=True) == FORBIDDEN
    assert expected(Action.VIEW, "anonymous", addresses_object=False) == UNAUTHENTICATED
    assert expected(PUBLIC, "anonymous", addresses_object=False) == ALLOWED


# --- the dataset ------------------------------------------------------------------------------------------


def _member(organization, username: str, role: str):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", None, first_name=username)
    tenancy_services.add_member(organization, user, role)
    return user


def _seed() -> dict:
    """Organisation A with the demo's data and the objects the demo lacks; organisation B with only its manager
    and an API key."""
    org_a = tenancy_services.create_organization(name=f"{CANARY} Works", slug="canary-a", time_zone="Europe/Berlin")
    users = {role: _member(org_a, f"a-{role.value}", role) for role in Role}
    manager, technician = users[Role.MANAGER], users[Role.TECHNICIAN]
    manager.is_superuser = True  # reads the platform-wide lists to find ids; no persona is a superuser
    manager.save()
    colleague = _member(org_a, "a-colleague", Role.TECHNICIAN)
    for module in DEMO_MODULES:
        import_module(module).seed(org_a, users)

    order = workorder_services.create_work_order(
        org_a, title=f"{CANARY} replace the seal", actor=manager, assignee=technician
    )
    order = workorder_services.start(order, actor=technician)
    workorder_services.add_checklist_item(order, text="Check the seal", actor=manager)
    workorder_services.add_comment(order, actor=technician, body=f"{CANARY} seal ordered")
    workorder_services.log_time(order, actor=technician, minutes=30)
    attachment = workorder_services.add_attachment(
        uploaded=SimpleUploadedFile("photo.png", PNG, content_type="image/png"), actor=technician, work_order=order
    )
    upload = workorder_services.start_upload(order, actor=technician, client_id="canary-photo", name="p.png", size=99)
    workorder_services.submit_request(org_a, description=f"{CANARY} leaking valve")
    [notification] = notify(org_a, [technician], "work-order:assigned", {"title": f"{CANARY} yours", "body": "."})
    schedules = PreventiveSchedule.objects.for_tenant(org_a)
    schedule = schedules.filter(status=PreventiveSchedule.Status.ACTIVE).order_by("pk").first()
    preventive_services.generate_now(schedule, actor=manager, days_ahead=7)
    preventive_services.create_calendar_feed(org_a, name=f"{CANARY} feed", actor=manager)
    sla_services.monitor_clocks(now=timezone.now() + timedelta(days=60))  # breaches: violations
    tenancy_services.create_api_key(org_a, name=f"{CANARY} key", scope=ApiKeyScope.READ_WRITE)
    subscription, _ = webhook_services.create_subscription(
        org_a, actor=manager, url="http://127.0.0.1:9/canary", event_types=["work-order:*"], description=CANARY
    )
    webhook_services.send_test_event(subscription, actor=manager)
    notification_services.create_chat_channel(
        org_a, actor=manager, name=f"{CANARY} ops", kind="slack", url="http://127.0.0.1:9/canary-chat", kinds=["*"]
    )
    report = report_services.request_report(org_a, actor=manager, kind="status", format="csv")
    report_services.generate(report.pk)  # a file to download (the task would run after a commit that never comes)
    report_services.create_schedule(
        org_a, actor=manager, name=f"{CANARY} weekly", kind="status", recipients=["boss@example.com"]
    )
    van = StockLocation.objects.get(organization=org_a, kind="van", holder=technician)
    colleague_van = inventory_services.create_stock_location(
        org_a, name="Colleague's van", kind="van", holder=colleague, actor=users[Role.STOREKEEPER]
    )
    part = Part.objects.for_tenant(org_a).order_by("pk").first()
    inventory_services.receive_stock(part, colleague_van, 3, "4.00", actor=users[Role.STOREKEEPER])

    org_b = tenancy_services.create_organization(name="Other Org", slug="other-b", time_zone="America/New_York")
    other_manager = _member(org_b, "b-manager", Role.MANAGER)
    _, other_key = tenancy_services.create_api_key(org_b, name="B integration", scope=ApiKeyScope.READ_WRITE)

    def bearer(user) -> dict:
        return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}

    return {
        "organization": org_a,
        "resolver": bearer(manager),
        "headers": {
            "anonymous": {},
            "viewer": bearer(users[Role.VIEWER]),
            "technician": bearer(technician),
            "storekeeper": bearer(users[Role.STOREKEEPER]),
            "other_manager": bearer(other_manager),
            "other_api_key": {"Authorization": f"Api-Key {other_key}"},
        },
        # path parameters the lists do not give (the first row of a list would not be the technician's)
        "objects": {
            "work-orders/{id}": str(order.pk),
            "attachments/{token}": attachment.token,
            "work-orders/{id}/uploads/{client_id}": upload.client_id,
            "notifications/{id}": str(notification.pk),
            "reports/{id}": str(report.pk),  # a status report: the audit reports are for managers only
            "iot/devices/{id}": str(Asset.objects.filter(organization=org_a).order_by("pk").first().pk),
            "diagnostics/history/{device_id}": str(Asset.objects.filter(organization=org_a).order_by("pk").first().pk),
            "diagnostics/runs/{run_id}": str(
                DiagnosticRun.objects.filter(organization=org_a).order_by("pk").first().pk
            ),
        },
        "references": {
            "part": part.pk,
            "van": van.pk,
            "colleague_van": colleague_van.pk,
        },
    }


@pytest.fixture(scope="module")
def dataset(django_db_setup, django_db_blocker, tmp_path_factory):
    """The dataset, once for the module, inside a transaction rolled back at the end."""
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media"))):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        outer = transaction.atomic()
        outer.__enter__()
        started = time.monotonic()
        try:
            data = _seed()
            STATS["seed seconds"] = round(time.monotonic() - started, 1)
            yield data
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
            STATS["seconds"] = round(time.monotonic() - started)


@pytest.fixture
def matrix(dataset, db, monkeypatch):
    """Each operation in its own savepoint over the dataset; no rate limit counts the matrix's requests."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"organization": None, "principal": None, "anon": None})
    return dataset


# --- sending ----------------------------------------------------------------------------------------------

PARAMETER = re.compile(r"\{(\w+)\}")
RESOLVED: dict[str, str] = {}


def object_path(path: str, data: dict, needs) -> tuple[str, list[str]]:
    """The path with each parameter an object of organisation A (given by the dataset, or the first row of the
    list above it, read by A's manager), and the values put in. A platform-wide operation refuses every persona
    before it looks for its object: any id will do."""
    if needs == PLATFORM:
        return missing_path(path)
    filled, values = path, []
    for match in PARAMETER.finditer(path):
        prefix = path[: match.end()]
        if prefix not in RESOLVED:
            short = prefix.removeprefix("/api/v1/")
            if short in data["objects"]:
                RESOLVED[prefix] = data["objects"][short]
            else:
                parent = filled[: filled.index("{")]
                response = Client().get(parent, headers=data["resolver"])
                assert response.status_code == 200, f"cannot list {parent} to address {path}: {response.status_code}"
                body = response.json()
                rows = body.get("results", []) if isinstance(body, dict) else body
                assert rows, f"the dataset has nothing at {parent}: add an object so that {path} can be addressed"
                name = match.group(1)
                row = rows[0]
                value = next(row[key] for key in (name, "id", "key", "prefix", "token") if key in row)
                RESOLVED[prefix] = str(value)
        filled = filled.replace(match.group(0), RESOLVED[prefix], 1)
        values.append(RESOLVED[prefix])
    return filled, values


def missing_path(path: str) -> tuple[str, list[str]]:
    """The path with each parameter an object that exists nowhere, and the values put in."""
    values = [MISSING_KEY if name in ("key", "prefix", "token") else MISSING_ID for name in PARAMETER.findall(path)]
    filled = path
    for value in values:
        filled = PARAMETER.sub(value, filled, count=1)
    return filled, values


BODIES = {
    # from a colleague's van into the technician's: no role of the personas may (see permission_table.TRANSFER)
    "transfer_from_a_colleagues_van": lambda refs: {
        "part": refs["part"],
        "source": refs["colleague_van"],
        "destination": refs["van"],
        "quantity": "1",
    },
}


def send(method: str, path: str, headers: dict, body: dict | None):
    with transaction.atomic():  # each request in its own savepoint, rolled back after it
        response = Client().generic(
            method.upper(),
            path,
            data=json.dumps(body if body is not None else {}) if method != "get" else "",
            content_type="application/json",
            headers=headers,
        )
        content = b"".join(response.streaming_content) if response.streaming else response.content
        transaction.set_rollback(True)
    STATS["requests"] += 1
    return response.status_code, content.decode(errors="replace"), response.get("Content-Type", "")


def summary(status: int, content: str) -> str:
    try:
        error = json.loads(content).get("error", {})
    except (ValueError, AttributeError):
        return str(status)
    return f"{status} {error.get('code', '')}: {error.get('message', '')[:90]}" if error else str(status)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_matrix(matrix, path, method):
    needs = permission_table.requirement(path, method)
    if needs is None:
        pytest.fail(f"{method.upper()} {path} has no row in tests/contract/permission_table.py")
    STATS["operations"] += 1
    addresses_object = "{" in path
    body_name = needs.body if isinstance(needs, Needs) else ""
    refs = matrix["references"]
    body = BODIES[body_name](refs) if body_name else None
    target, target_values = object_path(path, matrix, needs)
    failures = []
    for persona in PERSONAS:
        outcome = expected(needs, persona, addresses_object=addresses_object)
        headers = matrix["headers"][persona]
        status, content, content_type = send(method, target, headers, body)
        STATS["cells"] += 1
        if not matches(outcome, status):
            failures.append(f"{persona}: expected {outcome}, got {summary(status, content)}")
            continue
        if persona in FOREIGN and CANARY in content:
            failures.append(f"{persona}: the answer contains organisation A's data: {content[:200]}")
        if outcome in (NOT_FOUND, UNKNOWN_REFERENCE):
            # indistinguishable from an object that exists nowhere: same status, same type, same words
            missing_body = BODIES[body_name]({key: int(MISSING_ID) for key in refs}) if body_name else None
            missing, missing_values = missing_path(path)
            other = send(method, missing, headers, missing_body)
            STATS["compared with a missing object"] += 1
            seen = (status, content_type, _without(content, target_values, body))
            unseen = (other[0], other[2], _without(other[1], missing_values, missing_body))
            if seen != unseen:
                failures.append(f"{persona}: A's object answers {seen}, a missing one {unseen}")
    assert not failures, f"{method.upper()} {path} (needs {needs}):\n  " + "\n  ".join(failures)


def _without(content: str, values: list[str], body: dict | None) -> str:
    """The answer with the ids it was asked about blanked, so that only what differs otherwise shows."""
    blanks = set(values) | {str(value) for value in (body or {}).values() if isinstance(value, int)}
    for value in sorted(blanks, key=len, reverse=True):
        content = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "<id>", content)
    return content


def summary_line() -> str | None:
    if not STATS["cells"]:
        return None
    return (
        f"permission matrix: {STATS['operations']} operations x {len(PERSONAS)} personas = {STATS['cells']} cells, "
        f"{STATS['compared with a missing object']} of them also compared with a missing object; "
        f"{STATS['requests']} requests in {STATS['seconds']} s (dataset {STATS['seed seconds']} s)"
    )
