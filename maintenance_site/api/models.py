from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from maintenance_site.tenancy.models import Organization


class IdempotencyRecord(models.Model):
    """A POST sent with an `Idempotency-Key`: remembered so that a retry returns the first response
    instead of doing the work twice. Its own audit; expired rows are pruned."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    principal = models.CharField(max_length=64, help_text=_("user:<id> or key:<prefix>"))
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "principal", "key"], name="api_idempotencyrecord_unique_key"
            )
        ]
        indexes = [
            # the expiry sweep: DELETE ... WHERE created_at < now() - ttl
            models.Index(fields=["created_at"], name="api_idem_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"
