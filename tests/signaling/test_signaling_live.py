"""Tier 3: a real aiohttp + Socket.IO server on 127.0.0.1, a real SQLite database, python-socketio clients."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Attendance, Meeting
from tests.signaling.live_server import Client, Live, start_live
from tests.signaling.signaling_fakes import WAIT


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:
        yield state


async def _rows(db: Database) -> tuple[list[Meeting], list[Attendance]]:
    async with db.session() as session:
        meetings = list((await session.scalars(select(Meeting))).all())
        attendance = list((await session.scalars(select(Attendance).order_by(Attendance.id))).all())
    return meetings, attendance


async def _refused(live: Live, auth: dict[str, Any]) -> str:
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, auth)
    code: str = client.refusal["data"]["code"]
    return code


async def test_join_with_tokens_and_passcode_refusals_and_capacity(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    _bob, b = await live.join("participant", "Bob")
    assert (await ann.expect("participant_joined"))["participant"]["participant_id"] == b["participant_id"]
    guest = {"meeting_number": "888000111", "passcode": "2468", "display_name": "Carol"}
    assert await _refused(live, {**guest, "passcode": "1357"}) == "wrong_passcode"
    assert await _refused(live, {**guest, "meeting_number": "000"}) == "no_such_meeting"
    assert await _refused(live, {"token": "forged"}) == "bad_token"
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    carol = await live.client(guest, user_agent=iphone)
    assert (await carol.expect("joined"))["role"] == "participant"
    assert await _refused(live, {**guest, "display_name": "Dave"}) == "full"  # capacity 3
    _viewer, v = await live.join("viewer", "Screen in the lobby")  # viewers do not count
    assert v["role"] == "viewer"
    await carol.sio.emit("chat_send", {"text": "hello"})
    assert (await ann.expect("chat"))["entry"]["text"] == "hello"
    await carol.sio.emit("leave")
    await carol.gone.wait()
    _meetings, rows = await _rows(live.db)
    assert [(r.display_name, r.kind) for r in rows] == [
        ("Ann", "browser"),
        ("Bob", "browser"),
        ("Carol", "browser"),
        ("Screen in the lobby", "viewer"),
    ]
    left = await ann.expect("participant_left")
    assert left["reason"] == "left"
    _meetings, rows = await _rows(live.db)
    assert rows[2].leave_reason == "left"
    assert (rows[2].device_class, rows[2].user_agent) == ("mobile", iphone)


async def test_time_limit_ends_the_meeting_and_closes_attendance(live: Live) -> None:
    ann, a = await live.join("host", "Ann")
    bob, _ = await live.join("participant", "Bob")
    assert a["meeting"]["ends_at"] == "2026-11-21T09:30:00Z"
    live.clock.advance(25 * 60)
    assert await bob.expect("meeting_warning") == {"ends_at": "2026-11-21T09:30:00Z", "seconds_left": 300}
    live.clock.advance(4 * 60)
    assert (await bob.expect("meeting_warning"))["seconds_left"] == 60
    live.clock.advance(60)
    assert await ann.expect("meeting_ended") == {"reason": "time_limit"}
    assert await bob.expect("meeting_ended") == {"reason": "time_limit"}
    await ann.gone.wait()
    await bob.gone.wait()
    for conference in live.server.conferences():
        await conference.close()  # idempotent: waits for the end already under way
    (meeting,), rows = await _rows(live.db)
    assert meeting.end_reason == "time_limit"
    assert meeting.ended_at is not None
    assert [r.left_at is not None for r in rows] == [True, True]


async def test_reconnect_keeps_identity_and_others_see_nothing(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    bob, b = await live.join("participant", "Bob")
    await ann.expect("participant_joined")
    await bob.sio.emit("hand", {"raised": True})
    await ann.expect("participant_changed")
    live.clock.timer_added.clear()
    await bob.close()
    async with asyncio.timeout(WAIT):
        await live.clock.timer_added.wait()
    live.clock.advance(20)
    again = await live.client({"reconnect_token": b["reconnect_token"]})
    joined = await again.expect("joined")
    assert (joined["participant_id"], joined["role"], joined["reconnected"]) == (
        b["participant_id"],
        "participant",
        True,
    )
    me = next(p for p in joined["participants"] if p["participant_id"] == b["participant_id"])
    assert me["hand_raised"] is True
    live.clock.advance(20)  # past the original grace: the seat was kept
    await again.sio.emit("chat_send", {"text": "back"})
    assert (await ann.expect("chat"))["entry"]["text"] == "back"
    assert "participant_left" not in ann.seen
    _meetings, rows = await _rows(live.db)
    assert [r.left_at for r in rows] == [None, None]
    live.clock.timer_added.clear()
    await again.close()
    async with asyncio.timeout(WAIT):
        await live.clock.timer_added.wait()  # the server noticed: the grace timer is running
    live.clock.advance(31)
    assert (await ann.expect("participant_left"))["reason"] == "connection_lost"


async def test_file_sharing_upload_announce_download_and_retention(live: Live) -> None:
    _ann, a = await live.join("host", "Ann")
    bob, _ = await live.join("participant", "Bob")
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field(
            "file", b"%PDF-1.4 agenda", filename="agenda.exe", content_type="application/x-msdownload"
        )
        async with http.post(live.url + a["upload_url"], data=form) as response:
            assert response.status == 201, await response.text()
            uploaded = await response.json()
        assert uploaded["content_type"] == "application/pdf"
        entry = (await bob.expect("chat"))["entry"]
        assert entry["file"]["name"] == "agenda.exe"
        url = live.url + entry["file"]["url"]
        async with http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "attachment" in response.headers["Content-Disposition"]
            assert await response.read() == b"%PDF-1.4 agenda"
        async with http.get(url.replace("s=", "s=x")) as response:
            assert response.status == 403
        async with http.get(url.split("?")[0]) as response:
            assert response.status == 403
        big = aiohttp.FormData()
        big.add_field("file", b"x" * 1001, filename="big.bin")
        async with http.post(live.url + a["upload_url"], data=big) as response:
            assert response.status == 413
            assert (await response.json())["error"]["field"] == "file"
        async with http.post(live.url + a["upload_url"].replace("p=", "p=x"), data=b"") as response:
            assert response.status == 403
        async with http.post(live.url + a["upload_url"], data=b"not a form") as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "bad_request"
        empty = aiohttp.FormData()
        empty.add_field("file", b"", filename="empty.txt")
        async with http.post(live.url + a["upload_url"], data=empty) as response:
            assert response.status == 400
        async with http.get(live.url + "/files/abc/def") as response:
            assert response.status == 400
        late, late_joined = await live.join("participant", "Late")
        (shared,) = [e for e in late_joined["chat"] if e["file"]]
        async with http.get(live.url + shared["file"]["url"]) as response:
            assert response.status == 200
        retention = live.server.settings.file_retention_seconds
        removed = live.server.files.sweep(
            live.clock.now() + timedelta(seconds=retention), timedelta(seconds=retention)
        )
        assert removed == 1
        async with http.get(url) as response:
            assert response.status in (403, 404)
    del late


def _real_fuzz_batches() -> Any:
    from tests.signaling.test_signaling_fuzz import batches

    return batches


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_real_fuzz_batches())
def test_fuzz_over_real_sockets_disturbs_nobody(batch: list[tuple[Any, list[Any]]]) -> None:
    async def scenario(root: Path) -> None:
        async with start_live(root) as live:
            ann, _ = await live.join("host", "Ann")
            fuzzer, _ = await live.join("participant", "Fuzz")
            carol, _ = await live.join("participant", "Carol")
            for event, args in batch:
                name = event if isinstance(event, str) and event not in RESERVED else "x"
                await fuzzer.sio.emit(name, tuple(args) if len(args) != 1 else args[0])
            await ann.sio.emit("chat_send", {"text": "still fine?"})
            for client in (ann, carol):
                while (await client.expect("chat"))["entry"]["text"] != "still fine?":
                    pass
                assert not {"error", "removed", "meeting_ended", "media_request"} & set(client.seen)
                assert not client.gone.is_set()

    with tempfile.TemporaryDirectory() as root:
        asyncio.run(scenario(Path(root)))


# Event names python-socketio itself reserves on the client side.
RESERVED = {"connect", "connect_error", "disconnect", "message"}


async def test_lobby_and_moderation_over_real_sockets(tmp_path: Path) -> None:
    async with start_live(tmp_path, lobby=True) as live:
        host, _ = await live.join("host", "Ann")
        guest = await live.client(
            {"meeting_number": "888000111", "passcode": "2468", "display_name": "Carol"}
        )
        assert (await guest.expect("lobby_waiting"))["room_name"] == "Board room"
        (entry,) = (await host.expect("lobby_changed"))["waiting"]
        await host.sio.emit("moderate", {"action": "admit", "participant_id": entry["participant_id"]})
        joined = await guest.expect("joined")
        assert joined["participant_id"] == entry["participant_id"]
        await guest.sio.emit("moderate", {"action": "remove", "participant_id": joined["participant_id"]})
        assert await guest.expect("error") == {
            "code": "not_allowed",
            "message": "participant may not remove",
            "event": "moderate",
        }
        other = await live.client({"meeting_number": "888000111", "passcode": "2468", "display_name": "Dave"})
        await other.expect("lobby_waiting")
        waiting: list[dict[str, Any]] = []
        while not waiting:
            waiting = (await host.expect("lobby_changed"))["waiting"]
        await host.sio.emit("moderate", {"action": "reject", "participant_id": waiting[0]["participant_id"]})
        assert (await other.expect("lobby_rejected"))["code"] == "rejected"
        await other.gone.wait()
        await host.sio.emit("moderate", {"action": "remove", "participant_id": joined["participant_id"]})
        assert await guest.expect("removed") == {"reason": "removed"}
        await guest.gone.wait()
        _meetings, rows = await _rows(live.db)
        assert [(r.display_name, r.leave_reason) for r in rows] == [("Ann", None), ("Carol", "removed")]
