"""The site's URLs with the SLA API mounted first, until maintenance_site/api/urls.py imports sla.api.

The routes are registered on a router of their own, so they exist whatever order the URL modules were
imported in (the shared router's URLs are fixed when maintenance_site.api.urls is first imported)."""

from django.urls import include, path

from maintenance_site.api.routers import Router
from maintenance_site.urls import urlpatterns as site_urlpatterns
from sla.api import ROUTES

sla_router = Router()
sla_router.include_root_view = False
for prefix, viewset, basename in ROUTES:
    sla_router.register(prefix, viewset, basename=basename)

urlpatterns = [path("api/v1/", include(sla_router.urls)), *site_urlpatterns]
