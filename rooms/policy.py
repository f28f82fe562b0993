"""Admission and session time limits. Pure functions: the caller passes `now` and the facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class Kind(StrEnum):
    BROWSER = "browser"
    SIP = "sip"
    WHIP = "whip"
    RECORDER = "recorder"
    VIEWER = "viewer"


# Recorders and viewers are not at the table: they neither count toward nor are stopped by capacity.
COUNTED_KINDS = frozenset({Kind.BROWSER, Kind.SIP, Kind.WHIP})


class Outcome(StrEnum):
    ADMITTED = "admitted"
    LOBBY = "lobby"
    REFUSED = "refused"


class Reason(StrEnum):
    NOT_OPEN = "not_open"
    CLOSED = "closed"
    FULL = "full"
    WRONG_PASSCODE = "wrong_passcode"
    LOCKED = "locked"
    SITE_SUSPENDED = "site_suspended"
    ENDPOINT_DISABLED = "endpoint_disabled"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: Reason | None = None

    @property
    def admitted(self) -> bool:
        return self.outcome is Outcome.ADMITTED


ADMITTED = Decision(Outcome.ADMITTED)
LOBBY = Decision(Outcome.LOBBY)


@dataclass(frozen=True)
class Terms:
    """A room's effective terms for one meeting: the room's settings with the booking's overrides applied."""

    capacity: int
    passcode: str | None
    lobby: bool
    max_session: timedelta | None = None


@dataclass(frozen=True)
class Window:
    """When a booked occurrence admits participants: from `opens_at` until `closes_at`."""

    opens_at: datetime
    closes_at: datetime
    booking_end: datetime


def window(start: datetime, end: datetime, *, open_before: timedelta, grace: timedelta) -> Window:
    return Window(opens_at=start - open_before, closes_at=end + grace, booking_end=end)


def counts(kind: Kind) -> bool:
    return kind in COUNTED_KINDS


def admit(
    *,
    now: datetime,
    terms: Terms,
    kind: Kind,
    present: int,
    window: Window | None = None,
    booked_only: bool = False,
    passcode: str | None = None,
    authorised: bool = False,
    host: bool = False,
    locked: bool = False,
    site_suspended: bool = False,
    endpoint_enabled: bool = True,
) -> Decision:
    """Whether a participant may enter now.

    `present` is the number of participants already in the meeting that count toward capacity.
    `window` is the booked occurrence, if any; without one, the room is open ad hoc unless `booked_only`.
    `authorised` means a valid join token stands in for the passcode; `host` skips the lobby and the lock.
    """
    if site_suspended:
        return Decision(Outcome.REFUSED, Reason.SITE_SUSPENDED)
    if not endpoint_enabled:
        return Decision(Outcome.REFUSED, Reason.ENDPOINT_DISABLED)
    if window is not None:
        if now < window.opens_at:
            return Decision(Outcome.REFUSED, Reason.NOT_OPEN)
        if now >= window.closes_at:
            return Decision(Outcome.REFUSED, Reason.CLOSED)
    elif booked_only:
        return Decision(Outcome.REFUSED, Reason.CLOSED)
    if kind is Kind.RECORDER:
        return ADMITTED
    if locked and not host:
        return Decision(Outcome.REFUSED, Reason.LOCKED)
    if terms.passcode and not (authorised or host) and passcode != terms.passcode:
        return Decision(Outcome.REFUSED, Reason.WRONG_PASSCODE)
    if counts(kind) and present >= terms.capacity:
        return Decision(Outcome.REFUSED, Reason.FULL)
    if terms.lobby and not host and kind is not Kind.VIEWER:
        return LOBBY
    return ADMITTED


class SiteFacts(Protocol):
    """What admission needs of a Site (rooms.models.Site satisfies it)."""

    @property
    def suspended_at(self) -> datetime | None: ...


# The words a refused room terminal shows (SIP Warning and Reason headers); the reason stays machine-readable.
ENDPOINT_REFUSALS = {
    Reason.SITE_SUSPENDED: "Site suspended: unpaid invoice",
    Reason.ENDPOINT_DISABLED: "Endpoint disabled by its administrator",
}


def endpoint_may_register(site: SiteFacts, now: datetime, *, enabled: bool = True) -> Reason | None:
    """None if an Endpoint of ``site`` may register now, else why not (billing suspends a site)."""
    if site.suspended_at is not None and site.suspended_at <= now:
        return Reason.SITE_SUSPENDED
    if not enabled:
        return Reason.ENDPOINT_DISABLED
    return None


def endpoint_may_join(site: SiteFacts, now: datetime, *, enabled: bool = True) -> Reason | None:
    """None if an Endpoint of ``site`` may join a meeting now, else why not. The same rule as registering
    today; kept apart because a contract may one day allow registering without calling (or the reverse)."""
    return endpoint_may_register(site, now, enabled=enabled)


def session_deadline(
    *,
    started_at: datetime,
    booking_end: datetime | None = None,
    grace: timedelta = timedelta(0),
    max_session: timedelta | None = None,
    contract_limit: timedelta | None = None,
) -> datetime | None:
    """When the meeting must end: the earliest of booking end + grace and the two length limits."""
    candidates = []
    if booking_end is not None:
        candidates.append(booking_end + grace)
    if max_session is not None:
        candidates.append(started_at + max_session)
    if contract_limit is not None:
        candidates.append(started_at + contract_limit)
    return min(candidates) if candidates else None


WARNING_LEADS = (timedelta(minutes=5), timedelta(minutes=1))


def warning_times(deadline: datetime, *, now: datetime) -> list[tuple[datetime, timedelta]]:
    """(when, time left) for the T-5 min and T-1 min warnings still ahead of `now`."""
    return [(deadline - lead, lead) for lead in WARNING_LEADS if deadline - lead >= now]
