from __future__ import annotations

import asyncio
from typing import Any

from icalendar import Calendar

from rooms.meetings import end_meeting, record_join, record_leave, start_meeting
from rooms.tokens import verify_join_token

from .conftest import SECRET, START, Api, Client


def booking_body(room_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "room_id": room_id,
        "title": "Weekly",
        "start": "2026-03-16T09:00:00",
        "end": "2026-03-16T10:00:00",
        "time_zone": "Europe/Berlin",
    }
    body.update(overrides)
    return body


async def make_room(client: Client, **body: Any) -> dict[str, Any]:
    status, room = await client.call("POST", "/rooms", {"name": "Board room", **body})
    assert status == 201, room
    assert isinstance(room, dict)
    return room


async def test_login_and_me(api: Api) -> None:
    client = await api.login("admin@a.example")
    status, me = await client.call("GET", "/auth/me")
    assert status == 200 and me["account_id"] == api.accounts["a"] and me["role"] == "admin"
    anonymous = Client(api.http, api.url)
    status, body = await anonymous.call(
        "POST", "/auth/login", {"email": "admin@a.example", "password": "nope-nope"}
    )
    assert status == 401 and body["error"]["code"] == "bad_credentials"
    status, body = await anonymous.call("GET", "/auth/me")
    assert status == 401
    anonymous.token = "not-a-token"
    assert (await anonymous.call("GET", "/rooms"))[0] == 401


async def test_room_site_endpoint_crud(api: Api) -> None:
    client = await api.login("admin@a.example")
    room = await make_room(client, passcode="123456", capacity=8, lobby=True)
    assert len(room["meeting_number"]) in (9, 10) and room["meeting_number"].isdigit()
    assert room["meeting_number"][0] != "0"
    status, patched = await client.call("PATCH", f"/rooms/{room['id']}", {"capacity": 4})
    assert status == 200 and patched["capacity"] == 4 and patched["passcode"] == "123456"
    status, site = await client.call("POST", "/sites", {"name": "北京会场"})
    assert status == 201 and site["account_id"] == api.accounts["a"]
    status, endpoint = await client.call(
        "POST", "/endpoints", {"site_id": site["id"], "display_name": "Polycom", "sip_username": "polycom-1"}
    )
    assert status == 201 and len(endpoint["sip_secret"]) >= 16
    status, shown = await client.call("GET", f"/endpoints/{endpoint['id']}")
    assert status == 200 and "sip_secret" not in shown
    status, body = await client.call(
        "POST", "/endpoints", {"site_id": site["id"], "display_name": "Dup", "sip_username": "polycom-1"}
    )
    assert status == 409 and body["error"]["field"] == "sip_username"
    organizer = await api.login("org@a.example")
    status, body = await organizer.call("POST", "/rooms", {"name": "x"})
    assert status == 403
    assert (await organizer.call("GET", f"/rooms/{room['id']}"))[0] == 200
    assert (await client.call("DELETE", f"/sites/{site['id']}"))[0] == 204
    assert (await client.call("GET", f"/endpoints/{endpoint['id']}"))[0] == 404


async def test_platform_admin_manages_accounts(api: Api) -> None:
    root = await api.login("root@example.com")
    status, account = await root.call("POST", "/accounts", {"name": "Gamma"})
    assert status == 201
    status, body = await root.call("POST", "/rooms", {"name": "r"})
    assert status == 422 and body["error"]["field"] == "account_id"
    status, room = await root.call("POST", "/rooms", {"name": "r", "account_id": account["id"]})
    assert status == 201 and room["account_id"] == account["id"]
    status, accounts = await root.call("GET", "/accounts")
    assert {a["name"] for a in accounts} >= {"Account a", "Account b", "Gamma"}
    admin = await api.login("admin@a.example")
    status, mine = await admin.call("GET", "/accounts")
    assert [a["id"] for a in mine] == [api.accounts["a"]]
    assert (await admin.call("POST", "/accounts", {"name": "x"}))[0] == 403


