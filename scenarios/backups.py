"""File-level rollback points of workspace runs (models.WorkspaceBackup).

Before a run that may change its workspace (its executor declares `touches`), `create()` records the
workspace's git state (commit, branch, dirty files) and copies every file the run may touch, with its SHA-256,
under SCENARIO_BACKUP_ROOT/run-<id>/ (with a manifest.json beside the copies). After the run `finish()`
records the same files' checksums and counts the files modified and lines added and removed (the run's diff).

`verify()` says why a rollback is refused: a file changed since the run (its checksum is not the one the run
left), or a copy is damaged (its checksum is not the one taken). `restore()` puts the exact bytes back and
deletes the files the run created. `evict()` deletes the oldest copies while the kept ones pass
SCENARIO_MAX_BACKUP_SIZE_MB (never the newest: the run about to start keeps its rollback point).
"""

import difflib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from scenarios import sandbox
from scenarios.models import ScenarioRun, Workspace, WorkspaceBackup

logger = logging.getLogger(__name__)

GIT_TIMEOUT_SECONDS = 30
DIFF_MAX_BYTES = 2 * 1024 * 1024  # files larger than this count as modified, their lines are not diffed


def backup_root() -> Path:
    return Path(settings.SCENARIO_BACKUP_ROOT)


def sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _checksum_or_none(root: Path, relative: str) -> str | None:
    path = Path(root) / relative
    if path.is_symlink() or not path.is_file():
        return None
    return sha256(path)


def git(root: Path, *arguments: str) -> sandbox.Completed:
    """A git command in the workspace, neither its hooks nor an fsmonitor command configured by the workspace
    running (both execute programs)."""
    git_binary = shutil.which("git") or "git"
    argv = [
        git_binary,
        "-c",
        "core.fsmonitor=false",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        f"safe.directory={Path(root).resolve()}",  # a checkout owned by another user than the worker's
        *arguments,
    ]
    return sandbox.run(argv, root, timeout=GIT_TIMEOUT_SECONDS)


def git_state(root: Path) -> dict:
    """The workspace's commit, branch and dirty files ({"git": False} outside a git checkout)."""
    head = git(root, "rev-parse", "HEAD")
    if not head.ok:
        return {"git": False}
    branch = git(root, "rev-parse", "--abbrev-ref", "HEAD")
    status = git(root, "status", "--porcelain=v1", "--untracked-files=all")
    dirty = [line[3:] for line in status.stdout.splitlines() if len(line) > 3]
    return {
        "git": True,
        "commit": head.stdout.strip(),
        "branch": branch.stdout.strip() if branch.ok else "",
        "dirty": dirty[:500],
        "dirty_count": len(dirty),
    }


def create(run: ScenarioRun, workspace: Workspace, paths: list[str]) -> WorkspaceBackup:
    """Back up `paths` (relative to the workspace, confined to it) before the run."""
    root = Path(workspace.path).resolve()
    directory = backup_root() / f"run-{run.pk}"
    copies = directory / "files"
    if directory.exists():  # a leftover of a crashed attempt of the same run
        shutil.rmtree(directory)
    copies.mkdir(parents=True)
    files, total = [], 0
    for relative in sorted(set(paths)):
        source = sandbox.confine(root, relative)
        name = source.relative_to(root).as_posix()
        if (root / relative).is_symlink():
            continue  # a symlink is never followed nor restored through
        if source.is_file():
            target = copies / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            digest = sha256(target)
            size = target.stat().st_size
            total += size
            files.append({"path": name, "existed": True, "sha256": digest, "size": size})
        else:
            files.append({"path": name, "existed": False, "sha256": None, "size": 0})
    state = git_state(root)
    manifest = {"run": run.pk, "workspace": workspace.key, "root": str(root), "git": state, "files": files}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    backup = WorkspaceBackup.objects.create(
        run=run, workspace=workspace, directory=str(directory), git_state=state, files=files, size_bytes=total
    )
    evict()
    return backup


def _lines(path: Path) -> list[str] | None:
    try:
        if path.stat().st_size > DIFF_MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return []
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace").splitlines()


