"""Telemetry's periodic jobs (core jobs, registered in `maintenance_site.ops.schedules`): a few lines each that call
the services; both are safe to run twice or on two machines at once."""

from celery import shared_task

from assets.telemetry import services


@shared_task
def create_telemetry_partitions() -> list[str]:
    """This month's and the next TELEMETRY_PARTITIONS_AHEAD months' partitions of the points (PostgreSQL)."""
    return services.create_partitions_ahead()


@shared_task
def apply_telemetry_retention() -> dict:
    """Raw points and rollups older than each organisation keeps them; partitions every retention has passed."""
    deleted = services.apply_retention()
    return {**deleted, "partitions": len(deleted["partitions"])}
