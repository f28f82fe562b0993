"""Host handover and the ban list, on the real server (Socket.IO on 127.0.0.1, SQLite, an injected clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.signaling.live_server import Client, Live, start_live
from tests.signaling.signaling_fakes import WAIT


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:  # capacity 3, reconnect grace 30 s
        yield state


async def _expect_where(client: Client, event: str, **fields: Any) -> Any:
    """The next ``event`` whose payload has these fields (earlier ones of that name are skipped)."""
    while True:
        data = await client.expect(event)
        if all(data.get(k) == v for k, v in fields.items()):
            return data


async def _role_change(client: Client, participant_id: str, role: str) -> None:
    while True:
        info = (await client.expect("participant_changed"))["participant"]
        if info["participant_id"] == participant_id and info["role"] == role:
            return


async def _refusal(live: Live, auth: dict[str, Any]) -> str:
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, auth)
    code: str = client.refusal["data"]["code"]
    return code


async def test_the_longest_present_cohost_becomes_host_after_the_reconnect_grace(live: Live) -> None:
    ann, a = await live.join("host", "Ann")
    bob, b = await live.join("participant", "Bob")
    carol, c = await live.join("participant", "Carol")
    await ann.sio.emit("moderate", {"action": "make_cohost", "participant_id": c["participant_id"]})
    await _role_change(bob, c["participant_id"], "cohost")

    live.clock.timer_added.clear()
    await ann.close()  # the connection drops: Ann's seat (and the host role) is held for the grace
    async with asyncio.timeout(WAIT):
        await live.clock.timer_added.wait()
    live.clock.advance(29)
    (conference,) = live.server.conferences()
    assert [p.role.value for p in conference.participants()] == ["host", "participant", "cohost"]
    live.clock.advance(1)

    left = await bob.expect("participant_left")
    assert (left["participant_id"], left["reason"]) == (a["participant_id"], "connection_lost")
    changed = {"participant_id": c["participant_id"], "previous_host_id": a["participant_id"]}
    assert await bob.expect("host_changed") == changed
    await _role_change(bob, c["participant_id"], "host")
    assert await carol.expect("host_changed") == changed
    await carol.expect("lobby_changed")

    # Carol has the host's powers now: only a host makes co-hosts.
    await carol.sio.emit("moderate", {"action": "make_cohost", "participant_id": b["participant_id"]})
    await _role_change(bob, b["participant_id"], "cohost")


async def test_without_a_cohost_the_longest_present_participant_becomes_host(live: Live) -> None:
    ann, a = await live.join("host", "Ann")
    recorder, _ = await live.join("recorder", "Recorder")  # present longer, but never a host
    _viewer, _ = await live.join("viewer", "Screen")
    _bob, b = await live.join("participant", "Bob")
    carol, _ = await live.join("participant", "Carol")
    await ann.sio.emit("leave")
    changed = {"participant_id": b["participant_id"], "previous_host_id": a["participant_id"]}
    assert await carol.expect("host_changed") == changed
    assert await recorder.expect("host_changed") == changed
    await _role_change(carol, b["participant_id"], "host")
    (conference,) = live.server.conferences()
    assert [p.role.value for p in conference.participants()] == ["recorder", "viewer", "host", "participant"]


async def test_a_second_host_staying_means_no_handover(live: Live) -> None:
    ann, a = await live.join("host", "Ann")
    _zoe, z = await live.join("host", "Zoe")
    bob, _ = await live.join("participant", "Bob")
    await ann.sio.emit("leave")
    await _expect_where(bob, "participant_left", participant_id=a["participant_id"])
    await bob.sio.emit("chat_send", {"text": "after"})  # the next event Bob gets comes after any handover
    await bob.expect("chat")
    assert "host_changed" not in bob.seen
    (conference,) = live.server.conferences()
    assert {p.id: p.role.value for p in conference.participants()}[z["participant_id"]] == "host"


async def test_a_removed_login_cannot_rejoin_with_a_new_login(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    user_id = await live.add_user("organizer")

    def login() -> dict[str, Any]:
        return {**live.login(user_id), "display_name": "Olga"}

    olga = await live.client(login())
    o = await olga.expect("joined")
    assert o["role"] == "host"
    await ann.sio.emit("moderate", {"action": "remove", "participant_id": o["participant_id"]})
    await olga.expect("removed")
    await olga.gone.wait()
    assert await _refusal(live, login()) == "removed"
