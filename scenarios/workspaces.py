"""Seed 002's automated maintenance of workspaces: the workspace registry (superusers only), the built-in
executors of the seed's task categories, and its default tasks.

A workspace is a directory (usually a git checkout of an organisation's scripts, configuration or
documentation). A task of a workspace category runs one of these executors against its workspace
(`Scenario.workspace`); every command goes through `scenarios.sandbox` (argument list, scrubbed environment,
the workspace as working directory, the run's remaining time as timeout, resource limits, capped output).
Executors that change files declare `touches`: the runner backs those files up first (`scenarios.backups`),
which makes the run a file-level rollback point.

    code_quality              workspace-code-quality        ruff check (+ --fix), ruff format --check (or apply)
    test_maintenance          workspace-tests               a test command (pytest by default) with a timeout
    config_cleanup            workspace-config-cleanup      stale files by pattern and age (reported, or deleted)
    documentation             workspace-link-check          local links of Markdown and HTML files
    security_scanning         workspace-security-scan       pip-audit (JSON) of a requirements file
    dependency_updates        workspace-dependency-updates  pip-audit's fix versions, as the upgrades to make
    performance_optimization  workspace-benchmark           a configured benchmark command, timed
"""

import fnmatch
import json
import os
import re
import shutil
import statistics
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _
from markdown_it import MarkdownIt
from packaging.version import InvalidVersion, Version
from ruff.__main__ import find_ruff_bin

from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput, PermissionDeniedError
from maintenance_site.tenancy.actors import is_system
from scenarios import sandbox, services
from scenarios.choices import Category
from scenarios.models import Scenario, ScenarioActivity, Workspace
from scenarios.registry import RunContext, RunResult, RunTimedOut, scenario
from scenarios.services import log_activity

SKIPPED_DIRECTORIES = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".ruff_cache", ".tox"}
FINDINGS_KEPT = 200
REPORT_LIMIT = 32 * 1024 * 1024  # a tool's JSON report (ruff, pip-audit) is read whole, up to this size
NETWORK_ERRORS = (
    "ConnectionError",
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "timed out",
    "SSLError",
)

# --- the workspace registry ---------------------------------------------------------------------------------


def _require_superuser(actor) -> None:
    if not (is_system(actor) or getattr(actor, "is_superuser", False)):
        raise PermissionDeniedError(
            _("Only platform administrators (superusers) register workspaces: their code runs on this machine.")
        )


@audit.attributed
def register_workspace(
    *, key: str, path: str, name: str = "", description: str = "", actor, via=ScenarioActivity.Via.SYSTEM
) -> Workspace:
    """Register a directory as a workspace (superusers only): it must exist; it is stored resolved (symlinks
    followed), so a later change of a symlink does not move it."""
    _require_superuser(actor)
    key = (key or slugify(name))[:80]
    if not path or not Path(path).is_absolute():
        raise InvalidInput(
            _("Give the workspace's absolute path."), fields={"path": _("An absolute path, e.g. /srv/ops.")}
        )
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise InvalidInput(
            _("%(path)s is not a directory.") % {"path": resolved}, fields={"path": _("No such directory.")}
        )
    with transaction.atomic():
        if Workspace.objects.filter(key=key).exists():
            raise Conflict(_("A workspace “%(key)s” exists already.") % {"key": key})
        if Workspace.objects.filter(path=str(resolved)).exists():
            raise Conflict(_("%(path)s is registered already.") % {"path": resolved})
        workspace = Workspace(key=key, name=name or key, path=str(resolved), description=description)
        workspace.registered_by = actor if getattr(actor, "pk", None) else None
        workspace.full_clean()
        audit.save_with_reason(workspace, "workspace registered")
        log_activity(
            ScenarioActivity.Action.WORKSPACE,
            via=via,
            actor=actor,
            subject=key,
            message=f"workspace {key} registered at {resolved}",
            details={"path": str(resolved)},
        )
    return workspace


def get_workspace(key: str) -> Workspace:
    found = Workspace.objects.filter(key=key).first()
    if found is None:
        raise InvalidInput(
            _("No workspace “%(key)s”: register it with `maintenance register-workspace`.") % {"key": key}
        )
    return found


# --- walking a workspace -----------------------------------------------------------------------------------


