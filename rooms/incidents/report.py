"""The quarterly incident report: every incident's response and resolution against the contract's clocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms.incidents.clocks import Clock, ClockState, ServiceLevels, resolution_clock, response_clock


@dataclass(frozen=True)
class IncidentFact:
    id: int
    account_id: int | None
    title: str
    severity: str
    status: str
    source: str
    opened_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class IncidentRow:
    incident: IncidentFact
    response: Clock
    resolution: Clock


@dataclass(frozen=True)
class ClockSummary:
    met: int
    breached: int
    running: int
    mean: timedelta | None  # over the clocks that are done


@dataclass(frozen=True)
class IncidentReport:
    quarter: str
    levels: ServiceLevels
    rows: tuple[IncidentRow, ...]
    response: ClockSummary
    resolution: ClockSummary


def incident_row(incident: IncidentFact, levels: ServiceLevels, now: datetime) -> IncidentRow:
    return IncidentRow(
        incident,
        response_clock(incident.opened_at, incident.responded_at, levels, now),
        resolution_clock(incident.opened_at, incident.resolved_at, incident.severity, levels, now),
    )


def _summary(clocks: Sequence[Clock]) -> ClockSummary:
    done = [c.elapsed for c in clocks if c.done_at is not None]
    mean = sum(done, timedelta(0)) / len(done) if done else None
    return ClockSummary(
        met=sum(c.state is ClockState.MET for c in clocks),
        breached=sum(c.state is ClockState.BREACHED for c in clocks),
        running=sum(c.state is ClockState.RUNNING for c in clocks),
        mean=mean,
    )


def incident_report(
    quarter: str,
    *,
    incidents: Sequence[IncidentFact],
    levels: ServiceLevels,
    lo: datetime,
    hi: datetime,
    now: datetime,
) -> IncidentReport:
    """The incidents opened in [lo, hi), oldest first, with their clocks as of `now`."""
    rows = tuple(
        incident_row(i, levels, now)
        for i in sorted(incidents, key=lambda i: (i.opened_at, i.id))
        if lo <= i.opened_at < hi
    )
    return IncidentReport(
        quarter,
        levels,
        rows,
        _summary([r.response for r in rows]),
        _summary([r.resolution for r in rows]),
    )
