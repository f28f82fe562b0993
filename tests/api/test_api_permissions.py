from __future__ import annotations

from .conftest import Api
from .test_api_rooms import booking_body, make_room


async def test_account_admin_reads_but_cannot_change_own_account(api: Api) -> None:
    admin = await api.login("admin@a.example")
    account_id = api.accounts["a"]
    status, account = await admin.call("GET", f"/accounts/{account_id}")
    assert status == 200 and account["name"] == "Account a"
    assert (await admin.call("PATCH", f"/accounts/{account_id}", {"name": "x"}))[0] == 403
    assert (await admin.call("DELETE", f"/accounts/{account_id}"))[0] == 403
    assert (await admin.call("GET", f"/accounts/{api.accounts['b']}"))[0] == 404
    root = await api.login("root@example.com")
    status, renamed = await root.call("PATCH", f"/accounts/{account_id}", {"name": "Renamed"})
    assert status == 200 and renamed["name"] == "Renamed"
    assert (await root.call("DELETE", f"/accounts/{api.accounts['b']}"))[0] == 204
    assert (await root.call("GET", f"/accounts/{api.accounts['b']}"))[0] == 404


async def test_organizers_change_only_their_own_bookings(api: Api) -> None:
    admin = await api.login("admin@a.example")
    room = await make_room(admin)
    status, _ = await admin.call(
        "POST", "/users", {"email": "org2@a.example", "password": "password-123", "role": "organizer"}
    )
    assert status == 201
    first = await api.login("org@a.example")
    second = await api.login("org2@a.example")
    status, booking = await first.call(
        "POST", "/bookings", booking_body(room["id"], rrule="FREQ=DAILY;COUNT=3")
    )
    assert status == 201 and booking["organizer_id"] is not None
    assert (await second.call("GET", f"/bookings/{booking['id']}"))[0] == 200
    status, body = await second.call("PATCH", f"/bookings/{booking['id']}", {"title": "mine now"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert (await second.call("DELETE", f"/bookings/{booking['id']}/occurrences/2026-03-17T09:00:00"))[
        0
    ] == 403
    status, patched = await first.call(
        "PATCH",
        f"/bookings/{booking['id']}",
        {"title": "Stand-up", "start": "2026-03-16T08:30:00", "end": "2026-03-16T09:00:00"},
    )
    assert status == 200 and patched["title"] == "Stand-up" and patched["sequence"] == 1
    assert patched["start"] == "2026-03-16T08:30:00" and patched["first_start"] == "2026-03-16T07:30:00Z"
    status, body = await first.call("PATCH", f"/bookings/{booking['id']}", {"title": None})
    assert status == 422 and body["error"]["field"] == "title"
    status, occurrences = await first.call(
        "GET", f"/bookings/{booking['id']}/occurrences?from=2026-03-17T00:00:00Z&to=2026-03-18T00:00:00Z"
    )
    assert status == 200 and [o["recurrence_id"] for o in occurrences] == ["2026-03-17T08:30:00"]
    status, body = await first.call("GET", f"/bookings/{booking['id']}/occurrences?from=yesterday")
    assert status == 422 and body["error"]["field"] == "from"
    assert (await first.call("DELETE", f"/bookings/{booking['id']}/occurrences/not-a-time"))[0] == 404
    # Organizers manage no users, sites or endpoints.
    assert (await first.call("GET", "/users"))[0] == 403
    assert (await first.call("POST", "/sites", {"name": "x"}))[0] == 403


async def test_users_are_scoped_to_their_account(api: Api) -> None:
    admin = await api.login("admin@a.example")
    status, users = await admin.call("GET", "/users")
    assert status == 200 and {u["email"] for u in users} == {"admin@a.example", "org@a.example"}
    status, body = await admin.call(
        "POST",
        "/users",
        {
            "email": "x@a.example",
            "password": "password-123",
            "role": "admin",
            "account_id": api.accounts["b"],
        },
    )
    assert status == 403 and body["error"]["field"] == "account_id"
    status, body = await admin.call(
        "POST", "/users", {"email": "org@a.example", "password": "password-123", "role": "organizer"}
    )
    assert status == 409 and body["error"]["field"] == "email"
    me = next(u for u in users if u["email"] == "admin@a.example")
    assert (await admin.call("DELETE", f"/users/{me['id']}"))[0] == 409
    root = await api.login("root@example.com")
    status, everyone = await root.call("GET", f"/users?account_id={api.accounts['b']}")
    assert status == 200 and {u["email"] for u in everyone} == {"admin@b.example", "org@b.example"}


async def test_deleted_user_token_stops_working(api: Api) -> None:
    admin = await api.login("admin@a.example")
    organizer = await api.login("org@a.example")
    _, users = await admin.call("GET", "/users")
    org = next(u for u in users if u["role"] == "organizer")
    assert (await admin.call("DELETE", f"/users/{org['id']}"))[0] == 204
    assert (await organizer.call("GET", "/auth/me"))[0] == 401


async def test_unknown_route_and_method_give_json_errors(api: Api) -> None:
    admin = await api.login("admin@a.example")
    status, body = await admin.call("GET", "/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await admin.call("PUT", "/rooms")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, body = await admin.call("GET", "/rooms/99999999999999999999")
    assert status == 404