def _excluded(relative: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def workspace_files(root: Path, suffixes: tuple[str, ...] = (), exclude: list[str] | None = None) -> list[str]:
    """Files of the workspace (relative posix paths), version-control and virtual-environment folders and
    symlinks left out, optionally only those with these suffixes."""
    root = Path(root).resolve()
    found = []
    for directory, folders, names in os.walk(root, followlinks=False):
        folders[:] = sorted(f for f in folders if f not in SKIPPED_DIRECTORIES)
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_symlink() or (suffixes and not name.endswith(suffixes)):
                continue
            relative = path.relative_to(root).as_posix()
            if not _excluded(relative, exclude or []):
                found.append(relative)
    return found


def _strings(config: dict, name: str) -> list[str]:
    value = config.get(name) or []
    if not all(isinstance(item, str) for item in value):
        raise InvalidInput(_("“%(name)s” must be a list of texts.") % {"name": name})
    return list(value)


def resolve_command(argv: list, root: Path) -> list[str]:
    """A configured command (a list of strings): "python" is the platform's interpreter, a path with a slash
    is a file of the workspace (confined to it), anything else is looked up on the platform's PATH."""
    if not argv or not all(isinstance(part, str) and part for part in argv):
        raise InvalidInput(_('A command is a non-empty list of texts, e.g. ["python", "-m", "pytest"].'))
    program = argv[0]
    if program in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    if "/" in program:
        path = sandbox.confine(root, program)
        if not path.is_file():
            raise InvalidInput(_("%(program)s is not a file of the workspace.") % {"program": program})
        return [str(path), *argv[1:]]
    # on PATH, else installed beside the platform's interpreter (a virtual environment that is not activated)
    found = shutil.which(program) or shutil.which(program, path=str(Path(sys.executable).parent))
    if found is None:
        raise FileNotFoundError(program)
    return [found, *argv[1:]]


def _run_tool(
    context: RunContext,
    argv: list[str],
    *,
    memory_mb: int = sandbox.MEMORY_LIMIT_MB,
    timeout=None,
    env=None,
    output_limit: int = sandbox.OUTPUT_LIMIT,
):
    limit = context.seconds_left()
    completed = sandbox.run(
        argv,
        context.workspace,
        timeout=min(limit, timeout or limit),
        memory_mb=memory_mb,
        env=env,
        output_limit=output_limit,
    )
    context.log(f"$ {' '.join(argv)} → {completed.returncode} in {completed.seconds:.2f}s")
    if completed.timed_out and context.deadline is not None and time.monotonic() >= context.deadline - 0.5:
        raise RunTimedOut(f"{argv[0]} was still running at the task's timeout: killed")
    return completed


def _tail(text: str, size: int = 2000) -> str:
    return text[-size:].strip()


# --- code quality ------------------------------------------------------------------------------------------


def ruff_binary() -> str | None:
    """The ruff executable: the one the `ruff` package ships, else one on PATH."""
    try:
        return str(find_ruff_bin())
    except FileNotFoundError:
        return shutil.which("ruff")


# `ruff format --check` names the files it would change: "Would reformat: a.py" (ruff < 0.9) or a diagnostic
# whose location line reads " --> a.py:1:2" (later versions).
_UNFORMATTED = re.compile(r"^(?:Would reformat: (?P<old>.+)|\s*--> (?P<new>.+?):\d+:\d+)$", re.MULTILINE)


def unformatted_files(output: str) -> list[str]:
    found = [match.group("old") or match.group("new") for match in _UNFORMATTED.finditer(output)]
    return sorted({name.strip().removeprefix("./") for name in found})


def _python_files(root: Path, config: dict) -> list[str] | None:
    if not (config.get("fix_formatting") or config.get("fix_lint")):
        return None  # a check changes nothing
    return workspace_files(root, (".py", ".pyi"), _strings(config, "exclude_patterns"))


@scenario(
    key="workspace-code-quality",
    name="Code quality (ruff)",
    category=Category.CODE_QUALITY,
    default_cron="0 2 * * *",
    template=True,
    needs_workspace=True,
    touches=_python_files,
    schema={
        "fix_formatting?": bool,
        "fix_lint?": bool,
        "check_type_hints?": bool,
        "analyze_complexity?": bool,
        "max_complexity?": int,
        "exclude_patterns?": list,
    },
)
def code_quality(context: RunContext) -> RunResult:
    """Lints the workspace's Python files with ruff (optionally fixing what it can), checks their formatting
    (or applies it with fix_formatting); type hints (ANN) and complexity (C901) on request."""
    ruff = ruff_binary()
    if ruff is None:
        return RunResult.unavailable("ruff is not installed")
    config = context.config
    check = [ruff, "check", "--no-cache", "--output-format", "json", "--exit-zero"]
    if config.get("check_type_hints"):
        check += ["--extend-select", "ANN"]
    if config.get("analyze_complexity"):
        check += [
            "--extend-select",
            "C901",
            "--config",
            f"lint.mccabe.max-complexity = {config.get('max_complexity', 10)}",
        ]
    exclude = _strings(config, "exclude_patterns")
    if exclude:
        check += ["--extend-exclude", ",".join(exclude)]

    def findings() -> list[dict]:
        completed = _run_tool(context, [*check, "."], output_limit=REPORT_LIMIT)
        if completed.returncode != 0:
            raise RuntimeError(f"ruff check failed: {_tail(completed.stderr)}")
        if completed.truncated:
            raise RuntimeError(f"ruff's report is larger than {REPORT_LIMIT // 1024 // 1024} MiB: exclude some paths")
        return json.loads(completed.stdout or "[]")

    found = findings()
    fixed = 0
    if config.get("fix_lint"):
        _run_tool(context, [*check, "--fix", "."])
        remaining = findings()
        fixed, found = max(0, len(found) - len(remaining)), remaining
    context.checkpoint(force=True)
    format_command = [ruff, "format", "--no-cache"]
    if exclude:
        format_command += ["--extend-exclude", ",".join(exclude)]
    if config.get("fix_formatting"):
        formatted = _run_tool(context, [*format_command, "."])
        unformatted = []
        if formatted.returncode != 0:
            raise RuntimeError(f"ruff format failed: {_tail(formatted.stderr)}")
    else:
        formatted = _run_tool(context, [*format_command, "--check", "."])
        unformatted = unformatted_files(formatted.stdout + "\n" + formatted.stderr)
    issues = [
        {
            "file": Path(item.get("filename", "")).resolve().relative_to(context.workspace).as_posix()
            if item.get("filename", "").startswith(str(context.workspace))
            else item.get("filename"),
            "line": (item.get("location") or {}).get("row"),
            "code": item.get("code"),
            "message": item.get("message"),
        }
        for item in found
    ]
    for issue in issues[:20]:
        context.log(f"{issue['file']}:{issue['line']}: {issue['code']} {issue['message']}")
    summary = f"{len(issues)} lint finding(s)"
    summary += f", {fixed} fixed" if config.get("fix_lint") else ""
    summary += ", formatting applied" if config.get("fix_formatting") else f", {len(unformatted)} file(s) to reformat"
    return RunResult(
        summary,
        data={
            "findings": issues[:FINDINGS_KEPT],
            "findings_count": len(issues),
            "unformatted": unformatted[:FINDINGS_KEPT],
            "issues_fixed": fixed,
        },
    )


# --- test maintenance --------------------------------------------------------------------------------------

DEFAULT_TEST_COMMAND = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]


