"""Organisations own every domain row; members act in them through a role."""

import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey

from maintenance_site.audit import history
from maintenance_site.tenancy.roles import Role


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            gettext("“%(value)s” is not a time zone name; use one such as Europe/Berlin.") % {"value": value}
        )


def language_choices() -> list[tuple[str, str]]:
    """The languages the platform speaks (settings.LANGUAGES); a callable, so adding one needs no migration."""
    return list(settings.LANGUAGES)


def new_public_token() -> str:
    return secrets.token_urlsafe(16)


class Organization(models.Model):
    """A maintenance organisation (a customer of the platform): it owns its assets, work, stock and
    settings, and nobody outside it sees any of them."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    currency = models.CharField(
        max_length=3,
        default="EUR",
        validators=[RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code such as EUR.")],
    )
    language = models.CharField(
        max_length=10,
        choices=language_choices,
        default="en-gb",
        help_text=_("For members who chose no language and whose browser asks for none the platform speaks."),
    )
    technicians_can_claim = models.BooleanField(
        default=True, help_text=_("Technicians may take unassigned work orders themselves.")
    )
    reopen_period_days = models.PositiveIntegerField(
        default=14, help_text=_("How many days after completion a work order may be reopened.")
    )
    require_verification = models.BooleanField(
        default=False, help_text=_("Completed work must be verified by a planner or manager.")
    )
    require_failure_codes = models.BooleanField(
        default=False,
        help_text=_("Corrective and emergency work orders need a problem, cause and remedy code to be completed."),
    )
    # In the URL of the organisation's public problem-report form; regenerate it to retire old links.
    request_form_token = models.CharField(max_length=32, unique=True, default=new_public_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class MembershipQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True, user__is_active=True)


class Membership(models.Model):
    """A user's place in an organisation: their role there, and for technicians their hourly rate."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    hourly_rate = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MembershipQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["organization", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="tenancy_membership_unique_user"),
            models.CheckConstraint(
                condition=models.Q(hourly_rate__isnull=True) | models.Q(hourly_rate__gte=0),
                name="tenancy_membership_rate_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.organization}"


class Profile(models.Model):
    """A person's own settings, the same in every organisation they belong to: the language they read the
    platform in (pages, e-mails, notifications). Empty: their browser's language, else the organisation's."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    language = models.CharField(
        max_length=10,
        blank=True,
        choices=language_choices,
        help_text=_("Empty: the browser's language, else the organisation's default."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    def __str__(self) -> str:
        return f"{self.user}: {self.language or 'browser / organisation'}"


class ApiKeyScope(models.TextChoices):
    READ = "read", _("Read only")
    READ_WRITE = "read_write", _("Read and write")


class OrganizationAPIKey(AbstractAPIKey):
    """A revocable key an integrator uses (`Authorization: Api-Key <key>`). Stored hashed; it acts as its
    own service user, an integrator member of the organisation, so the audit trail names it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    scope = models.CharField(max_length=20, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    service_user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    history = history(excluded_fields=["last_used_at"])

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    @property
    def is_read_only(self) -> bool:
        return self.scope == ApiKeyScope.READ


class OrganizationCounter(models.Model):
    """A per-organisation document counter (work-order numbers, purchase-order numbers), advanced by one
    conditional UPDATE that holds the row lock until the caller's transaction ends."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=40)
    last_number = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="tenancy_counter_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.name}: {self.last_number}"


class TenantQuerySet(models.QuerySet):
    """Every request-driven query starts here: `Model.objects.for_tenant(organization)`."""

    def for_tenant(self, organization):
        return self.filter(organization=organization)


class TenantModel(models.Model):
    """Base of every domain model: owned by one organisation, with creation and update times
    (`updated_at` feeds the API's `updated_after` sync filter and ETags)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
