from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar

from .conftest import START, Api, Client
from .test_api_rooms import booking_body, make_room


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
