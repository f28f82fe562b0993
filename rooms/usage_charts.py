"""The series the reports page draws, from attendance: concurrency over a day, participant-minutes per
day, endpoints per site and device classes. Pure functions of the stays and ``now``, and the query behind."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from rooms.database import Database
from rooms.models import Attendance, Endpoint, Site

# System participants (recorders) are not people in the room.
COUNTED_KINDS = ("browser", "sip", "whip", "viewer")
MAX_DAYS = 366


@dataclass(frozen=True)
class Stay:
    joined_at: datetime
    left_at: datetime | None  # None: still in the meeting
    kind: str
    device_class: str
    endpoint_id: int | None = None


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float


@dataclass(frozen=True)
class SiteEndpoints:
    site_id: int
    name: str
    endpoints: int  # registered and enabled
    connected: int  # distinct endpoints that joined in the period


@dataclass(frozen=True)
class UsageCharts:
    day: date
    step_minutes: int
    concurrency: tuple[Point, ...]
    minutes_per_day: tuple[tuple[date, float], ...]
    endpoints_per_site: tuple[SiteEndpoints, ...]
    device_classes: tuple[tuple[str, int], ...]


def _interval(stay: Stay, now: datetime) -> tuple[datetime, datetime]:
    end = stay.left_at if stay.left_at is not None else now
    return stay.joined_at, max(stay.joined_at, end)


def concurrency(stays: Iterable[Stay], *, start: datetime, end: datetime, step: timedelta,
                now: datetime) -> tuple[Point, ...]:  # fmt: skip
    """The most participants present at once in each ``step`` from ``start`` to ``end``.

    A sweep over joins (+1) and leaves (-1), leaves first at equal times: one who leaves as another joins
    never counts as two.
    """
    events: list[tuple[datetime, int]] = []
    for stay in stays:
        joined, left = _interval(stay, now)
        if left > start and joined < end and left > joined:
            events += [(joined, 1), (left, -1)]
    events.sort(key=lambda e: (e[0], e[1]))
    times = [e[0] for e in events]
    points: list[Point] = []
    current = 0
    index = 0
    bucket = start
    while bucket < end:
        upto = min(bucket + step, end)
        # Everything before the bucket sets the level it opens with.
        while index < len(events) and events[index][0] <= bucket:
            current += events[index][1]
            index += 1
        peak = current
        stop = bisect.bisect_left(times, upto, lo=index)
        while index < stop:
            current += events[index][1]
            peak = max(peak, current)
            index += 1
        points.append(Point(bucket, float(peak)))
        bucket = upto
    return tuple(points)


def minutes_per_day(stays: Iterable[Stay], *, first: date, last: date, zone: ZoneInfo,
                    now: datetime) -> tuple[tuple[date, float], ...]:  # fmt: skip
    """Participant-minutes per local calendar day; a stay across midnight counts on both days."""
    if (last - first).days + 1 > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    edges = [datetime.combine(d, time(), zone) for d in [*days, last + timedelta(days=1)]]
    totals = [0.0] * len(days)
    for stay in stays:
        joined, left = _interval(stay, now)
        for i in range(len(days)):
            overlap = min(left, edges[i + 1]) - max(joined, edges[i])
            if overlap > timedelta(0):
                totals[i] += overlap.total_seconds() / 60
    return tuple(zip(days, (round(t, 2) for t in totals), strict=True))


def device_classes(stays: Iterable[Stay]) -> tuple[tuple[str, int], ...]:
    """Stays per device class, most first (ties by name)."""
    counts = Counter(stay.device_class for stay in stays)
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def endpoints_per_site(sites: Sequence[tuple[int, str, int]], stays: Iterable[Stay],
                       endpoint_sites: dict[int, int]) -> tuple[SiteEndpoints, ...]:  # fmt: skip
    """``sites``: (id, name, enabled endpoints); ``endpoint_sites``: endpoint id → site id."""
    connected: dict[int, set[int]] = {}
    for stay in stays:
        if stay.endpoint_id is not None and stay.endpoint_id in endpoint_sites:
            connected.setdefault(endpoint_sites[stay.endpoint_id], set()).add(stay.endpoint_id)
    return tuple(SiteEndpoints(i, name, n, len(connected.get(i, ()))) for i, name, n in sites)


async def usage_charts(
    db: Database,
    *,
    account_id: int | None,
    first: date,
    last: date,
    day: date,
    zone: ZoneInfo,
    now: datetime,
    step: timedelta = timedelta(minutes=15),
) -> UsageCharts:
    """Every series for an account (None: all accounts) over local days ``first``..``last``."""
    start = datetime.combine(min(first, day), time(), zone)
    end = datetime.combine(max(last, day) + timedelta(days=1), time(), zone)
    query = select(Attendance).where(
        Attendance.kind.in_(COUNTED_KINDS),
        Attendance.joined_at < end,
        (Attendance.left_at.is_(None)) | (Attendance.left_at > start),
    )
    sites_query = (
        select(Site.id, Site.name, func.count(Endpoint.id))
        .outerjoin(Endpoint, (Endpoint.site_id == Site.id) & Endpoint.enabled.is_(True))
        .group_by(Site.id, Site.name)
        .order_by(Site.id)
    )
    endpoints_query = select(Endpoint.id, Endpoint.site_id)
    if account_id is not None:
        query = query.where(Attendance.account_id == account_id)
        sites_query = sites_query.where(Site.account_id == account_id)
        endpoints_query = endpoints_query.where(Endpoint.account_id == account_id)
    async with db.session() as session:
        rows = (await session.scalars(query)).all()
        sites = [(int(i), str(n), int(c)) for i, n, c in (await session.execute(sites_query)).all()]
        endpoint_sites = {int(e): int(s) for e, s in (await session.execute(endpoints_query)).all()}
    stays = [Stay(r.joined_at, r.left_at, r.kind, r.device_class, r.endpoint_id) for r in rows]
    period_start = datetime.combine(first, time(), zone)
    period_end = datetime.combine(last + timedelta(days=1), time(), zone)
    in_period = [s for s in stays if _interval(s, now)[1] > period_start and s.joined_at < period_end]
    day_start = datetime.combine(day, time(), zone)
    return UsageCharts(
        day=day,
        step_minutes=int(step.total_seconds() // 60),
        concurrency=concurrency(
            stays, start=day_start, end=day_start + timedelta(days=1), step=step, now=now
        ),
        minutes_per_day=minutes_per_day(in_period, first=first, last=last, zone=zone, now=now),
        endpoints_per_site=endpoints_per_site(sites, in_period, endpoint_sites),
        device_classes=device_classes(in_period),
    )
