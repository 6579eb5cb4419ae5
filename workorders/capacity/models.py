"""Capacity data: a weekly pattern of working hours (the organisation's default, and any member's own) and the
time off that members take."""

import re
from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.tenancy.models import TenantModel, TenantQuerySet

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
END_OF_DAY = time.max  # "24:00": the end of a day's last interval (midnight of the next day)
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


def parse_day(text: str) -> list[tuple[time, time]]:
    """ "08:00-12:00, 13:00-17:00" → [(08:00, 12:00), (13:00, 17:00)]; empty → no work that day. An interval ends
    after it starts, on the same day ("24:00" is the day's end, read as `END_OF_DAY`); intervals are in order and
    do not overlap. ValueError with a sentence a person can act on otherwise."""
    intervals: list[tuple[time, time]] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _INTERVAL.match(part)
        if not match:
            raise ValueError(
                gettext("“%(part)s” is not a period: write it as 08:00-12:00 (24-hour times).") % {"part": part.strip()}
            )
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(
                gettext("“%(part)s” has a time that does not exist: use 00:00 to 24:00.") % {"part": part.strip()}
            )
        start, end = time(h1, m1), END_OF_DAY if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(
                gettext("“%(part)s” ends before it starts: a period ends the same day (up to 24:00).")
                % {"part": part.strip()}
            )
        if intervals and start < intervals[-1][1]:
            raise ValueError(
                gettext("“%(part)s” overlaps or comes before the period ahead of it: list them in order.")
                % {"part": part.strip()}
            )
        intervals.append((start, end))
    return intervals


class WorkingPattern(TenantModel):
    """A week of working hours: the organisation's default (no member) or one member's own (a part-timer, a night
    shift). Each weekday holds its periods as text, "08:00-12:00, 13:00-17:00", in the organisation's local time;
    an empty day is a day off. A member without a pattern of their own works the organisation's."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="working_patterns",
        help_text=_("Empty: the organisation's default, which every member without their own works."),
    )
    monday = models.CharField(max_length=120, blank=True, default="08:00-12:00, 13:00-17:00")
    tuesday = models.CharField(max_length=120, blank=True, default="08:00-12:00, 13:00-17:00")
    wednesday = models.CharField(max_length=120, blank=True, default="08:00-12:00, 13:00-17:00")
    thursday = models.CharField(max_length=120, blank=True, default="08:00-12:00, 13:00-17:00")
    friday = models.CharField(max_length=120, blank=True, default="08:00-12:00, 13:00-17:00")
    saturday = models.CharField(max_length=120, blank=True)
    sunday = models.CharField(max_length=120, blank=True)

    objects = TenantQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["organization", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"],
                name="workorders_workingpattern_unique_member",
                violation_error_message="This member already has a working pattern: edit it.",
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(user__isnull=True),
                name="workorders_workingpattern_one_default",
                violation_error_message="The organisation already has a default working pattern: edit it.",
            ),
        ]

    def __str__(self) -> str:
        return f"Working hours of {self.user}" if self.user_id else "The organisation's working hours"

    def clean(self):
        errors = {}
        for day in WEEKDAYS:
            try:
                parse_day(getattr(self, day))
            except ValueError as error:
                errors[day] = str(error)
        if errors:
            raise ValidationError(errors)

    def week(self) -> list[list[tuple[time, time]]]:
        """The periods of each weekday, Monday first."""
        return [parse_day(getattr(self, day)) for day in WEEKDAYS]


class TimeOff(TenantModel):
    """A period a member does not work (leave, training, sickness): it comes off their available hours."""

    class Kind(models.TextChoices):
        LEAVE = "leave", "Leave"
        SICK = "sick", "Sick"
        TRAINING = "training", "Training"
        OTHER = "other", "Other"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="time_off")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(help_text=_("Exclusive."))
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LEAVE)
    note = models.CharField(max_length=200, blank=True)

    objects = TenantQuerySet.as_manager()
    history = history()

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("time off")
        verbose_name_plural = _("time off")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="workorders_timeoff_ends_after_start"),
        ]
        indexes = [
            # capacity over a range: WHERE organization_id = ? AND starts_at < ? AND ends_at > ? [AND user_id IN (...)]
            models.Index(fields=["organization", "starts_at"], name="wo_timeoff_org_start_idx"),
            # API sync: WHERE organization_id = ? AND updated_at > ? ORDER BY updated_at, id
            models.Index(fields=["organization", "updated_at", "id"], name="wo_timeoff_org_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.user} from {self.starts_at:%Y-%m-%d %H:%M} UTC"

    def clean(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": gettext("The end must be after the start.")})
