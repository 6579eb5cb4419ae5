"""Seed 002's maintenance of workspaces, on temporary git repositories made by the tests: the categories'
executors (ruff, a test run, stale files, links, pip-audit through a stub on PATH, a benchmark), file rollback
points with checksums and their size limit, the sandbox (no platform secrets, a timeout that kills), and the
command line."""

import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from maintenance_site.errors import Conflict, InvalidInput, PermissionDeniedError
from maintenance_site.tenancy import SYSTEM
from scenarios import backups, metrics, priority, rollback, runner, sandbox, services, workspaces
from scenarios.models import Scenario, ScenarioRun, WorkspaceBackup
from tests.conftest import IN_CI, make_user

UNFORMATTED = "import os\nvalue=1\nprint( value )\n"


def git(root: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=root, check=True, capture_output=True, text=True, env={**os.environ, "HOME": str(root)}
    ).stdout


@pytest.fixture
def repo(tmp_path):
    """A git repository: an unformatted module with an unused import, documentation with one broken link."""
    root = tmp_path / "ops-scripts"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ops@example.com")
    git(root, "config", "user.name", "Ops")
    (root / "tool.py").write_text(UNFORMATTED)
    (root / "clean.py").write_text('"""Clean."""\n\nVALUE = 1\n')
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("# Guide\n")
    (root / "README.md").write_text(
        "# Ops\n\nSee [the guide](docs/guide.md), [setup](docs/setup.md#top), [web](https://example.com) "
        "and [secrets](../../etc/passwd).\n"
    )
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture(autouse=True)
def backup_root(settings, tmp_path):
    settings.SCENARIO_BACKUP_ROOT = str(tmp_path / "rollbacks")
    settings.SCENARIO_MAX_BACKUP_SIZE_MB = 1000
    return Path(settings.SCENARIO_BACKUP_ROOT)


@pytest.fixture
def workspace(db, repo):
    return workspaces.register_workspace(key="ops", path=str(repo), actor=SYSTEM)


def task(workspace, category, key, **options):
    return services.create_task(name=key, key=key, category=category, workspace=workspace, actor=SYSTEM, **options)


def run(scenario) -> ScenarioRun:
    return runner.run_now(services.request_run(scenario.key, actor=SYSTEM))


# In CI a missing tool fails the tests that need it; elsewhere they are skipped with the reason printed.
needs_ruff = pytest.mark.skipif(workspaces.ruff_binary() is None and not IN_CI, reason="ruff is not installed")
pytestmark = pytest.mark.skipif(shutil.which("git") is None and not IN_CI, reason="git is not installed")


# --- the registry of workspaces ---------------------------------------------------------------------------


def test_only_superusers_register_workspaces(db, repo):
    with pytest.raises(PermissionDeniedError, match="superusers"):
        workspaces.register_workspace(key="ops", path=str(repo), actor=make_user("alice", is_staff=True))
    admin = make_user("root", is_superuser=True, is_staff=True)
    workspace = workspaces.register_workspace(key="ops", path=str(repo), actor=admin)
    assert workspace.path == str(repo.resolve()) and workspace.registered_by == admin
    with pytest.raises(Conflict):
        workspaces.register_workspace(key="other", path=str(repo), actor=admin)
    with pytest.raises(InvalidInput, match="not a directory"):
        workspaces.register_workspace(key="gone", path=str(repo / "missing"), actor=admin)


def test_a_category_runs_its_builtin_executor_and_needs_a_workspace(workspace):
    scenario = task(workspace, "code_quality", "ops-lint")
    assert scenario.executor == "workspace-code-quality" and scenario.workspace == workspace
    assert scenario.timeout_seconds == 30 * 60  # SCENARIO_TASK_TIMEOUT_MINUTES
    with pytest.raises(InvalidInput, match="workspace"):
        services.create_task(name="no workspace", category="code_quality", actor=SYSTEM)
    with pytest.raises(InvalidInput, match="no built-in executor"):
        services.create_task(name="what", category="other", actor=SYSTEM)
    # the executors are functions tasks run, not scenarios of their own
    assert not Scenario.objects.filter(key__startswith="workspace-").exists()


def test_create_default_tasks_is_idempotent(workspace):
    first = workspaces.create_default_tasks(workspace, actor=SYSTEM)
    assert len(first["created"]) == 6 and first["existing"] == []
    second = workspaces.create_default_tasks(workspace, actor=SYSTEM)
    assert second["created"] == [] and len(second["existing"]) == 6
    categories = set(Scenario.objects.filter(workspace=workspace).values_list("category", flat=True))
    assert {"code_quality", "security_scanning", "documentation", "config_cleanup"} <= categories


