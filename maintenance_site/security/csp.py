"""The Content-Security-Policy, per path.

settings.CONTENT_SECURITY_POLICY (django-csp 4.x) is the strict policy every page gets: scripts and styles only
from our own origin (or carrying the response's nonce), no inline script, no `eval`. A path listed in
settings.CONTENT_SECURITY_POLICY_PATHS adds sources to that policy for its pages only; README's "Security
headers" says which path needs what, and why.
"""

import http.client
from dataclasses import asdict

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed

# What a view or the response can set to change its own policy (django-csp's decorators): with any of them, or a
# nonce used, a response's policy is built for it, as django-csp builds it.
PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")


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

    def process_response(self, request, response):
        """django-csp's, with the two headers of a response that has no policy of its own (no decorator, no nonce
        used: every API answer) built once per path prefix and kept: building them (the settings' policy merged
        with the path's additions, twice) was ~5 % of a short API answer's CPU. Anything else: django-csp's."""
        if getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, name) for name in PER_RESPONSE):
            return super().process_response(request, response)
        if response.status_code in (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND) and settings.DEBUG:
            return response
        path = request.path_info
        prefix = next((prefix for prefix in settings.CONTENT_SECURITY_POLICY_PATHS if path.startswith(prefix)), None)
        policies = _policies.get(prefix)
        if policies is None:
            parts = asdict(self.get_policy_parts(request=request, response=response))
            parts_ro = asdict(self.get_policy_parts(request=request, response=response, report_only=True))
            policies = _policies[prefix] = (build_policy(**parts), build_policy(**parts_ro, report_only=True))
        for header, policy, setting, exempt in (
            (HEADER, policies[0], "CONTENT_SECURITY_POLICY", "_csp_exempt"),
            (HEADER_REPORT_ONLY, policies[1], "CONTENT_SECURITY_POLICY_REPORT_ONLY", "_csp_exempt_ro"),
        ):
            if not policy or getattr(response, exempt, False) is not False or header in response:
                continue
            excluded = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
            if not path.startswith(tuple(excluded)):
                response[header] = policy
        if getattr(request, "_csp_nonce", None) is None:  # as django-csp: a nonce asked for after this is an error
            request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


# The headers of a response without a policy of its own, per CONTENT_SECURITY_POLICY_PATHS prefix (None: no prefix),
# while the settings stay as they are.
_policies: dict[str | None, tuple[str, str]] = {}


def _forget_policies(**kwargs) -> None:
    _policies.clear()


setting_changed.connect(_forget_policies)
