"""Every room has a host key: generated with the room, shown to the account's organizers and admins only."""

from __future__ import annotations

from .conftest import Api
from .test_api_rooms import make_room


async def test_a_room_has_a_host_key_its_account_sees(api: Api) -> None:
    admin = await api.login("admin@a.example")
    room = await make_room(admin)
    key = room["host_key"]
    assert len(key) == 6 and key.isdigit()
    status, again = await admin.call("GET", f"/rooms/{room['id']}")
    assert status == 200 and again["host_key"] == key
    other = await make_room(admin, name="Second room")
    assert other["host_key"].isdigit()
    stranger = await api.login("admin@b.example")
    status, _ = await stranger.call("GET", f"/rooms/{room['id']}")
    assert status == 404
    status, listed = await stranger.call("GET", "/rooms")
    assert status == 200 and all(r["id"] != room["id"] for r in listed)
