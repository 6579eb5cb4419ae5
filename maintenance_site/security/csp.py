"""The Content-Security-Policy, per path.

settings.CONTENT_SECURITY_POLICY (django-csp 4.x) is the strict policy every page gets: scripts and styles only
from our own origin (or carrying the response's nonce), no inline script, no `eval`. A path listed in
settings.CONTENT_SECURITY_POLICY_PATHS adds sources to that policy for its pages only; README's "Security
headers" says which path needs what, and why.
"""

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings


class PathPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, plus the additions of the first CONTENT_SECURITY_POLICY_PATHS prefix that the
    request's path starts with (a view's own @csp_update comes on top)."""

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        if report_only or parts.config is not None:
            return parts
        for prefix, additions in settings.CONTENT_SECURITY_POLICY_PATHS.items():
            if request.path_info.startswith(prefix):
                merged = {key: list(value) for key, value in additions.items()}
                for key, value in (parts.update or {}).items():
                    merged[key] = [*merged.get(key, []), *(value if isinstance(value, list | tuple) else [value])]
                parts.update = merged
                break
        return parts
