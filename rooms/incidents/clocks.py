"""The contract's incident clocks as pure functions of the incident, the terms and `now`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from rooms.billing.contract import ContractTerms


class ClockState(StrEnum):
    RUNNING = "running"  # not done yet, still inside the clock
    MET = "met"  # done by its due time
    BREACHED = "breached"  # done late, or not done and past due


@dataclass(frozen=True)
class ServiceLevels:
    """How long the contract allows: to respond to any incident, to solve it, to fix a major fault."""

    response: timedelta = timedelta(hours=2)
    resolution: timedelta = timedelta(hours=4)
    major_resolution: timedelta = timedelta(hours=24)

    def resolution_for(self, severity: str) -> timedelta:
        return self.major_resolution if severity == "major" else self.resolution


@dataclass(frozen=True)
class Clock:
    due_at: datetime
    done_at: datetime | None
    state: ClockState
    # How long it took (done) or has run so far (not done).
    elapsed: timedelta


def levels_of(terms: ContractTerms | None) -> ServiceLevels:
    """The contract's clocks; without a contract (a platform incident) the seed contract's."""
    if terms is None:
        return ServiceLevels()
    return ServiceLevels(
        timedelta(hours=terms.response_hours),
        timedelta(hours=terms.resolution_hours),
        timedelta(hours=terms.major_resolution_hours),
    )


def clock(opened_at: datetime, allowed: timedelta, done_at: datetime | None, now: datetime) -> Clock:
    """One clock started at `opened_at`: met when done by `opened_at + allowed`, breached once past it."""
    due = opened_at + allowed
    if done_at is not None:
        state = ClockState.MET if done_at <= due else ClockState.BREACHED
        return Clock(due, done_at, state, done_at - opened_at)
    state = ClockState.RUNNING if now <= due else ClockState.BREACHED
    return Clock(due, None, state, max(timedelta(0), now - opened_at))


def response_clock(
    opened_at: datetime, responded_at: datetime | None, levels: ServiceLevels, now: datetime
) -> Clock:
    return clock(opened_at, levels.response, responded_at, now)


def resolution_clock(
    opened_at: datetime, resolved_at: datetime | None, severity: str, levels: ServiceLevels, now: datetime
) -> Clock:
    return clock(opened_at, levels.resolution_for(severity), resolved_at, now)
