"""Billing routes, contract side: contracts, notice, service changes, outages, usage, the billing run."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from sqlalchemy import select

from rooms.billing import reports, store
from rooms.billing.charges import ServiceChangeKind
from rooms.billing.contract import accepted, parse_date, renewal
from rooms.billing.export import describe
from rooms.billing.models import Contract, SiteServiceChange
from rooms.billing.periods import local_date
from rooms.billing.run import check_through, run_billing
from rooms.models import Account, Site
from web.api.base import (
    CLOCK,
    DB,
    Api,
    owned,
    parse_body,
    parse_query,
    path_id,
    principal,
    send,
)
from web.api.billing_schemas import (
    TAG,
    ContractIn,
    ContractOut,
    ContractTermsIn,
    LangQuery,
    NoticeIn,
    OutageCreditOut,
    OutageIn,
    OutageOut,
    RunBillOut,
    RunIn,
    RunOut,
    ServiceChangeIn,
    ServiceChangeOut,
    SiteUsageOut,
    UsageIn,
    UsageOut,
    UsageQuery,
    UsageReportOut,
    UsageRowOut,
    account_reader,
    account_writer,
    reader,
)

api = Api()


def contract_out(contract: Contract, now: datetime) -> ContractOut:
    """The stored contract and where it stands today: accepted or not, renewal date, notice deadline."""
    terms = store.terms_of(contract)
    today = local_date(now, terms.timezone)
    out = ContractOut.model_validate(contract)
    standing = renewal(terms, today) if contract.end is None else None
    return out.model_copy(
        update={
            "accepted": accepted(terms, today),
            "term_months": terms.term_months,
            "renews_on": standing.renews_on if standing else None,
            "notice_deadline": standing.notice_deadline if standing else None,
            "notice_ends_on": standing.notice_ends_on if standing else None,
        }
    )


@api.op(
    "GET",
    "/accounts/{account_id}/contracts",
    summary="List an account's contracts",
    tag=TAG,
    response=ContractOut,
    many=True,
)
async def list_contracts(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    rows = await store.list_contracts(request.app[DB], account_id=account_id)
    now = request.app[CLOCK]()
    return send([contract_out(r, now) for r in rows])


@api.op(
    "POST",
    "/accounts/{account_id}/contracts",
    summary="Create a contract (platform admin)",
    tag=TAG,
    body=ContractIn,
    response=ContractOut,
    status=201,
)
async def create_contract(request: web.Request) -> web.Response:
    _, account_id = await account_writer(request)
    body = await parse_body(request, ContractIn)
    contract = await store.create_contract(
        request.app[DB],
        account_id=account_id,
        terms=body.terms,
        sites=[s.model_dump(exclude_none=True) for s in body.sites],
        now=request.app[CLOCK](),
    )
    return send(contract_out(contract, request.app[CLOCK]()), 201)


@api.op(
    "PATCH",
    "/contracts/{contract_id}",
    summary="Change a contract's terms before its acceptance date (platform admin; 409 once accepted)",
    tag=TAG,
    body=ContractTermsIn,
    response=ContractOut,
)
async def amend_contract(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    contract = await store.get_contract(db, path_id(request, "contract_id"), account_id=who.account_id)
    who.require_platform_admin()
    body = await parse_body(request, ContractTermsIn)
    now = request.app[CLOCK]()
    updated = await store.amend_terms(db, contract.id, terms=body.terms, now=now)
    return send(contract_out(updated, now))


@api.op(
    "POST",
    "/contracts/{contract_id}/notice",
    summary="Give notice of termination (platform admin)",
    tag=TAG,
    body=NoticeIn,
    response=ContractOut,
)
async def give_notice(request: web.Request) -> web.Response:
    who = principal(request)
    db = request.app[DB]
    contract = await store.get_contract(db, path_id(request, "contract_id"), account_id=who.account_id)
    who.require_platform_admin()
    body = await parse_body(request, NoticeIn)
    now = request.app[CLOCK]()
    updated = await store.give_notice(db, contract.id, on=body.on, now=now)
    return send(contract_out(updated, now))


@api.op(
    "GET",
    "/sites/{site_id}/service-changes",
    summary="List a site's service changes",
    tag=TAG,
    response=ServiceChangeOut,
    many=True,
)
async def list_service_changes(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].session() as session:
        site = await owned(session, Site, path_id(request, "site_id"), who)
        who.require_admin()
        rows = (
            await session.scalars(
                select(SiteServiceChange)
                .where(SiteServiceChange.site_id == site.id)
                .order_by(SiteServiceChange.on, SiteServiceChange.id)
            )
        ).all()
    return send([ServiceChangeOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/sites/{site_id}/service-changes",
    summary="Open, change, suspend, resume or terminate a site's service (platform admin)",
    tag=TAG,
    body=ServiceChangeIn,
    response=ServiceChangeOut,
    status=201,
)
async def add_service_change(request: web.Request) -> web.Response:
    who = principal(request)
    async with request.app[DB].session() as session:
        site = await owned(session, Site, path_id(request, "site_id"), who)
    who.require_platform_admin()
    body = await parse_body(request, ServiceChangeIn)
    change = await store.add_service_change(
        request.app[DB],
        site_id=site.id,
        kind=ServiceChangeKind(body.kind),
        on=body.on,
        endpoints=body.endpoints,
        now=request.app[CLOCK](),
    )
    return send(ServiceChangeOut.model_validate(change), 201)


@api.op(
    "GET",
    "/outages",
    summary="List outages (the whole service's and your account's)",
    tag=TAG,
    response=OutageOut,
    many=True,
)
async def list_outages(request: web.Request) -> web.Response:
    who = reader(request)
    rows = await store.list_outages(request.app[DB], account_id=who.account_id)
    return send([OutageOut.model_validate(r) for r in rows])


@api.op(
    "POST",
    "/outages",
    summary="Record an outage (platform admin or the health monitor)",
    tag=TAG,
    body=OutageIn,
    response=OutageOut,
    status=201,
)
async def record_outage(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_platform_admin()
    body = await parse_body(request, OutageIn)
    outage = await store.record_outage(
        request.app[DB],
        start=body.start,
        end=body.end,
        account_id=body.account_id,
        source=body.source,
        note=body.note,
        now=request.app[CLOCK](),
    )
    return send(OutageOut.model_validate(outage), 201)


@api.op(
    "GET",
    "/accounts/{account_id}/outage-credits",
    summary="The credits outages caused on an account's invoices (live events, availability)",
    tag=TAG,
    response=OutageCreditOut,
    many=True,
    query=LangQuery,
)
async def list_outage_credits(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    lang = parse_query(request, LangQuery).lang
    credits = await reports.outage_credits(request.app[DB], account_id=account_id)
    return send(
        [
            OutageCreditOut(
                invoice_id=c.invoice_id,
                number=c.number,
                period_start=c.period.start,
                period_end=c.period.end,
                currency=c.currency,
                kind=c.line.kind.value,
                description=describe(c.line, lang),
                amount=c.line.amount,
            )
            for c in credits
        ]
    )


@api.op(
    "PUT",
    "/accounts/{account_id}/usage",
    summary="Enter a month's usage of a kind, e.g. SMS (platform admin)",
    tag=TAG,
    body=UsageIn,
    response=UsageOut,
)
async def set_usage(request: web.Request) -> web.Response:
    _, account_id = await account_writer(request)
    body = await parse_body(request, UsageIn)
    row = await store.set_usage(
        request.app[DB],
        account_id=account_id,
        kind=body.kind,
        month=body.month,
        quantity=body.quantity,
        now=request.app[CLOCK](),
    )
    return send(UsageOut.model_validate(row))


@api.op(
    "GET",
    "/accounts/{account_id}/usage",
    summary="An account's usage of a month (YYYY-MM, default the current one): every recorded kind",
    tag=TAG,
    query=UsageQuery,
    response=UsageReportOut,
)
async def get_usage(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    query = parse_query(request, UsageQuery)
    # parse_date bounds the year (2000-2199) and answers 422 naming the field.
    month = None if query.month is None else parse_date(f"{query.month}-01", "month")
    report = await reports.usage_report(
        request.app[DB], account_id=account_id, month=month, now=request.app[CLOCK]()
    )
    return send(
        UsageReportOut(
            account_id=account_id,
            month=f"{report.month:%Y-%m}",
            usage=[UsageRowOut(kind=u.kind, quantity=u.quantity, source=u.source) for u in report.usage],
            sites=[
                SiteUsageOut(site_id=s.site_id, name=s.name, endpoints=s.endpoints, in_service=s.in_service)
                for s in report.sites
            ],
        )
    )


@api.op(
    "POST",
    "/billing/run",
    summary="Run billing now, optionally only through a month (platform admin; the scheduler runs it daily)",
    tag=TAG,
    body=RunIn,
    response=RunOut,
)
async def run(request: web.Request) -> web.Response:
    principal(request).require_platform_admin()
    # The body is optional: a bare POST bills every ended period.
    body = await parse_body(request, RunIn) if request.can_read_body else RunIn()
    now = request.app[CLOCK]()
    through = None if body.through is None else check_through(f"{body.through}-01", now)
    db = request.app[DB]
    report = await run_billing(db, now=now, through=through)
    async with db.session() as session:
        names = {a.id: a.name for a in (await session.scalars(select(Account))).all()}
    bills = [
        RunBillOut(
            number=b.number,
            account_id=b.account_id,
            account_name=names.get(b.account_id, ""),
            period_start=b.period.start,
            period_end=b.period.end,
            currency=b.currency,
            total=b.total,
        )
        for b in report.bills
    ]
    return send(
        RunOut(
            issued=report.issued,
            notices=report.notices,
            suspended=report.suspended,
            purged=report.purged,
            through=body.through,
            invoices=bills,
        )
    )
