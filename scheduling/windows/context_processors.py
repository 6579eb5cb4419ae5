"""`maintenance_mode` for templates (the admin's and the technician view's banner): the state of the
session organisation's maintenance mode, computed at most once per page and only if a template asks.

    "scheduling.windows.context_processors.maintenance_mode" in TEMPLATES[0]["OPTIONS"]["context_processors"]
"""

import functools

from scheduling.windows.mode import mode_state


def maintenance_mode(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    @functools.cache
    def state():
        membership = getattr(request, "membership", None)
        return mode_state(membership.organization if membership else None)

    return {"maintenance_mode": state}
