"""Incident routes: account admins report and follow their incidents; platform staff assign, answer, resolve.

The contract's clocks are computed at every read (rooms/incidents/clocks.py): an account's incidents run on
its contract's terms, the platform's own (the monitor's) on the seed contract's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field, StringConstraints

from rooms.billing.contract import ContractTerms
from rooms.billing.periods import Period, quarter_period
from rooms.incidents import store
from rooms.incidents.availability import parse_quarter
from rooms.incidents.clocks import Clock, levels_of, resolution_clock, response_clock
from rooms.incidents.export import incidents_csv
from rooms.incidents.models import Incident
from rooms.incidents.report import ClockSummary, IncidentReport
from web.api.base import CLOCK, DB, Api, ApiError, parse_body, parse_query, path_id, principal, send
from web.api.billing_schemas import Lang, account_reader, csv_response
from web.api.schemas import Body, Id, Out

TAG = "incidents"
api = Api()

Severity = Literal["major", "minor"]
Status = Literal["open", "in_progress", "resolved", "closed"]
QuarterText = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-Q[1-4]$")]


class IncidentIn(Body):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    severity: Severity = "minor"
    # Platform staff only: the account concerned (none: the whole platform).
    account_id: Id | None = None


class IncidentPatch(Body):
    status: Status | None = None
    assignee_id: Id | None = None
    unassign: bool = False
    severity: Severity | None = None
    note: Annotated[str, StringConstraints(max_length=10_000)] | None = None


class IncidentQuery(Body):
    status: Literal["active", "open", "in_progress", "resolved", "closed"] | None = None
    account_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class QuarterQuery(Body):
    quarter: QuarterText | None = None
    lang: Lang = "en"


class ClockOut(Out):
    due_at: datetime
    done_at: datetime | None
    state: Literal["running", "met", "breached"]
    elapsed_seconds: int


class IncidentOut(Out):
    id: int
    account_id: int | None
    title: str
    description: str
    severity: str
    status: str
    source: str
    reported_by: int | None
    assignee_id: int | None
    outage_id: int | None
    opened_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    response: ClockOut
    resolution: ClockOut


class IncidentEventOut(Out):
    id: int
    at: datetime
    actor_id: int | None
    kind: str
    status: str | None
    note: str


class IncidentDetailOut(IncidentOut):
    events: list[IncidentEventOut]


class ClockSummaryOut(Out):
    met: int
    breached: int
    running: int
    mean_seconds: int | None


class IncidentReportOut(Out):
    quarter: str
    response_hours: float
    resolution_hours: float
    major_resolution_hours: float
    incidents: list[IncidentOut]
    response: ClockSummaryOut
    resolution: ClockSummaryOut


def _clock_out(c: Clock) -> ClockOut:
    return ClockOut(
        due_at=c.due_at,
        done_at=c.done_at,
        state=c.state.value,
        elapsed_seconds=int(c.elapsed.total_seconds()),
    )


def incident_out(incident: Incident, terms: ContractTerms | None, now: datetime) -> IncidentOut:
    levels = levels_of(terms)
    return IncidentOut(
        id=incident.id,
        account_id=incident.account_id,
        title=incident.title,
        description=incident.description,
        severity=incident.severity,
        status=incident.status,
        source=incident.source,
        reported_by=incident.reported_by,
        assignee_id=incident.assignee_id,
        outage_id=incident.outage_id,
        opened_at=incident.opened_at,
        responded_at=incident.responded_at,
        resolved_at=incident.resolved_at,
        closed_at=incident.closed_at,
        response=_clock_out(response_clock(incident.opened_at, incident.responded_at, levels, now)),
        resolution=_clock_out(
            resolution_clock(incident.opened_at, incident.resolved_at, incident.severity, levels, now)
        ),
    )


async def _terms_by_account(
    request: web.Request, incidents: list[Incident]
) -> dict[int, ContractTerms | None]:
    found: dict[int, ContractTerms | None] = {}
    async with request.app[DB].session() as session:
        for account_id in {i.account_id for i in incidents if i.account_id is not None}:
            found[account_id] = await store.contract_terms(session, account_id)
    return found


@api.op("GET", "/incidents", summary="List incidents (an account's and the platform's)", tag=TAG,
        response=IncidentOut, many=True, query=IncidentQuery)  # fmt: skip
async def list_incidents(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    query = parse_query(request, IncidentQuery)
    account_id = who.account_id if who.account_id is not None else query.account_id
    rows = await store.list_incidents(request.app[DB], account_id=account_id, status=query.status)
    terms = await _terms_by_account(request, rows)
    now = request.app[CLOCK]()
    return send([incident_out(i, terms.get(i.account_id) if i.account_id else None, now) for i in rows])


@api.op("POST", "/incidents", summary="Report an incident", tag=TAG, body=IncidentIn, response=IncidentOut,
        status=201)  # fmt: skip
async def report_incident(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    body = await parse_body(request, IncidentIn)
    if who.account_id is not None and body.account_id not in {None, who.account_id}:
        raise ApiError(403, "forbidden", "cannot report incidents of another account", "account_id")
    account_id = who.account_id if who.account_id is not None else body.account_id
    now = request.app[CLOCK]()
    incident = await store.report_incident(
        request.app[DB],
        account_id=account_id,
        title=body.title,
        description=body.description,
        severity=body.severity,
        reporter=who.user,
        now=now,
    )
    view = await store.get_incident(request.app[DB], incident.id, account_id=who.account_id)
    return send(incident_out(view.incident, view.terms, now), status=201)


def _detail(view: store.IncidentView, now: datetime) -> IncidentDetailOut:
    base = incident_out(view.incident, view.terms, now)
    return IncidentDetailOut(
        **base.model_dump(), events=[IncidentEventOut.model_validate(e) for e in view.events]
    )


@api.op("GET", "/incidents/{incident_id}", summary="An incident with its history and clocks", tag=TAG,
        response=IncidentDetailOut)  # fmt: skip
async def get_incident(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    view = await store.get_incident(
        request.app[DB], path_id(request, "incident_id"), account_id=who.account_id
    )
    return send(_detail(view, request.app[CLOCK]()))


@api.op("PATCH", "/incidents/{incident_id}",
        summary="Change an incident: status, assignee, severity (platform staff) or add a note", tag=TAG,
        body=IncidentPatch, response=IncidentDetailOut)  # fmt: skip
async def update_incident(request: web.Request) -> web.Response:
    who = principal(request)
    who.require_admin()
    incident_id = path_id(request, "incident_id")
    body = await parse_body(request, IncidentPatch)
    if who.account_id is not None and (
        body.status is not None or body.assignee_id is not None or body.unassign or body.severity is not None
    ):
        raise ApiError(
            403, "forbidden", "only platform staff change status, assignment or severity", "status"
        )
    if who.account_id is not None:
        current = await store.get_incident(request.app[DB], incident_id, account_id=who.account_id)
        if current.incident.account_id is None:
            # Every account sees the platform's incidents: a note there would reach the other accounts.
            raise ApiError(
                403, "forbidden", "the platform's incidents are answered by platform staff", "note"
            )
    now = request.app[CLOCK]()
    await store.update_incident(
        request.app[DB],
        incident_id,
        actor=who.user,
        now=now,
        status=body.status,
        assignee_id=body.assignee_id,
        unassign=body.unassign,
        severity=body.severity,
        note=body.note,
    )
    view = await store.get_incident(request.app[DB], incident_id, account_id=who.account_id)
    return send(_detail(view, now))


def quarter_of(request: web.Request, text: str | None) -> Period:
    """The requested quarter (YYYY-Qn), or the current one."""
    if text is None:
        return quarter_period(request.app[CLOCK]().date())
    try:
        return parse_quarter(text)
    except ValueError as exc:
        raise ApiError(422, "invalid", f"quarter: {exc}", "quarter") from None


def _summary(s: ClockSummary) -> ClockSummaryOut:
    mean = None if s.mean is None else int(s.mean.total_seconds())
    return ClockSummaryOut(met=s.met, breached=s.breached, running=s.running, mean_seconds=mean)


def report_out(report: IncidentReport) -> IncidentReportOut:
    levels = report.levels
    rows = []
    for row in report.rows:
        i = row.incident
        rows.append(
            IncidentOut(
                id=i.id,
                account_id=i.account_id,
                title=i.title,
                description="",
                severity=i.severity,
                status=i.status,
                source=i.source,
                reported_by=None,
                assignee_id=None,
                outage_id=None,
                opened_at=i.opened_at,
                responded_at=i.responded_at,
                resolved_at=i.resolved_at,
                closed_at=None,
                response=_clock_out(row.response),
                resolution=_clock_out(row.resolution),
            )
        )
    return IncidentReportOut(
        quarter=report.quarter,
        response_hours=levels.response.total_seconds() / 3600,
        resolution_hours=levels.resolution.total_seconds() / 3600,
        major_resolution_hours=levels.major_resolution.total_seconds() / 3600,
        incidents=rows,
        response=_summary(report.response),
        resolution=_summary(report.resolution),
    )


@api.op("GET", "/accounts/{account_id}/incidents/report",
        summary="A quarter's incidents: response and resolution times against the contract", tag=TAG,
        response=IncidentReportOut, query=QuarterQuery)  # fmt: skip
async def incident_report(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    query = parse_query(request, QuarterQuery)
    report = await store.quarter_incidents(
        request.app[DB],
        account_id=account_id,
        quarter=quarter_of(request, query.quarter),
        now=request.app[CLOCK](),
    )
    return send(report_out(report))


@api.op("GET", "/accounts/{account_id}/incidents/report/csv", summary="A quarter's incident report as CSV",
        tag=TAG, query=QuarterQuery, content_type="text/csv")  # fmt: skip
async def incident_report_csv(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    query = parse_query(request, QuarterQuery)
    report = await store.quarter_incidents(
        request.app[DB],
        account_id=account_id,
        quarter=quarter_of(request, query.quarter),
        now=request.app[CLOCK](),
    )
    return csv_response(
        incidents_csv(report, query.lang), f"incidents-{account_id}-{report.quarter}.csv", query.lang
    )
