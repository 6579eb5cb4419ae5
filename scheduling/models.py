"""The app's models, kept in its two packages: preventive maintenance and maintenance windows."""

from scheduling.preventive.models import *  # noqa: F401,F403
from scheduling.windows.models import *  # noqa: F401,F403