@scenario(
    key="workspace-tests",
    name="Test run",
    category=Category.TEST_MAINTENANCE,
    default_cron="0 3 * * *",
    template=True,
    needs_workspace=True,
    schema={"command?": list, "timeout_seconds?": int, "memory_mb?": int},
)
def test_run(context: RunContext) -> RunResult:
    """Runs the workspace's tests (pytest by default, or the configured command) in a sandboxed subprocess with
    a timeout; fails when they fail."""
    config = context.config
    try:
        argv = resolve_command(config.get("command") or DEFAULT_TEST_COMMAND, context.workspace)
    except FileNotFoundError as exc:
        return RunResult.unavailable(f"{exc.args[0]} is not installed")
    completed = _run_tool(
        context, argv, memory_mb=config.get("memory_mb", sandbox.MEMORY_LIMIT_MB), timeout=config.get("timeout_seconds")
    )
    output = completed.stdout + ("\n" + completed.stderr if completed.stderr else "")
    context.log(_tail(output, 20_000))
    data = {
        "returncode": completed.returncode,
        "seconds": round(completed.seconds, 3),
        "truncated": completed.truncated,
    }
    if completed.timed_out:
        return RunResult(f"the test run was killed at its timeout ({completed.seconds:.0f}s)", ok=False, data=data)
    last = next((line for line in reversed(completed.stdout.splitlines()) if line.strip()), "")
    if completed.returncode == 0:
        return RunResult(f"tests passed: {last[:200]}", data=data)
    if completed.returncode == 5 and "pytest" in " ".join(argv):
        return RunResult.nothing_to_do("no tests were collected", **data)
    return RunResult(f"tests failed (exit {completed.returncode}): {last[:200]}", ok=False, data=data)


