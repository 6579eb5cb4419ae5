"""Reading settings from the environment, failing loudly (naming the variable) on a malformed value."""

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, *, schemes: tuple[str, ...], default: str = "") -> str:
    """A URL whose scheme is one of `schemes`; empty when unset."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid URL: expected a scheme among {', '.join(schemes)}.")
    return raw


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default).strip()
    if raw not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} must be one of: {', '.join(choices)}.")
    return raw


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as '600/min'."""
    raw = os.environ.get(name, default).strip()
    number, _, period = raw.partition("/")
    if not number.isdigit() or not period or period[0] not in "smhd":
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate: write it as NUMBER/PERIOD, e.g. 600/min.")
    return raw


def env_parsed(name: str, default, parse: Callable[[str], object], what: str):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {what}: {exc}") from None


def read_or_create_secret(path: Path, make: Callable[[], str] | None = None) -> str:
    """The secret stored in `path`, created (readable by its owner only) the first time, by `make()` (a random
    token by default). Processes starting at once all end up with the one linked into place first."""
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write((make() if make else secrets.token_urlsafe(50)).strip() + "\n")
        try:
            os.link(temporary, path)  # atomic, and refuses to replace a key another process put there first
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()
