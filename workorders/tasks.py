"""The work orders app's Celery tasks (Celery's autodiscovery reads this module): asset health's are in its
package."""

from workorders.health.tasks import complete_deep_diagnostic, refresh_asset_health

__all__ = ["complete_deep_diagnostic", "refresh_asset_health"]
