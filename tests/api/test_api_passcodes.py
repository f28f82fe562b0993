"""A new or changed passcode has at least 6 digits; a room saved with a shorter one keeps it, and works."""

from __future__ import annotations

from sqlalchemy import update

from rooms.models import Room

from .conftest import Api
from .test_api_rooms import booking_body, make_room


async def test_new_passcodes_have_six_to_ten_digits(api: Api) -> None:
    client = await api.login("admin@a.example")
    for short in ("1234", "12345", "12345678901", "12345a"):
        status, body = await client.call("POST", "/rooms", {"name": "Board room", "passcode": short})
        assert (status, body["error"]["field"]) == (422, "passcode"), (short, body)
    room = await make_room(client, passcode="123456")
    assert room["passcode"] == "123456"
    assert (await make_room(client, passcode="1234567890"))["passcode"] == "1234567890"
    status, body = await client.call("PATCH", f"/rooms/{room['id']}", {"passcode": "4321"})
    assert (status, body["error"]["field"]) == (422, "passcode")
    status, body = await client.call("POST", "/bookings", booking_body(room["id"], passcode="4321"))
    assert (status, body["error"]["field"]) == (422, "passcode")
    status, booking = await client.call("POST", "/bookings", booking_body(room["id"], passcode="654321"))
    assert status == 201, booking


async def test_a_room_with_a_short_passcode_from_before_keeps_it(api: Api) -> None:
    client = await api.login("admin@a.example")
    room = await make_room(client, passcode="123456")
    async with api.db.session() as session:
        await session.execute(update(Room).where(Room.id == room["id"]).values(passcode="2468"))
        await session.commit()
    status, patched = await client.call("PATCH", f"/rooms/{room['id']}", {"capacity": 4})
    assert (status, patched["capacity"], patched["passcode"]) == (200, 4, "2468")
    status, shown = await client.call("GET", f"/rooms/{room['id']}")
    assert (status, shown["passcode"]) == (200, "2468")
