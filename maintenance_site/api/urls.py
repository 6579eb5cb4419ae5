"""`/api/v1/`: every app registers its viewsets in `router` from its own `api` module."""

from django.urls import include, path, re_path
from rest_framework_simplejwt.views import TokenRefreshView

# Each import registers that app's viewsets on the shared router.
import assets.api  # noqa: E402,F401,I001
import assets.meters_api  # noqa: E402,F401
import assets.telemetry.api  # noqa: E402,F401
import inventory.api  # noqa: E402,F401
import maintenance_site.analytics.api  # noqa: E402,F401
import maintenance_site.events.api  # noqa: E402,F401
import maintenance_site.notifications.api  # noqa: E402,F401
import maintenance_site.notifications.chat_api  # noqa: E402,F401
import maintenance_site.reports.api  # noqa: E402,F401
import maintenance_site.tenancy.api  # noqa: E402,F401
import maintenance_site.webhooks.api  # noqa: E402,F401
import scenarios.api  # noqa: E402,F401
import scheduling.planning.api  # noqa: E402,F401
import scheduling.preventive.api  # noqa: E402,F401
import sla.api  # noqa: E402,F401
import workorders.api  # noqa: E402,F401
import workorders.capacity.api  # noqa: E402,F401
import workorders.health.api  # noqa: E402,F401  (diagnostics, iot/devices/{id}/health, analytics/predictive-insights)
from maintenance_site.api.routers import router
from maintenance_site.ops.views import StatusView
from maintenance_site.security.logins import TokenObtainView
from maintenance_site.tenancy.api import MeView
from workorders.asset_history import AssetHistoryView
from workorders.order_history import WorkOrderHistoryView

# URL resolution tries the patterns in order (~200 of them, with their format-suffix twins, before the work orders'
# otherwise): the hottest list goes first. No other prefix begins like it, so nothing else resolves differently.
HOT_PREFIXES = ("work-orders",)
router.registry.sort(key=lambda entry: entry[0] not in HOT_PREFIXES)

urlpatterns = [
    re_path(r"^status/?$", StatusView.as_view(), name="api-status"),
    re_path(r"^me/?$", MeView.as_view(), name="api-me"),
    path("auth/token/", TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    re_path(r"^assets/(?P<pk>[0-9]+)/history/?$", AssetHistoryView.as_view(), name="asset-history"),
    re_path(r"^work-orders/(?P<pk>[0-9]+)/history/?$", WorkOrderHistoryView.as_view(), name="work-order-history"),
    path("maintenance/", include("scheduling.windows.api")),
    path("", include(router.urls)),
]
