"""A report as PDF, with ReportLab (pure Python: no system library to install, unlike WeasyPrint's Pango; its
platypus tables split long tables over pages quickly). Every page names the organisation, the report, the period,
the definitions version, and "page n of m". Charts are the HTML page's (the admin's one chart approach, Chart.js):
the PDF carries the same numbers as tables. An audit report over the PDF limit says so and links to its CSV.

Text is set in DejaVu Sans where Debian has it (arrows, every accent), else in the Vera font ReportLab ships, with
the few characters it lacks spelt in ASCII."""

import io
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from maintenance_site.i18n import number
from maintenance_site.reports.content import AUDIT_PDF_LIMIT, Content
from maintenance_site.reports.render import cell, heading

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_FONT: dict = {}
WIDE_TEXT = 40  # a cell longer than this wraps (a Paragraph); shorter ones are plain strings (fast)


def _font() -> tuple[str, str, bool]:
    """(regular, bold, full Unicode) font names, registered once."""
    if not _FONT:
        if (DEJAVU / "DejaVuSans.ttf").exists() and (DEJAVU / "DejaVuSans-Bold.ttf").exists():
            pdfmetrics.registerFont(TTFont("ReportSans", str(DEJAVU / "DejaVuSans.ttf")))
            pdfmetrics.registerFont(TTFont("ReportSans-Bold", str(DEJAVU / "DejaVuSans-Bold.ttf")))
            _FONT["names"] = ("ReportSans", "ReportSans-Bold", True)
        else:
            pdfmetrics.registerFont(TTFont("ReportSans", "Vera.ttf"))
            pdfmetrics.registerFont(TTFont("ReportSans-Bold", "VeraBd.ttf"))
            _FONT["names"] = ("ReportSans", "ReportSans-Bold", False)
    return _FONT["names"]


def _text(value: str) -> str:
    if not _font()[2]:
        value = value.replace("→", "->").replace("≤", "<=").replace("≥", ">=").replace("×", "x").replace("÷", "/")
    return value


def _numbered_canvas(header: str, footer: str, regular: str):
    class NumberedCanvas(pdf_canvas.Canvas):
        """Draws the header and "page n of m" once the number of pages is known."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802 (ReportLab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                width, height = self._pagesize
                self.setFont(regular, 8)
                self.setFillColor(colors.grey)
                self.drawString(12 * mm, height - 9 * mm, header)
                self.drawString(12 * mm, 7 * mm, footer)
                self.drawRightString(
                    width - 12 * mm,
                    7 * mm,
                    _("Page %(page)s of %(total)s") % {"page": self._pageNumber, "total": total},
                )
                super().showPage()
            super().save()

    return NumberedCanvas


def to_pdf(content: Content, *, csv_link: str = "") -> bytes:
    regular, bold, _unicode = _font()
    zone = ZoneInfo(content.time_zone)
    wide = content.kind == "audit"
    pagesize = landscape(A4) if wide else A4
    styles = {
        "title": ParagraphStyle("title", fontName=bold, fontSize=16, leading=20, spaceAfter=4),
        "h2": ParagraphStyle("h2", fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=regular, fontSize=9, leading=11),
        "note": ParagraphStyle("note", fontName=regular, fontSize=8, leading=10, textColor=colors.grey),
        "cell": ParagraphStyle("cell", fontName=regular, fontSize=7, leading=8.5),
    }
    story = [
        Paragraph(escape(_text(f"{content.organization}: {content.title}")), styles["title"]),
        *[
            Paragraph(f"<b>{escape(label)}</b>: {escape(_text(value))}", styles["body"])
            for label, value in heading(content)
        ],
        Spacer(1, 4 * mm),
    ]
    if content.csv_only:
        link = f' <a href="{escape(csv_link)}" color="blue">{escape(csv_link)}</a>' if csv_link else ""
        story.append(
            Paragraph(
                escape(
                    _("This audit covers %(rows)s changes, more than %(limit)s: it is offered as CSV only.")
                    % {"rows": number(content.rows), "limit": number(AUDIT_PDF_LIMIT)}
                )
                + link,
                styles["body"],
            )
        )
    for block in content.blocks:
        if not block.columns:
            continue  # a chart of the HTML page: its numbers are in the next table
        story.append(Paragraph(escape(_text(block.title)), styles["h2"]))
        if block.note:
            story.append(Paragraph(escape(_text(block.note)), styles["note"]))
        if content.csv_only:
            continue
        if not block.rows:
            story.append(Paragraph(escape(_("Nothing in this period.")), styles["note"]))
            continue
        data = [[Paragraph(escape(_text(c)), styles["cell"]) for c in block.columns]]
        for row in block.rows:
            cells = []
            for value in row:
                text = _text(cell(value, zone))
                cells.append(Paragraph(escape(text), styles["cell"]) if len(text) > WIDE_TEXT else text)
            data.append(cells)
        available = pagesize[0] - 24 * mm
        widths = _widths(block.columns, available, wide)
        table = LongTable(data, colWidths=widths, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), regular, 7),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e5e7eb")),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#d1d5db")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ]
            )
        )
        story.append(table)
    header = _text(f"{content.organization} · {content.title} · {content.period_label}")
    footer = _text(_("Definitions version %(version)s") % {"version": content.definitions_version})
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=pagesize,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=14 * mm,
        bottomMargin=13 * mm,
        title=f"{content.title} — {content.organization}",
        author=content.organization,
        subject=content.period_label,
    )
    document.build(story, canvasmaker=_numbered_canvas(header, footer, regular))
    return out.getvalue()


def _widths(columns: list[str], available: float, wide: bool) -> list[float]:
    """The audit's changes column takes what the others leave; other tables share the width evenly."""
    if wide and len(columns) == 8:
        fixed = [30 * mm, 22 * mm, 24 * mm, 16 * mm, 28 * mm, 15 * mm, 0, 36 * mm]
        fixed[6] = available - sum(fixed)
        return fixed
    first = min(available * 0.35, 60 * mm) if len(columns) > 1 else available
    rest = (available - first) / max(len(columns) - 1, 1)
    return [first] + [rest] * (len(columns) - 1)
