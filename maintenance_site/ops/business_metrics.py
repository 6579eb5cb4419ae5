"""Business metrics on /metrics: what a manager or an on-call engineer watches, next to the technical ones.

The figures belong to the apps that own the data: each registers its families here from its AppConfig.ready() (work
orders: open, overdue, preventive generated; SLA: violations; inventory: low stock; webhooks: deliveries; scheduling:
maintenance mode), the same direction as maintenance_site.hooks, so this module imports no app:

    @business_metrics.family("maintenance_parts_low_stock", "Parts at or below their reorder point.")
    def low_stock(context):
        return context.labelled(context.grouped(Part.objects.filter(low_stock_armed=False)))

Each family is at most one grouped query (`context.memo` lets families of one app share one); the whole set is
computed at most once per METRICS_CACHE_SECONDS (the scrape interval) and kept in the shared cache with the other
readings that cost a query (`metrics.ScrapeCollector`), so several web processes and several scrapers cost one
computation. Labels stay bounded: by organisation (its slug) only when METRICS_PER_ORGANIZATION is on, otherwise
platform totals; never per object. A family whose query fails is left out (logged); when the whole computation fails
`maintenance_business_metrics_up` says 0.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.utils import timezone

from maintenance_site.tenancy.models import Organization

logger = logging.getLogger(__name__)


@dataclass
class Context:
    """What a family's function reads with: now, whether labels are per organisation, the organisations' slugs,
    and a memo the families of one app share (one query for several families)."""

    now: datetime
    per_org: bool
    slugs: dict
    memo: dict = field(default_factory=dict)

    @property
    def base_labels(self) -> list[str]:
        return ["organization"] if self.per_org else []

    def grouped(self, queryset, *fields) -> list[tuple]:
        """(organisation id or None, *fields, count) rows of one grouped query."""
        keys = (["organization_id"] if self.per_org else []) + list(fields)
        if not keys:
            return [(None, queryset.count())]
        rows = queryset.values(*keys).annotate(n=Count("*")).order_by()  # COUNT(*): an index-only scan can serve it
        return [
            ((row["organization_id"] if self.per_org else None), *(row[name] for name in fields), row["n"])
            for row in rows
        ]

    def labelled(self, rows) -> list[tuple[list[str], float]]:
        """Rows of (organisation id, *label values, count) as samples (label values, value)."""
        samples = []
        for row in rows:
            org_id, *values, count = row
            labels = ([self.slugs.get(org_id, str(org_id))] if self.per_org else []) + [str(v) for v in values]
            samples.append((labels, float(count)))
        return samples


@dataclass(frozen=True)
class Family:
    name: str
    help_text: str
    labels: tuple[str, ...]  # after the organisation label, when there is one
    read: Callable[[Context], list]


FAMILIES: dict[str, Family] = {}


def family(name: str, help_text: str, labels=()):
    """Register a family: `function(context) -> [(label values, value)]`, one query at most."""

    def register(function):
        FAMILIES[name] = Family(name, help_text, tuple(labels), function)
        return function

    return register


def compute() -> list[tuple[str, str, list[str], list[tuple[list[str], float]]]]:
    """The families as plain data (cacheable): (name, help, label names, [(label values, value)])."""
    per_org = settings.METRICS_PER_ORGANIZATION
    context = Context(
        now=timezone.now(),
        per_org=per_org,
        slugs=dict(Organization.objects.values_list("pk", "slug")) if per_org else {},
    )
    families = []
    for registered in FAMILIES.values():
        try:
            samples = registered.read(context)
        except DatabaseError as exc:  # one family's query failed: the others are still served
            logger.warning("metrics: %s not computed: %s", registered.name, exc)
            continue
        families.append((registered.name, registered.help_text, [*context.base_labels, *registered.labels], samples))
    return families
