"""What the site answers when a request goes wrong outside a view's own handling: Django's error handlers
(`handler400/403/404/500` in the root URL conf) and the middleware that refuses methods no view serves.

Under `/api/` every answer is the API's JSON envelope (`{"error": {"status", "code", "message"}}`); elsewhere
it is the project's own page, never Django's debug page or its bare default.
"""

import logging

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# TRACE echoes the request (cross-site tracing) and CONNECT opens tunnels: no view serves them, nor any
# method outside this list.
SERVED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def is_api_request(request) -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(status: int, code: str, message: str, headers=None) -> JsonResponse:
    return JsonResponse({"error": {"status": status, "code": code, "message": message}}, status=status, headers=headers)


def _page(request, template_name: str, status: int, context=None) -> HttpResponse:
    body = loader.get_template(template_name).render(context or {}, request)
    return HttpResponse(body, status=status)


def _allowed_methods(request) -> list[str] | None:
    """The methods the route's view serves, when the view says (DRF views and viewsets, class-based views)."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    request.resolver_match = match  # the request metrics label the route, as for any other request
    actions = getattr(match.func, "actions", None)  # a DRF viewset route: {"get": "list", ...}
    if actions:
        return sorted({method.upper() for method in actions} | {"OPTIONS"} | ({"HEAD"} if "get" in actions else set()))
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    if view_class is not None:
        return sorted(m.upper() for m in view_class.http_method_names if m != "trace" and hasattr(view_class, m))
    return None


class UnsupportedMethodMiddleware:
    """405 for TRACE, CONNECT and any method outside the seven the site serves, on every route, before any
    view can mistake it for a GET."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in SERVED_METHODS:
            return self.get_response(request)
        allowed = _allowed_methods(request)
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        message = _("The %(method)s method is not supported here.") % {"method": request.method}
        if is_api_request(request):
            return json_error(405, "method_not_allowed", message, headers=headers)
        return HttpResponse(message, status=405, content_type="text/plain; charset=utf-8", headers=headers)


def describe_refusal(exception) -> tuple[int, str, str]:
    """Status, code and message for what Django refuses before (or while) reading a request."""
    if isinstance(exception, RequestDataTooBig | TooManyFilesSent):
        return (
            413,
            "request_too_large",
            _("The request body is larger than this server accepts; send less per request."),
        )
    if isinstance(exception, TooManyFieldsSent):
        return 400, "too_many_fields", _("The request has more fields or query parameters than this server accepts.")
    return 400, "bad_request", _("The request is malformed and cannot be processed.")


def bad_request(request, exception=None):
    """400 for what Django refuses before a view runs (a host not in ALLOWED_HOSTS, a malformed body), and
    413 for a body over the size limit."""
    status, code, message = describe_refusal(exception)
    if is_api_request(request):
        return json_error(status, code, message)
    return _page(request, "400.html", status, {"message": message})


def permission_denied(request, exception=None):
    message = _("You do not have permission to see this page.")
    if is_api_request(request):
        return json_error(403, "permission_denied", message)
    return _page(request, "403.html", 403)


def page_not_found(request, exception=None):
    if is_api_request(request):
        return json_error(
            404, "not_found", _("There is no API endpoint at %(path)s; see /api/docs/.") % {"path": request.path}
        )
    return _page(request, "404.html", 404)


def server_error(request):
    """Renders without a context (or a database): whatever failed may be what a context processor needs."""
    message = _("Something went wrong on our side; it has been logged. Try again, and tell us if it persists.")
    if is_api_request(request):
        correlation_id = getattr(request, "correlation_id", None)
        body = {"error": {"status": 500, "code": "server_error", "message": message}}
        if correlation_id:
            body["error"]["correlation_id"] = correlation_id
        return JsonResponse(body, status=500)
    return HttpResponse(loader.get_template("500.html").render(), status=500)
