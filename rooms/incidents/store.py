"""Incident writes and reads, and the data of the quarterly reports.

Every write validates first and happens in one transaction with its history entry. `account_id` None means
platform staff (every account); an account admin sees the account's incidents and the platform's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.billing.contract import ContractTerms
from rooms.billing.inputs import gather_inputs
from rooms.billing.invoice import LineKind, build_invoice
from rooms.billing.models import Contract, Outage
from rooms.billing.periods import Period, local_midnight
from rooms.billing.store import terms_of
from rooms.database import Database
from rooms.errors import InvalidInput, NotFound
from rooms.incidents.availability import (
    AvailabilityReport,
    Credit,
    MeasuredOutage,
    availability_report,
    quarter_label,
)
from rooms.incidents.clocks import levels_of
from rooms.incidents.models import SEVERITIES, STATUSES, Incident, IncidentEvent
from rooms.incidents.notices import notify_incident
from rooms.incidents.report import IncidentFact, IncidentReport, incident_report
from rooms.models import Account, User

MAX_TITLE = 200
MAX_TEXT = 10_000
# Where a status may go next; closing an incident that was never resolved resolves it too.
TRANSITIONS = {
    "open": {"in_progress", "resolved", "closed"},
    "in_progress": {"open", "resolved", "closed"},
    "resolved": {"in_progress", "closed"},
    "closed": set(),
}


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    events: tuple[IncidentEvent, ...]
    terms: ContractTerms | None


def _text(value: str, field: str, limit: int, *, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidInput("must not be empty", field=field)
    if len(text) > limit:
        raise InvalidInput(f"must be at most {limit} characters", field=field)
    return text


def _severity(value: str) -> str:
    if value not in SEVERITIES:
        raise InvalidInput(f"must be one of {', '.join(SEVERITIES)}", field="severity")
    return value


async def contract_terms(
    session: AsyncSession, account_id: int, on: datetime | None = None
) -> ContractTerms | None:
    """The terms of the account's contract in force (the latest that started by `on`), if any."""
    contracts = (
        await session.scalars(
            select(Contract).where(Contract.account_id == account_id).order_by(Contract.start)
        )
    ).all()
    if on is not None:
        started = [c for c in contracts if c.start <= on.date()]
        contracts = started or list(contracts[:1])
    return terms_of(contracts[-1]) if contracts else None


async def report_incident(
    db: Database,
    *,
    account_id: int | None,
    title: str,
    description: str,
    severity: str,
    reporter: User,
    now: datetime,
) -> Incident:
    """A new incident, reported by an account admin (their account) or platform staff."""
    title = _text(title, "title", MAX_TITLE, required=True)
    description = _text(description, "description", MAX_TEXT, required=False)
    severity = _severity(severity)
    async with db.writer() as session:
        if account_id is not None and await session.get(Account, account_id) is None:
            raise NotFound("no such account", field="account_id")
        incident = Incident(
            account_id=account_id,
            title=title,
            description=description,
            severity=severity,
            status="open",
            source="staff" if reporter.account_id is None else "account",
            reported_by=reporter.id,
            opened_at=now,
        )
        session.add(incident)
        await session.flush()
        session.add(
            IncidentEvent(incident_id=incident.id, at=now, actor_id=reporter.id, kind="opened", status="open")
        )
        await notify_incident(session, incident, "opened", now=now)
        await session.commit()
        return incident


def _visible(account_id: int | None) -> list[ColumnElement[bool]]:
    if account_id is None:
        return []
    return [or_(Incident.account_id == account_id, Incident.account_id.is_(None))]


async def list_incidents(
    db: Database, *, account_id: int | None, status: str | None = None, limit: int = 200
) -> list[Incident]:
    """Newest first. `status` "active" means open or in progress."""
    query = select(Incident).where(*_visible(account_id))
    if status == "active":
        query = query.where(Incident.status.in_(("open", "in_progress")))
    elif status is not None:
        query = query.where(Incident.status == status)
    query = query.order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit)
    async with db.session() as session:
        return list((await session.scalars(query)).all())


async def _incident(session: AsyncSession, incident_id: int, account_id: int | None) -> Incident:
    incident = await session.get(Incident, incident_id)
    if incident is None or (
        account_id is not None and incident.account_id is not None and incident.account_id != account_id
    ):
        raise NotFound("no such incident")
    return incident


async def get_incident(db: Database, incident_id: int, *, account_id: int | None) -> IncidentView:
    async with db.session() as session:
        incident = await _incident(session, incident_id, account_id)
        events = (
            await session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(IncidentEvent.at, IncidentEvent.id)
            )
        ).all()
        terms = None
        if incident.account_id is not None:
            terms = await contract_terms(session, incident.account_id, incident.opened_at)
        return IncidentView(incident, tuple(events), terms)


