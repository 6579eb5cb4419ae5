"""External scenarios: discovered from service.json files, polled, and switched through their endpoints.

Every DISCOVERY_INTERVAL seconds the folder SCENARIO_DISCOVERY_DIR is scanned for `service.json` files
(also under a service's `.vrooli/` folder). A file tagged "maintenance" becomes an external
scenario; every file found is listed with its outcome (scenario, ignored and why, invalid and why), so
"scenario not discovered" is answered on the board instead of in logs. The format:

    {
      "service": {"name": "code-smell", "displayName": "Code smell", "description": "…",
                  "tags": ["maintenance"]},
      "maintenance": {
        "canDeactivate": true, "defaultState": "inactive",
        "baseUrl": "http://127.0.0.1:3251",
        "endpoints": {"status": "/api/v1/status", "activate": "/api/v1/maintenance/activate",
                      "deactivate": "/api/v1/maintenance/deactivate"},
        "category": "performance", "weight": "light", "conflicts": ["other-scenario"]
      }
    }

(`name`, `description` and `tags` are also read at the top level.) The status endpoint answers
`{"health": "healthy", "maintenanceState": "active|inactive", "canToggle": true}`; activate and
deactivate are POSTed `{"state": …, "reason": …}` and answer 2xx. Every call has a timeout
(EXTERNAL_SCENARIO_TIMEOUT); failures are recorded on the scenario (`last_error`) and in the activity log.
"""

import json
import logging
import re
from pathlib import Path
from urllib.parse import urljoin, urlparse

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from maintenance_site import audit
from maintenance_site.tenancy import SYSTEM
from scenarios import registry
from scenarios.models import (
    KEY_PATTERN,
    RESERVED_KEYS,
    Category,
    DiscoveredService,
    Scenario,
    ScenarioActivity,
    Weight,
)
from scenarios.remote import ExternalScenarioError, http_json
from scenarios.services import lock_all, log_activity, mark_inactive

logger = logging.getLogger(__name__)

Action = ScenarioActivity.Action
Result = ScenarioActivity.Result
Via = ScenarioActivity.Via

FILE_NAME = "service.json"
MAX_FILE_BYTES = 256 * 1024
MAX_FILES = 1000
MAX_DEPTH = 5
DEFAULT_PATHS = {
    "status": "/api/v1/status",
    "activate": "/api/v1/maintenance/activate",
    "deactivate": "/api/v1/maintenance/deactivate",
}


class ServiceFileError(Exception):
    """A service.json that cannot become a scenario; the message says why."""


class NotTagged(Exception):
    """A service.json without the "maintenance" tag."""


def poll(scenario: Scenario) -> dict | None:
    """Read the service's status endpoint and record health, maintenance state and canToggle (or the
    failure). Returns the status, or None when it failed."""
    now = timezone.now()
    was_failing = bool(scenario.last_error)
    try:
        status = http_json("GET", scenario.status_url)
    except ExternalScenarioError as exc:
        Scenario.objects.filter(pk=scenario.pk).update(
            last_polled_at=now, remote_health="unreachable", last_error=exc.message, last_error_at=now
        )
        if not was_failing or scenario.last_error != exc.message:
            log_activity(
                Action.EXTERNAL,
                via=Via.SCHEDULER,
                scenario=scenario,
                result=Result.FAILED,
                message=f"status: {exc.message}",
                actor=SYSTEM,
            )
        return None
    health = str(status.get("health") or "unknown")[:40]
    state = str(status.get("maintenanceState") or "unknown")[:40]
    can_toggle = status.get("canToggle")
    Scenario.objects.filter(pk=scenario.pk).update(
        last_polled_at=now,
        remote_health=health,
        remote_state=state,
        can_toggle=can_toggle if isinstance(can_toggle, bool) else None,
        last_error="",
        last_error_at=None,
    )
    if was_failing:
        log_activity(
            Action.EXTERNAL, via=Via.SCHEDULER, scenario=scenario, message=f"answers again ({health})", actor=SYSTEM
        )
    return status


def poll_all() -> int:
    """Poll every present external scenario; returns how many answered."""
    answered = 0
    for scenario in Scenario.objects.external().present():
        if poll(scenario) is not None:
            answered += 1
    return answered


# --- discovery ------------------------------------------------------------------------------------------


def _url(base: str, value: str | None, default_path: str, field: str) -> str:
    target = value or default_path
    url = urljoin(base.rstrip("/") + "/", target.lstrip("/")) if base and not urlparse(target).scheme else target
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ServiceFileError(
            f"the {field} endpoint “{url}” is not an http(s) URL: give maintenance.baseUrl or a full URL"
        )
    return url