# --- code quality and file rollback -------------------------------------------------------------------------


@needs_ruff
def test_a_lint_finding_is_reported_without_changing_a_file(workspace, repo):
    scenario = task(workspace, "code_quality", "ops-lint")
    finished = run(scenario)
    assert finished.status == "succeeded", finished.summary
    codes = {(f["file"], f["code"]) for f in finished.result["findings"]}
    assert ("tool.py", "F401") in codes
    assert finished.result["unformatted"] == ["tool.py"]
    assert (repo / "tool.py").read_text() == UNFORMATTED
    assert not WorkspaceBackup.objects.filter(run=finished).exists()  # a check changes nothing: no backup


@needs_ruff
def test_a_formatting_fix_is_applied_then_rolled_back_to_the_exact_bytes(workspace, repo):
    original = (repo / "tool.py").read_bytes()
    scenario = task(workspace, "code_quality", "ops-format", config={"fix_formatting": True})
    finished = run(scenario)
    assert finished.status == "succeeded", finished.summary
    assert (repo / "tool.py").read_text() == "import os\n\nvalue = 1\nprint(value)\n"
    assert finished.files_modified == 1 and finished.changed == 1
    assert finished.lines_added == 3 and finished.lines_removed == 2
    backup = finished.backup
    assert backup.git_state["git"] is True and backup.git_state["branch"] == "main"
    assert backup.git_state["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert {f["path"] for f in backup.files} == {"clean.py", "tool.py"}
    assert all(len(f["sha256"]) == 64 for f in backup.files)
    assert json.loads((Path(backup.directory) / "manifest.json").read_text())["run"] == finished.pk
    assert finished in rollback.points()

    outcome = rollback.rollback(finished, "reformatting breaks a vendored script", actor=SYSTEM)
    assert outcome["files_restored"] == ["tool.py"]
    assert (repo / "tool.py").read_bytes() == original
    assert git(repo, "status", "--porcelain") == ""
    finished.refresh_from_db()
    assert finished.rolled_back_at is not None and finished not in rollback.points()


@needs_ruff
def test_a_rollback_over_a_file_changed_since_is_refused(workspace, repo):
    finished = run(task(workspace, "code_quality", "ops-format", config={"fix_formatting": True}))
    (repo / "tool.py").write_text("edited by hand after the run\n")
    with pytest.raises(Conflict, match=r"changed since the run \(checksum mismatch\): tool.py"):
        rollback.rollback(finished, "undo", actor=SYSTEM)
    with pytest.raises(Conflict, match="checksum mismatch"):  # force does not override the files' checks
        rollback.rollback(finished, "undo", force=True, actor=SYSTEM)
    assert (repo / "tool.py").read_text() == "edited by hand after the run\n"


@needs_ruff
def test_a_damaged_backup_copy_is_refused(workspace, repo):
    finished = run(task(workspace, "code_quality", "ops-format", config={"fix_formatting": True}))
    copy = Path(finished.backup.directory) / "files" / "tool.py"
    copy.write_text("tampered\n")
    with pytest.raises(Conflict, match="backup copy is missing or damaged"):
        rollback.rollback(finished, "undo", actor=SYSTEM)


def test_the_size_limit_evicts_the_oldest_rollback_point(workspace, repo, settings):
    settings.SCENARIO_MAX_BACKUP_SIZE_MB = 1
    (repo / "big.bak").write_bytes(b"x" * 700_000)
    (repo / "big2.bak").write_bytes(b"y" * 700_000)
    old = time.time() - 90 * 86400
    os.utime(repo / "big.bak", (old, old))
    cleanup = task(workspace, "config_cleanup", "ops-stale", config={"delete": True, "patterns": ["big.bak"]})
    first = run(cleanup)
    assert first.status == "succeeded" and not (repo / "big.bak").exists()
    assert first.backup.size_bytes == 700_000
    os.utime(repo / "big2.bak", (old, old))
    other = task(workspace, "config_cleanup", "ops-stale-2", config={"delete": True, "patterns": ["big2.bak"]})
    second = run(other)
    first.backup.refresh_from_db()
    assert first.backup.evicted_at is not None and not Path(first.backup.directory).exists()
    assert second.backup.evicted_at is None
    points = rollback.points()
    assert second in points and first not in points
    with pytest.raises(Conflict, match="file backup was evicted"):
        rollback.rollback(first, "too late", actor=SYSTEM)
    assert backups.storage()["bytes"] == 700_000
    # the kept point still restores the deleted file
    rollback.rollback(second, "still needed", actor=SYSTEM)
    assert (repo / "big2.bak").read_bytes() == b"y" * 700_000


# --- the sandbox ----------------------------------------------------------------------------------------------


def test_a_workspace_script_finds_no_platform_secret_in_its_environment(workspace, repo, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "platform-secret")
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/maint")
    (repo / "leak.py").write_text(
        "import os, sys\n"
        "found = {k: os.environ.get(k) for k in ('SECRET_KEY', 'DATABASE_URL', 'REDIS_URL')}\n"
        "print(found)\n"
        "sys.exit(1 if any(found.values()) else 0)\n"
    )
    finished = run(task(workspace, "test_maintenance", "ops-tests", config={"command": ["python", "leak.py"]}))
    assert finished.status == "succeeded", finished.output
    assert "'SECRET_KEY': None" in finished.output and "platform-secret" not in finished.output


def test_a_runaway_script_is_killed_at_its_timeout(workspace, repo):
    (repo / "spin.py").write_text(
        "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'while True: pass'])\nwhile True:\n    pass\n"
    )
    scenario = task(
        workspace, "test_maintenance", "ops-spin", config={"command": ["python", "spin.py"]}, timeout_seconds=2
    )
    started = time.monotonic()
    finished = run(scenario)
    assert time.monotonic() - started < 15
    assert finished.status == "timed_out", finished.summary
    # the whole process group went with it
    leftovers = [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if "while True: pass" in " ".join(process.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_output_is_capped_and_paths_are_confined(tmp_path):
    done = sandbox.run(["/bin/sh", "-c", "yes | head -c 1000000"], tmp_path, timeout=10, output_limit=1000)
    assert done.ok and len(done.stdout) == 1000 and done.truncated
    (tmp_path / "inside.txt").write_text("x")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("secret")
    (tmp_path / "escape").symlink_to(outside)
    assert sandbox.confine(tmp_path, "inside.txt") == (tmp_path / "inside.txt").resolve()
    for path in ("../x", "/etc/passwd", "escape"):
        with pytest.raises(sandbox.PathEscape):
            sandbox.confine(tmp_path, path)


# --- the other categories -------------------------------------------------------------------------------------


def test_stale_files_are_found_by_pattern_and_age(workspace, repo):
    (repo / "settings.yml.orig").write_text("old")
    (repo / "fresh.bak").write_text("new")
    old = time.time() - 60 * 86400
    os.utime(repo / "settings.yml.orig", (old, old))
    finished = run(task(workspace, "config_cleanup", "ops-stale"))
    assert finished.status == "succeeded"
    assert finished.result["stale"] == ["settings.yml.orig"] and (repo / "settings.yml.orig").exists()


def test_the_link_check_reports_missing_and_escaping_links(workspace, repo):
    finished = run(task(workspace, "documentation", "ops-links"))
    assert finished.status == "succeeded"
    broken = {(b["link"], b["problem"]) for b in finished.result["broken"]}
    assert broken == {("docs/setup.md#top", "missing"), ("../../etc/passwd", "leaves the workspace")}
    assert finished.result["checked"] == 3  # the web link is not fetched


def stub(tmp_path, monkeypatch, name: str, script: str) -> None:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")


AUDIT_REPORT = {
    "dependencies": [
        {"name": "requests", "version": "2.19.0", "vulns": [{"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"]}]},
        {"name": "django", "version": "5.2.1", "vulns": []},
    ],
    "fixes": [],
}


def test_security_scan_and_dependency_updates_read_pip_audit_json(workspace, repo, tmp_path, monkeypatch):
    (repo / "requirements.txt").write_text("requests==2.19.0\ndjango==5.2.1\n")
    stub(tmp_path, monkeypatch, "pip-audit", f"cat <<'EOF'\n{json.dumps(AUDIT_REPORT)}\nEOF\nexit 1\n")
    scan = run(task(workspace, "security_scanning", "ops-audit"))
    assert scan.status == "succeeded", scan.summary
    assert scan.result["vulnerabilities"] == 1 and scan.result["vulnerable"][0]["name"] == "requests"
    updates = run(task(workspace, "dependency_updates", "ops-updates"))
    assert updates.result["updates"] == [{"name": "requests", "from": "2.19.0", "to": "2.20.0"}]


def test_an_unreachable_vulnerability_service_is_a_warning(workspace, repo, tmp_path, monkeypatch):
    (repo / "requirements.txt").write_text("requests==2.19.0\n")
    stub(
        tmp_path,
        monkeypatch,
        "pip-audit",
        "echo 'requests.exceptions.ConnectionError: Max retries exceeded' >&2\nexit 1\n",
    )
    scan = run(task(workspace, "security_scanning", "ops-audit"))
    assert scan.status == "skipped" and scan.summary.startswith("unavailable: warning")
    assert scan.result["warning"] is True


def test_a_benchmark_records_its_timings(workspace, repo):
    (repo / "bench.py").write_text("import time\ntime.sleep(0.05)\n")
    finished = run(
        task(
            workspace, "performance_optimization", "ops-bench", config={"command": ["python", "bench.py"], "repeat": 2}
        )
    )
    assert finished.status == "succeeded", finished.summary
    assert len(finished.result["timings_ms"]) == 2 and finished.result["min_ms"] >= 50


# --- metrics, priority, windows -------------------------------------------------------------------------------


def test_metrics_give_the_duration_distribution_changes_and_storage(workspace, repo):
    scenario = task(workspace, "config_cleanup", "ops-stale")
    now = timezone.now()
    for index, duration in enumerate([100, 200, 300, 400, 500, 600, 700, 800, 900, 10_000]):
        ScenarioRun.objects.create(
            scenario=scenario,
            slot=now - timedelta(hours=index + 1),
            status="succeeded",
            started_at=now - timedelta(hours=index + 1),
            finished_at=now - timedelta(hours=index + 1),
            duration_ms=duration,
            files_modified=1,
            lines_added=2,
            lines_removed=1,
        )
    found = metrics.task_metrics(scenario, days=30)
    assert (found["duration"]["p50_ms"], found["duration"]["p90_ms"], found["duration"]["p99_ms"]) == (500, 900, 10_000)
    assert sum(b["runs"] for b in found["duration"]["histogram"]) == 10
    assert found["files_modified"] == 10 and found["lines_changed"] == 30
    system = metrics.system_metrics(days=30)
    assert system["storage"]["bytes"] == 0 and system["duration"]["p50_ms"] == 500


def test_dependent_tasks_raise_the_effort_score(workspace):
    base = task(workspace, "config_cleanup", "ops-base")
    alone = priority.analyze_priority(base)
    for index in range(2):
        task(workspace, "config_cleanup", f"ops-next-{index}").depends_on.add(base)
    waited_on = priority.analyze_priority(base)
    assert waited_on["inputs"]["effort"]["dependents"] == 2
    assert waited_on["terms"]["effort"] == pytest.approx(alone["terms"]["effort"] + 10, abs=0.01)


def test_execution_windows_are_in_the_platform_time_zone(workspace, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    scenario = task(workspace, "config_cleanup", "ops-window")
    scenario.allowed_hours = [2]
    moment = datetime(2026, 1, 5, 1, 30, tzinfo=UTC)  # 02:30 in Berlin
    assert runner._in_window(scenario, moment)
    assert not runner._in_window(scenario, moment + timedelta(hours=1))


# --- the command line ---------------------------------------------------------------------------------------


def test_the_command_line_registers_workspaces_and_creates_category_tasks(db, repo, capsys):
    call_command("maintenance", "register-workspace", "ops", str(repo))
    call_command(
        "maintenance",
        "create-task",
        "--name",
        "Custom Quality Check",
        "--category",
        "code_quality",
        "--priority",
        "high",
        "--workspace",
        "ops",
    )
    call_command("maintenance", "create-default-tasks", "--workspace", "ops")
    call_command("maintenance", "create-default-tasks", "--workspace", "ops")
    call_command("maintenance", "list-workspaces")
    call_command("maintenance", "metrics", "--days", "7")
    out = capsys.readouterr().out
    assert "Workspace ops registered" in out and "Created 6 task(s)" in out and "Created 0 task(s)" in out
    assert "custom-quality-check" in out and "p50 / p90 / p99" in out and "Rollback storage" in out
    assert Scenario.objects.get(key="custom-quality-check").executor == "workspace-code-quality"
    with pytest.raises(CommandError, match="workspace"):
        call_command("maintenance", "create-task", "--name", "x", "--category", "documentation")
