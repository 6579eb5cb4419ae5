"""The app's back office, kept in its two packages: preventive maintenance and maintenance windows."""

import scheduling.preventive.admin  # noqa: F401
import scheduling.windows.admin  # noqa: F401
