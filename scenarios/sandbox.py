"""Running a workspace's tools and code safely: a workspace executor runs code from the workspace (a test run
imports it), so every command goes through `run()` here:

- an argument list, never a shell (no user-provided string is ever parsed by one);
- a scrubbed environment: only PATH (a fixed system PATH), HOME (a temporary folder), LANG and the few
  variables the caller names; nothing of the platform's (DATABASE_URL, SECRET_KEY, REDIS_URL, API keys);
- the workspace as working directory, in a new session (its whole process group is killed at the timeout);
- CPU-time, memory (address space), file-size and process-count limits (`resource.setrlimit`);
- output captured into bounded buffers (the rest is counted, not kept).

Paths named by a task's configuration are confined to the workspace with `confine()`: a path that leaves it
(`..`, an absolute path, a symlink pointing outside) is refused.
"""

import contextlib
import os
import resource
import selectors
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
OUTPUT_LIMIT = 64 * 1024  # bytes kept of each of stdout and stderr
MEMORY_LIMIT_MB = 2048
FILE_SIZE_LIMIT_MB = 512
PROCESS_LIMIT = 256


class PathEscape(ValueError):
    """A path named by a task leaves its workspace."""


def confine(root: Path, relative: str | os.PathLike) -> Path:
    """`relative` inside the workspace `root`, resolved (symlinks followed); PathEscape when it leaves it."""
    root = Path(root).resolve()
    candidate = Path(relative)
    if candidate.is_absolute():
        raise PathEscape(f"“{relative}” is absolute: name paths relative to the workspace.")
    resolved = (root / candidate).resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise PathEscape(f"“{relative}” leads outside the workspace.")
    return resolved


def is_inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, is inside `root` (a symlink pointing outside is not)."""
    root = Path(root).resolve()
    resolved = Path(path).resolve()
    return resolved == root or resolved.is_relative_to(root)


# What a tool that reaches the network (pip-audit) needs on a machine behind a proxy or with its own CA: passed
# to that tool only, never to a workspace's own code.
NETWORK_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_INDEX_URL",
    "PIP_CERT",
)


def network_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in NETWORK_VARIABLES if name in os.environ}


def clean_environment(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a workspace command: nothing inherited from the platform's process."""
    env = {
        "PATH": SAFE_PATH,
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "NO_COLOR": "1",
        "TMPDIR": home,
    }
    env.update(extra or {})
    return env


@dataclass
class Completed:
    """How a workspace command ended."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _limits(cpu_seconds: int, memory_mb: int):
    def apply():  # runs in the child, between fork and exec
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        if memory_mb:
            size = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        size = FILE_SIZE_LIMIT_MB * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        wanted = PROCESS_LIMIT if hard == resource.RLIM_INFINITY else min(PROCESS_LIMIT, hard)
        # NPROC counts every process of the user: never lower it below what the user already runs.
        if soft == resource.RLIM_INFINITY or soft > wanted:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (max(wanted, 64), hard))

    return apply


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run(
    argv: list[str],
    cwd: Path,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    memory_mb: int = MEMORY_LIMIT_MB,
    output_limit: int = OUTPUT_LIMIT,
    stdin_bytes: bytes = b"",
) -> Completed:
    """Run `argv` (a list: no shell) in `cwd` with a clean environment, resource limits and `timeout` seconds;
    its process group is killed at the timeout. Never raises for the command's own failure."""
    if not argv or not all(isinstance(part, str) for part in argv):
        raise ValueError("A command is a non-empty list of strings.")
    timeout = max(0.1, float(timeout))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workspace-home-") as home:
        environment = clean_environment(home, env)
        try:
            process = subprocess.Popen(  # noqa: S603 (an argument list, a clean environment, no shell)
                argv,
                cwd=str(cwd),
                env=environment,
                stdin=subprocess.PIPE if stdin_bytes else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_limits(int(timeout) + 1, memory_mb),  # noqa: PLW1509 (no threads start between fork and exec)
                close_fds=True,
            )
        except OSError as exc:
            return Completed(list(argv), None, "", f"cannot start {argv[0]}: {exc.strerror or exc}", 0.0)
        if stdin_bytes:
            try:
                process.stdin.write(stdin_bytes)
                process.stdin.close()
            except OSError:
                pass
        kept = {"stdout": bytearray(), "stderr": bytearray()}
        truncated = timed_out = False
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        open_streams = 2
        while open_streams:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                timed_out = True
                _kill_group(process)
                break
            for key, _ in selector.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buffer = kept[key.data]
                room = output_limit - len(buffer)
                if room > 0:
                    buffer.extend(chunk[:room])
                if len(chunk) > room:
                    truncated = True
        selector.close()
        try:
            returncode = process.wait(timeout=max(0.1, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            returncode = process.wait()
        _kill_group(process)  # whatever the command left running in its group
        for stream in (process.stdout, process.stderr):
            stream.close()
    return Completed(
        argv=list(argv),
        returncode=None if timed_out else returncode,
        stdout=kept["stdout"].decode("utf-8", "replace"),
        stderr=kept["stderr"].decode("utf-8", "replace"),
        seconds=time.monotonic() - started,
        timed_out=timed_out,
        truncated=truncated,
    )