def parse_service(path: Path, document) -> dict:
    """What a service.json declares. Raises NotTagged, or ServiceFileError naming the problem."""
    if not isinstance(document, dict):
        raise ServiceFileError("the file is not a JSON object")
    service = document.get("service") if isinstance(document.get("service"), dict) else {}
    tags = service.get("tags", document.get("tags", []))
    if not isinstance(tags, list):
        raise ServiceFileError("“tags” is not a list")
    if "maintenance" not in tags:
        raise NotTagged("not tagged “maintenance”")
    maintenance = document.get("maintenance") or {}
    if not isinstance(maintenance, dict):
        raise ServiceFileError("“maintenance” is not an object")
    if maintenance.get("canDeactivate") is False:
        raise ServiceFileError("canDeactivate is false: only scenarios that can be switched off are orchestrated")
    folder = path.parent.parent if path.parent.name == ".vrooli" else path.parent
    raw_key = maintenance.get("key") or service.get("name") or document.get("name") or folder.name
    key = slugify(str(raw_key))[:80]

    if not re.match(KEY_PATTERN, key) or key in RESERVED_KEYS:
        raise ServiceFileError(f"“{raw_key}” does not make a usable scenario key")
    base = str(maintenance.get("baseUrl") or document.get("baseUrl") or service.get("baseUrl") or "")
    endpoints = maintenance.get("endpoints") or {}
    if not isinstance(endpoints, dict):
        raise ServiceFileError("“maintenance.endpoints” is not an object")
    if not base and not all(urlparse(str(endpoints.get(name) or "")).scheme for name in DEFAULT_PATHS):
        raise ServiceFileError("no endpoints: give maintenance.baseUrl or full URLs in maintenance.endpoints")
    urls = {name: _url(base, endpoints.get(name), default, name) for name, default in DEFAULT_PATHS.items()}
    category = maintenance.get("category", Category.OTHER)
    if category not in Category.values:
        raise ServiceFileError(f"category “{category}” is not one of {', '.join(Category.values)}")
    weight = maintenance.get("weight", Weight.LIGHT)
    if weight not in Weight.values:
        raise ServiceFileError(f"weight “{weight}” is not one of {', '.join(Weight.values)}")
    conflicts = maintenance.get("conflicts", [])
    if not isinstance(conflicts, list) or not all(isinstance(item, str) for item in conflicts):
        raise ServiceFileError("“maintenance.conflicts” is not a list of scenario keys")
    name = service.get("displayName") or document.get("displayName") or service.get("name") or document.get("name")
    description = service.get("description") or document.get("description") or ""
    return {
        "key": key,
        "name": str(name or key)[:200],
        "description": str(description),
        "tags": [str(tag) for tag in tags],
        "category": category,
        "weight": weight,
        "conflicts": sorted({slugify(item) for item in conflicts} - {key}),
        "status_url": urls["status"],
        "activate_url": urls["activate"],
        "deactivate_url": urls["deactivate"],
    }


def _service_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob(FILE_NAME)):
        relative = path.relative_to(root).parts
        if len(relative) > MAX_DEPTH + 1:
            continue
        if any(part.startswith(".") and part != ".vrooli" for part in relative[:-1]):
            continue
        found.append(path)
        if len(found) >= MAX_FILES:
            break
    return found


