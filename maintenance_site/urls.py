from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from maintenance_site.ops import views as ops_views
from maintenance_site.tenancy.views import switch_organization
from scheduling.ical import calendar_feed as preventive_calendar_feed
from workorders import views as workorder_views

admin.site.site_header = "Maintenance back office"
admin.site.site_title = "Maintenance"
admin.site.index_title = "Back office"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organization/switch/", switch_organization, name="switch-organization"),
    path("report/", include("workorders.public_urls")),
    path("t/", include("workorders.technician_urls")),
    path("attachments/<str:token>/", workorder_views.download_attachment, name="attachment-file"),
    path("api/v1/", include("maintenance_site.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("preventive/calendar/<str:token>.ics", preventive_calendar_feed, name="preventive-calendar-feed"),
    path("health", ops_views.liveness, name="health"),
    path("health/ready", ops_views.readiness, name="health-ready"),
    path("metrics", ops_views.prometheus_metrics, name="metrics"),
]
