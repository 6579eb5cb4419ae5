"""What each API operation requires, in terms of the role table (`maintenance_site/tenancy/roles.py`).

This is the reviewed half of the permission matrix (tests/contract/test_permission_matrix.py): one row per
operation of the OpenAPI schema, saying which action of the role table it needs. The matrix turns each row into
the status every persona must get from the role table, never from what the code happens to do. An operation
without a row fails the matrix; so does a row whose operation no longer exists.

How to read a row: `"work-orders/{id}/comments/": {"get": V, "post": WORK_ON}` means GET needs `view` and POST
needs either `execute_work` or `create_work`. Reads need `view` (every role) unless the row says more; a write
names the action whose label in the role table describes it. Keep the reason next to any row that is not
the obvious one.
"""

from dataclasses import dataclass

from maintenance_site.tenancy.roles import Action as A

# Requirements that are not an action of the role table.
PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed_in"  # any signed-in person or key, whatever their role
PLATFORM = "platform"  # platform administrators (superusers) only: scenarios and presets are platform-wide


@dataclass(frozen=True)
class Needs:
    """A requirement with more to it than one action."""

    actions: tuple  # any one of them will do
    owner: str = ""  # a personal object: only the persona who owns it may reach it, everybody else gets a 404
    body: str = ""  # the request body the matrix sends (a name in the matrix's BODIES), when the answer depends on it
    why: str = ""


V = A.VIEW
# Comments and attachments on a work order: those who carry out work (technicians on any order, as the phone view
# says: "you can read it, add notes and photos") or create and edit it. Not storekeepers, not viewers: the role
# table grants them neither (issue 16).
WORK_ON = Needs((A.EXECUTE_WORK, A.CREATE_WORK), why="comment on or attach to a work order")
# A transfer moves stock between locations: `adjust_stock`. The one thing `use_parts` adds is a technician
# refilling their own van from a warehouse or shelf (inventory.services.transfer_stock, tested there). The body
# takes stock from a colleague's van into the technician's: the role table grants the technician no such thing.
TRANSFER = Needs((A.ADJUST_STOCK,), body="transfer_from_a_colleagues_van", why="transfer stock")
# Notifications are the recipient's own: anybody else's is a 404, like a missing one.
PERSONAL = Needs((V,), owner="technician", why="a notification is its recipient's")


def crud(action, *, detail: bool, put: bool = True, delete: bool = True) -> dict:
    """The usual rows of a resource: reads need `view`, writes need `action`."""
    if not detail:
        return {"get": V, "post": action}
    row = {"get": V, "patch": action}
    if put:
        row["put"] = action
    if delete:
        row["delete"] = action
    return row


