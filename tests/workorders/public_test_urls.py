"""The site's URLs plus the public problem-report pages, until maintenance_site/urls.py mounts them at report/."""

from django.urls import include, path

from maintenance_site.urls import urlpatterns as site_urlpatterns

urlpatterns = [*site_urlpatterns]
if not any(str(getattr(pattern, "pattern", "")) == "report/" for pattern in site_urlpatterns):
    urlpatterns.append(path("report/", include("workorders.public_urls")))