# --- configuration cleanup ---------------------------------------------------------------------------------

DEFAULT_STALE_PATTERNS = ["*.bak", "*.orig", "*.rej", "*.tmp", "*.swp", "*~"]


def stale_files(root: Path, config: dict, now: float | None = None) -> list[str]:
    patterns = _strings(config, "patterns") or DEFAULT_STALE_PATTERNS
    older_than = config.get("older_than_days", 30) * 86400
    now = now or time.time()
    found = []
    for relative in workspace_files(root, exclude=_strings(config, "exclude_patterns")):
        name = relative.rsplit("/", 1)[-1]
        matches = any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(relative, pattern) for pattern in patterns)
        if matches and now - (Path(root) / relative).stat().st_mtime >= older_than:
            found.append(relative)
    return found


def _stale_touched(root: Path, config: dict) -> list[str] | None:
    return stale_files(root, config) if config.get("delete") else None


@scenario(
    key="workspace-config-cleanup",
    name="Stale file cleanup",
    category=Category.CONFIG_CLEANUP,
    default_cron="0 4 * * 0",
    template=True,
    needs_workspace=True,
    touches=_stale_touched,
    schema={"patterns?": list, "older_than_days?": int, "delete?": bool, "exclude_patterns?": list},
)
def config_cleanup(context: RunContext) -> RunResult:
    """Finds stale files (backups, merge leftovers, editor swap files: by pattern) not modified for
    older_than_days days; reports them, or deletes them with delete (a rollback brings them back)."""
    found = stale_files(context.workspace, context.config)
    if not found:
        return RunResult.nothing_to_do("no stale files")
    if not context.config.get("delete"):
        return RunResult(f"{len(found)} stale file(s) found", data={"stale": found[:FINDINGS_KEPT]})
    for relative in found:
        context.checkpoint()
        target = sandbox.confine(context.workspace, relative)
        target.unlink()
        context.log(f"deleted {relative}")
    return RunResult(
        f"{len(found)} stale file(s) deleted",
        data={"stale": found[:FINDINGS_KEPT], "issues_fixed": len(found)},
        changed=len(found),
    )


# --- documentation -----------------------------------------------------------------------------------------


class _HtmlLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and ((tag == "a" and name == "href") or (tag in ("img", "script") and name == "src")):
                self.links.append((value, self.getpos()[0]))


def _markdown_links(text: str) -> list[tuple[str, int]]:
    links = []
    for token in MarkdownIt("commonmark").parse(text):
        line = (token.map[0] + 1) if token.map else 0
        for child in token.children or []:
            target = child.attrGet("href") if child.type == "link_open" else child.attrGet("src")
            if child.type in ("link_open", "image") and target:
                links.append((str(target), line))
    return links


def broken_links(root: Path, config: dict) -> tuple[int, list[dict]]:
    """(local links checked, those whose target is missing or outside the workspace)."""
    root = Path(root).resolve()
    checked, broken = 0, []
    files = workspace_files(root, (".md", ".markdown", ".html", ".htm"), _strings(config, "exclude_patterns"))
    for relative in files:
        text = (root / relative).read_text(encoding="utf-8", errors="replace")
        if relative.endswith((".html", ".htm")):
            parser = _HtmlLinks()
            parser.feed(text)
            links = parser.links
        else:
            links = _markdown_links(text)
        for target, line in links:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path:
                continue  # external, mail, or an anchor of the same page
            checked += 1
            path = unquote(parts.path)
            base = root if path.startswith("/") else (root / relative).parent
            try:
                resolved = sandbox.confine(root, (base / path.lstrip("/")).relative_to(root))
            except (sandbox.PathEscape, ValueError):
                broken.append({"file": relative, "line": line, "link": target, "problem": "leaves the workspace"})
                continue
            if not resolved.exists():
                broken.append({"file": relative, "line": line, "link": target, "problem": "missing"})
    return checked, broken


