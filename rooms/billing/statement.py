"""The monthly statement of account (对账单): an account's invoices, payments and credit notes of one
month with the running balance, as a pure function of ledger entries; and its CSV.

The balance is what the customer owes on issued invoices: an invoice adds its total, a payment or a credit
note that lowers an unpaid invoice's amount due subtracts. A credit note against a paid invoice, and credit an
invoice could not use, reach the balance only through the later invoice that applies them (as its negative
lines), so they are memo entries that leave the balance alone; the credit still held at the month's end is
shown apart. Counting them at issue as well would count them twice.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from rooms.billing.money import ZERO
from rooms.billing.periods import Period


class EntryKind(StrEnum):
    INVOICE = "invoice"
    PAYMENT = "payment"
    CREDIT_NOTE = "credit_note"  # lowered an unpaid invoice's amount due
    CREDIT_HELD = "credit_held"  # memo: a credit note on a paid invoice, credited on a later invoice
    CREDIT_CARRIED = "credit_carried"  # memo: credit an invoice could not use, carried to the next one


MEMO = frozenset({EntryKind.CREDIT_HELD, EntryKind.CREDIT_CARRIED})
# Within a day: the bill first, then what lowers it.
_ORDER = {kind: i for i, kind in enumerate(EntryKind)}


@dataclass(frozen=True)
class LedgerEntry:
    on: date
    kind: EntryKind
    # The invoice, credit note or payment reference this entry is.
    reference: str
    # The invoice it concerns (for an invoice: itself).
    invoice: str
    amount: Decimal
    # An invoice's due date; None for the other kinds.
    due: date | None = None
    # A memo credit: the issue date of the invoice that applied it (None while it is still held).
    applied_on: date | None = None

    @property
    def signed(self) -> Decimal:
        if self.kind in MEMO:
            return ZERO
        return self.amount if self.kind is EntryKind.INVOICE else -self.amount


@dataclass(frozen=True)
class StatementLine:
    entry: LedgerEntry
    debit: Decimal
    credit: Decimal
    balance: Decimal


@dataclass(frozen=True)
class OpenInvoice:
    number: str
    due: date
    open_amount: Decimal


@dataclass(frozen=True)
class Statement:
    period: Period
    currency: str
    # The last day the statement covers: the month's last day, or today for the current month.
    as_of: date
    opening_balance: Decimal
    lines: tuple[StatementLine, ...]
    total_debit: Decimal
    total_credit: Decimal
    closing_balance: Decimal
    # Invoices still (partly) unpaid at the end, oldest first; their open amounts sum to the closing balance.
    open_invoices: tuple[OpenInvoice, ...]
    # Credit the account holds for its next invoice at the end.
    credit_held: Decimal


def _key(entry: LedgerEntry) -> tuple[date, int, str]:
    return (entry.on, _ORDER[entry.kind], entry.reference)


def build_statement(
    entries: Iterable[LedgerEntry], period: Period, *, currency: str, as_of: date
) -> Statement:
    """The statement of `period` (a month) from all the account's entries up to its end; entries after
    `as_of` (or the period) are left out."""
    last = min(as_of, period.end - timedelta(days=1))
    known = sorted((e for e in entries if e.on <= last), key=_key)
    opening = sum((e.signed for e in known if e.on < period.start), ZERO)
    balance = opening
    lines: list[StatementLine] = []
    for entry in known:
        if entry.on < period.start:
            continue
        balance += entry.signed
        debit = entry.amount if entry.kind is EntryKind.INVOICE else ZERO
        credit = entry.amount if entry.kind not in MEMO and entry.kind is not EntryKind.INVOICE else ZERO
        lines.append(StatementLine(entry, debit, credit, balance))
    open_by_invoice: dict[str, Decimal] = {}
    due_of: dict[str, date] = {}
    for entry in known:
        if entry.kind in MEMO:
            continue
        open_by_invoice[entry.invoice] = open_by_invoice.get(entry.invoice, ZERO) + entry.signed
        if entry.due is not None:
            due_of[entry.invoice] = entry.due
    open_invoices = tuple(
        OpenInvoice(number, due_of[number], amount)
        for number, amount in sorted(open_by_invoice.items(), key=lambda item: (due_of.get(item[0]), item[0]))
        if amount > 0 and number in due_of
    )
    held = sum(
        (e.amount for e in known if e.kind in MEMO and (e.applied_on is None or e.applied_on > last)),
        ZERO,
    )
    return Statement(
        period=period,
        currency=currency,
        as_of=last,
        opening_balance=opening,
        lines=tuple(lines),
        total_debit=sum((line.debit for line in lines), ZERO),
        total_credit=sum((line.credit for line in lines), ZERO),
        closing_balance=balance,
        open_invoices=open_invoices,
        credit_held=held,
    )


STATEMENT_WORDS = {
    "en": {
        "statement": "Statement of account",
        "date": "Date",
        "entry": "Entry",
        "reference": "Reference",
        "debit": "Charged",
        "credit": "Paid or credited",
        "balance": "Balance",
        "opening": "Opening balance",
        "closing": "Closing balance",
        "totals": "Totals of the month",
        "open_invoices": "Open invoices",
        "held_total": "Credit held for the next invoice",
        "due": "Due date",
        "open_amount": "Open amount",
    },
    "zh-CN": {
        "statement": "对账单",
        "date": "日期",
        "entry": "摘要",
        "reference": "凭证号",
        "debit": "应收",
        "credit": "已收/冲减",
        "balance": "余额",
        "opening": "期初余额",
        "closing": "期末余额",
        "totals": "本期合计",
        "open_invoices": "未付账单",
        "held_total": "待下期抵扣金额",
        "due": "付款截止日",
        "open_amount": "未付金额",
    },
}


# Separate from STATEMENT_WORDS: a StrEnum member and its value are the same dictionary key.
ENTRY_WORDS = {
    "en": {
        EntryKind.INVOICE: "Invoice {reference}",
        EntryKind.PAYMENT: "Payment of invoice {invoice} ({reference})",
        EntryKind.CREDIT_NOTE: "Credit note {reference} on invoice {invoice}",
        EntryKind.CREDIT_HELD: "Credit note {reference} on paid invoice {invoice}: credited on a later one",
        EntryKind.CREDIT_CARRIED: "Credit from invoice {invoice} carried to the next invoice",
    },
    "zh-CN": {
        EntryKind.INVOICE: "账单 {reference}",
        EntryKind.PAYMENT: "收款：账单 {invoice}（{reference}）",
        EntryKind.CREDIT_NOTE: "红字冲减 {reference}：账单 {invoice}",
        EntryKind.CREDIT_HELD: "红字冲减 {reference}：已付账单 {invoice}，于后续账单抵扣",
        EntryKind.CREDIT_CARRIED: "账单 {invoice} 未抵扣完的金额，结转下期",
    },
}


def _lang(lang: str) -> str:
    return lang if lang in STATEMENT_WORDS else "en"


def describe_entry(entry: LedgerEntry, lang: str) -> str:
    words = ENTRY_WORDS[_lang(lang)]
    reference = entry.reference or "—"
    return words[entry.kind].format(reference=reference, invoice=entry.invoice)


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def statement_csv(statement: Statement, lang: str = "en") -> str:
    """The opening balance, one row per entry with the running balance, the totals and the closing balance;
    memo entries carry their amount in the last column and leave the balance alone."""
    words = STATEMENT_WORDS[_lang(lang)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [words["date"], "kind", words["entry"], words["debit"], words["credit"], words["balance"], "memo"]
    )
    writer.writerow(
        [statement.period.start, "opening", words["opening"], "", "", _amount(statement.opening_balance), ""]
    )
    for line in statement.lines:
        memo = line.entry.kind in MEMO
        writer.writerow(
            [
                line.entry.on,
                line.entry.kind.value,
                describe_entry(line.entry, lang),
                "" if memo or not line.debit else _amount(line.debit),
                "" if memo or not line.credit else _amount(line.credit),
                _amount(line.balance),
                _amount(line.entry.amount) if memo else "",
            ]
        )
    writer.writerow(
        [
            statement.as_of,
            "totals",
            words["totals"],
            _amount(statement.total_debit),
            _amount(statement.total_credit),
            "",
            "",
        ]
    )
    writer.writerow(
        [statement.as_of, "closing", words["closing"], "", "", _amount(statement.closing_balance), ""]
    )
    if statement.credit_held:
        writer.writerow(
            [statement.as_of, "held", words["held_total"], "", "", "", _amount(statement.credit_held)]
        )
    return out.getvalue()
