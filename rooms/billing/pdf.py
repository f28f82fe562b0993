"""Invoice PDF with reportlab, in one TrueType font that is embedded (as a subset) in every document.

Why one font file: a PDF that names a font without embedding it (Helvetica, or the CID font STSong-Light)
shows whatever the reader substitutes, or nothing; and mixing a Latin and a CJK font in one line left gaps at
each switch. WenQuanYi Zen Hei (Debian `fonts-wqy-zenhei`) has TrueType outlines, which reportlab can
subset, and covers Latin and CJK with its own metrics. Noto CJK (CFF outlines) cannot be read by reportlab.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from rooms.billing.capital import rmb_capital
from rooms.billing.documents import InvoiceSheet, Party
from rooms.billing.export import HEADINGS, LANGUAGES, STATES, describe, money_text

FONT_NAME = "WenQuanYiZenHei"
# YUNHUI_INVOICE_FONT names another TrueType (.ttf/.ttc) file with Latin and CJK glyphs.
FONT_PATHS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/local/share/fonts/wqy-zenhei.ttc"),
)
FONT_PACKAGE = "fonts-wqy-zenhei"

SHEET = {
    "en": {
        "supplier": "Supplier (payee)",
        "customer": "Customer",
        "tax_id": "Taxpayer ID",
        "address": "Address",
        "contact": "Contact",
        "bank": "Bank",
        "bank_account": "Account no.",
        "amount_due": "Amount due",
        "balance": "Balance open",
        "in_words": "Amount in words (RMB)",
        "credit_in": "Credit carried in from earlier invoices (in the lines above)",
        "credit_out": "Credit carried forward to the next invoice",
        "late_fee": "Late fee accrued as of {date} (billed on a later invoice)",
        "late_fee_paid": "Late fee for payment on {date}, charged on the next invoice",
        "late_fee_billed": "Late fee for payment on {date}, charged on invoice {number}",
        "paid_amount": "Paid on {date}",
        "credit_notes": "Credit notes against this invoice",
        "payment": "Payment instructions",
        "pay_by": "Please pay {amount} by {date} to the account above, quoting invoice {number}.",
        "paid": "Paid on {date}. Thank you.",
        "late_terms": "After the due date a late fee of {rate} per day accrues on the overdue amount.",
    },
    "zh-CN": {
        "supplier": "收款方（供应商）",
        "customer": "付款方（客户）",
        "tax_id": "纳税人识别号",
        "address": "地址",
        "contact": "联系方式",
        "bank": "开户银行",
        "bank_account": "银行账号",
        "amount_due": "应付金额",
        "balance": "未付余额",
        "in_words": "大写金额",
        "credit_in": "上期结转抵扣（已计入上列项目）",
        "credit_out": "结转下期抵扣",
        "late_fee": "截至 {date} 已产生滞纳金（于后续账单收取）",
        "late_fee_paid": "{date} 付款产生的滞纳金（计入下一期账单）",
        "late_fee_billed": "{date} 付款产生的滞纳金（已计入账单 {number}）",
        "paid_amount": "{date} 已付",
        "credit_notes": "本账单红字冲减",
        "payment": "付款说明",
        "pay_by": "请于 {date} 前将 {amount} 汇入上述账户，并在附言中注明账单号 {number}。",
        "paid": "已于 {date} 付清，谢谢。",
        "late_terms": "逾期付款按欠款金额每日 {rate} 计收滞纳金。",
    },
}


class InvoiceFontMissing(RuntimeError):
    """No usable font file: the PDF would be unreadable, so none is produced."""


_registered: str | None = None


def font_path() -> Path:
    override = os.environ.get("YUNHUI_INVOICE_FONT")
    candidates = (Path(override),) if override else FONT_PATHS
    for path in candidates:
        if path.is_file():
            return path
    raise InvoiceFontMissing(
        f"invoice PDFs need a TrueType font with Chinese glyphs: install the Debian package {FONT_PACKAGE}"
        f" (looked for {', '.join(str(p) for p in candidates)})"
    )


def embedded_font() -> str:
    """The registered font's name (registered once per process); raises InvoiceFontMissing."""
    global _registered  # noqa: PLW0603 - one registration per process
    if _registered is None:
        path = font_path()
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
        _registered = FONT_NAME
    return _registered


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def parties_table(supplier: Party, customer: Party, lang: str, font: str) -> Table:
    """Supplier and customer side by side, as every document prints them."""
    words = SHEET[lang]
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=11, textColor=colors.HexColor("#444444"))
    bold = ParagraphStyle("bold", parent=body, fontSize=10.5, leading=14)

    def party(heading: str, who: Party) -> list[Paragraph]:
        rows = [Paragraph(escape(heading), small), Paragraph(escape(who.name), bold)]
        for key in ("tax_id", "address", "contact", "bank", "bank_account"):
            value = getattr(who, key)
            if value:
                text = f"{words[key]}：{value}" if lang == "zh-CN" else f"{words[key]}: {value}"
                rows.append(Paragraph(escape(text), body))
        return rows

    table = Table(
        [[party(words["supplier"], supplier), party(words["customer"], customer)]],
        colWidths=[87 * mm, 87 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOX", (0, 0), (-1, -1), 0.4, colors.grey),
                ("LINEAFTER", (0, 0), (0, -1), 0.4, colors.grey),
            ]
        )
    )
    return table


