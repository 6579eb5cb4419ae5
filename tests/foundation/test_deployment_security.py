"""What the compose deployment must set for the client address and /metrics (checked without Docker)."""

import yaml

from tests.foundation.test_deployment_files import APP_SERVICES, COMPOSE_FILE, command, environment


def _services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def test_daphne_does_not_trust_the_left_most_forwarded_address():
    # daphne's --proxy-headers takes the first X-Forwarded-For entry, which the client writes itself
    assert "--proxy-headers" not in command(_services()["web"])


def test_the_app_trusts_exactly_the_proxy_in_front_and_requires_a_metrics_token():
    for name in APP_SERVICES:
        env = environment(_services()[name])
        assert env["TRUSTED_PROXY_COUNT"] == "${TRUSTED_PROXY_COUNT:-1}", name
        assert env["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?"), f"{name}: METRICS_TOKEN must be required"
