"""Billing routes, contract side: contracts, notice, service changes, outages, usage, the billing run."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from rooms.billing import store
from rooms.billing.charges import ServiceChangeKind
from rooms.billing.models import SiteServiceChange
from rooms.billing.run import run_billing
from rooms.models import Site
from web.api.base import (
    CLOCK,
    DB,
    Api,
    owned,
    parse_body,
    path_id,
    principal,
    send,
)
from web.api.billing_schemas import (
    TAG,
    ContractIn,
    ContractOut,
    NoticeIn,
    OutageIn,
    OutageOut,
    RunOut,
    ServiceChangeIn,
    ServiceChangeOut,
    UsageIn,
    UsageOut,
    account_reader,
    account_writer,
    reader,
)

api = Api()


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
    return send([ContractOut.model_validate(r) for r in rows])


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
    return send(ContractOut.model_validate(contract), 201)


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
    updated = await store.give_notice(db, contract.id, on=body.on, now=request.app[CLOCK]())
    return send(ContractOut.model_validate(updated))


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
    "POST",
    "/billing/run",
    summary="Run billing now (platform admin; the scheduler runs it daily)",
    tag=TAG,
    response=RunOut,
)
async def run(request: web.Request) -> web.Response:
    principal(request).require_platform_admin()
    report = await run_billing(request.app[DB], now=request.app[CLOCK]())
    return send(
        RunOut(issued=report.issued, notices=report.notices, suspended=report.suspended, purged=report.purged)
    )
