from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar

from web.api.throttle import LoginThrottle

from .conftest import PASSWORD, START, Api, Client
from .test_api_rooms import booking_body, make_room


def test_throttle_blocks_after_attempts_and_ages_out() -> None:
    throttle = LoginThrottle(attempts=3, window=timedelta(minutes=10), max_keys=2)
    for i in range(3):
        assert not throttle.blocked("A@x", "1.2.3.4", START + timedelta(minutes=i))
        throttle.failed("a@x", "1.2.3.4", START + timedelta(minutes=i))
    assert throttle.blocked("a@x", "1.2.3.4", START + timedelta(minutes=3))
    assert not throttle.blocked("a@x", "5.6.7.8", START + timedelta(minutes=3))
    assert not throttle.blocked("a@x", "1.2.3.4", START + timedelta(minutes=10, seconds=1))
    throttle.failed("b@x", "1", START)
    throttle.failed("c@x", "1", START)
    throttle.failed("d@x", "1", START)  # evicts the oldest key
    assert len(throttle) == 2
    throttle.succeeded("d@x", "1")
    assert len(throttle) == 1


async def test_login_is_throttled_per_email(api: Api) -> None:
    anonymous = Client(api.http, api.url)
    for _ in range(10):
        status, _ = await anonymous.call(
            "POST", "/auth/login", {"email": "admin@a.example", "password": "wrong-one"}
        )
        assert status == 401
    status, body = await anonymous.call(
        "POST", "/auth/login", {"email": "admin@a.example", "password": PASSWORD}
    )
    assert status == 429 and body["error"]["code"] == "too_many_attempts"
    # Another user from the same address is not affected; the clock moving on lifts the block.
    assert (await anonymous.call("POST", "/auth/login", {"email": "org@a.example", "password": PASSWORD}))[
        0
    ] == 200
    api.clock.now = START + timedelta(minutes=16)
    assert (await anonymous.call("POST", "/auth/login", {"email": "admin@a.example", "password": PASSWORD}))[
        0
    ] == 200


async def test_expired_access_token_is_refused(api: Api) -> None:
    client = await api.login("admin@a.example")
    api.clock.now = START + timedelta(hours=12)
    status, body = await client.call("GET", "/auth/me")
    assert status == 401 and body["error"]["code"] == "token_expired"


async def test_feed_key_opens_only_its_room_feed(api: Api) -> None:
    admin = await api.login("admin@a.example")
    room = await make_room(admin)
    other_room = await make_room(admin)
    await admin.call("POST", "/bookings", booking_body(room["id"]))
    status, minted = await admin.call("POST", f"/rooms/{room['id']}/feed-key")
    assert status == 201 and minted["path"].startswith(f"rooms/{room['id']}/feed.ics?key=")
    anonymous = Client(api.http, api.url)
    status, text = await anonymous.call("GET", "/" + minted["path"])
    assert status == 200
    assert [str(e["summary"]) for e in Calendar.from_ical(text).walk("VEVENT")] == ["Weekly"]
    status, _ = await anonymous.call("GET", f"/rooms/{other_room['id']}/feed.ics?key={minted['key']}")
    assert status == 404
    assert (await anonymous.call("GET", f"/rooms/{room['id']}/feed.ics"))[0] == 401
    assert (await anonymous.call("GET", f"/rooms/{room['id']}/feed.ics?key=forged"))[0] == 404