async def test_booking_series_occurrences_and_ics(api: Api) -> None:
    client = await api.login("org@a.example")
    admin = await api.login("admin@a.example")
    room = await make_room(admin)
    status, booking = await client.call(
        "POST",
        "/bookings",
        booking_body(
            room["id"],
            rrule="FREQ=WEEKLY;COUNT=4",
            invitees=[{"email": "x@example.com", "phone": "+86 10 1234"}],
        ),
    )
    assert status == 201, booking
    status, occurrences = await client.call("GET", f"/bookings/{booking['id']}/occurrences")
    assert [o["start"] for o in occurrences] == [
        "2026-03-16T08:00:00Z",
        "2026-03-23T08:00:00Z",
        "2026-03-30T07:00:00Z",
        "2026-04-06T07:00:00Z",
    ]
    # A single booking overlapping the third occurrence is refused, naming the series.
    status, body = await client.call(
        "POST",
        "/bookings",
        booking_body(room["id"], start="2026-03-30T07:30:00Z", end="2026-03-30T08:30:00Z"),
    )
    assert status == 409 and body["error"]["booking_id"] == booking["id"]
    status, moved = await client.call(
        "PATCH",
        f"/bookings/{booking['id']}/occurrences/2026-03-23T09:00:00",
        {"start": "2026-03-23T14:00:00", "end": "2026-03-23T15:00:00"},
    )
    assert status == 200 and moved["parent_id"] == booking["id"]
    status, parent = await client.call("DELETE", f"/bookings/{booking['id']}/occurrences/2026-04-06T09:00:00")
    assert status == 200 and parent["sequence"] == 2
    status, text = await client.call("GET", f"/bookings/{booking['id']}/invite.ics")
    assert status == 200
    cal = Calendar.from_ical(text)
    assert cal["method"] == "REQUEST" and len(list(cal.walk("VEVENT"))) == 2
    status, text = await client.call("GET", f"/rooms/{room['id']}/feed.ics")
    assert status == 200 and "BEGIN:VCALENDAR" in text
    # Another organizer may not change it; the account admin may.
    other = await api.login("admin@b.example")
    assert (await other.call("DELETE", f"/bookings/{booking['id']}"))[0] == 404
    status, cancelled = await admin.call("DELETE", f"/bookings/{booking['id']}")
    assert status == 200 and cancelled["cancelled"]
    status, text = await client.call("GET", f"/bookings/{booking['id']}/invite.ics")
    assert Calendar.from_ical(text)["method"] == "CANCEL"


