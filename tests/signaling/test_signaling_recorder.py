"""Recorders on the real server: past capacity, not keeping a meeting alive, a recording flag for all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import select

from rooms.database import Database
from rooms.models import Account, Attendance, Meeting, Room
from rooms.tokens import mint_join_token, verify_join_token
from rooms.users import create_user
from tests.conftest import SECRET_KEY, RunningServer
from tests.signaling.live_server import Client, Live, start_live
from tests.signaling.signaling_fakes import SECRET, T0
from web.keys import DATABASE


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:  # capacity 3, empty-meeting grace 60 s
        yield state


async def _rows(db: Database) -> tuple[list[Meeting], list[Attendance]]:
    async with db.session() as session:
        meetings = list((await session.scalars(select(Meeting))).all())
        attendance = list((await session.scalars(select(Attendance).order_by(Attendance.id))).all())
    return meetings, attendance


async def _refused(live: Live, role: str, name: str) -> str:
    client = Client()
    token, _ = mint_join_token(
        SECRET,
        room_id=live.room.room_id,
        meeting_number=live.room.meeting_number,
        account_id=live.room.account_id,
        role=role,
        display_name=name,
        now=live.clock.now(),
        ttl=timedelta(hours=1),
    )
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, {"token": token})
    code: str = client.refusal["data"]["code"]
    return code


async def _expect_recording(client: Client, recording: bool) -> None:
    changed = await client.expect("meeting_changed")
    assert changed["meeting"]["recording"] is recording


async def test_recorder_and_viewer_join_a_full_meeting_and_everyone_sees_recording(live: Live) -> None:
    ann, a = await live.join("host", "Ann")
    bob, _ = await live.join("participant", "Bob")
    carol, _ = await live.join("participant", "Carol")  # capacity 3 reached
    assert a["meeting"]["recording"] is False
    recorder, r = await live.join("recorder", "Recorder")
    assert (r["role"], r["meeting"]["recording"], r["upload_url"]) == ("recorder", True, None)
    for client in (ann, bob, carol):
        await _expect_recording(client, True)
    _viewer, v = await live.join("viewer", "Lobby screen")
    assert (v["role"], v["meeting"]["recording"]) == ("viewer", True)
    assert await _refused(live, "participant", "Dave") == "full"

    # A recorder neither publishes nor moderates.
    await recorder.sio.emit("publish_offer", {"sdp": "v=0", "sources": {"0": "mic"}})
    assert (await recorder.expect("error"))["code"] == "not_allowed"
    await recorder.sio.emit("moderate", {"action": "mute_all"})
    assert (await recorder.expect("error"))["code"] == "not_allowed"

    await recorder.sio.emit("leave")
    await recorder.gone.wait()
    for client in (ann, bob, carol):
        await _expect_recording(client, False)
    _meetings, rows = await _rows(live.db)
    assert [(row.display_name, row.kind) for row in rows] == [
        ("Ann", "browser"),
        ("Bob", "browser"),
        ("Carol", "browser"),
        ("Recorder", "recorder"),
        ("Lobby screen", "viewer"),
    ]
    assert rows[3].leave_reason == "left" and rows[3].device_class == "system"


async def test_a_meeting_with_only_a_recorder_left_ends_after_the_grace(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    recorder, _ = await live.join("recorder", "Recorder")
    await ann.sio.emit("leave")
    left = await recorder.expect("participant_left")
    assert left["reason"] == "left"
    (conference,) = live.server.conferences()
    live.clock.advance(59)
    assert not conference.ending  # the recorder alone does not end it early either
    live.clock.advance(1)
    assert await recorder.expect("meeting_ended") == {"reason": "empty"}
    await recorder.gone.wait()
    await conference.close()
    (meeting,), rows = await _rows(live.db)
    assert meeting.end_reason == "empty"
    assert [row.leave_reason for row in rows] == ["left", "meeting_ended"]


async def test_a_meeting_opened_by_a_recorder_alone_ends_after_the_grace(live: Live) -> None:
    recorder, _ = await live.join("recorder", "Recorder")
    live.clock.advance(60)
    assert await recorder.expect("meeting_ended") == {"reason": "empty"}


async def test_rest_api_never_mints_recorder_tokens(server: RunningServer) -> None:
    db: Database = server.app[DATABASE]
    now = datetime.now(UTC)
    async with db.session() as session:
        account = Account(name="Acme", created_at=now)
        session.add(account)
        await session.flush()
        room = Room(
            account_id=account.id,
            name="Board room",
            meeting_number="888000222",
            capacity=5,
            created_at=now,
        )
        session.add(room)
        await session.commit()
    await create_user(
        db, email="org@example.com", password="password-123", role="organizer", account_id=account.id, now=now
    )
    api = f"{server.url}/api/v1"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{api}/auth/login", json={"email": "org@example.com", "password": "password-123"}
        ) as resp:
            assert resp.status == 200, await resp.text()
            headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}

        async def mint(role: str) -> tuple[int, Any]:
            async with http.post(
                f"{api}/rooms/{room.id}/join-tokens", json={"role": role}, headers=headers
            ) as resp:
                return resp.status, await resp.json()

        status, body = await mint("recorder")
        assert status == 422 and body["error"]["field"] == "role", body
        status, body = await mint("viewer")
        assert status == 201, body
    assert verify_join_token(SECRET_KEY, body["token"], now=now).role == "viewer"


def test_join_tokens_carry_an_id_and_recorder_is_a_join_role() -> None:
    def mint(role: str) -> str:
        token, _ = mint_join_token(
            SECRET, room_id=1, meeting_number="1", account_id=1, role=role, display_name="", now=T0,
            ttl=timedelta(minutes=5),
        )  # fmt: skip
        return token

    first, second = (verify_join_token(SECRET, mint("recorder"), now=T0) for _ in range(2))
    assert first.role == "recorder"
    assert first.token_id and second.token_id and first.token_id != second.token_id
