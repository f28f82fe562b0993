"""Usage metering from Attendance and recording records: pure functions over intervals."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

GB = Decimal(10**9)
SYSTEM_KINDS = frozenset({"recorder"})


@dataclass(frozen=True)
class Stay:
    """One Attendance row as billing sees it."""

    kind: str  # browser, sip, whip, recorder, viewer
    joined_at: datetime
    left_at: datetime | None  # None while still in the meeting
    endpoint_id: int | None = None
    meeting_id: int | None = None
    # The latest instant the stay can count to (see stay_limit); None when nothing bounds it.
    until: datetime | None = None


@dataclass(frozen=True)
class StoredRecording:
    size_bytes: int
    stored_from: datetime
    deleted_at: datetime | None


@dataclass(frozen=True)
class Usage:
    """A metered or entered quantity of one usage kind in one natural month."""

    kind: str
    month: date
    quantity: Decimal


def stay_limit(
    *, meeting_started_at: datetime, meeting_ended_at: datetime | None, max_session: timedelta | None
) -> datetime | None:
    """The latest instant a stay in a meeting may be billed to: the meeting's end; while the meeting has none,
    its start plus the room's maximum session length (the server would have ended it then)."""
    if meeting_ended_at is not None:
        return meeting_ended_at
    if max_session is not None:
        return meeting_started_at + max_session
    return None


def counted_end(stay: Stay, now: datetime) -> datetime:
    """Where a stay stops counting: its leave, but never past its meeting's limit nor `now`. A row left open
    by a crash would otherwise be billed up to every later month's end."""
    return min(t for t in (stay.left_at, stay.until, now) if t is not None)


def _clip(
    start: datetime, end: datetime | None, lo: datetime, hi: datetime
) -> tuple[datetime, datetime] | None:
    stop = hi if end is None else min(end, hi)
    begin = max(start, lo)
    return (begin, stop) if begin < stop else None


def participant_minutes(stays: Iterable[Stay], lo: datetime, hi: datetime) -> dict[str, int]:
    """Minutes per kind inside [lo, hi); each stay's clipped part is rounded up to a whole minute.

    Here and below `hi` is also the present for open stays: callers pass at most `now`."""
    totals: dict[str, int] = {}
    for stay in stays:
        span = _clip(stay.joined_at, counted_end(stay, hi), lo, hi)
        if span is None:
            continue
        seconds = (span[1] - span[0]).total_seconds()
        totals[stay.kind] = totals.get(stay.kind, 0) + int(-(-seconds // 60))
    return totals


def peak_concurrency(intervals: Iterable[tuple[datetime, datetime]]) -> int:
    """The largest number of half-open intervals [start, end) covering one instant."""
    events: list[tuple[datetime, int]] = []
    for start, end in intervals:
        if start < end:
            events.append((start, 1))
            events.append((end, -1))
    # At equal instants a leave sorts before a join: back-to-back stays do not overlap.
    events.sort(key=lambda e: (e[0], e[1]))
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def peak_concurrent_endpoints(stays: Iterable[Stay], lo: datetime, hi: datetime) -> int:
    """Peak concurrent room-terminal connections inside [lo, hi), the way room-connector ports are billed."""
    spans = []
    for stay in stays:
        if stay.endpoint_id is None and stay.kind != "sip":
            continue
        span = _clip(stay.joined_at, counted_end(stay, hi), lo, hi)
        if span is not None:
            spans.append(span)
    return peak_concurrency(spans)


def storage_gb_months(recordings: Iterable[StoredRecording], lo: datetime, hi: datetime) -> Decimal:
    """GB stored times the fraction of the month [lo, hi) they were stored (GB = 10^9 bytes)."""
    month_seconds = Decimal(int((hi - lo).total_seconds()))
    total = Decimal(0)
    for rec in recordings:
        span = _clip(rec.stored_from, rec.deleted_at, lo, hi)
        if span is None:
            continue
        seconds = Decimal(int((span[1] - span[0]).total_seconds()))
        total += Decimal(rec.size_bytes) / GB * seconds / month_seconds
    return total.quantize(Decimal("0.0001"))


def meter_month(
    month: date,
    lo: datetime,
    hi: datetime,
    stays: Sequence[Stay],
    recordings: Sequence[StoredRecording] = (),
    *,
    live_minutes: int = 0,
) -> list[Usage]:
    """All metered usage kinds of one account in one month [lo, hi) (local month bounds as instants).

    ``live_minutes``: the HLS viewers' minutes of the account's live channels (rooms/live/stats.py
    viewer_minutes); they are live-viewer minutes as the WHEP viewers' Attendance is."""
    minutes = participant_minutes(stays, lo, hi)
    usage = [
        Usage(f"participant_minutes.{kind}", month, Decimal(n))
        for kind, n in sorted(minutes.items())
        if kind != "viewer"
    ]
    usage.append(Usage("live_viewer_minutes", month, Decimal(minutes.get("viewer", 0) + live_minutes)))
    usage.append(Usage("peak_endpoints", month, Decimal(peak_concurrent_endpoints(stays, lo, hi))))
    usage.append(Usage("recording_gb_months", month, storage_gb_months(recordings, lo, hi)))
    return usage
