"""The daily rollups of the KPIs (`rollups.py`): each provider's additive sums per organisation and local day, the
state of an organisation's rollups, and the ranges of time a change touched since they were computed.

The dirty ranges are written by database triggers (migration `0001_daily_rollups`) on the tables the sums read,
in the transaction of the change itself, so no code path (a service, a bulk update, the admin, a data migration)
can change a rolled-up day without the readers knowing: they compute live while a range is pending, and the beat
task recomputes its days.
"""

from django.db import models
from django.db.models.functions import Now

from maintenance_site.tenancy.models import Organization


class DailyRollup(models.Model):
    """One provider's additive sums (`measures`: name → number) for one organisation and one local day: for the whole
    organisation (`breakdown` ""), or for one group of a breakdown the provider rolls up (`breakdown` "asset_type",
    "location", "priority"; `group_key` the group's id or value as text, "" for the group "(none)"). `samples`
    holds, per name, the day's sorted values of a figure that does not add up over days (a percentile): a period's
    percentile is computed exactly over its days' values."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=40)
    day = models.DateField()
    breakdown = models.CharField(max_length=20, default="", blank=True)
    group_key = models.CharField(max_length=64, default="", blank=True)
    measures = models.JSONField(default=dict)
    samples = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "breakdown", "day", "group_key"],
                name="analytics_rollup_one_per_day_group",
            )
        ]

    def __str__(self):
        group = f" {self.breakdown}={self.group_key}" if self.breakdown else ""
        return f"{self.source} {self.day}{group}"


class RollupState(models.Model):
    """Which local days of an organisation are rolled up: `rolled_from` … `rolled_through` (contiguous), cut in
    `time_zone` with the row layout `layout`; `rolled_until` is the UTC end of the last one (the triggers record
    changes before it)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64)
    # The shape of the rows (`rollups.LAYOUT`): rollups of another layout are rebuilt by the next refresh.
    layout = models.PositiveSmallIntegerField(default=0)
    rolled_from = models.DateField()
    rolled_through = models.DateField()
    rolled_until = models.DateTimeField()
    refreshed_at = models.DateTimeField()

    def __str__(self):
        return f"{self.rolled_from} … {self.rolled_through}"


class RollupDirty(models.Model):
    """A change (written by a trigger) to data of [since, until] of an organisation's rolled-up days: those days are
    recomputed by the next refresh, and read live until then."""

    organization_id = models.BigIntegerField(db_index=True)
    since = models.DateTimeField()
    until = models.DateTimeField()
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self):
        return f"{self.since} … {self.until}"