@scenario(
    key="workspace-link-check",
    name="Documentation link check",
    category=Category.DOCUMENTATION,
    default_cron="0 5 * * 1",
    template=True,
    needs_workspace=True,
    schema={"exclude_patterns?": list},
)
def link_check(context: RunContext) -> RunResult:
    """Checks the local links of the workspace's Markdown and HTML files (relative paths to files and
    folders; web links are not fetched): reports the broken ones."""
    checked, broken = broken_links(context.workspace, context.config)
    for item in broken[:20]:
        context.log(f"{item['file']}:{item['line']}: {item['link']} ({item['problem']})")
    return RunResult(
        f"{len(broken)} broken of {checked} local link(s)",
        data={"checked": checked, "broken": broken[:FINDINGS_KEPT], "broken_count": len(broken)},
    )


# --- security scanning and dependency updates (pip-audit) ---------------------------------------------------


def pip_audit(context: RunContext) -> tuple[RunResult | None, list[dict]]:
    """pip-audit's JSON report of the configured requirements file: (a result to return at once — unavailable,
    nothing to do, a warning or a failure — or None, the dependencies)."""
    config = context.config
    requirements = config.get("requirements", "requirements.txt")
    if not sandbox.confine(context.workspace, requirements).is_file():
        return RunResult.nothing_to_do(f"no {requirements} in the workspace"), []
    try:
        argv = resolve_command(config.get("command") or ["pip-audit"], context.workspace)
    except FileNotFoundError:
        return RunResult.unavailable("pip-audit is not installed (pip install pip-audit)"), []
    argv += ["--format", "json", "--progress-spinner", "off", "--requirement", requirements]
    completed = _run_tool(context, argv, env=sandbox.network_environment(), output_limit=REPORT_LIMIT)
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        report = None
    if isinstance(report, dict) and isinstance(report.get("dependencies"), list):
        return None, report["dependencies"]
    if isinstance(report, list):  # older pip-audit: a bare list of dependencies
        return None, report
    if any(marker in completed.stderr for marker in NETWORK_ERRORS) or completed.timed_out:
        return (
            RunResult.unavailable(
                "warning: the vulnerability service could not be reached; nothing was checked",
                warning=True,
                stderr=_tail(completed.stderr),
            ),
            [],
        )
    return RunResult(f"pip-audit failed: {_tail(completed.stderr, 300)}", ok=False), []


SEVERITY_SCHEMA = {"requirements?": str, "command?": list}


