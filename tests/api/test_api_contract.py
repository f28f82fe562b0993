"""The OpenAPI document against the live server: account isolation on every route, and schemathesis."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from rooms.meetings import start_meeting

from .conftest import Api
from .test_api_rooms import booking_body, make_room

ROOMS_TAGS = {"auth", "accounts", "users", "sites", "endpoints", "rooms", "bookings", "meetings"}


async def test_every_route_hides_foreign_objects(api: Api) -> None:
    owner = await api.login("admin@a.example")
    room = await make_room(owner)
    _, site = await owner.call("POST", "/sites", {"name": "s"})
    _, endpoint = await owner.call("POST", "/endpoints", {"site_id": site["id"], "display_name": "e"})
    _, booking = await owner.call("POST", "/bookings", booking_body(room["id"], rrule="FREQ=DAILY;COUNT=3"))
    _, users = await owner.call("GET", "/users")
    meeting = await start_meeting(api.db, room_id=room["id"], now=api.clock.now)
    ids = {
        "account_id": str(api.accounts["a"]),
        "room_id": str(room["id"]),
        "site_id": str(site["id"]),
        "endpoint_id": str(endpoint["id"]),
        "booking_id": str(booking["id"]),
        "user_id": str(users[0]["id"]),
        "meeting_id": str(meeting.id),
        "recurrence_id": "2026-03-17T09:00:00",
    }
    _, document = await owner.call("GET", "/openapi.json")
    stranger = await api.login("admin@b.example")
    checked = 0
    for path, operations in document["paths"].items():
        if "{" not in path:
            continue
        concrete = re.sub(r"\{([a-z_]+)\}", lambda m: ids.get(m.group(1), "1"), path)
        for method, operation in operations.items():
            if not set(operation["tags"]) <= ROOMS_TAGS:
                continue  # other packages' routes (billing) test their own isolation
            status, body = await stranger.call(method.upper(), concrete, {})
            assert status == 404, (method, path, status, body)
            assert set(body) == {"error"}
            checked += 1
    assert checked >= 20
    # Ids inside bodies are checked too.
    status, _ = await stranger.call("POST", "/endpoints", {"site_id": site["id"], "display_name": "x"})
    assert status == 404
    status, _ = await stranger.call(
        "POST", "/bookings", booking_body(room["id"], start="2026-05-01T09:00:00", end="2026-05-01T10:00:00")
    )
    assert status == 404
    for listing in ("/rooms", "/sites", "/endpoints", "/bookings", "/meetings"):
        status, rows = await stranger.call("GET", listing)
        assert status == 200 and rows == [], listing
    # And the owner still sees everything.
    for path in (f"/rooms/{room['id']}", f"/bookings/{booking['id']}", f"/meetings/{meeting.id}"):
        assert (await owner.call("GET", path))[0] == 200


async def _schemathesis(api: Api, token: str, tmp_path: Path, *extra: str, config: str = "") -> None:
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config)
    st = Path(sys.executable).parent / "st"
    process = await asyncio.create_subprocess_exec(
        str(st),
        "--config-file",
        str(config_file),
        "run",
        f"{api.url}/openapi.json",
        "--url",
        api.url,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--mode",
        "positive",
        "--phases",
        "examples,fuzzing",
        "--max-examples",
        "10",
        "--seed",
        "1",
        "-H",
        f"Authorization: Bearer {token}",
        "--no-color",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    # Bounds a hang only: the run grows with the routes (about 60 s on a quiet machine, far more under load).
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, output.decode()[-8000:]


@pytest.mark.timeout(360)
async def test_schemathesis_with_random_ids(api: Api, tmp_path: Path) -> None:
    client = await api.login("admin@a.example")
    await make_room(client)
    assert client.token is not None
    await _schemathesis(api, client.token, tmp_path)


@pytest.mark.timeout(360)
async def test_schemathesis_against_existing_objects(api: Api, tmp_path: Path) -> None:
    """Path ids point at real objects, so generated bodies reach the domain logic (DELETE left out)."""
    client = await api.login("admin@a.example")
    room = await make_room(client)
    _, site = await client.call("POST", "/sites", {"name": "s"})
    _, endpoint = await client.call("POST", "/endpoints", {"site_id": site["id"], "display_name": "e"})
    _, booking = await client.call("POST", "/bookings", booking_body(room["id"], rrule="FREQ=DAILY;COUNT=30"))
    meeting = await start_meeting(api.db, room_id=room["id"], now=api.clock.now)
    assert client.token is not None
    config = f"""
[parameters]
"path.account_id" = {api.accounts["a"]}
"path.room_id" = {room["id"]}
"path.site_id" = {site["id"]}
"path.endpoint_id" = {endpoint["id"]}
"path.booking_id" = {booking["id"]}
"path.meeting_id" = {meeting.id}
"path.recurrence_id" = "2026-03-20T09:00:00"
"""
    await _schemathesis(api, client.token, tmp_path, "--exclude-method", "DELETE", config=config)
