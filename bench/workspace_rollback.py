"""Benchmark: a code-quality run that reformats a workspace of N Python files (default 1,000), with its file
rollback point, then the rollback; and the sandbox's cost per command.

    DATABASE_URL=postgres://… python bench/workspace_rollback.py --n 1000

It builds a git repository of N unformatted modules in a temporary folder, registers it as a workspace and
creates a task (both deleted at the end, with their runs), then prints:
    1. the run: ruff format applied, the backup of every Python file before it (copies and SHA-256) and the diff
       after it (files modified, lines added and removed); its wall time and the backup's size;
    2. the rollback: every checksum verified, every file put back; its wall time, and that the tree is clean;
    3. the sandbox: the mean time of `/bin/true` through `scenarios.sandbox.run` (clean environment, limits,
       bounded capture) and through a bare `subprocess.run`, over 50 calls each.
The load average is printed with the figures (the machine is shared).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")

import django  # noqa: E402

django.setup()

from maintenance_site.tenancy import SYSTEM  # noqa: E402
from scenarios import rollback, runner, sandbox, services, workspaces  # noqa: E402
from scenarios.models import Scenario, Workspace  # noqa: E402

MODULE = "import os\n" + "".join(f"def f{i}( a,b ):\n    return {{ 'a':a,'b':b,'i':{i} }}\n" for i in range(20))


def git(root: Path, *arguments: str) -> None:
    subprocess.run(["git", *arguments], cwd=root, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000, help="Python files in the workspace")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workspace-") as folder:
        root = Path(folder) / "repo"
        (root / "pkg").mkdir(parents=True)
        for index in range(options.n):
            (root / "pkg" / f"module_{index}.py").write_text(MODULE)
        git(root, "init", "-q")
        git(root, "-c", "user.email=b@example.com", "-c", "user.name=b", "add", ".")
        git(root, "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "bench")
        workspace = workspaces.register_workspace(key="bench-workspace", path=str(root), actor=SYSTEM)
        try:
            task = services.create_task(
                name="bench format",
                key="bench-workspace-format",
                category="code_quality",
                workspace=workspace,
                config={"fix_formatting": True},
                timeout_seconds=3600,
                actor=SYSTEM,
            )
            print(f"load average {os.getloadavg()[0]:.2f}; {options.n} files of {len(MODULE)} bytes")
            started = time.perf_counter()
            run = runner.run_now(services.request_run(task.key, actor=SYSTEM))
            took = time.perf_counter() - started
            if run.status != "succeeded":
                raise SystemExit(f"the run {run.status}: {run.summary}\n{run.error[-2000:]}")
            backup = run.backup
            print(
                f"run: {run.status} in {took:.2f} s; backup {len(backup.files)} files, "
                f"{backup.size_bytes / 1024 / 1024:.1f} MB; {run.files_modified} files modified, "
                f"+{run.lines_added} -{run.lines_removed} lines"
            )
            started = time.perf_counter()
            outcome = rollback.rollback(run, "bench", actor=SYSTEM)
            took = time.perf_counter() - started
            clean = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
            print(
                f"rollback: {len(outcome['files_restored'])} files verified and restored in {took:.2f} s; "
                f"tree clean: {clean == ''}"
            )
        finally:
            Scenario.objects.filter(key="bench-workspace-format").delete()
            Workspace.objects.filter(key="bench-workspace").delete()
        calls = 50
        started = time.perf_counter()
        for _ in range(calls):
            sandbox.run(["/bin/true"], root, timeout=10)
        sandboxed = (time.perf_counter() - started) / calls * 1000
        started = time.perf_counter()
        for _ in range(calls):
            subprocess.run(["/bin/true"], cwd=root, check=False)
        bare = (time.perf_counter() - started) / calls * 1000
        print(f"sandbox: {sandboxed:.1f} ms per command, bare subprocess {bare:.1f} ms")


if __name__ == "__main__":
    main()
