import scheduling.preventive_admin  # noqa: F401

try:
    import scheduling.windows_admin  # noqa: F401
except ModuleNotFoundError as exc:  # the maintenance-windows admin is not there yet
    if exc.name != "scheduling.windows_admin":
        raise
