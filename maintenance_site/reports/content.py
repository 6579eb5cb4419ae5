"""A report's content: the organisation, the period, the scope, the definitions version and the blocks of its
sections, built one section at a time (each step reported to `progress`, so the page that waits can show it)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from maintenance_site import formats
from maintenance_site.analytics import registry as analytics_registry
from maintenance_site.analytics.definitions import VERSION
from maintenance_site.analytics.services import scope_for
from maintenance_site.reports import registry
from maintenance_site.reports.registry import Block

# An audit report over more changes than this is offered as CSV only: its PDF and page say so and link to the CSV.
AUDIT_PDF_LIMIT = 50_000


@dataclass
class Content:
    """What every format shows: the heading facts and the blocks, in order."""

    kind: str
    title: str
    organization: str
    first_day: date
    last_day: date
    time_zone: str
    scope_label: str
    generated_at: datetime
    definitions_version: str = VERSION
    blocks: list[Block] = field(default_factory=list)
    filters: dict = field(default_factory=dict)
    csv_only: bool = False  # an audit over AUDIT_PDF_LIMIT changes: the PDF and the page point at the CSV

    @property
    def period_label(self) -> str:
        return f"{formats.date(self.first_day)} – {formats.date(self.last_day)}"

    @property
    def rows(self) -> int:
        return sum(len(block.rows) for block in self.blocks)


def _location_label(organization, location) -> str:
    if location is None:
        return _("the whole organisation")
    labels = analytics_registry.function("group_labels")("location", organization, [location])
    name = labels.get(location) or _("location #%(id)s") % {"id": location}
    return _("%(location)s and everything below it") % {"location": name}


def build(
    organization,
    kind: str,
    *,
    first_day: date | None,
    last_day: date | None,
    location: int | None = None,
    options: dict | None = None,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> Content:
    """The content of a `kind` report (a 400 naming the parameter for a bad period or location), its texts in the
    active language (`services.generate` activates the requester's, or the organisation's for a schedule)."""
    now = now or timezone.now()
    scope = scope_for(organization, first_day=first_day, last_day=last_day, location=location, now=now)
    options = options or {}
    content = Content(
        kind=kind,
        title=str(registry.KINDS[kind]),
        organization=organization.name,
        first_day=scope.first_day,
        last_day=scope.last_day,
        time_zone=organization.time_zone,
        scope_label=_location_label(organization, location),
        generated_at=now,
        filters={key: value for key, value in options.items() if value not in (None, "")},
    )
    steps = registry.sections(kind)
    for index, section in enumerate(steps):
        answer = section.compute(scope, options)
        for block in answer if isinstance(answer, list) else [answer]:
            block.key = block.key or section.key
            content.blocks.append(block)
        if progress is not None:
            progress(int(90 * (index + 1) / max(len(steps), 1)))
    if kind == "audit":
        content.csv_only = content.rows > AUDIT_PDF_LIMIT
    return content
