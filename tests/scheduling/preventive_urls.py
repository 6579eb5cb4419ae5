"""The site's URLs plus the preventive-maintenance routes, until maintenance_site/api/urls.py imports
`scheduling.preventive_api` and `assets.meters_api` and maintenance_site/urls.py routes the .ics feed."""

from django.urls import include, path

import assets.meters_api  # noqa: F401  (registers the meter routes)
import scheduling.preventive_api  # noqa: F401  (registers the preventive-maintenance routes)
from maintenance_site.api.routers import router
from maintenance_site.urls import urlpatterns as site_urlpatterns
from scheduling.ical import calendar_feed

urlpatterns = [
    # A fresh copy of the router's routes: the site's copy was taken when maintenance_site.api.urls was imported.
    path("api/v1/", include(router.get_urls())),
    path("preventive/calendar/<str:token>.ics", calendar_feed, name="preventive-calendar-feed"),
    *site_urlpatterns,
]
