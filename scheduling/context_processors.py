"""`maintenance_mode` for templates (the admin's and the technician view's banner): the state of the
session organisation's maintenance mode, computed at most once per page and only if a template asks.

    "scheduling.context_processors.maintenance_mode" in TEMPLATES[0]["OPTIONS"]["context_processors"]
"""

import functools

from scheduling import windows


def maintenance_mode(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    @functools.cache
    def state():
        membership = getattr(request, "membership", None)
        return windows.mode_state(membership.organization if membership else None)

    return {"maintenance_mode": state}
