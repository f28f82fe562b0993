"""Usage charts as data: the series the reports page draws (rooms.usage_charts), for scripts too."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import Field, StringConstraints

from rooms.usage_charts import MAX_DAYS, usage_charts
from web.api.base import CLOCK, DB, Api, ApiError, parse_query, principal, send
from web.api.schemas import Body, Id, Out

api = Api()


class UsageQuery(Body):
    start: date
    end: date
    # The day whose concurrency is drawn; the period's last day if not given.
    day: date | None = None
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "Asia/Shanghai"
    step_minutes: Annotated[int, Field(ge=5, le=240)] = 15
    account_id: Id | None = None


class PointOut(Out):
    at: datetime
    participants: int


class DayOut(Out):
    date: date
    participant_minutes: float


class SiteOut(Out):
    site_id: int
    name: str
    endpoints: int
    connected: int


class DeviceOut(Out):
    device_class: str
    stays: int


class UsageOut(Out):
    day: date
    time_zone: str
    step_minutes: int
    concurrency: list[PointOut]
    minutes_per_day: list[DayOut]
    endpoints_per_site: list[SiteOut]
    device_classes: list[DeviceOut]


@api.op(
    "GET",
    "/reports/usage",
    summary="Usage series: concurrency over a day, participant-minutes per day, endpoints per site, devices",
    tag="reports",
    response=UsageOut,
    query=UsageQuery,
)
async def usage(request: web.Request) -> web.Response:
    who = principal(request)
    q = parse_query(request, UsageQuery)
    if q.end < q.start:
        raise ApiError(422, "invalid", "end: must not be before start", "end")
    if (q.end - q.start).days + 1 > MAX_DAYS:
        raise ApiError(422, "invalid", f"end: a report covers at most {MAX_DAYS} days", "end")
    day = q.day or q.end
    if abs((day - q.end).days) > MAX_DAYS:
        raise ApiError(422, "invalid", "day: too far from the period", "day")
    try:
        zone = ZoneInfo(q.tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ApiError(422, "invalid", f"tz: unknown time zone {q.tz!r}", "tz") from None
    account_id = who.account_id if who.account_id is not None else q.account_id
    charts = await usage_charts(
        request.app[DB], account_id=account_id, first=q.start, last=q.end, day=day, zone=zone,
        now=request.app[CLOCK](), step=timedelta(minutes=q.step_minutes),
    )  # fmt: skip
    return send(
        UsageOut(
            day=charts.day,
            time_zone=q.tz,
            step_minutes=charts.step_minutes,
            concurrency=[PointOut(at=p.at, participants=int(p.value)) for p in charts.concurrency],
            minutes_per_day=[DayOut(date=d, participant_minutes=m) for d, m in charts.minutes_per_day],
            endpoints_per_site=[
                SiteOut(site_id=s.site_id, name=s.name, endpoints=s.endpoints, connected=s.connected)
                for s in charts.endpoints_per_site
            ],
            device_classes=[DeviceOut(device_class=k, stays=n) for k, n in charts.device_classes],
        )
    )
