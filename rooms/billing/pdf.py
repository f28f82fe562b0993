"""Invoice PDF with reportlab. Chinese text uses reportlab's built-in CID font STSong-Light (Adobe-GB1),
which the PDF viewer supplies: no font file is needed or embedded."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from rooms.billing.export import HEADINGS, LANGUAGES, STATES, InvoiceDocument, describe, money_text

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
_registered = False


def _font(lang: str) -> str:
    global _registered  # noqa: PLW0603 - one registration per process
    if lang != "zh-CN":
        return LATIN_FONT
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _registered = True
    return CJK_FONT


def invoice_pdf(document: InvoiceDocument, lang: str = "en") -> bytes:
    """A one-table A4 invoice in `lang` (zh-CN or en); byte-identical for identical input."""
    lang = lang if lang in LANGUAGES else "en"
    heads = HEADINGS[lang]
    font = _font(lang)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    number = ParagraphStyle("number", parent=body, alignment=TA_RIGHT)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=6)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{heads['invoice']} {document.number}",
        invariant=1,
    )

    def p(text: str) -> Paragraph:
        return Paragraph(escape(text), body)

    def n(text: str) -> Paragraph:
        return Paragraph(escape(text), number)

    state = STATES[lang].get(document.state, document.state)
    facts = [
        [p(heads["account"]), p(document.account_name)],
        [p(heads["period"]), p(document.period.label())],
        [p(heads["issued"]), p(document.issue_date.isoformat())],
        [p(heads["due"]), p(document.due_date.isoformat())],
        [p(heads["state"]), p(state)],
    ]
    if document.paid_on is not None:
        facts.append([p(heads["paid_on"]), p(document.paid_on.isoformat())])
    rows = [[p(heads["description"]), n(heads["quantity"]), n(heads["unit_price"]), n(heads["amount"])]]
    for line in document.lines:
        rows.append(
            [
                p(describe(line, lang)),
                n(str(line.quantity)),
                n(str(line.unit_price)),
                n(money_text(line.amount, document.currency)),
            ]
        )
    rows.append([p(heads["total"]), p(""), p(""), n(money_text(document.total, document.currency))])
    table = Table(rows, colWidths=[88 * mm, 24 * mm, 24 * mm, 38 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    doc.build(
        [
            Paragraph(escape(f"{heads['invoice']} {document.number}"), title),
            Table(facts, colWidths=[40 * mm, 134 * mm]),
            Spacer(1, 8 * mm),
            table,
        ]
    )
    return out.getvalue()
