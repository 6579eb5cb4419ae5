"""The back office's sidebar (django-unfold's SIDEBAR navigation): pages grouped by job — Work, Assets, Inventory,
Planning, Reliability, Reports, Settings, Operations — work orders first, each entry shown only to those whose role
may see the page (the page's own `has_view_permission`, which reads the role table; see admin_base).

Models are named by "app_label.model_name" and looked up in the admin's registry at request time, so this module
imports no app (the apps' order, pyproject [tool.importlinter]) and a page not registered is simply left out.
Saved filters are entries too: a link to a list with its query string ("My teams' overdue work").
"""

from dataclasses import dataclass

from django.contrib import admin
from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class Page:
    """A model's change list in the sidebar, with an optional query string (a saved filter)."""

    label: str  # "workorders.workorder"
    title: str
    icon: str  # a Material Symbols name, as the theme expects
    query: str = ""
    url_name: str = ""  # a page of its own (the planning calendar), shown to those who may view the model's list

    def model_admin(self):
        app_label, model_name = self.label.split(".")
        for model, model_admin in admin.site._registry.items():
            if model._meta.app_label == app_label and model._meta.model_name == model_name:
                return model_admin
        return None

    def url(self) -> str:
        app_label, model_name = self.label.split(".")
        name = self.url_name or f"admin:{app_label}_{model_name}_changelist"
        try:
            return reverse(name) + (f"?{self.query}" if self.query else "")
        except NoReverseMatch:
            return ""

    def visible_to(self, request) -> bool:
        model_admin = self.model_admin()
        return bool(model_admin and model_admin.has_view_permission(request) and self.url())


DASHBOARD = "dashboard"

# The groups in the order a maintenance team works; the first page of a group is its most used.
GROUPS: list[tuple[str, list[Page | str]]] = [
    (
        "Work",
        [
            DASHBOARD,
            Page("workorders.workorder", "Work orders", "assignment"),
            Page("workorders.workorder", "My teams' overdue", "alarm", "team_scope=mine&overdue=yes"),
            Page("workorders.workorder", "Waiting for parts", "pending_actions", "waiting=parts"),
            Page("workorders.workrequest", "Work requests", "inbox"),
            Page("workorders.procedure", "Procedures", "checklist"),
            Page("workorders.team", "Teams", "groups"),
        ],
    ),
    (
        "Assets",
        [
            Page("assets.asset", "Assets", "precision_manufacturing"),
            Page("assets.location", "Locations", "location_on"),
            Page("assets.assettype", "Asset types", "category"),
            Page("assets.meter", "Meters", "speed"),
        ],
    ),
    (
        "Inventory",
        [
            Page("inventory.part", "Parts", "inventory_2"),
            Page("inventory.stocklocation", "Stock locations", "warehouse"),
            Page("inventory.stockmovement", "Stock movements", "swap_horiz"),
            Page("inventory.reservation", "Reservations", "bookmark"),
            Page("inventory.purchaseorder", "Purchase orders", "shopping_cart"),
            Page("inventory.vendor", "Vendors", "storefront"),
        ],
    ),
    (
        "Planning",
        [
            Page("workorders.workorder", "Calendar", "calendar_month", url_name="planning-calendar"),
            Page("workorders.workorder", "Dispatch board", "view_kanban", url_name="planning-board"),
            Page("workorders.workingpattern", "Working hours", "schedule"),
            Page("workorders.timeoff", "Time off", "beach_access"),
            Page("scheduling.preventiveschedule", "Preventive schedules", "event_repeat"),
            Page("scheduling.preventiveoccurrence", "Preventive occurrences", "event_available"),
            Page("scheduling.maintenancewindow", "Maintenance windows", "date_range"),
            Page("scheduling.maintenancemode", "Maintenance mode", "construction"),
            Page("scheduling.calendarfeed", "Calendar feeds", "rss_feed"),
            Page("scheduling.generationrun", "Generation runs", "autorenew"),
        ],
    ),
    (
        "Reliability",
        [
            Page("sla.slaclock", "SLA clocks", "timer"),
            Page("sla.slaviolation", "SLA violations", "report"),
            Page("sla.slapolicy", "SLA policies", "policy"),
            Page("sla.businesscalendar", "Business calendars", "schedule"),
            Page("scheduling.maintenancehistoryentry", "Maintenance history", "history"),
        ],
    ),
    (
        "Reports",
        [
            Page("reports.generatedreport", "Reports", "summarize"),
            Page("reports.reportschedule", "Report schedules", "schedule_send"),
            Page("scenarios.scenariorun", "Scenario runs", "monitoring"),
            Page("notifications.notification", "Notifications", "notifications"),
            Page("notifications.notificationdelivery", "Deliveries", "outgoing_mail"),
        ],
    ),
    (
        "Settings",
        [
            Page("tenancy.organization", "Organisations", "apartment"),
            Page("tenancy.membership", "Members and roles", "badge"),
            Page("tenancy.profile", "Languages", "translate"),
            Page("tenancy.organizationapikey", "API keys", "key"),
            Page("auth.user", "Users", "person"),
            Page("auth.group", "Groups", "group_work"),
        ],
    ),
    (
        "Operations",
        [
            Page("scenarios.scenario", "Scenarios", "playlist_play"),
            Page("scenarios.preset", "Presets", "tune"),
            Page("scenarios.presetschedule", "Preset schedules", "event_note"),
            Page("scenarios.scenarioactivity", "Scenario activity", "list_alt"),
            Page("scenarios.discoveredservice", "Discovered services", "hub"),
            Page("django_celery_beat.periodictask", "Periodic tasks", "alarm_on"),
            Page("django_celery_beat.intervalschedule", "Intervals", "timelapse"),
            Page("django_celery_beat.crontabschedule", "Crontabs", "more_time"),
            Page("django_celery_beat.clockedschedule", "Clocked", "alarm"),
            Page("django_celery_beat.solarschedule", "Solar events", "wb_sunny"),
            Page("django_celery_results.taskresult", "Task results", "task_alt"),
            Page("django_celery_results.groupresult", "Group results", "library_add_check"),
            Page("axes.accessattempt", "Login attempts", "lock_clock"),
            Page("axes.accesslog", "Login log", "login"),
            Page("axes.accessfailurelog", "Login failures", "lock_person"),
        ],
    ),
]


