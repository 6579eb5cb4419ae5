from scheduling.preventive_models import *  # noqa: F401,F403

try:
    from scheduling.windows_models import *  # noqa: F401,F403
except ModuleNotFoundError as exc:  # the maintenance-windows models are not there yet
    if exc.name != "scheduling.windows_models":
        raise
