"""The manager's dashboard, the back office's home page: KPI tiles with the change from the previous period, and
charts drawn by the theme's chart component (Chart.js, shipped inside django-unfold) — the one chart approach of
the admin.

The figures belong to the apps that own the data: each registers its tiles and charts here from its
AppConfig.ready() (work orders: open, overdue, backlog hours, created vs completed; SLA: compliance; inventory:
low stock; scheduling: preventive work due), the same hook direction as maintenance_site.hooks. Adding a KPI is
one decorated function:

    @dashboard.tile("mttr", title="MTTR", order=40, model="workorders.workorder", unit="h", lower_is_better=True)
    def mean_time_to_repair(organization, period):
        ...one query...
        return dashboard.Figure(value=..., previous=..., link="/admin/workorders/workorder/?...")

Each tile or chart function answers with at most one query whatever the organisation's size (tests assert the
page's query count stays the same as the data grows; bench/dashboard.py times it on the 300k-order organisation).
A tile is shown to those who may view its model's admin page; a tile whose function fails is shown as
unavailable instead of taking the page down.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib import admin
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

PERIOD_DAYS = 7  # the tiles compare the last seven days with the seven before


@dataclass(frozen=True)
class Period:
    """Now, and the two periods a tile compares: [start, now) against [previous_start, start)."""

    now: datetime
    days: int = PERIOD_DAYS

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=self.days)

    @property
    def previous_start(self) -> datetime:
        return self.now - timedelta(days=2 * self.days)


@dataclass
class Figure:
    """A tile's value now and at the same point of the previous period (None: no comparison)."""

    value: int | float | Decimal | None
    previous: int | float | Decimal | None = None
    link: str = ""  # the filtered list behind the figure
    footer: str = ""

    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return float(self.value) - float(self.previous)


@dataclass(frozen=True)
class Tile:
    key: str
    title: str
    order: int
    model: str  # "app_label.model_name": the tile is shown to those who may view this admin page
    compute: Callable
    unit: str = ""
    lower_is_better: bool = False
    icon: str = ""


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    order: int
    model: str
    compute: Callable  # (organization, period) -> ChartData
    kind: str = "bar"  # the theme's chart component: "bar" or "line"


@dataclass
class ChartData:
    labels: list[str]
    datasets: list[dict]  # Chart.js datasets: {"label", "data", optional "backgroundColor"/"borderColor"/"type"}
    links: list[str] = field(default_factory=list)  # a click on the n-th bar opens links[n]


TILES: dict[str, Tile] = {}
CHARTS: dict[str, Chart] = {}


def tile(key: str, *, title: str, order: int, model: str, unit: str = "", lower_is_better: bool = False, icon=""):
    """Register a tile: `function(organization, period) -> Figure`, one query at most. `title` lazy
    (`gettext_lazy`), so each person reads it in their language; a footer is written when the tile is computed."""

    def register(function):
        TILES[key] = Tile(key, title, order, model, function, unit, lower_is_better, icon)
        return function

    return register


def chart(key: str, *, title: str, order: int, model: str, kind: str = "bar"):
    """Register a chart: `function(organization, period) -> ChartData`, one query at most."""

    def register(function):
        CHARTS[key] = Chart(key, title, order, model, function, kind)
        return function

    return register


def _may_view(request, label: str) -> bool:
    app_label, model_name = label.split(".")
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == app_label and model._meta.model_name == model_name:
            return model_admin.has_view_permission(request)
    return False


def format_number(value, unit: str = "") -> str:
    """A tile's figure with the active language's separators ("1,234.5 h", "1.234,5 h")."""
    if value is None:
        return "–"
    fractional = isinstance(value, float | Decimal) and value != int(value)
    text = (
        number_format(round(value, 1), 1, force_grouping=True)
        if fractional
        else number_format(int(value), force_grouping=True)
    )
    return f"{text}{unit if unit == '%' else (' ' + unit if unit else '')}"


def change_text(figure: Figure, tile_: Tile, period: Period) -> tuple[str, str]:
    """("+12 vs previous 7 days", "good"|"bad"|"same"|"") for the tile's footer."""
    change = figure.change()
    if change is None:
        return "", ""
    if change == 0:
        return _("same as the previous %(days)s days") % {"days": period.days}, "same"
    better = (change < 0) if tile_.lower_is_better else (change > 0)
    sign = "+" if change > 0 else "−"
    amount = format_number(abs(change), tile_.unit if tile_.unit == "%" else "")
    if tile_.unit == "%":
        amount = amount.replace("%", " " + _("pts"))
    text = _("%(change)s vs previous %(days)s days") % {"change": f"{sign}{amount}", "days": period.days}
    return text, "good" if better else "bad"


def tiles_for(request, organization, period: Period) -> list[dict]:
    shown = []
    for tile_ in sorted(TILES.values(), key=lambda t: (t.order, t.key)):
        if not _may_view(request, tile_.model):
            continue
        try:
            figure = tile_.compute(organization, period)
        except Exception:  # one broken figure must not take the home page down
            logger.exception("dashboard tile %s failed", tile_.key)
            figure = Figure(value=None, footer=_("unavailable"))
        text, tone = change_text(figure, tile_, period)
        shown.append(
            {
                "key": tile_.key,
                "title": tile_.title,
                "icon": tile_.icon,
                "value": format_number(figure.value, tile_.unit),
                "change": text,
                "tone": tone,
                "link": figure.link,
                "footer": figure.footer,
            }
        )
    return shown


def charts_for(request, organization, period: Period) -> list[dict]:
    shown = []
    for chart_ in sorted(CHARTS.values(), key=lambda c: (c.order, c.key)):
        if not _may_view(request, chart_.model):
            continue
        try:
            data = chart_.compute(organization, period)
        except Exception:
            logger.exception("dashboard chart %s failed", chart_.key)
            continue
        shown.append(
            {
                "key": chart_.key,
                "title": chart_.title,
                "kind": chart_.kind,
                "data": json.dumps({"labels": data.labels, "datasets": data.datasets}, default=str),
                "links": json.dumps(data.links),
                "empty": not any(any(value for value in dataset["data"]) for dataset in data.datasets),
            }
        )
    return shown


def dashboard_callback(request, context):
    """The theme's DASHBOARD_CALLBACK: the active organisation's tiles and charts for the admin's home page."""
    organization = getattr(request, "organization", None) or None
    period = Period(now=timezone.now())
    context["dashboard_organization"] = organization
    context["dashboard_period"] = period
    if organization is None:
        context["dashboard_tiles"], context["dashboard_charts"] = [], []
        return context
    context["dashboard_tiles"] = tiles_for(request, organization, period)
    context["dashboard_charts"] = charts_for(request, organization, period)
    return context


# Chart colours: the theme's palette (CSS variables the theme defines, light and dark mode alike).
PRIMARY = "var(--color-primary-600)"
SECONDARY = "var(--color-primary-300)"
WARNING = "#f59e0b"
DANGER = "#dc2626"
