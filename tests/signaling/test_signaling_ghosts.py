"""Tier 3, hostile clients at the Socket.IO layer: raw WebSocket frames against a real server.

A client event named like python-socketio's reserved ``connect``/``disconnect`` must not join or drop a
participant, and one undecodable Engine.IO frame must end the connection like any lost connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rooms.models import Attendance, Meeting
from tests.signaling.live_server import Live, start_live
from tests.signaling.raw_socket import raw_socket
from tests.signaling.signaling_fakes import WAIT


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:
        yield state


def guest(name: str) -> dict[str, Any]:
    return {"meeting_number": "888000111", "passcode": "2468", "display_name": name}


async def test_reserved_event_names_neither_join_nor_drop_anyone(live: Live) -> None:
    screen, _ = await live.join("viewer", "Screen")  # watches; viewers do not count, so the meeting can end
    async with raw_socket(live.url) as raw:
        await raw.connect(guest("a"))
        a = await raw.expect("joined")
        assert (await screen.expect("participant_joined"))["participant"]["display_name"] == "a"

        await raw.emit("connect", {}, guest("b"))
        assert await raw.expect("error") == {
            "code": "unknown_event",
            "message": "'connect' is not a client event: a join is the Socket.IO connect itself",
            "event": "connect",
        }
        (conference,) = live.server.conferences()
        assert [p.display_name for p in conference.participants()] == ["Screen", "a"]
        # No ghost holds a seat: the room of 3 still takes two real guests after "a".
        carol = await live.client(guest("Carol"))
        await carol.expect("joined")
        dave = await live.client(guest("Dave"))
        await dave.expect("joined")

        await raw.emit("disconnect")
        assert (await raw.expect("error"))["event"] == "disconnect"
        await raw.emit("chat_send", {"text": "still here"})
        entry = (await screen.expect("chat"))["entry"]
        assert (entry["sender_id"], entry["text"]) == (a["participant_id"], "still here")
        assert [e for e in screen.seen if e == "participant_left"] == []

        for client in (carol, dave):
            await client.sio.emit("leave")
            await client.gone.wait()
        assert [(await screen.expect("participant_left"))["reason"] for _ in range(2)] == ["left", "left"]
        live.clock.timer_added.clear()
    async with asyncio.timeout(WAIT):
        await live.clock.timer_added.wait()  # the raw socket closed: "a" is in its reconnect grace
    live.clock.advance(live.server.settings.reconnect_grace_seconds + 1)
    left = await screen.expect("participant_left")
    assert (left["participant_id"], left["reason"]) == (a["participant_id"], "connection_lost")
    live.clock.advance(live.server.settings.empty_meeting_grace_seconds + 1)
    assert await screen.expect("meeting_ended") == {"reason": "empty"}
    await conference.close()  # waits for the end under way
    async with live.db.session() as session:
        (meeting,) = (await session.scalars(select(Meeting))).all()
        rows = (await session.scalars(select(Attendance).order_by(Attendance.id))).all()
    assert meeting.end_reason == "empty"
    assert [(r.display_name, r.leave_reason) for r in rows] == [
        ("Screen", "meeting_ended"),
        ("a", "connection_lost"),
        ("Carol", "left"),
        ("Dave", "left"),
    ]


async def test_events_without_a_name_are_refused_and_the_connection_stays(live: Live) -> None:
    async with raw_socket(live.url) as raw:
        await raw.connect(guest("a"))
        await raw.expect("joined")
        for frame in ("42[]", '42[{"x":1}]', "42[7]"):
            await raw.send(frame)
            assert (await raw.expect("error"))["code"] == "unknown_event"
        await raw.emit("hand", {"raised": True})
        assert (await raw.expect("participant_changed"))["participant"]["hand_raised"] is True


@pytest.mark.parametrize("frame", ["", "x"])
async def test_an_undecodable_frame_ends_the_connection_at_once(live: Live, frame: str) -> None:
    screen, _ = await live.join("viewer", "Screen")
    async with raw_socket(live.url) as raw:
        await raw.connect(guest("a"))
        a = await raw.expect("joined")
        (conference,) = live.server.conferences()
        (participant,) = [p for p in conference.participants() if p.id == a["participant_id"]]
        live.clock.timer_added.clear()
        await raw.send(frame)
        await raw.closed()
    async with asyncio.timeout(WAIT):  # not python-engineio's ping timeout (45 s)
        await live.clock.timer_added.wait()
    assert participant.sid is None  # detached, its seat held for the grace period
    again = await live.client({"reconnect_token": a["reconnect_token"]})
    joined = await again.expect("joined")
    assert (joined["participant_id"], joined["reconnected"]) == (a["participant_id"], True)
    assert "participant_left" not in screen.seen
