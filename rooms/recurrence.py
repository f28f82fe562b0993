"""Booking schedules: validation, expansion into occurrences, and overlap detection. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from rooms.errors import InvalidInput

_UNTIL = re.compile(r"UNTIL=([0-9T]+Z?)")
_ALLOWED_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")


@dataclass(frozen=True)
class Schedule:
    """When a booking happens: wall-clock start and end in `time_zone`, optionally repeated by `rrule`."""

    start_local: datetime
    end_local: datetime
    time_zone: str
    rrule: str | None = None
    exdates: tuple[datetime, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return time_zone(self.time_zone)

    @property
    def duration(self) -> timedelta:
        return self.end_local - self.start_local


@dataclass(frozen=True, order=True)
class Occurrence:
    start: datetime  # aware UTC
    end: datetime  # aware UTC
    recurrence_id: datetime  # naive local start, the occurrence's identity within its series


@dataclass(frozen=True)
class Limits:
    max_duration: timedelta
    horizon: timedelta
    max_occurrences: int


def time_zone(name: str) -> ZoneInfo:
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}", field="time_zone") from exc


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    # A wall time in a DST gap resolves with the offset before the change (zoneinfo, fold=0).
    return local.replace(tzinfo=zone).astimezone(UTC)


def to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock time in `zone` for an aware instant (or a naive one taken as already local)."""
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(zone).replace(tzinfo=None)


def normalise_rrule(text: str, zone: ZoneInfo) -> str:
    """Upper-case, without an "RRULE:" prefix, with UNTIL in UTC as RFC 5545 requires for zoned starts."""
    text = text.strip().upper()
    if text.startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if "\n" in text or "DTSTART" in text or "EXDATE" in text:
        raise InvalidInput("rrule must be a single RRULE value", field="rrule")
    match = _UNTIL.search(text)
    if match and not match.group(1).endswith("Z"):
        raw = match.group(1)
        try:
            local = (
                datetime.strptime(raw, "%Y%m%dT%H%M%S") if "T" in raw else datetime.strptime(raw, "%Y%m%d")
            )
        except ValueError as exc:
            raise InvalidInput(f"bad UNTIL value {raw!r}", field="rrule") from exc
        if "T" not in raw:
            local = local.replace(hour=23, minute=59, second=59)
        until = to_utc(local, zone).strftime("%Y%m%dT%H%M%SZ")
        text = text[: match.start(1)] + until + text[match.end(1) :]
    return text


def _rule(schedule: Schedule) -> rrule:
    assert schedule.rrule is not None
    zone = schedule.zone
    try:
        rule = rrulestr(schedule.rrule, dtstart=schedule.start_local.replace(tzinfo=zone), cache=False)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise InvalidInput(f"invalid rrule: {exc}", field="rrule") from exc
    if not isinstance(rule, rrule):
        raise InvalidInput("invalid rrule", field="rrule")
    return rule


def validate(schedule: Schedule, *, now: datetime, limits: Limits, check_past: bool = True) -> Schedule:
    """The schedule in canonical form, or InvalidInput naming the field at fault."""
    # Far-off wall times overflow in UTC conversions; they are out of the horizon anyway.
    earliest = (now - timedelta(days=2)).replace(tzinfo=None)
    latest = (now + limits.horizon + timedelta(days=2)).replace(tzinfo=None)
    for name, value in (("start", schedule.start_local), ("end", schedule.end_local)):
        if not earliest <= value.replace(tzinfo=None) <= latest:
            raise InvalidInput(f"{name} is out of the bookable range", field=name)
    try:
        return _validate(schedule, now=now, limits=limits, check_past=check_past)
    except OverflowError as exc:
        raise InvalidInput("a date is out of range", field="rrule" if schedule.rrule else "start") from exc


