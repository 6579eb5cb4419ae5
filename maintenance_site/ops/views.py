import hmac

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from maintenance_site.ops import health, metrics
from scenarios.services import scenarios_status
from scheduling.windows.mode import platform_status


def maintenance_mode_status() -> dict:
    """The platform-wide maintenance switch and how many organisations are in maintenance mode (these
    endpoints know no organisation; an organisation's own mode is at /api/v1/maintenance/mode)."""
    return platform_status()


class StatusView(APIView):
    """Platform status. Anyone (a monitor without credentials) gets the overall health and the maintenance
    mode; a signed-in user, token or API key also gets the version, each component's check and the scenarios."""

    permission_classes = [AllowAny]
    throttle_classes = []  # it reports the cache's health, so it must not depend on the cache

    @extend_schema(responses={200: dict}, summary="Platform status")
    def get(self, request):
        results = health.run_checks()
        mode = maintenance_mode_status()
        body = {"healthy": all(r.ok for r in results)}
        if not (request.user and request.user.is_authenticated):
            body["maintenance_mode"] = {"active": mode["active"], "expected_end": mode["platform"]["expected_end"]}
            return Response(body)
        body.update(
            version=settings.VERSION,
            maintenance_mode=mode,
            components=health.as_dict(results),
            scenarios=scenarios_status(),
        )
        return Response(body)


def liveness(request):
    """The process answers: nothing else is checked."""
    return JsonResponse({"status": "ok"})


def readiness(request):
    """Database, cache, broker and beat heartbeat; 503 naming what is down."""
    results = health.run_checks()
    down = [r.name for r in results if not r.ok]
    status = "ok" if not down else "unavailable"
    if down == ["beat"] and health.starting():
        status = "starting"  # `make run`'s first minute: beat has not reported yet, nothing is wrong
    body = {
        "status": status,
        "down": down,
        "checks": health.as_dict(results),
        "maintenance_mode": maintenance_mode_status(),
    }
    return JsonResponse(body, status=503 if down else 200)


def prometheus_metrics(request):
    """Prometheus metrics. With METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`; without it,
    open while DEBUG is on (development) and closed when it is off."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    token = settings.METRICS_TOKEN
    if not token and not settings.DEBUG:
        return HttpResponse(
            "/metrics is closed: set METRICS_TOKEN and send it as 'Authorization: Bearer <token>'.\n",
            status=403,
            content_type="text/plain",
        )
    if token:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), token.encode()):
            response = HttpResponse("A valid metrics token is required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    body, content_type = metrics.render(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