TABLE: dict[str, dict[str, object]] = {
    # --- the platform -----------------------------------------------------------------------------------------
    "status/": {"get": PUBLIC},
    "me/": {"get": SIGNED_IN},
    "auth/token/": {"post": PUBLIC},
    "auth/token/refresh/": {"post": PUBLIC},
    "events/": {"get": V},
    "events/ticket/": {"post": V},  # a websocket ticket: a way of reading the organisation's events
    "api-keys/": {"get": A.MANAGE_KEYS, "post": A.MANAGE_KEYS},  # key names and prefixes are for who manages keys
    "api-keys/{prefix}/": {"get": A.MANAGE_KEYS},
    "api-keys/{prefix}/revoke/": {"post": A.MANAGE_KEYS},
    "notifications/": {"get": V},
    "notifications/{id}/": {"get": PERSONAL},
    "notifications/{id}/read/": {"post": PERSONAL},
    "notifications/read-all/": {"post": V},  # one's own notifications and preferences: every member
    "notifications/unread-count/": {"get": V},
    "notifications/preferences/": {"get": V, "put": V},
    # Webhooks: target URLs, secrets and the delivery log are for managers and integrators (manage_webhooks).
    "webhooks/": {"get": A.MANAGE_WEBHOOKS, "post": A.MANAGE_WEBHOOKS},
    "webhooks/{id}/": {"get": A.MANAGE_WEBHOOKS, "patch": A.MANAGE_WEBHOOKS, "delete": A.MANAGE_WEBHOOKS},
    "webhooks/{id}/rotate-secret/": {"post": A.MANAGE_WEBHOOKS},
    "webhooks/{id}/test/": {"post": A.MANAGE_WEBHOOKS},
    "webhooks/{id}/replay/": {"post": A.MANAGE_WEBHOOKS},
    "webhook-deliveries/": {"get": A.MANAGE_WEBHOOKS},
    "webhook-deliveries/{id}/": {"get": A.MANAGE_WEBHOOKS},
    "webhook-deliveries/{id}/replay/": {"post": A.MANAGE_WEBHOOKS},
    # Chat channels: their URLs are credentials, configured by the same people as webhooks (manage_webhooks).
    "chat-channels/": {"get": A.MANAGE_WEBHOOKS, "post": A.MANAGE_WEBHOOKS},
    "chat-channels/{id}/": {"get": A.MANAGE_WEBHOOKS, "patch": A.MANAGE_WEBHOOKS, "delete": A.MANAGE_WEBHOOKS},
    # Reports (issue 22): any member reads and asks for the status, performance and quality reports; the audit report
    # needs read_audit (managers), checked by the service on the body's kind (a 403), and an audit report in the
    # archive is a 404 to anyone else. Schedules e-mail the organisation's figures: its settings (managers).
    "reports/": {"get": V, "post": V},
    "reports/{id}/": {"get": V},
    "reports/{id}/file/": {"get": V},
    "report-schedules/": {"get": A.MANAGE_SETTINGS, "post": A.MANAGE_SETTINGS},
    "report-schedules/{id}/": {"get": A.MANAGE_SETTINGS, "patch": A.MANAGE_SETTINGS, "delete": A.MANAGE_SETTINGS},
    # --- assets -----------------------------------------------------------------------------------------------
    "locations/": crud(A.MANAGE_ASSETS, detail=False),
    "locations/{id}/": crud(A.MANAGE_ASSETS, detail=True),
    "asset-types/": crud(A.MANAGE_ASSETS, detail=False),
    "asset-types/{id}/": crud(A.MANAGE_ASSETS, detail=True),
    "assets/": crud(A.MANAGE_ASSETS, detail=False),
    "assets/{id}/": crud(A.MANAGE_ASSETS, detail=True),
    "assets/{id}/history/": {"get": V},
    "assets/{asset_pk}/meters/": crud(A.MANAGE_ASSETS, detail=False),
    "assets/{asset_pk}/meters/{id}/": {"get": V},
    "meters/": {"get": V},
    "meters/{id}/": crud(A.MANAGE_ASSETS, detail=True),
    "meters/{id}/readings/": {"get": V, "post": A.INGEST_TELEMETRY},
    "meters/readings/": {"post": A.INGEST_TELEMETRY},
    # IoT telemetry (issue 19): points in need ingest_telemetry; definitions and the anomalies' workflow (acknowledge,
    # resolve: what a reliability engineer does with an asset's condition) manage_assets; settings manage_settings.
    "iot/metrics/": {"post": A.INGEST_TELEMETRY},
    "iot/devices/{id}/metrics/": {"get": V},
    "iot/anomalies/": {"get": V},
    "iot/anomalies/{id}/": {"get": V},
    "iot/anomalies/{id}/acknowledge/": {"post": A.MANAGE_ASSETS},
    "iot/anomalies/{id}/resolve/": {"post": A.MANAGE_ASSETS},
    "iot/definitions/": crud(A.MANAGE_ASSETS, detail=False),
    "iot/definitions/{id}/": crud(A.MANAGE_ASSETS, detail=True),
    "iot/settings/": {"get": V, "patch": A.MANAGE_SETTINGS},
    # asset health (issue 20): running a diagnostic or submitting a tool's results is posting telemetry
    "iot/devices/{id}/health/": {"get": V},
    "diagnostics/run/": {"post": A.INGEST_TELEMETRY},
    "diagnostics/runs/{run_id}/": {"get": V},
    "diagnostics/history/{device_id}/": {"get": V},
    "diagnostics/analyze/": {"post": V},  # a read: trends computed from stored results
    "analytics/predictive-insights/": {"get": V},
    # --- work orders ------------------------------------------------------------------------------------------
    "work-orders/": crud(A.CREATE_WORK, detail=False),
    "work-orders/{id}/": crud(A.CREATE_WORK, detail=True),
    "work-orders/{id}/history/": {"get": V},  # the order's recorded changes: whoever may read the order
    "work-orders/{id}/assign/": {"post": A.ASSIGN_WORK},
    "work-orders/{id}/unassign/": {"post": A.ASSIGN_WORK},
    "work-orders/{id}/start/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/hold/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/resume/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/complete/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/verify/": {"post": A.VERIFY_WORK},
    "work-orders/{id}/reject/": {"post": A.VERIFY_WORK},
    "work-orders/{id}/reopen/": {"post": A.VERIFY_WORK},  # the lifecycle table: planners and managers
    "work-orders/{id}/cancel/": {"post": A.CREATE_WORK},  # the lifecycle table: planners, managers, integrators
    "work-orders/{id}/checklist/": {"get": V, "post": A.CREATE_WORK},  # adding a step edits the order
    "work-orders/{id}/checklist/{item_id}/": {"post": A.EXECUTE_WORK, "patch": A.EXECUTE_WORK},
    "work-orders/{id}/checklist/{item_id}/follow-up/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/comments/": {"get": V, "post": WORK_ON},
    "work-orders/{id}/attachments/": {"get": V, "post": WORK_ON},
    # a file sent in pieces is an attachment on its way (WORK_ON); each upload is its author's: anyone else, a 404
    "work-orders/{id}/uploads/": {"post": WORK_ON},
    "work-orders/{id}/uploads/{client_id}/": {
        "get": Needs((A.EXECUTE_WORK, A.CREATE_WORK), owner="technician", why="an upload is its author's"),
        "patch": Needs((A.EXECUTE_WORK, A.CREATE_WORK), owner="technician", why="an upload is its author's"),
    },
    "work-orders/{id}/time-entries/": {"get": V, "post": A.EXECUTE_WORK},
    "work-orders/{id}/time-entries/start/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/time-entries/stop/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/cost-lines/": {"get": V, "post": A.CREATE_WORK},
    # planning (issue 24): a planned start is set by those who assign work and by a technician on their own order
    # (the service's rule, workorders.services.schedule); a board drop assigns and plans: assign_work
    "work-orders/{id}/schedule/": {"post": A.EXECUTE_WORK},
    "work-orders/{id}/dispatch/": {"post": A.ASSIGN_WORK},
    "planning/calendar/": {"get": V},
    "planning/board/": {"get": V},
    "capacity/": {"get": V},
    "capacity/patterns/": crud(A.ASSIGN_WORK, detail=False),  # capacity is planned by who assigns the work
    "capacity/patterns/{id}/": crud(A.ASSIGN_WORK, detail=True),
    "capacity/time-off/": crud(A.ASSIGN_WORK, detail=False),
    "capacity/time-off/{id}/": crud(A.ASSIGN_WORK, detail=True),
    "attachments/{token}/": {"get": V},
    "attachments/{token}/download/": {"get": V},
    "requests/": {"get": V},
    "requests/{id}/": {"get": V},
    "requests/{id}/approve/": {"post": A.APPROVE_REQUESTS},
    "requests/{id}/reject/": {"post": A.APPROVE_REQUESTS},
    "procedures/": crud(A.CREATE_WORK, detail=False),  # the procedure library: checklists of work orders
    "procedures/{id}/": crud(A.CREATE_WORK, detail=True),
    "teams/": crud(A.ASSIGN_WORK, detail=False),  # crews exist to be assigned work
    "teams/{id}/": crud(A.ASSIGN_WORK, detail=True),
    # the failure-code library, like the procedure library: who creates and edits work orders keeps it
    "failure-codes/": crud(A.CREATE_WORK, detail=False),
    "failure-codes/{id}/": crud(A.CREATE_WORK, detail=True),
    # budgets are the organisation's money settings: managers set them, everyone sees them (costs are visible too)
    "budgets/": crud(A.MANAGE_SETTINGS, detail=False),
    "budgets/{id}/": crud(A.MANAGE_SETTINGS, detail=True),
    "budgets/{id}/status/": {"get": V},
    # --- analytics: reads of the organisation's figures ---------------------------------------------------------
    "analytics/definitions/": {"get": V},
    "analytics/overview/": {"get": V},
    "analytics/trends/": {"get": V},
    "analytics/costs/": {"get": V},
    "analytics/device-performance/": {"get": V},
    "analytics/pm-compliance/": {"get": V},
    "analytics/sla/": {"get": V},
    # --- inventory --------------------------------------------------------------------------------------------
    "inventory/parts/": crud(A.ADJUST_STOCK, detail=False),
    "inventory/parts/{id}/": crud(A.ADJUST_STOCK, detail=True),
    "inventory/parts/low-stock/": {"get": V},
    "inventory/parts/{id}/history/": {"get": V},
    "inventory/parts/{id}/usage/": {"get": V, "post": A.USE_PARTS},
    "inventory/parts/{id}/return/": {"post": A.USE_PARTS},  # undoing a use of parts
    "inventory/locations/": crud(A.ADJUST_STOCK, detail=False),
    "inventory/locations/{id}/": crud(A.ADJUST_STOCK, detail=True),
    "inventory/levels/": {"get": V},
    "inventory/levels/{id}/": {"get": V, "patch": A.ADJUST_STOCK},  # minimum and maximum of a level
    "inventory/movements/": {"get": V},
    "inventory/movements/{id}/": {"get": V},
    "inventory/receipts/": {"post": A.ADJUST_STOCK},
    "inventory/adjustments/": {"post": A.ADJUST_STOCK},
    "inventory/transfers/": {"post": TRANSFER},
    "inventory/write-offs/": {"post": A.ADJUST_STOCK},
    "inventory/reservations/": {"get": V, "post": A.CREATE_WORK},  # planning parts for an order is planning it
    "inventory/reservations/{id}/": {"get": V},
    "inventory/reconciliation/": {"get": V},
    "inventory/transfer-suggestions/": {"get": V},
    "inventory/reorder-suggestions/": {"get": V},
    "inventory/reorder-suggestions/purchase-orders/": {"post": A.MANAGE_PURCHASING},
    "inventory/vendors/": crud(A.MANAGE_PURCHASING, detail=False),
    "inventory/vendors/{id}/": crud(A.MANAGE_PURCHASING, detail=True),
    "inventory/vendor-parts/": crud(A.MANAGE_PURCHASING, detail=False),
    "inventory/vendor-parts/{id}/": crud(A.MANAGE_PURCHASING, detail=True),
    "inventory/purchase-orders/": crud(A.MANAGE_PURCHASING, detail=False),
    "inventory/purchase-orders/{id}/": crud(A.MANAGE_PURCHASING, detail=True),
    "inventory/purchase-orders/{id}/place/": {"post": A.MANAGE_PURCHASING},
    "inventory/purchase-orders/{id}/cancel/": {"post": A.MANAGE_PURCHASING},
    "inventory/purchase-orders/{id}/receive/": {"post": A.ADJUST_STOCK},  # receiving is a stock movement
    # --- SLA --------------------------------------------------------------------------------------------------
    "sla/config/": crud(A.MANAGE_SLA, detail=False),
    "sla/config/{id}/": crud(A.MANAGE_SLA, detail=True),
    "sla/calendars/": crud(A.MANAGE_SLA, detail=False),
    "sla/calendars/{id}/": crud(A.MANAGE_SLA, detail=True),
    "sla/violations/": {"get": V},
    "sla/violations/{id}/": {"get": V},
    "sla/performance/": {"get": V},
    # --- preventive maintenance -------------------------------------------------------------------------------
    "preventive-maintenance/schedules/": crud(A.MANAGE_SCHEDULES, detail=False),
    "preventive-maintenance/schedules/{id}/": crud(A.MANAGE_SCHEDULES, detail=True),
    "preventive-maintenance/schedules/{id}/generate/": {"post": A.MANAGE_SCHEDULES},
    "preventive-maintenance/schedules/{id}/pause/": {"post": A.MANAGE_SCHEDULES},
    "preventive-maintenance/schedules/{id}/resume/": {"post": A.MANAGE_SCHEDULES},
    "preventive-maintenance/schedules/{id}/forecast/": {"get": V},
    "preventive-maintenance/schedules/{id}/occurrences/": {"get": V},
    "preventive-maintenance/occurrences/": {"get": V},
    "preventive-maintenance/occurrences/{id}/": {"get": V},
    "preventive-maintenance/statistics/": {"get": V},
    "preventive-maintenance/forecast/": {"get": V},
    # The secret feed addresses are managed by who manages schedules: listing them and reading one alike.
    "preventive-maintenance/calendar-feeds/": {"get": A.MANAGE_SCHEDULES, "post": A.MANAGE_SCHEDULES},
    "preventive-maintenance/calendar-feeds/{id}/": {"get": A.MANAGE_SCHEDULES},
    "preventive-maintenance/calendar-feeds/{id}/revoke/": {"post": A.MANAGE_SCHEDULES},
    # --- maintenance windows and mode -------------------------------------------------------------------------
    "maintenance/windows/": crud(A.MANAGE_WINDOWS, detail=False),
    "maintenance/windows/{id}/": crud(A.MANAGE_WINDOWS, detail=True),
    "maintenance/windows/{id}/cancel/": {"post": A.MANAGE_WINDOWS},
    "maintenance/windows/{id}/end/": {"post": A.MANAGE_WINDOWS},
    "maintenance/windows/{id}/fail/": {"post": A.MANAGE_WINDOWS},
    "maintenance/windows/fit/": {"get": V},
    "maintenance/mode/": {"get": V, "post": A.MANAGE_WINDOWS},
    "maintenance/history/": {"get": V},
    "maintenance/metrics/": {"get": V},
    # The windows' calendar address is for every member to subscribe to; creating or replacing it is a manager's.
    "maintenance/calendar/": {"get": V, "post": A.MANAGE_WINDOWS},
    # --- maintenance scenarios: platform-wide (README, "Command line") ----------------------------------------
    "scenarios/": {"get": PLATFORM},
    "scenarios/{key}/": {"get": PLATFORM},
    "scenarios/{key}/activate/": {"post": PLATFORM},
    "scenarios/{key}/deactivate/": {"post": PLATFORM},
    "scenarios/{key}/run/": {"post": PLATFORM},
    "scenarios/{key}/metrics/": {"get": PLATFORM},
    "scenarios/{key}/priority/": {"get": PLATFORM},
    "scenarios/stop-all/": {"post": PLATFORM},
    "scenario-runs/": {"get": PLATFORM},
    "scenario-runs/{id}/": {"get": PLATFORM},
    "scenario-runs/{id}/cancel/": {"post": PLATFORM},
    "scenario-runs/{id}/rollback/": {"post": PLATFORM},
    "scenario-runs/metrics/": {"get": PLATFORM},
    "scenario-runs/rollbacks/": {"get": PLATFORM},
    "scenario-activity/": {"get": PLATFORM},
    "presets/": {"get": PLATFORM, "post": PLATFORM},
    "presets/{key}/": {"get": PLATFORM, "delete": PLATFORM},
    "presets/{key}/apply/": {"post": PLATFORM},
    "presets/{key}/export/": {"get": PLATFORM},
    "presets/import/": {"post": PLATFORM},
    "preset-schedules/": {"get": PLATFORM, "post": PLATFORM},
    "preset-schedules/{id}/": {"get": PLATFORM, "delete": PLATFORM},
}


def requirement(path: str, method: str):
    """The row of an operation of the schema (`/api/v1/...`), or None when it has none."""
    return TABLE.get(path.removeprefix("/api/v1/"), {}).get(method.lower())


def rows() -> set[tuple[str, str]]:
    return {(f"/api/v1/{path}", method) for path, methods in TABLE.items() for method in methods}
