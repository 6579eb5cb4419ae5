"""Calls to external scenarios' services: their JSON endpoints (with EXTERNAL_SCENARIO_TIMEOUT) and switching
them on or off. Below `scenarios.services` (which switches them as part of a change) and `scenarios.discovery`
(which finds and polls them)."""

import json
import urllib.error
import urllib.request

from django.conf import settings
from django.utils import timezone

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
        return f"{url} answered HTTP {exc.code}" + (f": {body}" if body else "")
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"{url} did not answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"{url} refused the connection (is the service running?)"
    return f"{url} could not be reached: {reason}"


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
        raise ExternalScenarioError(f"{url} did not answer with JSON.") from None
    if not isinstance(value, dict):
        raise ExternalScenarioError(f"{url} answered with JSON that is not an object.")
    return value


def record_error(scenario: Scenario, message: str) -> None:
    Scenario.objects.filter(pk=scenario.pk).update(last_error=message[:2000], last_error_at=timezone.now())


def toggle_remote(scenario: Scenario, active: bool, *, reason: str = "") -> None:
    """Switch the external service on or off. Raises ExternalScenarioError naming the scenario."""
    url = scenario.activate_url if active else scenario.deactivate_url
    verb = "activate" if active else "deactivate"
    if not url:
        raise ExternalScenarioError(f"Could not {verb} {scenario.key}: it declares no {verb} endpoint.")
    try:
        answer = http_json("POST", url, {"state": "active" if active else "inactive", "reason": reason})
    except ExternalScenarioError as exc:
        raise ExternalScenarioError(f"Could not {verb} {scenario.key}: {exc.message}", scenario=scenario.key) from None
    remote_state = str(answer.get("maintenanceState") or ("active" if active else "inactive"))[:40]
    Scenario.objects.filter(pk=scenario.pk).update(remote_state=remote_state, last_error="", last_error_at=None)
