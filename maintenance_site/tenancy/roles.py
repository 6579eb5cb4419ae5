"""The role × action table: the one place that says which role may do what.

Permission classes (API), the admin base class and the technician view all read `role_allows`.
The README's roles table is generated from the same data (`python manage.py roles_table`).
"""

from django.db import models


class Role(models.TextChoices):
    MANAGER = "manager", "Manager"
    PLANNER = "planner", "Planner"
    STOREKEEPER = "storekeeper", "Storekeeper"
    TECHNICIAN = "technician", "Technician"
    VIEWER = "viewer", "Viewer"
    INTEGRATOR = "integrator", "Integrator"


class Action(models.TextChoices):
    VIEW = "view", "see the organisation's data"
    REQUEST_WORK = "request_work", "raise work requests"
    CREATE_WORK = "create_work", "create and edit work orders"
    ASSIGN_WORK = "assign_work", "assign work to technicians"
    EXECUTE_WORK = "execute_work", "start, hold and complete their own work"
    VERIFY_WORK = "verify_work", "verify completed work"
    APPROVE_REQUESTS = "approve_requests", "approve or reject work requests"
    MANAGE_ASSETS = "manage_assets", "manage assets, locations and meters"
    USE_PARTS = "use_parts", "record parts used on work orders"
    ADJUST_STOCK = "adjust_stock", "receive, adjust, transfer and write off stock"
    MANAGE_PURCHASING = "manage_purchasing", "manage vendors and purchase orders"
    MANAGE_SCHEDULES = "manage_schedules", "manage preventive schedules"
    MANAGE_SLA = "manage_sla", "manage SLA policies and calendars"
    MANAGE_WINDOWS = "manage_windows", "schedule maintenance windows and switch maintenance mode"
    BYPASS_MAINTENANCE = "bypass_maintenance", "keep writing during maintenance mode"
    ACTIVATE_SCENARIOS = "activate_scenarios", "activate and deactivate maintenance scenarios"
    INGEST_TELEMETRY = "ingest_telemetry", "post meter readings and telemetry"
    MANAGE_USERS = "manage_users", "manage members and their roles"
    MANAGE_KEYS = "manage_keys", "create and revoke API keys"
    MANAGE_WEBHOOKS = "manage_webhooks", "manage webhook subscriptions and read their delivery log"
    MANAGE_SETTINGS = "manage_settings", "change the organisation's settings"


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
        "| action | " + " | ".join(role.label for role in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for action in Action:
        marks = ["✓" if role_allows(role, action) else "" for role in roles]
        lines.append(f"| {action.label} (`{action.value}`) | " + " | ".join(marks) + " |")
    return "\n".join(lines)
