import re

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
