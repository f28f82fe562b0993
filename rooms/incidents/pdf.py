"""The quarterly availability report as PDF, in the invoice's embedded font (rooms/billing/pdf.py)."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from rooms.billing.pdf import FONT_NAME, font_path
from rooms.incidents.availability import AvailabilityReport
from rooms.incidents.export import WORDS

TITLE = {"en": "Availability report", "zh-CN": "服务可用率报告"}


def _font() -> str:
    # The same registration as the invoices' (a font that is not embedded would show as anything).
    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(font_path()), subfontIndex=0))
    return FONT_NAME


def availability_pdf(report: AvailabilityReport, account_name: str, lang: str = "en") -> bytes:
    """An A4 report: the two uptime figures against the contract, the outages and the credits."""
    lang = lang if lang in WORDS else "en"
    w = WORDS[lang]
    font = _font()
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=6)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{TITLE[lang]} {report.quarter}",
        invariant=1,
        initialFontName=font,
    )

    def p(text: object) -> Paragraph:
        return Paragraph(escape(str(text)), body)

    def grid(rows: list[list[Paragraph]], widths: list[float]) -> Table:
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), font),
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return table

    uptime = [[p(w["service"]), p(w["target"]), p(w["actual"]), p(w["downtime"]), p(w["met"])]]
    for u in (report.meetings, report.operations):
        uptime.append(
            [
                p(w[u.service]),
                p(u.target),
                p(u.actual),
                p(u.downtime_seconds),
                p(w["yes"] if u.met else w["no"]),
            ]
        )
    outages = [[p(w["start"]), p(w["end"]), p(w["seconds"]), p(w["scope"]), p(w["cause"]), p(w["source"])]]
    for o in report.outages:
        outages.append(
            [
                p(o.start.strftime("%Y-%m-%d %H:%M:%S UTC")),
                p(o.end.strftime("%Y-%m-%d %H:%M:%S UTC")),
                p(o.seconds),
                p(o.scope.value),
                p(o.cause or ""),
                p(o.source),
            ]
        )
    credits = [[p(w["credit"]), p(w["label"]), p(w["amount"])]]
    for c in report.credits:
        credits.append([p(w.get(c.kind, c.kind)), p(c.label), p(f"{report.currency} {c.amount:,.2f}")])
    story = [
        Paragraph(escape(f"{TITLE[lang]} · {report.quarter}"), title),
        p(account_name),
        p(f"{report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} UTC"),
        Spacer(1, 5 * mm),
        grid(uptime, [40 * mm, 30 * mm, 30 * mm, 40 * mm, 20 * mm]),
        Spacer(1, 5 * mm),
        p(w["outage"]),
        grid(outages, [42 * mm, 42 * mm, 18 * mm, 22 * mm, 30 * mm, 20 * mm]),
        Spacer(1, 5 * mm),
        p(w["credit"]),
        grid(credits, [50 * mm, 70 * mm, 40 * mm]),
    ]
    doc.build(story)
    return out.getvalue()
