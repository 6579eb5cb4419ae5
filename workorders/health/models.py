"""Asset health's data: diagnostic runs and their results, each asset's current health (score, risk, terms) and
its history, the organisation's predictive settings, and the predictive alerts that opened work orders."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel
from maintenance_site.tenancy.roles import Role


class CheckStatus(models.TextChoices):
    PASS = "pass", _("Pass")
    WARN = "warn", _("Warning")
    FAIL = "fail", _("Fail")


CHECK_RANK = {CheckStatus.PASS: 0, CheckStatus.WARN: 1, CheckStatus.FAIL: 2}


class Risk(models.TextChoices):
    LOW = "low", pgettext_lazy("risk", "Low")
    MEDIUM = "medium", pgettext_lazy("risk", "Medium")
    HIGH = "high", pgettext_lazy("risk", "High")
    CRITICAL = "critical", pgettext_lazy("risk", "Critical")


RISK_RANK = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2, Risk.CRITICAL: 3}


class DiagnosticRun(TenantModel):
    """One diagnostic of one device: the built-in checks computed from its telemetry and history, or results an
    external tool submitted. A quick run is done when it is created; a deep one is queued and polled.

    Status: pending → done | failed (a deep run, by its Celery task); a quick or external run is created done."""

    class Source(models.TextChoices):
        BUILT_IN = "built_in", _("Built-in checks")
        EXTERNAL = "external", _("External tool")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    asset = models.ForeignKey("assets.Asset", on_delete=models.CASCADE, related_name="diagnostic_runs")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.BUILT_IN)
    tool = models.CharField(max_length=120, blank=True, help_text=_("The external tool's name."))
    deep = models.BooleanField(default=False, help_text=_("Checks over the stored history (queued, answered 202)."))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=10, choices=CheckStatus.choices, blank=True, help_text=_("Worst result."))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the history: WHERE asset_id = ? ORDER BY created_at DESC, id DESC
            models.Index(fields=["asset", "-created_at", "-id"], name="wo_diagrun_asset_idx"),
        ]

    def __str__(self) -> str:
        return f"Diagnostic {self.pk} of asset {self.asset_id} ({self.get_status_display()})"


class DiagnosticResult(TenantModel):
    """The result of one check in one run: pass, warn or fail, the values measured and a message. Append-only
    (its own audit: no history rows)."""

    run = models.ForeignKey(DiagnosticRun, on_delete=models.CASCADE, related_name="results")
    asset = models.ForeignKey("assets.Asset", on_delete=models.CASCADE, related_name="diagnostic_results")
    check_name = models.CharField(
        max_length=140, help_text=_("The check, and the metric it looked at: stale_data:temperature.")
    )
    status = models.CharField(max_length=10, choices=CheckStatus.choices)
    measured = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "check_name"]
        indexes = [
            # the health score's latest result per check and analyze: WHERE asset_id = ? AND created_at >= ?
            models.Index(fields=["asset", "created_at"], name="wo_diagresult_asset_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.status}"


class AssetHealth(TenantModel):
    """An asset's current health: the score (0–100), its risk level and each term of the score, as last computed
    (derived data, recomputed by the health job: no history rows; `HealthSnapshot` keeps the score's history).
    `risk_since` is when the risk last reached its current level (the predictive delay counts from it)."""

    asset = models.OneToOneField("assets.Asset", on_delete=models.CASCADE, related_name="health")
    score = models.FloatField()
    risk = models.CharField(max_length=20, choices=Risk.choices)
    terms = models.JSONField(default=list)
    computed_at = models.DateTimeField()
    risk_since = models.DateTimeField()

    class Meta:
        verbose_name_plural = _("asset health")
        ordering = ["score", "asset_id"]
        indexes = [
            # the insights and the admin's list: WHERE organization_id = ? ORDER BY score, asset_id
            models.Index(fields=["organization", "score", "asset"], name="wo_health_org_score_idx"),
            # the job: WHERE computed_at < ?
            models.Index(fields=["computed_at"], name="wo_health_computed_idx"),
        ]

    def __str__(self) -> str:
        return f"Health of asset {self.asset_id}: {self.score:.0f} ({self.risk})"


class HealthSnapshot(TenantModel):
    """The score of an asset at one computation: the history the health endpoint and the charts draw.
    Append-only."""

    asset = models.ForeignKey("assets.Asset", on_delete=models.CASCADE, related_name="health_snapshots")
    score = models.FloatField()
    risk = models.CharField(max_length=20, choices=Risk.choices)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-computed_at"]
        indexes = [
            # the health endpoint's history: WHERE asset_id = ? AND computed_at >= ? ORDER BY computed_at
            models.Index(fields=["asset", "computed_at"], name="wo_healthsnap_asset_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.score:.0f} at {self.computed_at:%Y-%m-%d %H:%M}"


class PredictiveSettings(TenantModel):
    """An organisation's predictive maintenance settings: at which risk an asset gets a predictive work order, how
    long the risk must last first (delay), how long after the order closes before another (cooldown), how many
    orders one run may open at most, and who is notified."""

    organization = models.OneToOneField(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="predictive_settings"
    )
    enabled = models.BooleanField(default=True)
    risk_level = models.CharField(
        max_length=20, choices=Risk.choices, default=Risk.HIGH, help_text=_("Risk at or above which an order opens.")
    )
    delay_minutes = models.PositiveIntegerField(default=0, help_text=_("The risk must last this long first."))
    cooldown_hours = models.PositiveIntegerField(
        default=72, help_text=_("After a predictive order closes, none for the same asset and cause for this long.")
    )
    max_orders_per_run = models.PositiveIntegerField(default=20, help_text=_("At most this many orders per run."))
    notify_roles = models.JSONField(default=list, blank=True, help_text=_("Roles notified; empty: managers, planners."))

    history = history()

    class Meta:
        verbose_name_plural = _("predictive settings")

    def __str__(self) -> str:
        return f"Predictive settings of {self.organization}"

    def clean(self):
        errors = {}
        roles = self.notify_roles
        if not isinstance(roles, list) or any(role not in Role.values for role in roles):
            errors["notify_roles"] = f"A list of roles among {', '.join(Role.values)}."
        if self.cooldown_hours is not None and self.cooldown_hours > 24 * 365:
            errors["cooldown_hours"] = "At most a year (8,760 hours)."
        if self.max_orders_per_run is not None and not 1 <= self.max_orders_per_run <= 1000:
            errors["max_orders_per_run"] = "From 1 to 1,000."
        if errors:
            raise ValidationError(errors)

    @property
    def roles_notified(self) -> list[str]:
        return list(self.notify_roles) or [Role.MANAGER.value, Role.PLANNER.value]


class PredictiveAlert(TenantModel):
    """A predictive alert: an asset's risk reached the organisation's level for one cause (the score's heaviest
    term) and a predictive work order was opened for it, linked to the anomalies and diagnostic results behind it.
    At most one open alert per asset and cause (a unique constraint: two runs at once open one order); it closes
    when its work order does, and the cooldown counts from then."""

    asset = models.ForeignKey("assets.Asset", on_delete=models.CASCADE, related_name="predictive_alerts")
    cause = models.CharField(max_length=40)
    work_order = models.OneToOneField("workorders.WorkOrder", on_delete=models.CASCADE, related_name="predictive_alert")
    score = models.FloatField()
    risk = models.CharField(max_length=20, choices=Risk.choices)
    reasons = models.JSONField(default=list)
    anomalies = models.ManyToManyField("assets.Anomaly", blank=True, related_name="predictive_alerts")
    diagnostics = models.ManyToManyField(DiagnosticResult, blank=True, related_name="predictive_alerts")
    closed_at = models.DateTimeField(null=True, blank=True, help_text=_("When its work order closed."))

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "cause"],
                condition=models.Q(closed_at__isnull=True),
                name="wo_predictive_one_open_per_cause",
                violation_error_message="This asset already has an open predictive alert for this cause.",
            ),
        ]
        indexes = [
            # the cooldown: WHERE asset_id = ? AND cause = ? ORDER BY closed_at DESC
            models.Index(fields=["asset", "cause", "-closed_at"], name="wo_predictive_cooldown_idx"),
        ]

    def __str__(self) -> str:
        return f"Predictive alert on asset {self.asset_id} ({self.cause})"