def finish(backup: WorkspaceBackup) -> dict:
    """After the run: the checksums it left, and its diff (files modified, lines added and removed)."""
    root = Path(backup.workspace.path).resolve()
    copies = Path(backup.directory) / "files"
    after, modified, added, removed, changed_files = {}, 0, 0, 0, []
    for entry in backup.files:
        current = _checksum_or_none(root, entry["path"])
        after[entry["path"]] = current
        if current == entry["sha256"]:
            continue
        modified += 1
        changed_files.append(entry["path"])
        before_lines = _lines(copies / entry["path"]) if entry["existed"] else []
        after_lines = _lines(root / entry["path"]) if current is not None else []
        if before_lines is None or after_lines is None:
            continue
        for line in difflib.unified_diff(before_lines, after_lines, lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++"):
                added += 1
            elif line.startswith("-") and not line.startswith("---"):
                removed += 1
    WorkspaceBackup.objects.filter(pk=backup.pk).update(after=after)
    backup.after = after
    return {"files_modified": modified, "lines_added": added, "lines_removed": removed, "files": changed_files}


def verify(backup: WorkspaceBackup) -> list[str]:
    """Why the files cannot be rolled back now (empty: they can)."""
    if backup.evicted_at is not None:
        return [f"its file backup was evicted on {backup.evicted_at:%Y-%m-%d %H:%M} (size or age limit)"]
    if backup.restored_at is not None:
        return ["its files were restored already"]
    root = Path(backup.workspace.path).resolve()
    if not root.is_dir():
        return [f"the workspace {root} is gone"]
    copies = Path(backup.directory) / "files"
    changed, damaged, problems = [], [], []
    for entry in backup.files:
        path = entry["path"]
        try:
            sandbox.confine(root, path)
        except sandbox.PathEscape as exc:
            problems.append(str(exc))
            continue
        if (root / path).is_symlink():
            problems.append(f"{path} is now a symlink")
            continue
        if path not in backup.after or _checksum_or_none(root, path) != backup.after[path]:
            changed.append(path)
        if entry["existed"]:
            copy = copies / path
            if not copy.is_file() or sha256(copy) != entry["sha256"]:
                damaged.append(path)
    if changed:
        problems.append(f"changed since the run (checksum mismatch): {', '.join(changed)}")
    if damaged:
        problems.append(f"the backup copy is missing or damaged (checksum mismatch): {', '.join(damaged)}")
    return problems


def restore(backup: WorkspaceBackup) -> dict:
    """Put back the exact bytes of every backed-up file; delete the files the run created. Call after verify()."""
    root = Path(backup.workspace.path).resolve()
    copies = Path(backup.directory) / "files"
    restored, deleted = [], []
    for entry in backup.files:
        if backup.after.get(entry["path"]) == entry["sha256"]:
            continue  # the run left it as it was
        target = sandbox.confine(root, entry["path"])
        if entry["existed"]:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".rollback-")
            os.close(handle)
            shutil.copy2(copies / entry["path"], temporary)
            os.replace(temporary, target)
            restored.append(entry["path"])
        elif target.is_file():
            target.unlink()
            deleted.append(entry["path"])
    WorkspaceBackup.objects.filter(pk=backup.pk).update(restored_at=timezone.now())
    return {"files_restored": restored, "files_deleted": deleted}


def _drop(backup: WorkspaceBackup) -> None:
    shutil.rmtree(backup.directory, ignore_errors=True)


def evict(limit_mb: int | None = None) -> list[int]:
    """Delete the oldest kept copies while the kept ones pass the size limit (the newest is always kept).
    Returns the runs whose file rollback points were evicted."""
    limit = (settings.SCENARIO_MAX_BACKUP_SIZE_MB if limit_mb is None else limit_mb) * 1024 * 1024
    evicted = []
    with transaction.atomic():
        kept = list(
            WorkspaceBackup.objects.select_for_update()
            .filter(evicted_at__isnull=True)
            .order_by("created_at", "pk")
            .only("pk", "run_id", "directory", "size_bytes", "created_at")
        )
        total = sum(backup.size_bytes for backup in kept)
        now = timezone.now()
        for backup in kept[:-1]:
            if total <= limit:
                break
            WorkspaceBackup.objects.filter(pk=backup.pk).update(evicted_at=now)
            total -= backup.size_bytes
            evicted.append(backup)
    for backup in evicted:  # once the rows say so (a copy missing without that reads as a damaged backup)
        _drop(backup)
    evicted = [backup.run_id for backup in evicted]
    if evicted:
        logger.info("rollback points evicted by the size limit: runs %s", evicted)
    return evicted


def expire(older_than) -> int:
    """Delete the copies of file backups made before `older_than` (the cleanup's --rollback-days)."""
    old = list(WorkspaceBackup.objects.filter(evicted_at__isnull=True, created_at__lt=older_than))
    WorkspaceBackup.objects.filter(pk__in=[b.pk for b in old]).update(evicted_at=timezone.now())
    for backup in old:
        transaction.on_commit(lambda backup=backup: _drop(backup))
    return len(old)


def drop_for(runs) -> int:
    """Delete the copies of the file backups of these runs (before the runs are deleted)."""
    found = list(WorkspaceBackup.objects.filter(run__in=runs, evicted_at__isnull=True).only("pk", "directory"))
    for backup in found:
        transaction.on_commit(lambda backup=backup: _drop(backup))
    return len(found)


def storage() -> dict:
    """Storage used by the kept file rollback points."""
    kept = WorkspaceBackup.objects.filter(evicted_at__isnull=True)
    used = kept.aggregate(total=Sum("size_bytes"))["total"] or 0
    return {
        "rollback_points": kept.count(),
        "bytes": used,
        "megabytes": round(used / 1024 / 1024, 3),
        "limit_megabytes": settings.SCENARIO_MAX_BACKUP_SIZE_MB,
    }
