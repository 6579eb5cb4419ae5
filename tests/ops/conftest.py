"""Fixtures of the ops tests: scraping /metrics, and real failures of the cache and the broker."""

import math

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from maintenance_site.celery import app
from maintenance_site.ops.tasks import record_heartbeat

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connection is refused at once


@pytest.fixture
def beat_alive(db):
    record_heartbeat("beat")


@pytest.fixture
def cache_down():
    """The default cache is a Redis nobody listens on. Restored before the shared fixture clears the cache."""
    unreachable = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": UNREACHABLE_REDIS}}
    with override_settings(CACHES=unreachable):
        yield


@pytest.fixture
def broker_down():
    original = app.conf.broker_url
    app.conf.broker_url = UNREACHABLE_REDIS
    try:
        yield
    finally:
        app.conf.broker_url = original


class Scrape:
    """One /metrics response, parsed by prometheus_client's own parser (so it also proves the format)."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    def value(self, name: str, **labels) -> float | None:
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None

    def count(self, name: str, **labels) -> float:
        """A counter's value, 0 when the series does not exist yet."""
        value = self.value(name, **labels)
        return 0.0 if value is None else value

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


@pytest.fixture
def scrape(client, db):
    def get(**headers) -> Scrape:
        response = client.get("/metrics", **headers)
        assert response.status_code == 200, response.content
        return Scrape(response.content.decode())

    return get


def is_inf(value) -> bool:
    return value is not None and math.isinf(value)
