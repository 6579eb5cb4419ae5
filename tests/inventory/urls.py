"""The site's URLs plus the inventory API, until maintenance_site/api/urls.py imports inventory.api.

The shared router may have been turned into URL patterns before inventory.api registered its viewsets, so
the inventory routes are mounted here again (first: identical patterns, so the first match is the same view).
"""

from django.urls import include, path

import inventory.api  # noqa: F401  (registers the routes on the shared router)
from maintenance_site.api.routers import router
from maintenance_site.urls import urlpatterns as site_urlpatterns

inventory_routes = [route for route in router.urls if (getattr(route, "name", None) or "").startswith("inventory-")]

urlpatterns = [path("api/v1/", include(inventory_routes)), *site_urlpatterns]
