"""The health monitor's writes: its outages (rooms.billing.models.Outage, source "monitor") and the
incident each one opens.

One open outage per scope however many monitors run: the OpenOutage row's primary key is the scope, and a
monitor that finds one (another worker's, or its own from before a restart) continues it. An outage first
written after the fact (the database was down while it lasted) joins a monitor outage of the same scope that
it overlaps instead of being counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.billing.models import Outage
from rooms.database import Database
from rooms.incidents.models import Incident, IncidentEvent, OpenOutage
from rooms.incidents.outages import Scope, join_causes, scope_of_cause

SOURCE = "monitor"


@dataclass(frozen=True)
class OpenOutageView:
    scope: Scope
    outage_id: int
    start: datetime
    observed_at: datetime
    cause: str
    incident_id: int | None


async def open_outages(db: Database) -> list[OpenOutageView]:
    async with db.session() as session:
        rows = (
            await session.execute(select(OpenOutage, Outage).join(Outage, Outage.id == OpenOutage.outage_id))
        ).all()
    return [
        OpenOutageView(
            Scope(o.scope), o.outage_id, outage.start, o.observed_at, outage.cause or "", o.incident_id
        )
        for o, outage in rows
        if o.scope in Scope.__members__.values()
    ]


async def probe(db: Database) -> None:
    """The database check: a read of the monitor's own table (fails on a database without the schema)."""
    async with db.session() as session:
        await session.execute(select(OpenOutage.scope).limit(1))


def _note(scope: Scope, cause: str) -> str:
    return f"measured by the health monitor: {scope.value} down, failing checks: {cause}"


async def _overlapping(session: AsyncSession, scope: Scope, start: datetime, end: datetime) -> Outage | None:
    rows = (
        await session.scalars(
            select(Outage)
            .where(
                Outage.source == SOURCE, Outage.account_id.is_(None), Outage.start <= end, Outage.end >= start
            )
            .order_by(Outage.end.desc())
        )
    ).all()
    return next((o for o in rows if scope_of_cause(o.cause) is scope), None)


async def _open_incident(session: AsyncSession, outage: Outage, scope: Scope, now: datetime) -> Incident:
    incident = Incident(
        account_id=None,
        title=f"Service interruption ({scope.value}): {outage.cause}",
        description=outage.note,
        severity="major",
        status="open",
        source=SOURCE,
        outage_id=outage.id,
        opened_at=outage.start,
    )
    session.add(incident)
    await session.flush()
    session.add(
        IncidentEvent(incident_id=incident.id, at=now, kind="opened", status="open", note=outage.note)
    )
    return incident


async def record(
    db: Database,
    *,
    scope: Scope,
    start: datetime,
    end: datetime,
    cause: str,
    still_open: bool,
    worker: str,
    now: datetime,
) -> int:
    """Write what the monitor knows of one scope's outage in one transaction; returns the outage's id."""
    for attempt in range(2):
        try:
            return await _record(
                db,
                scope=scope,
                start=start,
                end=end,
                cause=cause,
                still_open=still_open,
                worker=worker,
                now=now,
            )
        except IntegrityError:
            # Another monitor opened the scope's outage between our read and our insert: continue it.
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _record(
    db: Database,
    *,
    scope: Scope,
    start: datetime,
    end: datetime,
    cause: str,
    still_open: bool,
    worker: str,
    now: datetime,
) -> int:
    async with db.writer() as session:
        row = await session.scalar(
            select(OpenOutage).where(OpenOutage.scope == scope.value).with_for_update()
        )
        outage = await session.get(Outage, row.outage_id) if row is not None else None
        if outage is None:
            outage = await _overlapping(session, scope, start, end)
        incident_id = row.incident_id if row is not None else None
        if outage is None:
            outage = Outage(
                account_id=None,
                start=start,
                end=end,
                source=SOURCE,
                cause=join_causes(cause),
                note=_note(scope, cause),
                created_at=now,
            )
            session.add(outage)
            await session.flush()
            incident_id = (await _open_incident(session, outage, scope, now)).id
        else:
            outage.start = min(outage.start, start)
            outage.end = max(outage.end, end)
            outage.cause = join_causes(outage.cause or "", cause)
            outage.note = _note(scope, outage.cause)
            if incident_id is None:
                incident_id = await session.scalar(select(Incident.id).where(Incident.outage_id == outage.id))
        if still_open:
            if row is None:
                session.add(
                    OpenOutage(
                        scope=scope.value,
                        outage_id=outage.id,
                        incident_id=incident_id,
                        observed_at=now,
                        worker=worker,
                    )
                )
            else:
                row.observed_at = now
                row.worker = worker
        else:
            if row is not None:
                await session.delete(row)
            if incident_id is not None:
                session.add(
                    IncidentEvent(
                        incident_id=incident_id,
                        at=now,
                        kind="monitor",
                        note=f"the health monitor measured the service back at {outage.end.isoformat()}",
                    )
                )
        await session.commit()
        return outage.id