async def update_incident(
    db: Database,
    incident_id: int,
    *,
    actor: User,
    now: datetime,
    status: str | None = None,
    assignee_id: int | None = None,
    unassign: bool = False,
    severity: str | None = None,
    note: str | None = None,
) -> Incident:
    """A change by platform staff (status, assignment, severity, a note) or a note by the account's admin.

    The first change by platform staff is the response the contract's response clock waits for."""
    staff = actor.account_id is None
    text = _text(note, "note", MAX_TEXT, required=False) if note is not None else ""
    if not staff and (status is not None or assignee_id is not None or unassign or severity is not None):
        raise InvalidInput("only platform staff change status, assignment or severity", field="status")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"must be one of {', '.join(STATUSES)}", field="status")
    if severity is not None:
        severity = _severity(severity)
    if status is None and assignee_id is None and not unassign and severity is None and not text:
        raise InvalidInput(
            "nothing to change: give a status, an assignee, a severity or a note", field="note"
        )
    async with db.writer() as session:
        incident = await _incident(session, incident_id, actor.account_id)
        events: list[IncidentEvent] = []
        notices: list[str] = []
        if status is not None and status != incident.status:
            if status not in TRANSITIONS[incident.status]:
                raise InvalidInput(
                    f"an incident that is {incident.status} cannot become {status}", field="status"
                )
            if status in {"resolved", "closed"} and incident.resolved_at is None:
                incident.resolved_at = now
                notices.append("resolved")
            if status in {"open", "in_progress"}:
                incident.resolved_at = None
            incident.closed_at = now if status == "closed" else None
            incident.status = status
            events.append(IncidentEvent(kind="status", status=status, note=text))
            text = ""
        if assignee_id is not None:
            assignee = await session.get(User, assignee_id)
            if assignee is None or assignee.account_id is not None:
                raise InvalidInput("must be a platform staff user", field="assignee_id")
            incident.assignee_id = assignee_id
            events.append(IncidentEvent(kind="assigned", note=assignee.email))
        elif unassign:
            incident.assignee_id = None
            events.append(IncidentEvent(kind="assigned", note=""))
        if severity is not None and severity != incident.severity:
            incident.severity = severity
            events.append(IncidentEvent(kind="severity", note=severity))
        if text:
            events.append(IncidentEvent(kind="note", note=text))
        if not events:
            raise InvalidInput("nothing changed", field="status")
        if staff and incident.responded_at is None:
            incident.responded_at = now
            notices.insert(0, "responded")
        for event in events:
            event.incident_id = incident.id
            event.at = now
            event.actor_id = actor.id
            session.add(event)
        for change in notices:
            await notify_incident(session, incident, change, now=now)
        await session.commit()
        return incident


async def quarter_incidents(
    db: Database, *, account_id: int | None, quarter: Period, now: datetime
) -> IncidentReport:
    """The incident report of a quarter: an account's clocks come from its contract (the seed contract's
    for the platform's own view)."""
    async with db.session() as session:
        terms = await contract_terms(session, account_id) if account_id is not None else None
        zone = terms.timezone if terms is not None else "Asia/Shanghai"
        lo, hi = local_midnight(quarter.start, zone), local_midnight(quarter.end, zone)
        rows = (
            await session.scalars(
                select(Incident).where(
                    *_visible(account_id), Incident.opened_at >= lo, Incident.opened_at < hi
                )
            )
        ).all()
    facts = facts_of(rows)
    return incident_report(
        quarter_label(quarter), incidents=facts, levels=levels_of(terms), lo=lo, hi=hi, now=now
    )


async def _credits(
    session: AsyncSession, contract: Contract, terms: ContractTerms, quarter: Period
) -> list[Credit]:
    """The outage credits the billing rules grant for the quarter: its live events' and its availability."""
    inputs = await gather_inputs(session, contract, terms, quarter)
    draft = build_invoice(terms, inputs, quarter)
    kinds = {LineKind.EVENT_CREDIT, LineKind.AVAILABILITY_CREDIT}
    return [
        Credit(str(line.kind), -line.amount, line.label or "", line.detail)
        for line in draft.lines
        if line.kind in kinds and line.amount
    ]


async def quarter_availability(
    db: Database, *, account_id: int, quarter: Period, now: datetime
) -> AvailabilityReport:
    async with db.session() as session:
        if await session.get(Account, account_id) is None:
            raise NotFound("no such account", field="account_id")
        contracts = (
            await session.scalars(
                select(Contract).where(Contract.account_id == account_id).order_by(Contract.start)
            )
        ).all()
        covering = [c for c in contracts if c.start < quarter.end]
        if not covering:
            raise NotFound("the account has no contract covering this quarter", field="quarter")
        contract = covering[-1]
        terms = terms_of(contract)
        lo = local_midnight(quarter.start, terms.timezone)
        hi = local_midnight(quarter.end, terms.timezone)
        rows = (
            await session.scalars(
                select(Outage).where(
                    or_(Outage.account_id.is_(None), Outage.account_id == account_id),
                    Outage.start < hi,
                    Outage.end > lo,
                )
            )
        ).all()
        credits = await _credits(session, contract, terms, quarter)
    outages = [MeasuredOutage(o.id, o.start, o.end, o.account_id, o.source, o.cause, o.note) for o in rows]
    return availability_report(
        account_id, terms=terms, quarter=quarter, outages=outages, credits=credits, now=now
    )


def facts_of(incidents: Sequence[Incident]) -> list[IncidentFact]:
    return [
        IncidentFact(
            i.id,
            i.account_id,
            i.title,
            i.severity,
            i.status,
            i.source,
            i.opened_at,
            i.responded_at,
            i.resolved_at,
        )
        for i in incidents
    ]
