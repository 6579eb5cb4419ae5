from celery import shared_task

from maintenance_site.events import platform, services


@shared_task(ignore_result=True)
def dispatch_events() -> dict:
    """After a commit that published events: number and deliver them. Safe to run twice or at once."""
    return services.dispatch()


@shared_task(ignore_result=True)
def sweep_events() -> dict:
    """Periodic: deliver whatever a failed or lost dispatch left behind."""
    return services.sweep()


@shared_task(ignore_result=True)
def prune_events() -> int:
    """Periodic: drop delivered events (the platform stream's too) past EVENTS_RETENTION_DAYS."""
    return services.prune() + platform.prune()


@shared_task(ignore_result=True)
def dispatch_platform_events() -> dict:
    """After a commit that published platform events, and periodically (`core: platform event sweep`): number them
    and send them to the superusers' group. Safe to run twice or at once."""
    return platform.dispatch()
