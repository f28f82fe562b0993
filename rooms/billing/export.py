"""Invoice exports: the document model, line descriptions in zh-CN and en, and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rooms.billing.invoice import InvoiceLine, LineKind
from rooms.billing.periods import Period

LANGUAGES = ("zh-CN", "en")

_KIND = {
    "en": {
        LineKind.SITE_FEE: "Site fee",
        LineKind.TRIAL: "Free trial",
        LineKind.FIXED_FEE: "Monthly fixed fee",
        LineKind.USAGE: "Usage",
        LineKind.LIVE_EVENT: "Live events",
        LineKind.LATE_FEE: "Late fee",
        LineKind.EVENT_CREDIT: "Outage credit (live event)",
        LineKind.AVAILABILITY_CREDIT: "Availability credit",
        LineKind.CREDIT_NOTE: "Credit note",
        LineKind.CARRIED_CREDIT: "Credit carried forward",
    },
    "zh-CN": {
        LineKind.SITE_FEE: "会场终端服务费",
        LineKind.TRIAL: "免费试用",
        LineKind.FIXED_FEE: "月固定费用",
        LineKind.USAGE: "用量费用",
        LineKind.LIVE_EVENT: "直播活动",
        LineKind.LATE_FEE: "滞纳金",
        LineKind.EVENT_CREDIT: "中断赔付（直播活动）",
        LineKind.AVAILABILITY_CREDIT: "可用性赔付",
        LineKind.CREDIT_NOTE: "红字冲减（贷项通知单）",
        LineKind.CARRIED_CREDIT: "上期结转抵扣",
    },
}

_USAGE = {
    "en": {
        "participant_minutes.browser": "browser participant-minutes",
        "participant_minutes.sip": "room terminal participant-minutes",
        "participant_minutes.whip": "encoder participant-minutes",
        "participant_minutes.recorder": "recorder minutes",
        "live_viewer_minutes": "live viewer minutes",
        "peak_endpoints": "peak concurrent endpoints",
        "recording_gb_months": "recording storage (GB-months)",
        "sms": "SMS beyond the included pack",
    },
    "zh-CN": {
        "participant_minutes.browser": "浏览器参会分钟数",
        "participant_minutes.sip": "会议终端参会分钟数",
        "participant_minutes.whip": "编码器推流分钟数",
        "participant_minutes.recorder": "录制分钟数",
        "live_viewer_minutes": "直播观看分钟数",
        "peak_endpoints": "终端并发峰值",
        "recording_gb_months": "录制存储（GB·月）",
        "sms": "超出套餐的短信",
    },
}

HEADINGS = {
    "en": {
        "invoice": "Invoice",
        "account": "Account",
        "period": "Period",
        "issued": "Issue date",
        "due": "Due date",
        "state": "State",
        "description": "Description",
        "quantity": "Quantity",
        "unit_price": "Unit price",
        "amount": "Amount",
        "total": "Total",
        "paid_on": "Paid on",
    },
    "zh-CN": {
        "invoice": "账单",
        "account": "客户",
        "period": "账期",
        "issued": "出账日期",
        "due": "付款截止日",
        "state": "状态",
        "description": "项目",
        "quantity": "数量",
        "unit_price": "单价",
        "amount": "金额",
        "total": "合计",
        "paid_on": "付款日期",
    },
}

STATES = {
    "en": {
        "draft": "draft",
        "issued": "issued",
        "paid": "paid",
        "overdue": "overdue",
        "suspended": "suspended",
    },
    "zh-CN": {
        "draft": "草稿",
        "issued": "已出账",
        "paid": "已付清",
        "overdue": "已逾期",
        "suspended": "已停机",
    },
}


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    account_name: str
    currency: str
    period: Period
    issue_date: date
    due_date: date
    state: str
    total: Decimal
    paid_on: date | None
    lines: tuple[InvoiceLine, ...]


def _lang(lang: str) -> str:
    return lang if lang in LANGUAGES else "en"


def describe(line: InvoiceLine, lang: str) -> str:
    """A reader's description of one line in `lang` (zh-CN or en)."""
    lang = _lang(lang)
    zh = lang == "zh-CN"
    kind = _KIND[lang][line.kind]
    match line.kind:
        case LineKind.SITE_FEE:
            return f"{kind}：{line.label}" if zh else f"{kind}: {line.label} (endpoint-months)"
        case LineKind.TRIAL:
            return (
                f"{kind} {line.quantity} 天，{line.detail} 起计费"
                if zh
                else f"{kind}, {line.quantity} days; billed from {line.detail}"
            )
        case LineKind.FIXED_FEE:
            return f"{kind}：{line.label}" if zh else f"{kind}: {line.label}"
        case LineKind.USAGE:
            usage = _USAGE[lang].get(line.label, line.label)
            return f"{kind}：{usage}" if zh else f"{kind}: {usage}"
        case LineKind.LATE_FEE:
            if zh:
                return f"{kind}：账单 {line.label} 逾期 {line.quantity} 天（欠款 {line.detail}）"
            return f"{kind}: invoice {line.label}, {line.quantity} days overdue on {line.detail}"
        case LineKind.EVENT_CREDIT:
            return (
                f"{kind}：会议 {line.label}，中断 {line.detail}"
                if zh
                else f"{kind}: meeting {line.label}, {line.detail} interruption"
            )
        case LineKind.AVAILABILITY_CREDIT:
            if zh:
                return f"{kind}：{line.label} 可用性 {line.quantity}%"
            return f"{kind}: {line.label}, availability {line.quantity} %"
        case LineKind.CREDIT_NOTE:
            if zh:
                return f"{kind} {line.label}：冲减账单 {line.detail}"
            return f"{kind} {line.label} on invoice {line.detail}"
        case _:
            return kind


def invoice_csv(document: InvoiceDocument, lang: str = "en") -> str:
    """One row per line, then the total; amounts as plain decimals (no thousands separators)."""
    heads = HEADINGS[_lang(lang)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            heads["invoice"],
            heads["period"],
            "kind",
            "site_id",
            heads["description"],
            heads["quantity"],
            heads["unit_price"],
            heads["amount"],
            "currency",
        ]
    )
    for line in document.lines:
        writer.writerow(
            [
                document.number,
                document.period.label(),
                line.kind.value,
                "" if line.site_id is None else line.site_id,
                describe(line, lang),
                line.quantity,
                line.unit_price,
                f"{line.amount:.2f}",
                document.currency,
            ]
        )
    writer.writerow(
        [
            document.number,
            document.period.label(),
            "total",
            "",
            heads["total"],
            "",
            "",
            f"{document.total:.2f}",
            document.currency,
        ]
    )
    return out.getvalue()


@dataclass(frozen=True)
class InvoiceSummary:
    number: str
    period: Period
    issue_date: date
    due_date: date
    state: str
    currency: str
    total: Decimal
    paid_on: date | None


def invoices_csv(invoices: Iterable[InvoiceSummary], lang: str = "en") -> str:
    heads = HEADINGS[_lang(lang)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            heads["invoice"],
            heads["period"],
            heads["issued"],
            heads["due"],
            heads["state"],
            "currency",
            heads["total"],
            heads["paid_on"],
        ]
    )
    for i in invoices:
        writer.writerow(
            [
                i.number,
                i.period.label(),
                i.issue_date,
                i.due_date,
                STATES[_lang(lang)].get(i.state, i.state),
                i.currency,
                f"{i.total:.2f}",
                i.paid_on or "",
            ]
        )
    return out.getvalue()


def money_text(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"
