from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from inventory import technician_views as technician_parts
from maintenance_site.ops import views as ops_views
from maintenance_site.tenancy.views import BackOfficeSignInForm, home, switch_organization
from scheduling.planning import views as planning_views
from scheduling.preventive.ical import calendar_feed as preventive_calendar_feed
from workorders import technician_urls
from workorders import views as workorder_views

admin.site.site_header = "Maintenance back office"
admin.site.site_title = "Maintenance"
admin.site.index_title = "Dashboard"
admin.site.login_form = BackOfficeSignInForm  # a technician is sent to /t/login/, not told the password is wrong

# The technician's view (/t/): the work orders' pages and the inventory's parts pages, one namespace.
technician_urlpatterns = [
    *technician_urls.urlpatterns,
    path("orders/<int:pk>/parts/", technician_parts.use_part, name="part"),
    path("parts/search/", technician_parts.part_search, name="part-search"),
    path("parts/van.json", technician_parts.van_parts, name="van-parts"),
    path("api/orders/<int:pk>/parts/", technician_parts.use_part_json, name="api-part"),
]

urlpatterns = [
    path("", home, name="home"),  # technicians to /t/, staff to the admin, signed-out visitors to the sign-in page
    # the planner's calendar and the dispatch board: back-office pages of the scheduling app (before the admin's
    # own URLs, whose catch-all would take them for an app's index)
    path("admin/planning/calendar/", planning_views.calendar_view, name="planning-calendar"),
    path("admin/planning/board/", planning_views.board_view, name="planning-board"),
    path("admin/planning/move/", planning_views.move_view, name="planning-move"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organization/switch/", switch_organization, name="switch-organization"),
    path("report/", include("workorders.public_urls")),
    path("t/", include((technician_urlpatterns, technician_urls.app_name))),
    path("attachments/<str:token>/", workorder_views.download_attachment, name="attachment-file"),
    path("api/v1/", include("maintenance_site.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's set-up as a script file: the docs need no inline script (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path("preventive/calendar/<str:token>.ics", preventive_calendar_feed, name="preventive-calendar-feed"),
    path("health", ops_views.liveness, name="health"),
    path("health/ready", ops_views.readiness, name="health-ready"),
    path("metrics", ops_views.prometheus_metrics, name="metrics"),
]

# The API's JSON envelope under /api/, the project's own pages elsewhere (maintenance_site/ops/http_errors.py).
handler400 = "maintenance_site.ops.http_errors.bad_request"
handler403 = "maintenance_site.ops.http_errors.permission_denied"
handler404 = "maintenance_site.ops.http_errors.page_not_found"
handler500 = "maintenance_site.ops.http_errors.server_error"
