"""Calls to external scenarios' services: their JSON endpoints (with EXTERNAL_SCENARIO_TIMEOUT) and switching
them on or off. Below `scenarios.services` (which switches them as part of a change) and `scenarios.discovery`
(which finds and polls them)."""

import json
import urllib.error
import urllib.request

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site.errors import DomainError
from scenarios.models import Scenario

MAX_ANSWER_BYTES = 256 * 1024


class ExternalScenarioError(DomainError):
    """An external scenario's service could not be reached, or refused the change."""

    status_code = 502
    default_code = "external_scenario_failed"


# No proxies from the environment: the services are reached directly.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _describe_failure(url: str, exc: Exception, timeout: float) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(exc, urllib.error.HTTPError):
        body = ""
        try:
            body = exc.read(300).decode(errors="replace").strip()
        except Exception:  # the body is only a hint
            body = ""
        if body:
            return _("%(url)s answered HTTP %(code)s: %(body)s") % {"url": url, "code": exc.code, "body": body}
        return _("%(url)s answered HTTP %(code)s") % {"url": url, "code": exc.code}
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return _("%(url)s did not answer within %(seconds)s s") % {"url": url, "seconds": f"{timeout:g}"}
    if isinstance(reason, ConnectionRefusedError):
        return _("%(url)s refused the connection (is the service running?)") % {"url": url}
    return _("%(url)s could not be reached: %(reason)s") % {"url": url, "reason": reason}


def http_json(method: str, url: str, payload: dict | None = None) -> dict:
    """Call an endpoint and return its JSON object (empty when it sent none). Raises ExternalScenarioError."""
    timeout = settings.EXTERNAL_SCENARIO_TIMEOUT
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http(s) checked at discovery)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_ANSWER_BYTES)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ExternalScenarioError(_describe_failure(url, exc, timeout)) from None
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise ExternalScenarioError(_("%(url)s did not answer with JSON.") % {"url": url}) from None
    if not isinstance(value, dict):
        raise ExternalScenarioError(_("%(url)s answered with JSON that is not an object.") % {"url": url})
    return value


def record_error(scenario: Scenario, message: str) -> None:
    Scenario.objects.filter(pk=scenario.pk).update(last_error=message[:2000], last_error_at=timezone.now())


def toggle_remote(scenario: Scenario, active: bool, *, reason: str = "") -> None:
    """Switch the external service on or off. Raises ExternalScenarioError naming the scenario."""
    url = scenario.activate_url if active else scenario.deactivate_url
    if not url:
        if active:
            message = _("Could not activate %(key)s: it declares no activate endpoint.")
        else:
            message = _("Could not deactivate %(key)s: it declares no deactivate endpoint.")
        raise ExternalScenarioError(message % {"key": scenario.key})
    try:
        answer = http_json("POST", url, {"state": "active" if active else "inactive", "reason": reason})
    except ExternalScenarioError as exc:
        message = _("Could not activate %(key)s: %(why)s") if active else _("Could not deactivate %(key)s: %(why)s")
        why = {"key": scenario.key, "why": exc.message}
        raise ExternalScenarioError(message % why, scenario=scenario.key) from None
    remote_state = str(answer.get("maintenanceState") or ("active" if active else "inactive"))[:40]
    Scenario.objects.filter(pk=scenario.pk).update(remote_state=remote_state, last_error="", last_error_at=None)