def _validate(schedule: Schedule, *, now: datetime, limits: Limits, check_past: bool) -> Schedule:
    zone = schedule.zone
    if schedule.end_local <= schedule.start_local:
        raise InvalidInput("end must be after start", field="end")
    if schedule.duration > limits.max_duration:
        minutes = int(limits.max_duration.total_seconds() // 60)
        raise InvalidInput(f"a booking may last at most {minutes} minutes", field="end")
    rrule_text = None
    if schedule.rrule:
        rrule_text = normalise_rrule(schedule.rrule, zone)
        freq = re.search(r"FREQ=([A-Z]+)", rrule_text)
        if freq is None or freq.group(1) not in _ALLOWED_FREQS:
            raise InvalidInput("rrule FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY", field="rrule")
        if "COUNT=" not in rrule_text and "UNTIL=" not in rrule_text:
            raise InvalidInput("a series must end: give COUNT or UNTIL in the rrule", field="rrule")
        if "COUNT=" in rrule_text and "UNTIL=" in rrule_text:
            raise InvalidInput("give either COUNT or UNTIL in the rrule, not both", field="rrule")
    exdates = tuple(sorted({to_local(d, zone) for d in schedule.exdates}))
    canonical = Schedule(schedule.start_local, schedule.end_local, schedule.time_zone, rrule_text, exdates)
    starts = _starts(canonical, limit=limits.max_occurrences + 1)
    if rrule_text is not None:
        if not starts:
            raise InvalidInput("the rrule yields no occurrence", field="rrule")
        if len(starts) > limits.max_occurrences:
            raise InvalidInput(
                f"a series may have at most {limits.max_occurrences} occurrences", field="rrule"
            )
        all_starts = set(starts)
        for exdate in exdates:
            if exdate not in all_starts:
                raise InvalidInput(f"exdate {exdate.isoformat()} is not an occurrence", field="exdates")
    remaining = [s for s in starts if s not in set(exdates)]
    if not remaining:
        raise InvalidInput("every occurrence is excluded", field="exdates")
    for earlier, later in pairwise(remaining):
        if to_utc(later, zone) < to_utc(earlier + canonical.duration, zone):
            raise InvalidInput("occurrences of the series would overlap each other", field="rrule")
    first = to_utc(remaining[0], zone)
    last = to_utc(remaining[-1] + canonical.duration, zone)
    if check_past and first < now:
        raise InvalidInput("a booking cannot start in the past", field="start")
    if last > now + limits.horizon:
        days = limits.horizon.days
        field = "rrule" if rrule_text else "start"
        raise InvalidInput(f"bookings end at most {days} days ahead", field=field)
    return canonical


def _starts(schedule: Schedule, *, limit: int) -> list[datetime]:
    """Naive local starts of the series, including excluded ones, at most `limit` of them."""
    if not schedule.rrule:
        return [schedule.start_local]
    rule = _rule(schedule)
    starts: list[datetime] = []
    try:
        for start in rule:
            starts.append(start.replace(tzinfo=None))
            if len(starts) >= limit:
                break
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"invalid rrule: {exc}", field="rrule") from exc
    return starts


def expand(schedule: Schedule, *, limit: int = 100_000) -> list[Occurrence]:
    """All occurrences (EXDATEs removed), in order. The schedule must have been validated."""
    zone = schedule.zone
    excluded = set(schedule.exdates)
    duration = schedule.duration
    return [
        Occurrence(to_utc(start, zone), to_utc(start + duration, zone), start)
        for start in _starts(schedule, limit=limit)
        if start not in excluded
    ]


def span(occurrences: Sequence[Occurrence]) -> tuple[datetime, datetime]:
    return occurrences[0].start, max(o.end for o in occurrences)


def between(occurrences: Iterable[Occurrence], start: datetime, end: datetime) -> list[Occurrence]:
    return [o for o in occurrences if o.start < end and o.end > start]


def first_overlap(ours: Sequence[Occurrence], theirs: Sequence[Occurrence]) -> Occurrence | None:
    """The first of `theirs` overlapping any of `ours` (half-open intervals; both sorted by start)."""
    i = j = 0
    while i < len(ours) and j < len(theirs):
        a, b = ours[i], theirs[j]
        if a.start < b.end and b.start < a.end:
            return b
        if a.end <= b.end:
            i += 1
        else:
            j += 1
    return None
