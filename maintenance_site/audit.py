"""Audit trail: django-simple-history wired so that history names whoever acted.

- `history()` gives a model its history in one line: `history = history()`.
- The acting user comes from, in order: an explicit `acting_as(user)` block (management commands,
  Celery tasks, services acting for someone), then the request (admin, technician view, and the API,
  whose authenticated user, including an API key's service user, DRF copies onto the request).
- `system_user()` is the account that Celery tasks and commands act as when nobody else does; the `SYSTEM`
  actor (`maintenance_site.tenancy`) stands for it: `acting_as(SYSTEM)` and `as_user(SYSTEM)` give that account.
- `attributed` makes a service's `actor=` required (a user or `SYSTEM`; None is a TypeError).
- `bulk_create_with_history` writes the history rows that `bulk_create` skips.
"""

import functools
import inspect
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.db import models
from simple_history import utils as history_utils
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from maintenance_site.tenancy.actors import SYSTEM, SYSTEM_USERNAME, check_actor

_acting_user: ContextVar = ContextVar("acting_user", default=None)
_change_reason: ContextVar = ContextVar("change_reason", default=None)


@contextmanager
def acting_as(user, reason: str | None = None):
    """Attribute every history row written inside the block to `user` (and `reason`, if given); `SYSTEM`
    stands for the system user."""
    user = as_user(user)
    user_token = _acting_user.set(user)
    reason_token = _change_reason.set(reason) if reason is not None else None
    try:
        yield user
    finally:
        _acting_user.reset(user_token)
        if reason_token is not None:
            _change_reason.reset(reason_token)


def start_acting_as(user):
    """Attribute history written from now on in this context to `user`, until `stop_acting_as(token)` with the
    token returned. For code that enters and leaves in two calls (Celery's task_prerun and task_postrun
    signals); everywhere else the `acting_as` block."""
    return _acting_user.set(user)


def stop_acting_as(token) -> None:
    """End what `start_acting_as` started (restores who acted before)."""
    _acting_user.reset(token)


def attributed(service):
    """Service decorator: `actor=` is required (a user, or `SYSTEM` for automation: a missing actor or None is a
    TypeError, never a silent allow), and history written inside names it. `SYSTEM` reaches the service as the
    system user, which every role check lets through and every "by" column can hold."""
    if "actor" not in inspect.signature(service).parameters:
        raise TypeError(f"{service.__qualname__}() takes no actor: history names whoever its caller acts as.")

    @functools.wraps(service)
    def wrapper(*args, **kwargs):
        if "actor" not in kwargs:
            raise TypeError(
                f"{service.__qualname__}() needs actor=: the acting user, or SYSTEM (maintenance_site.tenancy) "
                "for automation."
            )
        actor = as_user(check_actor(kwargs["actor"], f"{service.__qualname__}()"))
        with acting_as(actor):
            return service(*args, **{**kwargs, "actor": actor})

    return wrapper


def as_user(actor):
    """The account an actor stands for: `SYSTEM` is the system user; a user (or None) is itself."""
    return system_user() if actor is SYSTEM else actor


def current_user():
    """The user on whose behalf the current code runs, or None."""
    explicit = _acting_user.get()
    if explicit is not None:
        return explicit
    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return None


def current_change_reason() -> str | None:
    return _change_reason.get()


def _history_user(instance=None, request=None, **kwargs):
    explicit = getattr(instance, "_history_user", None)
    if explicit is not None:
        return explicit
    return current_user()


def history(**kwargs) -> HistoricalRecords:
    """History for a domain model, recording the acting user and why, at any length.

    simple-history's default reason column is `varchar(100)`: a hold reason or a note built from two policy
    names overflows it on PostgreSQL (SQLite ignores the length), so every model gets a text column instead.
    """
    kwargs.setdefault("get_user", _history_user)
    kwargs.setdefault("history_change_reason_field", models.TextField(null=True))
    return HistoricalRecords(**kwargs)


def system_user():
    """The account automated work acts as; created on first use, cannot log in."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"first_name": "System", "is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def bulk_create_with_history(objs, model, **kwargs):
    """`bulk_create` plus the history rows simple-history does not write for it."""
    kwargs.setdefault("default_user", current_user())
    kwargs.setdefault("default_change_reason", current_change_reason() or "")
    return history_utils.bulk_create_with_history(objs, model, **kwargs)


def bulk_update_with_history(objs, model, fields, **kwargs):
    kwargs.setdefault("default_user", current_user())
    kwargs.setdefault("default_change_reason", current_change_reason() or "")
    return history_utils.bulk_update_with_history(objs, model, fields, **kwargs)


def _fill_change_reason(sender, history_instance=None, **kwargs):
    """Signal receiver: a history row written inside `acting_as(user, reason)` carries the reason."""
    if history_instance is not None and not history_instance.history_change_reason:
        history_instance.history_change_reason = current_change_reason()


pre_create_historical_record.connect(_fill_change_reason, dispatch_uid="audit-change-reason")


def save_with_reason(instance, reason: str, **save_kwargs):
    """Save and record why in the history row."""
    instance._change_reason = reason
    instance.save(**save_kwargs)


__all__ = [
    "SYSTEM_USERNAME",
    "acting_as",
    "as_user",
    "attributed",
    "bulk_create_with_history",
    "bulk_update_with_history",
    "current_user",
    "history",
    "save_with_reason",
    "start_acting_as",
    "stop_acting_as",
    "system_user",
]
