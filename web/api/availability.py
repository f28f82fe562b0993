"""Availability routes: an account's quarterly uptime against its contract, its outages and credits (JSON,
CSV, PDF)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

from aiohttp import web

from rooms.billing.pdf import InvoiceFontMissing
from rooms.incidents import store
from rooms.incidents.availability import AvailabilityReport, Uptime
from rooms.incidents.export import availability_csv
from rooms.incidents.pdf import availability_pdf
from rooms.models import Account
from web.api.base import CLOCK, DB, Api, ApiError, parse_query, send
from web.api.billing_schemas import account_reader, csv_response
from web.api.incidents import QuarterQuery, quarter_of
from web.api.schemas import Out

TAG = "availability"
api = Api()


class UptimeOut(Out):
    service: str
    target: Decimal
    actual: Decimal
    downtime_seconds: int
    met: bool


class OutageOut(Out):
    id: int
    start: datetime
    end: datetime
    seconds: int
    account_id: int | None
    source: str
    cause: str | None
    scope: str


class CreditOut(Out):
    kind: str
    amount: Decimal
    label: str
    detail: str


class AvailabilityOut(Out):
    account_id: int
    quarter: str
    start: datetime
    end: datetime
    currency: str
    meetings: UptimeOut
    operations: UptimeOut
    outages: list[OutageOut]
    credits: list[CreditOut]
    credit_total: Decimal


def _uptime(u: Uptime) -> UptimeOut:
    return UptimeOut(
        service=u.service, target=u.target, actual=u.actual, downtime_seconds=u.downtime_seconds, met=u.met
    )


def availability_out(report: AvailabilityReport) -> AvailabilityOut:
    return AvailabilityOut(
        account_id=report.account_id,
        quarter=report.quarter,
        start=report.start,
        end=report.end,
        currency=report.currency,
        meetings=_uptime(report.meetings),
        operations=_uptime(report.operations),
        outages=[
            OutageOut(
                id=o.id,
                start=o.start,
                end=o.end,
                seconds=o.seconds,
                account_id=o.account_id,
                source=o.source,
                cause=o.cause,
                scope=o.scope.value,
            )
            for o in report.outages
        ],
        credits=[
            CreditOut(kind=c.kind, amount=c.amount, label=c.label, detail=c.detail) for c in report.credits
        ],
        credit_total=report.credit_total,
    )


async def _report(request: web.Request) -> tuple[AvailabilityReport, QuarterQuery]:
    _, account_id = await account_reader(request)
    query = parse_query(request, QuarterQuery)
    report = await store.quarter_availability(
        request.app[DB],
        account_id=account_id,
        quarter=quarter_of(request, query.quarter),
        now=request.app[CLOCK](),
    )
    return report, query


@api.op("GET", "/accounts/{account_id}/availability",
        summary="A quarter's measured availability (meetings, operations), outages and credits", tag=TAG,
        response=AvailabilityOut, query=QuarterQuery)  # fmt: skip
async def get_availability(request: web.Request) -> web.Response:
    report, _ = await _report(request)
    return send(availability_out(report))


@api.op("GET", "/accounts/{account_id}/availability/csv", summary="A quarter's availability report as CSV",
        tag=TAG, query=QuarterQuery, content_type="text/csv")  # fmt: skip
async def availability_as_csv(request: web.Request) -> web.Response:
    report, query = await _report(request)
    name = f"availability-{report.account_id}-{report.quarter}.csv"
    return csv_response(availability_csv(report, query.lang), name, query.lang)


@api.op("GET", "/accounts/{account_id}/availability/pdf", summary="A quarter's availability report as PDF",
        tag=TAG, query=QuarterQuery, content_type="application/pdf", errors=(503,))  # fmt: skip
async def availability_as_pdf(request: web.Request) -> web.Response:
    report, query = await _report(request)
    async with request.app[DB].session() as session:
        account = await session.get(Account, report.account_id)
    name = account.name if account is not None else str(report.account_id)
    try:
        # reportlab is CPU-bound: off the event loop.
        body = await asyncio.to_thread(availability_pdf, report, name, query.lang)
    except InvoiceFontMissing as exc:
        raise ApiError(503, "font_missing", str(exc)) from None
    filename = f"availability-{report.account_id}-{report.quarter}.pdf"
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
