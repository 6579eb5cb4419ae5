"""Who acts: a user, or `SYSTEM` for automation.

Every service that checks a role takes a required `actor=`. People's changes pass the user (the admin, the API,
the technician view); automation passes `SYSTEM` (Celery tasks, management commands, scenario jobs, hook
receivers acting for the platform). `SYSTEM` passes every role check, and history names the system user
(`audit.system_user()`, the account called `SYSTEM_USERNAME`), as it always has for automated work.

A forgotten actor is a TypeError, and so is `actor=None`: there is no "no actor means allowed".

This module imports nothing from the project, so that `maintenance_site.audit` can use it.
"""

SYSTEM_USERNAME = "system"


class SystemActor:
    """The platform acting on its own (no person behind the change). There is one: `SYSTEM`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SYSTEM"

    def __reduce__(self):
        return "SYSTEM"  # a copy (pickle, copy, deepcopy) is the module's one sentinel


SYSTEM = SystemActor()


def check_actor(actor, service: str = "this service"):
    """`actor` itself, or a TypeError when it is None: a caller must say who acts."""
    if actor is None:
        raise TypeError(
            f"{service} needs actor=: the acting user, or SYSTEM (maintenance_site.tenancy) for automation; "
            "None is not an actor."
        )
    return actor


def is_system(actor) -> bool:
    """True for automation: `SYSTEM`, or the system user it stands for. None is refused (TypeError)."""
    check_actor(actor)
    return actor is SYSTEM or getattr(actor, "get_username", lambda: None)() == SYSTEM_USERNAME


__all__ = ["SYSTEM", "SYSTEM_USERNAME", "SystemActor", "check_actor", "is_system"]
