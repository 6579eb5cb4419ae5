"""The role × action table: the one place that says which role may do what.

Permission classes (API), the admin base class and the technician view all read `role_allows`.
The README's roles table is generated from the same data (`python manage.py roles_table`).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MANAGER = "manager", _("Manager")
    PLANNER = "planner", _("Planner")
    STOREKEEPER = "storekeeper", _("Storekeeper")
    TECHNICIAN = "technician", _("Technician")
    VIEWER = "viewer", _("Viewer")
    INTEGRATOR = "integrator", _("Integrator")


class Action(models.TextChoices):
    VIEW = "view", _("see the organisation's data")
    REQUEST_WORK = "request_work", _("raise work requests")
    CREATE_WORK = "create_work", _("create and edit work orders")
    ASSIGN_WORK = "assign_work", _("assign work to technicians")
    EXECUTE_WORK = "execute_work", _("start, hold and complete their own work")
    VERIFY_WORK = "verify_work", _("verify completed work")
    APPROVE_REQUESTS = "approve_requests", _("approve or reject work requests")
    MANAGE_ASSETS = "manage_assets", _("manage assets, locations and meters")
    USE_PARTS = "use_parts", _("record parts used on work orders")
    ADJUST_STOCK = "adjust_stock", _("receive, adjust, transfer and write off stock")
    MANAGE_PURCHASING = "manage_purchasing", _("manage vendors and purchase orders")
    MANAGE_SCHEDULES = "manage_schedules", _("manage preventive schedules")
    MANAGE_SLA = "manage_sla", _("manage SLA policies and calendars")
    MANAGE_WINDOWS = "manage_windows", _("schedule maintenance windows and switch maintenance mode")
    BYPASS_MAINTENANCE = "bypass_maintenance", _("keep writing during maintenance mode")
    ACTIVATE_SCENARIOS = "activate_scenarios", _("activate and deactivate maintenance scenarios")
    INGEST_TELEMETRY = "ingest_telemetry", _("post meter readings and telemetry")
    MANAGE_USERS = "manage_users", _("manage members and their roles")
    MANAGE_KEYS = "manage_keys", _("create and revoke API keys")
    MANAGE_WEBHOOKS = "manage_webhooks", _("manage webhook subscriptions and read their delivery log")
    MANAGE_SETTINGS = "manage_settings", _("change the organisation's settings")
    READ_AUDIT = "read_audit", _("read the audit report (every change: who, when, before → after)")


A = Action
PERMISSIONS: dict[str, frozenset[Action]] = {
    Role.MANAGER: frozenset(Action),
    Role.PLANNER: frozenset(
        {
            A.VIEW,
            A.REQUEST_WORK,
            A.CREATE_WORK,
            A.ASSIGN_WORK,
            A.EXECUTE_WORK,
            A.VERIFY_WORK,
            A.APPROVE_REQUESTS,
            A.MANAGE_ASSETS,
            A.MANAGE_SCHEDULES,
            A.INGEST_TELEMETRY,
        }
    ),
    Role.STOREKEEPER: frozenset({A.VIEW, A.REQUEST_WORK, A.USE_PARTS, A.ADJUST_STOCK, A.MANAGE_PURCHASING}),
    Role.TECHNICIAN: frozenset({A.VIEW, A.REQUEST_WORK, A.EXECUTE_WORK, A.USE_PARTS, A.INGEST_TELEMETRY}),
    Role.VIEWER: frozenset({A.VIEW}),
    Role.INTEGRATOR: frozenset(
        {A.VIEW, A.REQUEST_WORK, A.CREATE_WORK, A.MANAGE_ASSETS, A.INGEST_TELEMETRY, A.MANAGE_WEBHOOKS}
    ),
}

# Roles whose members may sign in to the back office (the Django admin), given is_staff.
BACK_OFFICE_ROLES = frozenset({Role.MANAGER, Role.PLANNER, Role.STOREKEEPER})


def role_allows(role: str, action: Action) -> bool:
    return action in PERMISSIONS.get(role, frozenset())


def roles_allowed(action: Action) -> list[Role]:
    return [Role(role) for role, actions in PERMISSIONS.items() if action in actions]


def markdown_table() -> str:
    """The table as Markdown, for the README."""
    roles = list(Role)
    lines = [
        "| action | " + " | ".join(str(role.label) for role in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for action in Action:
        marks = ["✓" if role_allows(role, action) else "" for role in roles]
        lines.append(f"| {action.label} (`{action.value}`) | " + " | ".join(marks) + " |")
    return "\n".join(lines)