async def test_bad_input_names_the_field_and_writes_nothing(api: Api) -> None:
    client = await api.login("admin@a.example")
    room = await make_room(client)
    cases: list[tuple[Any, int, str | None]] = [
        (booking_body(room["id"], time_zone="Mars/Base"), 422, "time_zone"),
        (booking_body(room["id"], end="2026-03-16T08:00:00"), 422, "end"),
        (booking_body(room["id"], rrule="FREQ=WEEKLY"), 422, "rrule"),
        (booking_body(room["id"], rrule="FREQ=WEEKLY;BYDAY=XY;COUNT=3"), 422, "rrule"),
        (booking_body(room["id"], start="2026-02-01T09:00:00", end="2026-02-01T10:00:00"), 422, "start"),
        (booking_body(room["id"], start="tomorrow"), 422, "start"),
        ({**booking_body(room["id"]), "room_id": "seven"}, 422, "room_id"),
        (booking_body(room["id"], extra=1), 422, "extra"),
        ({"title": "no room"}, 422, "room_id"),
        ([1, 2], 400, "body"),
    ]
    for body, status, field in cases:
        got, answer = await client.call("POST", "/bookings", body)
        assert (got, answer["error"]["field"]) == (status, field), (body, answer)
        assert field is None or field in answer["error"]["message"] or got == 400
    async with api.http.post(
        api.url + "/bookings", data=b"{not json", headers={"Authorization": f"Bearer {client.token}"}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["field"] == "body"
    status, listed = await client.call("GET", "/bookings")
    assert status == 200 and listed == []


async def test_twenty_concurrent_requests_for_one_slot(api: Api) -> None:
    client = await api.login("admin@a.example")
    room = await make_room(client)
    results = await asyncio.gather(
        *(client.call("POST", "/bookings", booking_body(room["id"], title=f"t{i}")) for i in range(20))
    )
    winners = [body for status, body in results if status == 201]
    assert len(winners) == 1
    losers = [body for status, body in results if status != 201]
    assert {b["error"]["booking_id"] for b in losers} == {winners[0]["id"]}
    assert all(status in (201, 409) for status, _ in results)


async def test_join_tokens_verify(api: Api) -> None:
    client = await api.login("org@a.example")
    admin = await api.login("admin@a.example")
    room = await make_room(admin)
    status, minted = await client.call("POST", f"/rooms/{room['id']}/join-tokens", {"display_name": "Guest"})
    assert status == 201
    claims = verify_join_token(SECRET, minted["token"], now=START)
    assert claims.room_id == room["id"] and claims.meeting_number == room["meeting_number"]
    status, booking = await client.call("POST", "/bookings", booking_body(room["id"]))
    status, minted = await client.call("POST", f"/bookings/{booking['id']}/join-tokens", {"role": "host"})
    assert status == 201 and verify_join_token(SECRET, minted["token"], now=START).booking_id == booking["id"]


async def test_meetings_and_attendance_read(api: Api) -> None:
    admin = await api.login("admin@a.example")
    room = await make_room(admin)
    meeting = await start_meeting(api.db, room_id=room["id"], now=START)
    await record_join(
        api.db,
        meeting_id=meeting.id,
        participant_id="p1",
        display_name="A",
        kind="browser",
        now=START,
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile",
    )
    await record_leave(api.db, meeting_id=meeting.id, participant_id="p1", reason="left", now=START)
    await end_meeting(api.db, meeting.id, reason="ended_by_host", now=START)
    status, meetings = await admin.call("GET", f"/meetings?room_id={room['id']}")
    assert status == 200 and [m["end_reason"] for m in meetings] == ["ended_by_host"]
    status, attendance = await admin.call("GET", f"/meetings/{meeting.id}/attendance")
    assert (
        status == 200
        and attendance[0]["device_class"] == "mobile"
        and attendance[0]["leave_reason"] == "left"
    )
    other = await api.login("admin@b.example")
    assert (await other.call("GET", f"/meetings/{meeting.id}"))[0] == 404
    assert (await other.call("GET", f"/meetings/{meeting.id}/attendance"))[0] == 404
    assert (await other.call("GET", "/meetings"))[1] == []


async def test_null_description_clears_it(api: Api) -> None:
    # Found by schemathesis: null went to a NOT NULL column and answered 500.
    client = await api.login("admin@a.example")
    room = await make_room(client)
    status, booking = await client.call("POST", "/bookings", booking_body(room["id"], description="Agenda"))
    assert status == 201, booking
    status, patched = await client.call("PATCH", f"/bookings/{booking['id']}", {"description": None})
    assert status == 200, patched
    assert patched["description"] == ""


async def test_one_time_password_must_be_changed_first(api: Api) -> None:
    from rooms.users import create_user

    await create_user(
        api.db,
        email="first@a.example",
        password="one-time-pw",
        role="admin",
        account_id=api.accounts["a"],
        now=START,
        must_change_password=True,
    )
    anonymous = Client(api.http, api.url)
    status, body = await anonymous.call(
        "POST", "/auth/login", {"email": "first@a.example", "password": "one-time-pw"}
    )
    assert status == 200 and body["user"]["must_change_password"] is True
    client = Client(api.http, api.url)
    client.token = body["token"]
    status, body = await client.call("GET", "/rooms")
    assert status == 403 and body["error"]["code"] == "password_change_required"
    status, body = await client.call(
        "POST", "/auth/password", {"current_password": "wrong-pw", "new_password": "a-new-password"}
    )
    assert status == 403 and body["error"]["field"] == "current_password"
    status, body = await client.call(
        "POST", "/auth/password", {"current_password": "one-time-pw", "new_password": "short"}
    )
    assert status == 422 and body["error"]["field"] == "new_password"
    status, body = await client.call(
        "POST", "/auth/password", {"current_password": "one-time-pw", "new_password": "a-new-password"}
    )
    assert status == 200 and body["must_change_password"] is False
    assert (await client.call("GET", "/rooms"))[0] == 200
    status, _ = await anonymous.call(
        "POST", "/auth/login", {"email": "first@a.example", "password": "one-time-pw"}
    )
    assert status == 401
