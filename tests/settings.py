"""The site's settings for the test suite: maintenance_site.settings as they are, except that the state a test
process keeps in the cache and the channel layer is its own.

The suite runs in several processes at once (pytest-xdist workers, see the Makefile), which share one Redis
database (REDIS_URL) or the file cache in VAR_DIR, and every test empties the cache before and after it
(tests/conftest.py): with one namespace they would wipe each other's throttles, counters and channel groups,
and one worker's websocket would receive another's events (both test databases number their organisations
from 1). So each process gets a namespace: a key prefix for the cache and the channel layer in Redis, a folder
of its own for the file cache. A subprocess a test starts (a live server, a command) inherits the variables
the namespace is made of, so it shares its test's namespace when it runs with these settings.
"""

import os

from maintenance_site.settings import *  # noqa: F403
from maintenance_site.settings import CACHES, CHANNEL_LAYERS, REDIS_URL, VAR_DIR

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Also apart from another run of the suite on the same Redis database: the id pytest-xdist gives a run.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8]
TEST_NAMESPACE = "-".join(part for part in ("test", _RUN, _WORKER) if part)

SOCKETIO_REDIS_CHANNEL = f"{TEST_NAMESPACE}:socketio"

if REDIS_URL:
    CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": TEST_NAMESPACE}}
    CHANNEL_LAYERS = {
        "default": {
            **CHANNEL_LAYERS["default"],
            "CONFIG": {**CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"{TEST_NAMESPACE}:asgi"},
        }
    }
else:
    CACHES = {"default": {**CACHES["default"], "LOCATION": str(VAR_DIR / "cache" / f"test-{_WORKER}")}}

# The webhook tests' receiver listens on 127.0.0.1 (the SSRF refusals are tested with the setting off).
WEBHOOK_ALLOW_PRIVATE_TARGETS = True
