"""The site's URLs plus what the maintenance-window tests need: the maintenance API (until
maintenance_site/api/urls.py mounts it) and stand-ins for technician-view pages (until /t/ exists)."""

from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from maintenance_site.urls import urlpatterns as site_urlpatterns


@csrf_exempt
def technician_page(request):
    """A stand-in for a technician-view page: reads and writes both answer 200."""
    if request.method == "GET":
        return HttpResponse("my work")
    return JsonResponse({"saved": True})


urlpatterns = [
    path("api/v1/maintenance/", include("scheduling.windows_api")),
    path("t/work/", technician_page, name="technician-stand-in"),
    path("t/logout/", technician_page, name="technician-logout-stand-in"),
    *site_urlpatterns,
]
