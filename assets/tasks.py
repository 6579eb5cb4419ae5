"""The assets app's Celery tasks (Celery's autodiscovery reads this module): telemetry's are in its package."""

from assets.telemetry.tasks import apply_telemetry_retention, create_telemetry_partitions

__all__ = ["apply_telemetry_retention", "create_telemetry_partitions"]
