"""Request and response bodies of the billing routes, and the checks they share.

Writes need a platform admin (the operator); an account's admins read their own account's billing.
Ownership is checked before the role, so a stranger learns nothing (404) about other accounts' ids.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from rooms.models import Account
from web.api.base import (
    DB,
    ApiError,
    Principal,
    path_id,
    principal,
)
from web.api.schemas import Body, Id, Out

TAG = "billing"

DecimalText = Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,13}(\.[0-9]{1,6})?$")]
Count = Annotated[int, Field(ge=0, le=100_000)]
Note = Annotated[str, StringConstraints(max_length=500)]
Lang = Literal["zh-CN", "en"]


class ContractSiteIn(Body):
    site_id: Id
    endpoints: Count | None = None


class ContractIn(Body):
    terms: dict[str, Any]
    sites: Annotated[list[ContractSiteIn], Field(min_length=1, max_length=1000)]


class ContractTermsIn(Body):
    terms: dict[str, Any]


class ContractOut(Out):
    id: int
    account_id: int
    start: date
    end: date | None
    notice_on: date | None
    terms: dict[str, Any]
    created_at: datetime
    # From the start date (the acceptance date) on the terms no longer change.
    accepted: bool = False
    term_months: int = 12
    # None once notice is given (then `end` is the last renewal date).
    renews_on: date | None = None
    notice_deadline: date | None = None
    notice_ends_on: date | None = None


class NoticeIn(Body):
    on: date


class ServiceChangeIn(Body):
    kind: Literal["open", "change", "suspend", "resume", "terminate"]
    on: date
    endpoints: Count | None = None


class ServiceChangeOut(Out):
    id: int
    site_id: int
    on: date
    kind: str
    endpoints: int | None
    source: str
    created_at: datetime


class OutageIn(Body):
    start: AwareDatetime
    end: AwareDatetime
    account_id: Id | None = None
    source: Literal["monitor", "admin"] = "admin"
    note: Note = ""


class OutageOut(Out):
    id: int
    account_id: int | None
    start: datetime
    end: datetime
    source: str
    note: str
    created_at: datetime


class UsageIn(Body):
    kind: Annotated[str, StringConstraints(max_length=40)]
    month: date
    quantity: DecimalText | Annotated[int, Field(ge=0, le=10**12)]


class UsageOut(Out):
    account_id: int
    kind: str
    month: date
    quantity: Decimal
    source: str


class RunIn(Body):
    # Bill only the periods that end by the end of this month (YYYY-MM); all ended periods when left out.
    through: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] | None = None


class RunBillOut(BaseModel):
    number: str
    account_id: int
    account_name: str
    period_start: date
    period_end: date
    currency: str
    total: Decimal


class RunOut(BaseModel):
    issued: list[str]
    notices: list[str]
    suspended: list[str]
    purged: int
    through: str | None = None
    invoices: list[RunBillOut] = Field(default_factory=list)


class InvoiceOut(Out):
    id: int
    account_id: int
    contract_id: int
    number: str | None
    state: str
    currency: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    total: Decimal
    amount_due: Decimal
    carry_forward: Decimal
    notice_on: date | None
    suspended_on: date | None
    paid_on: date | None


class InvoiceLineOut(BaseModel):
    kind: str
    site_id: int | None
    label: str
    detail: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    description: str


class CreditNoteBrief(BaseModel):
    id: int
    number: str
    amount: Decimal
    issued_on: date
    settles: bool


class InvoiceDetailOut(InvoiceOut):
    lines: list[InvoiceLineOut]
    # Accrued up to today while unpaid; once paid, the fee for the days late (fixed by the payment date).
    accrued_late_fee: Decimal
    # What was paid (None while unpaid) and what is still open (0 once paid).
    paid_amount: Decimal | None = None
    balance: Decimal
    # The invoice that charged the late fee as a line; None while it is still to be charged.
    late_fee_billed_in: str | None = None
    # While unpaid: the day it becomes overdue (the notice) and the day the account's sites are suspended.
    overdue_from: date | None = None
    suspends_on: date | None = None
    credit_notes: list[CreditNoteBrief] = Field(default_factory=list)


class InvoiceDraftOut(BaseModel):
    account_id: int
    state: Literal["draft"] = "draft"
    currency: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    total: Decimal
    carry_forward: Decimal
    lines: list[InvoiceLineOut]


class PaymentIn(Body):
    amount: DecimalText | Annotated[int, Field(ge=0, le=10**12)]
    paid_on: date
    reference: Annotated[str, StringConstraints(max_length=200)] = ""


class CreditNoteIn(Body):
    amount: DecimalText | Annotated[int, Field(ge=0, le=10**12)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class CreditNoteOut(Out):
    id: int
    account_id: int
    invoice_id: int
    number: str
    amount: Decimal
    reason: str
    issued_on: date
    settles: bool
    applied_in: int | None
    created_at: datetime


class StandingOut(BaseModel):
    account_id: int
    suspended: bool
    reason: str


class LangQuery(Body):
    lang: Lang = "en"


class OutageCreditOut(BaseModel):
    invoice_id: int
    number: str
    period_start: date
    period_end: date
    currency: str
    kind: str
    description: str
    amount: Decimal


class UsageQuery(Body):
    month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] | None = None


class UsageRowOut(BaseModel):
    kind: str
    quantity: Decimal
    # metered (counted by the run when the month was billed), entered, or so_far (the current month, live).
    source: str


class SiteUsageOut(BaseModel):
    site_id: int
    name: str
    endpoints: int
    in_service: bool


class UsageReportOut(BaseModel):
    account_id: int
    month: str
    usage: list[UsageRowOut]
    sites: list[SiteUsageOut]


def reader(request: web.Request) -> Principal:
    who = principal(request)
    who.require_admin()
    return who


async def account_in_path(request: web.Request, who: Principal) -> int:
    """The path's account if the caller may see it (404 otherwise, whatever the role)."""
    account_id = path_id(request, "account_id")
    if who.account_id is not None and who.account_id != account_id:
        raise ApiError(404, "not_found", "no such account", "account_id")
    async with request.app[DB].session() as session:
        if await session.get(Account, account_id) is None:
            raise ApiError(404, "not_found", "no such account", "account_id")
    return account_id


