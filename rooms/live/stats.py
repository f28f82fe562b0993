"""Viewer statistics of live channels: pure functions of viewer sessions and concurrency samples.

A viewer session is concurrent while its last playlist or segment request is under CONCURRENT_WINDOW old
(2 × the 2 s target + grace: a paused player stops fetching) and it has played (fetched a segment: a page
that opened a session and never played is no viewer); the sampler counts distinct viewer_ids of the
concurrent sessions every SAMPLE_INTERVAL. Peak concurrency is the largest sample, unique viewers the distinct
viewer_ids, views the sessions that fetched at least one segment (a page load without playback is no view).
Rehearsal sessions are staff watching before the channel is public: public statistics never include them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

CONCURRENT_WINDOW = timedelta(seconds=15)
SAMPLE_INTERVAL = timedelta(seconds=10)
BUCKET = timedelta(minutes=5)
PUBLIC_PHASES = frozenset({"live", "replay"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Viewing:
    """One viewer session as the statistics see it."""

    viewer_id: str
    phase: str
    first_seen: datetime
    last_seen: datetime
    segments: int
    device_class: str = "other"
    browser: str = "Other"
    os: str = "Other"


@dataclass(frozen=True)
class Sample:
    at: datetime
    phase: str
    viewers: int


@dataclass(frozen=True)
class Point:
    """One bucket of the concurrency chart: the peak of the samples taken in [start, start + BUCKET)."""

    start: datetime
    peak: int


@dataclass(frozen=True)
class Summary:
    peak_concurrency: int
    peak_at: datetime | None
    unique_viewers: int
    views: int
    watch_minutes: float
    devices: dict[str, int] = field(default_factory=dict)  # device class -> views
    browsers: dict[str, int] = field(default_factory=dict)
    systems: dict[str, int] = field(default_factory=dict)
    series: tuple[Point, ...] = ()


def sample_instant(now: datetime) -> datetime:
    """``now`` rounded down to the sampling grid: every sampler (in any process) writes the same instant."""
    step = int(SAMPLE_INTERVAL.total_seconds())
    seconds = math.floor((now - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % step)


def is_concurrent(last_seen: datetime, now: datetime) -> bool:
    return timedelta(0) <= now - last_seen < CONCURRENT_WINDOW


def concurrent(viewings: Iterable[Viewing], now: datetime) -> dict[str, int]:
    """Distinct viewer_ids watching at ``now``, per phase (two tabs of one person count once)."""
    people: dict[str, set[str]] = {}
    for v in viewings:
        if v.segments > 0 and v.first_seen <= now and is_concurrent(v.last_seen, now):
            people.setdefault(v.phase, set()).add(v.viewer_id)
    return {phase: len(ids) for phase, ids in people.items()}


def watch_seconds(v: Viewing, lo: datetime | None = None, hi: datetime | None = None) -> float:
    """Seconds a session watched, clipped to [lo, hi); nothing unless it fetched a segment."""
    if v.segments <= 0:
        return 0.0
    start = v.first_seen if lo is None else max(v.first_seen, lo)
    end = v.last_seen if hi is None else min(v.last_seen, hi)
    return max(0.0, (end - start).total_seconds())


def series(samples: Iterable[Sample], *, bucket: timedelta = BUCKET) -> tuple[Point, ...]:
    """Peak concurrency per bucket (5 minutes by default), summed over the phases of each sampling instant.

    Buckets without a sample between the first and the last one are zero: the chart shows the gap."""
    per_instant: Counter[datetime] = Counter()
    for s in samples:
        per_instant[s.at] += s.viewers
    if not per_instant:
        return ()
    step = int(bucket.total_seconds())

    def floor(at: datetime) -> datetime:
        seconds = math.floor((at - EPOCH).total_seconds())
        return EPOCH + timedelta(seconds=seconds - seconds % step)

    peaks: dict[datetime, int] = {}
    for at, viewers in per_instant.items():
        key = floor(at)
        peaks[key] = max(peaks.get(key, 0), viewers)
    first, last = min(peaks), max(peaks)
    points = []
    at = first
    while at <= last:
        points.append(Point(at, peaks.get(at, 0)))
        at += bucket
    return tuple(points)


def summarize(
    viewings: Sequence[Viewing], samples: Sequence[Sample], *, phases: frozenset[str] = PUBLIC_PHASES
) -> Summary:
    """The statistics of one channel over the given phases (public ones by default: rehearsal excluded)."""
    mine = [v for v in viewings if v.phase in phases]
    views = [v for v in mine if v.segments > 0]
    per_instant: Counter[datetime] = Counter()
    for s in samples:
        if s.phase in phases:
            per_instant[s.at] += s.viewers
    peak_at = None
    peak = 0
    for at in sorted(per_instant):
        if per_instant[at] > peak:
            peak, peak_at = per_instant[at], at
    return Summary(
        peak_concurrency=peak,
        peak_at=peak_at,
        unique_viewers=len({v.viewer_id for v in mine}),
        views=len(views),
        watch_minutes=round(sum(watch_seconds(v) for v in views) / 60, 1),
        devices=dict(Counter(v.device_class for v in views).most_common()),
        browsers=dict(Counter(v.browser for v in views).most_common()),
        systems=dict(Counter(v.os for v in views).most_common()),
        series=series(s for s in samples if s.phase in phases),
    )


def viewer_minutes(viewings: Iterable[Viewing], lo: datetime, hi: datetime) -> int:
    """Live-viewer minutes inside [lo, hi) for billing: public sessions that played, each rounded up to a
    whole minute (as participant minutes are); rehearsal is the customer's own staff and is not billed."""
    total = 0
    for v in viewings:
        if v.phase not in PUBLIC_PHASES:
            continue
        seconds = watch_seconds(v, lo, hi)
        if seconds > 0:
            total += math.ceil(seconds / 60)
    return total
