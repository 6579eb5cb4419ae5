import re
import time

from maintenance_site.ops import metrics
from maintenance_site.ops.correlation import correlation_id, new_correlation_id

HEADER = "X-Correlation-ID"
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CorrelationIdMiddleware:
    """Takes the caller's X-Correlation-ID (or makes one), logs with it and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(HEADER, "")
        value = offered if _VALID.match(offered) else new_correlation_id()
        token = correlation_id.set(value)
        request.correlation_id = value
        try:
            response = self.get_response(request)
        finally:
            correlation_id.reset(token)
        response[HEADER] = value
        return response


class RequestMetricsMiddleware:
    """Counts and times every request for /metrics, labelled by the resolved route's view name (never the
    raw path). First in MIDDLEWARE, so the time covers all the other middleware too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        status = 500  # if an exception escapes the handler, the server answers 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            metrics.observe_request(request.method, metrics.route_label(request), status, time.perf_counter() - started)
