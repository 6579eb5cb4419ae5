"""The site's URLs plus the technician's view, until maintenance_site/urls.py mounts it at t/."""

from django.urls import include, path

from tests.workorders.public_test_urls import urlpatterns as site_urlpatterns

urlpatterns = [*site_urlpatterns]
if not any(str(getattr(pattern, "pattern", "")) == "t/" for pattern in site_urlpatterns):
    urlpatterns.append(path("t/", include("workorders.technician_urls")))
