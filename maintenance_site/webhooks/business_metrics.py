"""The webhooks' business metric on /metrics (maintenance_site.ops.business_metrics). Registered by
WebhooksConfig.ready()."""

from maintenance_site.ops import business_metrics
from maintenance_site.webhooks.models import WebhookDelivery


@business_metrics.family(
    "maintenance_webhook_deliveries", "Webhook deliveries in the log (WEBHOOK_LOG_DAYS), by status.", labels=["status"]
)
def webhook_deliveries(context):
    return context.labelled(context.grouped(WebhookDelivery.objects.all(), "status"))