@scenario(
    key="workspace-security-scan",
    name="Security scan (pip-audit)",
    category=Category.SECURITY_SCANNING,
    default_cron="0 1 * * *",
    template=True,
    needs_workspace=True,
    schema=SEVERITY_SCHEMA,
)
def security_scan(context: RunContext) -> RunResult:
    """Audits the workspace's requirements file for known vulnerabilities with pip-audit (it asks a
    vulnerability service over the network: unreachable, the run ends with a warning, not a failure)."""
    early, dependencies = pip_audit(context)
    if early is not None:
        return early
    vulnerable = [
        {"name": d.get("name"), "version": d.get("version"), "vulns": d.get("vulns", [])}
        for d in dependencies
        if d.get("vulns")
    ]
    count = sum(len(d["vulns"]) for d in vulnerable)
    not_audited = [{"name": d.get("name"), "why": d["skip_reason"]} for d in dependencies if d.get("skip_reason")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed_in = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
            context.log(f"{dependency['name']} {dependency['version']}: {vuln.get('id')} ({fixed_in})")
    summary = (
        f"{count} known vulnerabilit{'y' if count == 1 else 'ies'} in {len(vulnerable)} of {len(dependencies)} "
        "dependencies"
    )
    if not_audited:
        summary += f"; {len(not_audited)} could not be audited"
    return RunResult(
        summary,
        data={
            "vulnerable": vulnerable[:FINDINGS_KEPT],
            "not_audited": not_audited[:FINDINGS_KEPT],
            "dependencies": len(dependencies),
            "vulnerabilities": count,
        },
    )


@scenario(
    key="workspace-dependency-updates",
    name="Dependency updates (pip-audit)",
    category=Category.DEPENDENCY_UPDATES,
    default_cron="0 6 * * 1",
    template=True,
    needs_workspace=True,
    schema=SEVERITY_SCHEMA,
)
def dependency_updates(context: RunContext) -> RunResult:
    """Lists the upgrades the workspace's requirements need (pip-audit's fix versions: the lowest version of
    each vulnerable dependency that fixes all its known vulnerabilities). Reports them; edits nothing."""
    early, dependencies = pip_audit(context)
    if early is not None:
        return early
    updates = []
    for dependency in dependencies:
        fixes = [v for vuln in dependency.get("vulns", []) for v in vuln.get("fix_versions", [])]
        if fixes:
            target = max(fixes, key=_version_key)
            updates.append({"name": dependency.get("name"), "from": dependency.get("version"), "to": target})
            context.log(f"{dependency.get('name')}: {dependency.get('version')} → {target}")
    return RunResult(f"{len(updates)} dependency update(s) needed", data={"updates": updates[:FINDINGS_KEPT]})


def _version_key(version: str):
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


# --- performance -------------------------------------------------------------------------------------------


@scenario(
    key="workspace-benchmark",
    name="Benchmark",
    category=Category.PERFORMANCE_OPTIMIZATION,
    default_cron="30 2 * * *",
    template=True,
    needs_workspace=True,
    schema={"command": list, "repeat?": int},
)
def benchmark(context: RunContext) -> RunResult:
    """Runs the configured profile or benchmark command `repeat` times (default 3) and records its timings
    (min, median, max, in milliseconds); fails when the command fails."""
    try:
        argv = resolve_command(context.config.get("command") or [], context.workspace)
    except FileNotFoundError as exc:
        return RunResult.unavailable(f"{exc.args[0]} is not installed")
    repeat = max(1, min(int(context.config.get("repeat", 3)), 100))
    timings = []
    for _repeat in range(repeat):
        context.checkpoint(force=True)
        completed = _run_tool(context, argv)
        if not completed.ok:
            why = "killed at its timeout" if completed.timed_out else f"exit {completed.returncode}"
            return RunResult(f"the benchmark failed ({why}): {_tail(completed.stderr, 200)}", ok=False)
        timings.append(round(completed.seconds * 1000, 2))
    data = {
        "timings_ms": timings,
        "min_ms": min(timings),
        "median_ms": statistics.median(timings),
        "max_ms": max(timings),
    }
    return RunResult(f"median {data['median_ms']:.1f} ms over {repeat} run(s)", data=data)


# --- the categories' executors and the seed's default tasks -------------------------------------------------


# The seed's default tasks: (key suffix, name, category, priority, config, impact figures)
DEFAULT_TASKS = [
    (
        "code-quality",
        "Code quality check",
        Category.CODE_QUALITY,
        "high",
        {"analyze_complexity": True},
        {"impact_code_quality": 80},
    ),
    ("test-maintenance", "Test maintenance", Category.TEST_MAINTENANCE, "high", {}, {"impact_maintainability": 80}),
    ("config-cleanup", "Configuration cleanup", Category.CONFIG_CLEANUP, "low", {}, {"impact_maintainability": 60}),
    ("link-check", "Documentation link check", Category.DOCUMENTATION, "medium", {}, {"impact_user_experience": 60}),
    ("security-scan", "Security scan", Category.SECURITY_SCANNING, "critical", {}, {"impact_security": 90}),
    ("dependency-updates", "Dependency updates", Category.DEPENDENCY_UPDATES, "medium", {}, {"impact_security": 70}),
]


def default_task_keys(workspace: Workspace) -> list[str]:
    return [f"{workspace.key}-{suffix}"[:80] for suffix, *_ in DEFAULT_TASKS]


@audit.attributed
def create_default_tasks(workspace: Workspace, *, actor, via=ScenarioActivity.Via.SYSTEM) -> dict:
    """The seed's default tasks for a workspace (inactive, each with its category's executor); idempotent: a
    task whose key exists already is left as it is."""
    _require_superuser(actor)
    created, existing = [], []
    for (_suffix, name, category, priority, config, impacts), key in zip(
        DEFAULT_TASKS, default_task_keys(workspace), strict=True
    ):
        if Scenario.objects.filter(key=key).exists():
            existing.append(key)
            continue
        try:
            services.create_task(
                name=f"{name} ({workspace.key})",
                key=key,
                category=category,
                priority=priority,
                config=dict(config),
                workspace=workspace,
                actor=actor,
                via=via,
                **impacts,
            )
        except Conflict:  # created meanwhile by another caller
            existing.append(key)
            continue
        created.append(key)
    return {"created": created, "existing": existing}
