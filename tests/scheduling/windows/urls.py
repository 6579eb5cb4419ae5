"""The site's URLs plus stand-ins for technician-view pages: a page whose reads and writes both answer 200, so
that the maintenance-mode tests see only what the middleware does."""

from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from maintenance_site.urls import urlpatterns as site_urlpatterns


@csrf_exempt
def technician_page(request):
    """A stand-in for a technician-view page: reads and writes both answer 200."""
    if request.method == "GET":
        return HttpResponse("my work")
    return JsonResponse({"saved": True})


urlpatterns = [
    path("t/work/", technician_page, name="technician-stand-in"),
    path("t/logout/", technician_page, name="technician-logout-stand-in"),
    *site_urlpatterns,
]
