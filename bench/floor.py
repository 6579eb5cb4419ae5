"""The floor of the work-order list: what a hand-written endpoint costs that runs the list's SQL with psycopg and
writes JSON with orjson, nothing else (no authentication, no framework). `bench/list_api.py` measures the platform
against it in the same run: in-process (`floor_list`) and over HTTP, served by the same server with the same
number of processes as the platform (`application`, an ASGI app: `daphne bench.floor:application`).

It answers what the platform's list answers: the list's fields of 50 orders of an organisation, newest first, the
asset's code, the assignee's name and the SLA state joined in; `?status=`, `?priority=`, `?search=` (number, title
or asset code, through whatever index the database has) and `?after=<created_at>,<id>` (keyset: the next page).
"""

import os
from datetime import UTC, datetime
from urllib.parse import parse_qs

import orjson
import psycopg

PAGE = 50
COLUMNS = """
    w.id, w.number, w.title, w.type, w.priority, w.status, w.asset_id, a.code, w.location_id, w.assignee_id,
    u.first_name, u.last_name, u.username, w.team_id, w.due_at, w.created_at, w.updated_at,
    c.response_due_at, c.resolution_due_at, c.response_state, c.resolution_state
"""
JOINS = """
    FROM workorders_workorder w
    LEFT JOIN assets_asset a ON a.id = w.asset_id
    LEFT JOIN auth_user u ON u.id = w.assignee_id
    LEFT JOIN sla_slaclock c ON c.work_order_id = w.id
"""
OPEN = ("open", "assigned", "in_progress", "on_hold")


def query(organization_id: int, *, status=None, priority=None, search=None, after=None) -> tuple[str, list]:
    """The list's SQL and parameters: one page (and one row more, to know whether there is a next page)."""
    where, params = ["w.organization_id = %s"], [organization_id]
    if status:
        where.append("w.status = ANY(%s)")
        params.append(status.split(","))
    if priority:
        where.append("w.priority = ANY(%s)")
        params.append(priority.split(","))
    if search:
        # The three columns the platform searches, each through its own trigram index (UPPER(column) gin_trgm_ops,
        # when the database has them), the matching ids united: a handful of index probes for a rare word.
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            "w.id IN (SELECT id FROM workorders_workorder WHERE organization_id = %s AND UPPER(number) LIKE UPPER(%s)"
            " UNION ALL SELECT id FROM workorders_workorder WHERE organization_id = %s AND UPPER(title) LIKE UPPER(%s)"
            " UNION ALL SELECT id FROM workorders_workorder WHERE organization_id = %s AND asset_id IN"
            " (SELECT id FROM assets_asset WHERE organization_id = %s AND UPPER(code) LIKE UPPER(%s)))"
        )
        params += [organization_id, pattern, organization_id, pattern, organization_id, organization_id, pattern]
    if after:
        created, _, pk = after.partition(",")
        where.append("(w.created_at, w.id) < (%s, %s)")
        params += [datetime.fromisoformat(created), int(pk)]
    sql = f"SELECT {COLUMNS} {JOINS} WHERE {' AND '.join(where)} ORDER BY w.created_at DESC, w.id DESC LIMIT {PAGE + 1}"  # noqa: S608
    return sql, params


def _sla_state(response: str | None, resolution: str | None) -> str | None:
    if response is None:
        return None
    if "breached" in (response, resolution):
        return "breached"
    if "warning" in (response, resolution):
        return "warning"
    return "met" if response == resolution == "met" else "on_track"


def render(rows: list[tuple]) -> bytes:
    now = datetime.now(UTC)
    results = [
        {
            "id": row[0],
            "number": row[1],
            "title": row[2],
            "type": row[3],
            "priority": row[4],
            "status": row[5],
            "asset": row[6],
            "asset_code": row[7],
            "location": row[8],
            "assignee": row[9],
            "assignee_name": (f"{row[10]} {row[11]}".strip() or row[12]) if row[9] else None,
            "team": row[13],
            "due_at": row[14],
            "is_overdue": row[5] in OPEN and row[14] is not None and row[14] < now,
            "sla_state": _sla_state(row[19], row[20]),
            "response_due_at": row[17],
            "resolution_due_at": row[18],
            "created_at": row[15],
            "updated_at": row[16],
        }
        for row in rows[:PAGE]
    ]
    last = rows[PAGE - 1] if len(rows) > PAGE else None
    following = f"{last[15].isoformat()},{last[0]}" if last else None
    return orjson.dumps({"next": following, "previous": None, "results": results})


def floor_list(connection: psycopg.Connection, organization_id: int, **filters) -> bytes:
    sql, params = query(organization_id, **filters)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return render(cursor.fetchall())


# --- the ASGI app: GET /work-orders/?organization=ID&status=…&priority=…&search=…&after=… -----------------------

_connection: psycopg.AsyncConnection | None = None


async def application(scope, receive, send):
    global _connection
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        return
    if _connection is None:
        url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
        _connection = await psycopg.AsyncConnection.connect(url, autocommit=True)
    params = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
    organization_id = int(params.pop("organization"))
    sql, args = query(organization_id, **params)
    async with _connection.cursor() as cursor:
        await cursor.execute(sql, args)
        body = render(await cursor.fetchall())
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
