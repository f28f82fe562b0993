"""When the health monitor's checks open and close an outage, and how its start and end are dated.

Pure functions of the previous state, one observation and `now`. An outage starts at the first failing
check of the run of failures that opened it, and ends at the first passing check of the run of successes
that closed it: the service was seen down at the one and up again at the other. A gap in observations
longer than `stale_after` (the monitor itself was not running) is not counted: the outage then ends at the
last failure seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Scope(StrEnum):
    """What an outage interrupts: everything (the web service or the database), or meetings' media only."""

    SERVICE = "service"
    MEETINGS = "meetings"


# Which scope a failing check takes down. SIP OPTIONS joins once the SIP gateway exists.
CHECK_SCOPES: dict[str, Scope] = {
    "http": Scope.SERVICE,
    "database": Scope.SERVICE,
    "media": Scope.MEETINGS,
    "sip": Scope.MEETINGS,
}


def scope_of_cause(cause: str | None) -> Scope:
    """The scope of a recorded outage from its cause ("media", "database,http", "server_crash", ...):
    only outages caused by media checks alone leave the rest of the service up."""
    checks = [c for c in (cause or "").split(",") if c]
    if checks and all(CHECK_SCOPES.get(c) is Scope.MEETINGS for c in checks):
        return Scope.MEETINGS
    return Scope.SERVICE


def join_causes(*causes: str) -> str:
    """Causes as one sorted, comma-separated list of check names (fits the outage's 40 characters)."""
    names = sorted({c for cause in causes for c in cause.split(",") if c})
    return ",".join(names)[:40]


@dataclass(frozen=True)
class OutageRules:
    failures_to_open: int = 2
    successes_to_close: int = 2
    stale_after: timedelta = timedelta(seconds=90)


@dataclass(frozen=True)
class Track:
    """One scope's state between checks."""

    scope: Scope
    failures: int = 0  # consecutive failing checks
    successes: int = 0  # consecutive passing checks
    first_failure: datetime | None = None  # of the current run of failures
    last_failure: datetime | None = None
    first_success: datetime | None = None  # of the current run of successes while open
    last_observed: datetime | None = None
    open: bool = False
    start: datetime | None = None  # the open outage's start
    cause: str = ""

    @property
    def end(self) -> datetime | None:
        """While open: the latest instant the outage is known to have lasted."""
        return self.last_failure if self.open else None


class Change(StrEnum):
    NONE = "none"
    OPENED = "opened"
    EXTENDED = "extended"
    CLOSED = "closed"


@dataclass(frozen=True)
class Observation:
    track: Track
    change: Change
    # For OPENED/EXTENDED: the outage so far; for CLOSED: the whole outage.
    start: datetime | None = None
    end: datetime | None = None


def observe(track: Track, *, ok: bool, cause: str, now: datetime, rules: OutageRules) -> Observation:
    """The next state after one check of `track`'s scope at `now` (`cause`: the failing checks)."""
    stale = track.last_observed is not None and now - track.last_observed > rules.stale_after
    if not ok:
        failures = 1 if track.failures == 0 or stale else track.failures + 1
        first = now if failures == 1 else track.first_failure
        state = replace(
            track,
            failures=failures,
            successes=0,
            first_failure=first,
            last_failure=now,
            first_success=None,
            last_observed=now,
        )
        if state.open:
            state = replace(state, cause=join_causes(state.cause, cause))
            return Observation(state, Change.EXTENDED, state.start, now)
        if failures >= rules.failures_to_open:
            state = replace(state, open=True, start=first, cause=cause)
            return Observation(state, Change.OPENED, first, now)
        return Observation(state, Change.NONE)
    successes = track.successes + 1
    first_success = now if successes == 1 else track.first_success
    state = replace(track, failures=0, successes=successes, first_success=first_success, last_observed=now)
    if not track.open:
        return Observation(replace(state, first_failure=None), Change.NONE)
    assert track.start is not None and track.last_failure is not None
    if successes == 1 and stale:
        # Nobody watched between the last failure and this success: count only what was seen.
        end = track.last_failure
    elif successes >= rules.successes_to_close:
        end = first_success or now
    else:
        return Observation(state, Change.NONE)
    closed = Track(scope=track.scope, successes=successes, last_observed=now)
    return Observation(closed, Change.CLOSED, track.start, end)


def resumed(scope: Scope, *, start: datetime, observed_at: datetime, cause: str) -> Track:
    """The track of an outage a previous run left open (read back from the database)."""
    return Track(
        scope=scope,
        failures=1,
        first_failure=start,
        last_failure=observed_at,
        last_observed=observed_at,
        open=True,
        start=start,
        cause=cause,
    )
