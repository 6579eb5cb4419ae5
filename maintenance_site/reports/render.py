"""The HTML fragment (the admin page shows it; its charts are the theme's Chart.js component, the admin's one chart
approach) and the CSV of a report's content. Dates and times in the one format of `maintenance_site.formats` and
the organisation's time zone; the CSV writes moments in ISO 8601 with their offset, for spreadsheets and scripts."""

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from maintenance_site import formats
from maintenance_site.reports.content import AUDIT_PDF_LIMIT, Content


def cell(value, zone: ZoneInfo) -> str:
    """A value as a person reads it, in the active language: "—" for nothing, the one date format, numbers with
    the language's separators ("1,234.5", "1.234,5")."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return formats.date_time(value, zone)
    if isinstance(value, date):
        return formats.date(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        if value == int(value):
            return number_format(int(value), force_grouping=True)
        return number_format(round(value, 2), force_grouping=True)
    if isinstance(value, Decimal):
        return number_format(value, 2, force_grouping=True)
    if isinstance(value, int):
        return number_format(value, force_grouping=True)
    return str(value)


def _csv_value(value, zone: ZoneInfo):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value, zone).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def heading(content: Content) -> list[tuple[str, str]]:
    lines = [
        (_("Organisation"), content.organization),
        (_("Period"), f"{content.period_label} ({content.time_zone})"),
        (_("Scope"), content.scope_label),
        (_("Definitions version"), content.definitions_version),
        (_("Generated"), formats.date_time(content.generated_at, ZoneInfo(content.time_zone))),
    ]
    lines += [(_("Filter: %(name)s") % {"name": key}, str(value)) for key, value in content.filters.items()]
    return lines


def to_csv(content: Content) -> bytes:
    """Every block as a titled table, after the heading lines; UTF-8 with a BOM so spreadsheets read it."""
    zone = ZoneInfo(content.time_zone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([content.title])
    for label, value in heading(content):
        writer.writerow([label, value])
    for block in content.blocks:
        if not block.columns:
            continue  # a chart: its numbers are in the table next to it
        writer.writerow([])
        writer.writerow([block.title])
        writer.writerow(block.columns)
        writer.writerows([_csv_value(value, zone) for value in row] for row in block.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_html(content: Content, *, csv_link: str = "") -> str:
    """The report as an HTML fragment for the admin page (template `admin/reports/content.html`)."""
    zone = ZoneInfo(content.time_zone)
    blocks = []
    for block in content.blocks:
        chart = None
        if block.chart:
            chart = {
                "kind": block.chart["kind"],
                "data": json.dumps({"labels": block.chart["labels"], "datasets": block.chart["datasets"]}, default=str),
            }
        rows = [] if content.csv_only else [[cell(value, zone) for value in row] for row in block.rows]
        blocks.append(
            {
                "key": block.key,
                "title": block.title,
                "columns": block.columns,
                "rows": rows,
                "note": block.note,
                "chart": chart,
                "count": len(block.rows),
            }
        )
    return render_to_string(
        "admin/reports/content.html",
        {
            "content": content,
            "heading": heading(content),
            "blocks": blocks,
            "csv_link": csv_link,
            "limit": AUDIT_PDF_LIMIT,
        },
    )
