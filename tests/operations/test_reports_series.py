"""The usage series behind the report charts: pure functions over stays, and GET /reports/usage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from rooms.meetings import record_join, record_leave, start_meeting
from rooms.models import Endpoint, Room, Site
from rooms.usage_charts import Stay, concurrency, device_classes, minutes_per_day
from tests.api.conftest import Api, api, template_db

__all__ = ["api", "template_db"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI)


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def stay(joined: float, left: float | None, device: str = "desktop") -> Stay:
    return Stay(at(joined), None if left is None else at(left), "browser", device)


def test_concurrency_is_the_peak_of_each_step_and_a_handover_is_not_two() -> None:
    stays = [stay(9, 10), stay(9.25, 9.5), stay(10, 11), stay(10.5, None)]
    points = concurrency(stays, start=at(9), end=at(11.5), step=timedelta(minutes=30), now=at(11.25))
    assert [(p.at.hour, p.at.minute, p.value) for p in points] == [
        (9, 0, 2.0),  # 9:15-9:30 two at once
        (9, 30, 1.0),  # the short stay left at 9:30 exactly
        (10, 0, 1.0),  # one leaves at 10:00 as another joins: still one
        (10, 30, 2.0),
        (11, 0, 1.0),  # the open stay counts until now (11:15)
    ]
    assert concurrency([], start=at(0), end=at(24), step=timedelta(minutes=15), now=at(12))[0].value == 0
    assert len(concurrency([], start=at(0), end=at(24), step=timedelta(minutes=15), now=at(12))) == 96


def test_minutes_per_day_split_at_local_midnight() -> None:
    stays = [
        stay(23, 25),
        stay(8, 8.5),
        stay(-1, 0.5),
    ]  # across midnight; a plain half hour; from the day before
    days = minutes_per_day(stays, first=date(2026, 3, 2), last=date(2026, 3, 3), zone=SHANGHAI, now=at(30))
    assert days == ((date(2026, 3, 2), 60.0 + 30 + 30), (date(2026, 3, 3), 60.0))


def test_device_classes_most_first() -> None:
    stays = [stay(1, 2, "mobile"), stay(1, 2, "desktop"), stay(1, 2, "mobile"), stay(1, 2, "room-system")]
    assert device_classes(stays) == (("mobile", 2), ("desktop", 1), ("room-system", 1))


async def test_the_api_serves_the_series_for_the_callers_account(api: Api) -> None:
    a = api.accounts["a"]
    async with api.db.session() as session:
        site = Site(account_id=a, name="一中会场", created_at=api.clock.now)
        room = Room(account_id=a, name="R", meeting_number="555000333", passcode=None, capacity=9,
                    max_session_minutes=None, created_at=api.clock.now)  # fmt: skip
        session.add_all([site, room])
        await session.flush()
        session.add_all(
            [
                Endpoint(
                    account_id=a,
                    site_id=site.id,
                    sip_username=f"ep{i}",
                    sip_secret="x",
                    display_name=f"T{i}",
                    created_at=api.clock.now,
                )
                for i in range(3)
            ]
        )
        await session.commit()
        endpoint_id = (await session.scalars(select(Endpoint.id).where(Endpoint.site_id == site.id))).first()
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    meeting = await start_meeting(api.db, room_id=room.id, now=start)
    await record_join(api.db, meeting_id=meeting.id, participant_id="p1", display_name="Ann", kind="browser",
                      now=start, user_agent="Mozilla/5.0 (iPhone; Mobile)")  # fmt: skip
    await record_join(api.db, meeting_id=meeting.id, participant_id="p2", display_name="Room", kind="sip",
                      now=start + timedelta(minutes=10), endpoint_id=endpoint_id)  # fmt: skip
    await record_join(api.db, meeting_id=meeting.id, participant_id="rec", display_name="Recorder",
                      kind="recorder", now=start)  # fmt: skip
    await record_leave(api.db, meeting_id=meeting.id, participant_id="p1", reason="left",
                       now=start + timedelta(minutes=40))  # fmt: skip
    api.clock.now = start + timedelta(hours=1)

    admin = await api.login("admin@a.example")
    status, body = await admin.call("GET", "/reports/usage?start=2026-03-01&end=2026-03-02&step_minutes=30")
    assert status == 200, body
    assert body["day"] == "2026-03-02" and body["time_zone"] == "Asia/Shanghai"
    assert len(body["concurrency"]) == 48
    nine = body["concurrency"][18]
    assert (
        nine["at"].startswith("2026-03-02T09:00:00+08:00") and nine["participants"] == 2
    )  # not the recorder
    assert body["minutes_per_day"] == [
        {"date": "2026-03-01", "participant_minutes": 0.0},
        {"date": "2026-03-02", "participant_minutes": 40.0 + 50.0},
    ]
    assert body["endpoints_per_site"] == [
        {"site_id": site.id, "name": "一中会场", "endpoints": 3, "connected": 1}
    ]
    assert body["device_classes"] == [
        {"device_class": "mobile", "stays": 1},
        {"device_class": "room-system", "stays": 1},
    ]
    other = await api.login("admin@b.example")
    status, body = await other.call("GET", f"/reports/usage?start=2026-03-01&end=2026-03-02&account_id={a}")
    assert status == 200 and body["minutes_per_day"][1]["participant_minutes"] == 0.0
    assert body["endpoints_per_site"] == []
    for query, field in (
        ("start=2026-03-05&end=2026-03-01", "end"),
        ("start=2025-01-01&end=2026-03-01", "end"),
        ("start=2026-03-01&end=2026-03-02&tz=Mars/Olympus", "tz"),
        ("start=2026-03-01&end=2026-03-02&tz=../../etc", "tz"),
        ("start=2026-03-01", "end"),
    ):
        status, body = await admin.call("GET", f"/reports/usage?{query}")
        assert (status, body["error"]["field"]) == (422, field), (query, body)