async def account_reader(request: web.Request) -> tuple[Principal, int]:
    """The caller and the path's account, for reading that account's billing (an admin of it)."""
    who = principal(request)
    account_id = await account_in_path(request, who)
    who.require_admin()
    return who, account_id


async def account_writer(request: web.Request) -> tuple[Principal, int]:
    """The caller and the path's account, for changing its billing (a platform admin)."""
    who = principal(request)
    account_id = await account_in_path(request, who)
    who.require_platform_admin()
    return who, account_id


def csv_response(text: str, filename: str, lang: str) -> web.Response:
    # Excel opens UTF-8 CSV as Chinese text only with a byte-order mark.
    body = ("\ufeff" if lang == "zh-CN" else "") + text
    return web.Response(
        body=body.encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class StatementLineOut(BaseModel):
    on: date
    kind: str
    reference: str
    invoice: str
    description: str
    debit: Decimal
    credit: Decimal
    # A memo entry's amount (a credit held for a later invoice); it leaves the balance alone.
    memo: Decimal | None
    balance: Decimal


class OpenInvoiceOut(BaseModel):
    number: str
    due: date
    open_amount: Decimal


class StatementOut(BaseModel):
    account_id: int
    month: str
    currency: str
    as_of: date
    opening_balance: Decimal
    lines: list[StatementLineOut]
    total_debit: Decimal
    total_credit: Decimal
    closing_balance: Decimal
    open_invoices: list[OpenInvoiceOut]
    credit_held: Decimal
