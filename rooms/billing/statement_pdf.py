"""The statement of account and the credit note as PDF, in the invoice's embedded font (see pdf.py)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from rooms.billing.capital import rmb_capital
from rooms.billing.documents import CreditNoteSheet, StatementSheet
from rooms.billing.export import LANGUAGES, money_text
from rooms.billing.pdf import SHEET, embedded_font, parties_table
from rooms.billing.statement import MEMO, STATEMENT_WORDS, describe_entry

WORDS = {
    "en": {
        "period": "Month",
        "as_of": "As of",
        "closing_words": "Closing balance in words (RMB)",
        "memo": "memo",
        "pay_open": "Please pay the open invoices to the account above, quoting their numbers.",
        "settled": "Nothing is open. Thank you.",
        "credit_note": "Credit note",
        "on_invoice": "Corrects invoice",
        "issued": "Issue date",
        "amount": "Amount credited",
        "in_words": "Amount in words (RMB)",
        "reason": "Reason",
        "settles": "Lowers the amount due of invoice {invoice}, which is unpaid.",
        "carried": "Invoice {invoice} was paid: the amount is credited on the account's next invoice.",
        "applied": "Invoice {invoice} was paid: the amount was credited on invoice {applied}.",
    },
    "zh-CN": {
        "period": "对账月份",
        "as_of": "截至",
        "closing_words": "期末余额大写",
        "memo": "备注",
        "pay_open": "请将未付账单款项汇入上述账户，并注明账单号。",
        "settled": "本期无未付款项，谢谢。",
        "credit_note": "红字冲减通知单",
        "on_invoice": "冲减账单",
        "issued": "开具日期",
        "amount": "冲减金额",
        "in_words": "大写金额",
        "reason": "原因",
        "settles": "账单 {invoice} 尚未付款：本单直接冲减其应付金额。",
        "carried": "账单 {invoice} 已付清：本单金额于客户下一期账单中抵扣。",
        "applied": "账单 {invoice} 已付清：本单金额已于账单 {applied} 中抵扣。",
    },
}


class _Styles:
    def __init__(self, font: str) -> None:
        self.font = font
        self.body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
        self.small = ParagraphStyle(
            "small", parent=self.body, fontSize=8, leading=11, textColor=colors.HexColor("#444444")
        )
        self.bold = ParagraphStyle("bold", parent=self.body, fontSize=10.5, leading=14)
        self.number = ParagraphStyle("number", parent=self.body, alignment=TA_RIGHT)
        self.title = ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=6)

    def p(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(escape(text), style or self.body)

    def n(self, text: str) -> Paragraph:
        return Paragraph(escape(text), self.number)

    def grid(
        self, rows: Sequence[list[Any]], widths: list[float], *style: Any, header: bool = False
    ) -> Table:
        # Every table names the font: a table's cell style defaults to Helvetica, which would be referenced.
        table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
        table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), self.font), *style]))
        return table


def _build(story: list[Flowable], title: str, font: str) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=title,
        invariant=1,
        initialFontName=font,
    )
    doc.build(story)
    return out.getvalue()


def statement_pdf(sheet: StatementSheet, lang: str = "en") -> bytes:
    """An A4 statement of account in `lang`; byte-identical for identical input."""
    lang = lang if lang in LANGUAGES else "en"
    heads, words, sheet_words = STATEMENT_WORDS[lang], WORDS[lang], SHEET[lang]
    statement = sheet.statement
    currency = statement.currency
    s = _Styles(embedded_font())

    def money(value: Any) -> Paragraph:
        return s.n(money_text(value, currency))

    title = f"{heads['statement']} {statement.period.start:%Y-%m}"
    facts = s.grid(
        [
            [s.p(words["period"]), s.p(f"{statement.period.start:%Y-%m}")],
            [s.p(words["as_of"]), s.p(statement.as_of.isoformat())],
        ],
        [40 * mm, 134 * mm],
    )
    rows: list[list[Any]] = [
        [
            s.p(heads["date"]),
            s.p(heads["entry"]),
            s.n(heads["debit"]),
            s.n(heads["credit"]),
            s.n(heads["balance"]),
        ],
        [
            s.p(statement.period.start.isoformat()),
            s.p(heads["opening"]),
            "",
            "",
            money(statement.opening_balance),
        ],
    ]
    for line in statement.lines:
        memo = line.entry.kind in MEMO
        text = describe_entry(line.entry, lang)
        if memo:
            text = f"{text} ({words['memo']}: {money_text(line.entry.amount, currency)})"
        rows.append(
            [
                s.p(line.entry.on.isoformat()),
                s.p(text),
                money(line.debit) if line.debit else "",
                money(line.credit) if line.credit else "",
                money(line.balance),
            ]
        )
    rows.append(
        [s.p(""), s.p(heads["totals"]), money(statement.total_debit), money(statement.total_credit), ""]
    )
    rows.append(
        [
            s.p(statement.as_of.isoformat()),
            s.p(heads["closing"], s.bold),
            "",
            "",
            money(statement.closing_balance),
        ]
    )
    ledger = s.grid(
        rows,
        [22 * mm, 74 * mm, 26 * mm, 26 * mm, 26 * mm],
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEABOVE", (0, -2), (-1, -2), 0.8, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        header=True,
    )
    summary: list[list[Any]] = [[s.p(heads["closing"], s.bold), money(statement.closing_balance)]]
    if currency == "CNY":
        summary.append([s.p(words["closing_words"]), s.p(rmb_capital(statement.closing_balance))])
    if statement.credit_held:
        summary.append([s.p(heads["held_total"]), money(statement.credit_held)])
    story: list[Flowable] = [
        Paragraph(escape(title), s.title),
        parties_table(sheet.supplier, sheet.customer, lang, s.font),
        Spacer(1, 4 * mm),
        facts,
        Spacer(1, 5 * mm),
        ledger,
        Spacer(1, 4 * mm),
        s.grid(summary, [120 * mm, 54 * mm], ("VALIGN", (0, 0), (-1, -1), "TOP")),
    ]
    if statement.open_invoices:
        open_rows: list[list[Any]] = [[s.p(heads["reference"]), s.p(heads["due"]), s.n(heads["open_amount"])]]
        open_rows += [
            [s.p(i.number), s.p(i.due.isoformat()), money(i.open_amount)] for i in statement.open_invoices
        ]
        story += [
            Spacer(1, 5 * mm),
            s.p(heads["open_invoices"], s.bold),
            s.grid(open_rows, [60 * mm, 60 * mm, 54 * mm], ("LINEBELOW", (0, 0), (-1, 0), 0.4, colors.grey)),
        ]
    story += [Spacer(1, 6 * mm), s.p(sheet_words["payment"], s.bold)]
    story.append(s.p(words["pay_open"] if statement.open_invoices else words["settled"]))
    if sheet.payment_note:
        story.append(s.p(sheet.payment_note, s.small))
    return _build(story, title, s.font)


def credit_note_pdf(sheet: CreditNoteSheet, lang: str = "en") -> bytes:
    """An A4 credit note in `lang`; byte-identical for identical input."""
    lang = lang if lang in LANGUAGES else "en"
    words = WORDS[lang]
    s = _Styles(embedded_font())
    title = f"{words['credit_note']} {sheet.number}"
    rows: list[list[Any]] = [
        [s.p(words["on_invoice"]), s.p(sheet.invoice_number)],
        [s.p(words["issued"]), s.p(sheet.issued_on.isoformat())],
        [s.p(words["amount"], s.bold), s.p(money_text(sheet.amount, sheet.currency), s.bold)],
    ]
    if sheet.currency == "CNY":
        rows.append([s.p(words["in_words"]), s.p(rmb_capital(sheet.amount))])
    rows.append([s.p(words["reason"]), s.p(sheet.reason)])
    if sheet.settles:
        effect = words["settles"].format(invoice=sheet.invoice_number)
    elif sheet.applied_in is None:
        effect = words["carried"].format(invoice=sheet.invoice_number)
    else:
        effect = words["applied"].format(invoice=sheet.invoice_number, applied=sheet.applied_in)
    story: list[Flowable] = [
        Paragraph(escape(title), s.title),
        parties_table(sheet.supplier, sheet.customer, lang, s.font),
        Spacer(1, 5 * mm),
        s.grid(rows, [40 * mm, 134 * mm], ("VALIGN", (0, 0), (-1, -1), "TOP")),
        Spacer(1, 5 * mm),
        s.p(effect),
    ]
    return _build(story, title, s.font)