def sidebar(request) -> list[dict]:
    """The theme's SIDEBAR["navigation"] for this request: the groups with the entries the person may open (a
    group left empty is hidden by the theme). Registered pages that no group names come last, under "Other"."""
    named = {item.label for _, items in GROUPS for item in items if isinstance(item, Page)}
    others = [
        Page(label, str(model._meta.verbose_name_plural).capitalize(), "article")
        for model in admin.site._registry
        if (label := f"{model._meta.app_label}.{model._meta.model_name}") not in named
    ]
    groups = [*GROUPS, ("Other", others)] if others else GROUPS
    navigation = []
    for title, items in groups:
        entries = []
        for item in items:
            if item == DASHBOARD:
                entries.append({"title": "Dashboard", "icon": "dashboard", "link": reverse("admin:index")})
            elif item.visible_to(request):
                entries.append(
                    {
                        "title": item.title,
                        "icon": item.icon,
                        "link": item.url(),
                        # a saved filter is its own entry: the plain list is not "active" on it, nor it on the list
                        "active": _is_current(request, item),
                    }
                )
        navigation.append({"title": title, "separator": True, "collapsible": False, "items": entries})
    return navigation


def _is_current(request, item: Page) -> bool:
    base = item.url().split("?", 1)[0]
    if not request.path.startswith(base):
        return False
    if request.path != base:
        return not item.query  # an object's page belongs to the plain list's entry
    query = request.META.get("QUERY_STRING", "")
    if item.query:
        return all(part in query.split("&") for part in item.query.split("&"))
    return not any(
        other.query and all(part in query.split("&") for part in other.query.split("&"))
        for _, items in GROUPS
        for other in items
        if isinstance(other, Page) and other.label == item.label
    )