def invoice_pdf(sheet: InvoiceSheet, lang: str = "en") -> bytes:
    """An A4 invoice in `lang` (zh-CN or en); byte-identical for identical input."""
    lang = lang if lang in LANGUAGES else "en"
    heads, words = HEADINGS[lang], SHEET[lang]
    document = sheet.document
    currency = document.currency
    font = embedded_font()
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=11, textColor=colors.HexColor("#444444"))
    bold = ParagraphStyle("bold", parent=body, fontSize=10.5, leading=14)
    number = ParagraphStyle("number", parent=body, alignment=TA_RIGHT)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=6)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{heads['invoice']} {document.number}",
        invariant=1,
        # Otherwise every page starts in Helvetica, a font reference that is never embedded.
        initialFontName=font,
    )

    def p(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text), style)

    def n(text: str) -> Paragraph:
        return Paragraph(escape(text), number)

    def grid(rows: Sequence[list[Any]], widths: list[float], *style: Any, header: bool = False) -> Table:
        # Every table names the font: a table's cell style defaults to Helvetica, which would be referenced.
        table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
        table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), font), *style]))
        return table

    parties = parties_table(sheet.supplier, sheet.customer, lang, font)

    state = STATES[lang].get(document.state, document.state)
    facts = [
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
                n(money_text(line.amount, currency)),
            ]
        )
    rows.append([p(heads["total"]), p(""), p(""), n(money_text(document.total, currency))])
    table = grid(
        rows,
        [88 * mm, 24 * mm, 24 * mm, 38 * mm],
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        header=True,
    )

    totals = []
    credited = document.total - sheet.amount_due
    if credited > 0:
        totals.append([p(words["credit_notes"]), n(money_text(-credited, currency))])
    totals.append([p(words["amount_due"], bold), n(money_text(sheet.amount_due, currency))])
    if currency == "CNY":
        totals.append([p(words["in_words"]), p(rmb_capital(sheet.amount_due))])
    if sheet.paid_amount is not None and document.paid_on is not None:
        paid = words["paid_amount"].format(date=document.paid_on.isoformat())
        totals.append([p(paid), n(money_text(sheet.paid_amount, currency))])
    if sheet.balance != sheet.amount_due or document.paid_on is not None:
        totals.append([p(words["balance"]), n(money_text(sheet.balance, currency))])
    if sheet.credit_carried_in:
        totals.append([p(words["credit_in"]), n(money_text(sheet.credit_carried_in, currency))])
    if sheet.credit_carried_out:
        totals.append([p(words["credit_out"]), n(money_text(sheet.credit_carried_out, currency))])
    if sheet.accrued_late_fee:
        # Once paid the fee is fixed by the payment date; it is charged as a line of a later invoice.
        if document.paid_on is None:
            label = words["late_fee"].format(date=sheet.as_of.isoformat())
        elif sheet.late_fee_billed_in is None:
            label = words["late_fee_paid"].format(date=document.paid_on.isoformat())
        else:
            label = words["late_fee_billed"].format(
                date=document.paid_on.isoformat(), number=sheet.late_fee_billed_in
            )
        totals.append([p(label), n(money_text(sheet.accrued_late_fee, currency))])
    summary = grid(
        totals,
        [120 * mm, 54 * mm],
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, -1), (-1, -1), 0.4, colors.grey),
    )

    story: list[Flowable] = [
        Paragraph(escape(f"{heads['invoice']} {document.number}"), title),
        parties,
        Spacer(1, 4 * mm),
        grid(facts, [40 * mm, 134 * mm]),
        Spacer(1, 5 * mm),
        table,
        Spacer(1, 4 * mm),
        summary,
        Spacer(1, 6 * mm),
        p(words["payment"], bold),
    ]
    if document.paid_on is not None:
        story.append(p(words["paid"].format(date=document.paid_on.isoformat())))
    else:
        amount = money_text(sheet.balance, currency)
        due = document.due_date.isoformat()
        story.append(p(words["pay_by"].format(amount=amount, date=due, number=document.number)))
    if sheet.late_fee_rate_per_day:
        story.append(p(words["late_terms"].format(rate=_percent(sheet.late_fee_rate_per_day)), small))
    if sheet.payment_note:
        story.append(p(sheet.payment_note, small))
    doc.build(story)
    return out.getvalue()
