"""The site's URLs with the scenario API registered (until maintenance_site/api/urls.py imports
scenarios.api). The API's router is cached once built, so the scenario routes come first here."""

from django.urls import include, path

from maintenance_site.api.routers import Router
from maintenance_site.urls import urlpatterns as site_urlpatterns
from scenarios.api import register

scenario_router = Router()
register(scenario_router)

urlpatterns = [
    path("api/v1/", include((scenario_router.get_urls(), "scenarios-api"))),
    *site_urlpatterns,
]