def _read(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ServiceFileError(f"larger than {MAX_FILE_BYTES // 1024} KB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServiceFileError(f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ServiceFileError("is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServiceFileError(f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def discover() -> dict:
    """Scan the discovery folder once: create, update and retire external scenarios, and record every file
    found with its outcome. Never activates anything."""
    setting = settings.SCENARIO_DISCOVERY_DIR
    if not setting:
        return {"enabled": False}
    root = Path(setting)
    now = timezone.now()
    outcomes: dict[str, tuple[str, str, dict | None]] = {}
    declared: dict[str, dict] = {}
    if root.is_dir():
        internal_keys = {definition.key for definition in registry.definitions()}
        for path in _service_files(root):
            try:
                spec = parse_service(path, _read(path))
                if spec["key"] in internal_keys:
                    raise ServiceFileError(f"the key “{spec['key']}” belongs to an internal scenario")
                if spec["key"] in declared:
                    raise ServiceFileError(
                        f"the key “{spec['key']}” is already used by {declared[spec['key']]['path']}"
                    )
            except NotTagged as exc:
                outcomes[str(path)] = (DiscoveredService.Outcome.IGNORED, str(exc), None)
                continue
            except ServiceFileError as exc:
                outcomes[str(path)] = (DiscoveredService.Outcome.INVALID, str(exc), None)
                continue
            spec["path"] = str(path)
            declared[spec["key"]] = spec
            outcomes[str(path)] = (DiscoveredService.Outcome.SCENARIO, f"scenario {spec['key']}", spec)
    problem = "" if root.is_dir() else f"the discovery folder {root} does not exist"

    created, retired = [], []
    with transaction.atomic():
        locked = lock_all()
        for key, spec in declared.items():
            fields = {
                "name": spec["name"],
                "description": spec["description"],
                "tags": spec["tags"],
                "category": spec["category"],
                "weight": spec["weight"],
                "source_path": spec["path"],
                "status_url": spec["status_url"],
                "activate_url": spec["activate_url"],
                "deactivate_url": spec["deactivate_url"],
                "is_present": True,
            }
            scenario = locked.get(key)
            if scenario is None:
                scenario = Scenario(key=key, kind=Scenario.Kind.EXTERNAL, **fields)
                scenario.save()
                locked[key] = scenario
                created.append(key)
            elif scenario.kind == Scenario.Kind.EXTERNAL and any(
                getattr(scenario, name) != value for name, value in fields.items()
            ):
                for name, value in fields.items():
                    setattr(scenario, name, value)
                audit.save_with_reason(scenario, "discovery")
        for key, scenario in locked.items():
            if scenario.kind == Scenario.Kind.EXTERNAL and scenario.is_present and key not in declared:
                if scenario.is_active:
                    mark_inactive(scenario, "no longer discovered", now)
                scenario.is_present = False
                audit.save_with_reason(scenario, "no longer discovered")
                retired.append(key)
        _sync_external_conflicts(locked, declared)
        _record_files(outcomes, locked, now)
        for key in created:
            log_activity(
                Action.DISCOVERY,
                via=Via.SCHEDULER,
                scenario=locked[key],
                message=f"discovered {key} in {declared[key]['path']}",
                actor=SYSTEM,
            )
        for key in retired:
            log_activity(
                Action.DISCOVERY,
                via=Via.SCHEDULER,
                scenario=locked[key],
                result=Result.FAILED,
                message=f"{key} is no longer discovered"
                + (f": {problem}" if problem else " (its service.json is gone)"),
                actor=SYSTEM,
            )
    return {"enabled": True, "created": created, "retired": retired, "files": len(outcomes), "problem": problem}


def _sync_external_conflicts(locked: dict[str, Scenario], declared: dict[str, dict]) -> None:
    """An external scenario's conflicts are those its service.json declares, plus those that declare it."""
    internal_declared = {d.key: set(d.conflicts) for d in registry.definitions()}
    for key, spec in declared.items():
        scenario = locked[key]
        wanted = {other for other in spec["conflicts"] if other in locked}
        wanted |= {other for other, theirs in internal_declared.items() if key in theirs and other in locked}
        wanted |= {other for other, theirs in declared.items() if key in theirs["conflicts"]}
        current = set(scenario.conflicts.values_list("key", flat=True))
        if wanted != current:
            scenario.conflicts.set([locked[other] for other in sorted(wanted)])


def _record_files(outcomes: dict, locked: dict[str, Scenario], now) -> None:
    existing = {row.path: row for row in DiscoveredService.objects.all()}
    for path, (outcome, message, spec) in outcomes.items():
        scenario = locked.get(spec["key"]) if spec else None
        row = existing.get(path)
        if row is None:
            DiscoveredService.objects.create(
                path=path, outcome=outcome, message=message, scenario=scenario, last_seen_at=now
            )
            if outcome == DiscoveredService.Outcome.INVALID:
                log_activity(
                    Action.DISCOVERY,
                    via=Via.SCHEDULER,
                    subject=path[-200:],
                    result=Result.FAILED,
                    message=f"{path}: {message}",
                    actor=SYSTEM,
                )
        else:
            if outcome == DiscoveredService.Outcome.INVALID and (row.outcome, row.message) != (outcome, message):
                log_activity(
                    Action.DISCOVERY,
                    via=Via.SCHEDULER,
                    subject=path[-200:],
                    result=Result.FAILED,
                    message=f"{path}: {message}",
                    actor=SYSTEM,
                )
            DiscoveredService.objects.filter(pk=row.pk).update(
                outcome=outcome, message=message, scenario=scenario, last_seen_at=now
            )
    DiscoveredService.objects.exclude(path__in=list(outcomes)).delete()


def discover_and_poll() -> dict:
    """The discovery tick: scan, then poll every present external scenario."""
    result = discover()
    if result.get("enabled"):
        result["answered"] = poll_all()
    return result
