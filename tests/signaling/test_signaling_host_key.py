"""A host for every meeting, on the real server: the room's host key (claim_host, attempt-limited), a
signed-in organizer, and logins re-read at every join (a deleted or changed user no longer joins as host)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from sqlalchemy import delete, update

from rooms.models import User
from tests.signaling.live_server import Client, Live, start_live


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:
        yield state


def _guest(live: Live, name: str) -> dict[str, Any]:
    return {"meeting_number": live.room.meeting_number, "passcode": "2468", "display_name": name}


async def _refusal(live: Live, auth: dict[str, Any]) -> str:
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, auth)
    code: str = client.refusal["data"]["code"]
    return code


def _wrong(key: str) -> str:
    return str((int(key) + 1) % 1_000_000).zfill(6)


async def test_a_guest_with_the_host_key_becomes_host_of_a_guests_only_meeting(live: Live) -> None:
    key = live.room.host_key
    assert key is not None and len(key) == 6 and key.isdigit()
    gus = await live.client(_guest(live, "Gus"))
    g = await gus.expect("joined")
    eve = await live.client(_guest(live, "Eve"))
    await eve.expect("joined")
    assert g["role"] == "participant"
    await gus.sio.emit("moderate", {"action": "lock"})
    assert (await gus.expect("error"))["code"] == "not_allowed"  # nobody can moderate yet

    await gus.sio.emit("claim_host", {"host_key": key})
    changed = await eve.expect("host_changed")
    assert changed == {"participant_id": g["participant_id"], "previous_host_id": None}
    while (info := (await gus.expect("participant_changed"))["participant"])["participant_id"] != g[
        "participant_id"
    ]:
        pass
    assert info["role"] == "host"
    await gus.expect("lobby_changed")  # a host sees the lobby
    await gus.sio.emit("moderate", {"action": "lock"})
    assert (await eve.expect("meeting_changed"))["meeting"]["locked"] is True


async def test_wrong_host_keys_are_refused_and_limited(live: Live) -> None:
    key = live.room.host_key
    assert key is not None
    gus = await live.client(_guest(live, "Gus"))
    await gus.expect("joined")
    for left in (4, 3, 2, 1, 0):
        await gus.sio.emit("claim_host", {"host_key": _wrong(key)})
        error = await gus.expect("error")
        assert error["code"] == "wrong_host_key" and error["event"] == "claim_host"
        assert f"{left} tries left" in error["message"]
    # Out of tries for this stay: even the right key is not checked any more.
    await gus.sio.emit("claim_host", {"host_key": key})
    assert (await gus.expect("error"))["code"] == "host_key_locked"
    await gus.sio.emit("chat_send", {"text": "still here"})  # wrong keys are not protocol errors
    await gus.expect("chat")

    # The meeting's limit: 10 wrong keys in 10 minutes from everyone, then nobody is checked for a while.
    eve = await live.client(_guest(live, "Eve"))
    await eve.expect("joined")
    for _ in range(5):
        await eve.sio.emit("claim_host", {"host_key": _wrong(key)})
        assert (await eve.expect("error"))["code"] == "wrong_host_key"
    await gus.close()
    await eve.close()
    zoe = await live.client(_guest(live, "Zoe"))
    await zoe.expect("joined")
    await zoe.sio.emit("claim_host", {"host_key": key})
    locked = await zoe.expect("error")
    assert locked["code"] == "host_key_locked" and "for 600 s" in locked["message"]
    live.clock.advance(600)
    await zoe.sio.emit("claim_host", {"host_key": key})
    assert (await zoe.expect("host_changed"))["participant_id"]


async def test_a_claimed_host_takes_over_and_the_old_host_stays_cohost(live: Live) -> None:
    ann, a = await live.join("host", "Ann")
    gus = await live.client(_guest(live, "Gus"))
    g = await gus.expect("joined")
    assert live.room.host_key is not None
    await gus.sio.emit("claim_host", {"host_key": live.room.host_key})
    changed = await ann.expect("host_changed")
    assert changed == {"participant_id": g["participant_id"], "previous_host_id": a["participant_id"]}
    roles = {p.id: p.role.value for p in live.server.conferences()[0].participants()}
    assert roles == {a["participant_id"]: "cohost", g["participant_id"]: "host"}


async def test_a_guests_only_meeting_gets_a_host_when_an_organizer_signs_in(live: Live) -> None:
    gus = await live.client(_guest(live, "Gus"))
    await gus.expect("joined")
    olga_id = await live.add_user("organizer")
    olga = await live.client({**live.login(olga_id), "display_name": "Olga"})
    assert (await olga.expect("joined"))["role"] == "host"
    await olga.sio.emit("moderate", {"action": "mute_all"})
    assert await gus.expect("media_request") == {"source": "mic"}


async def test_a_deleted_or_changed_user_no_longer_joins_as_host(live: Live) -> None:
    olga_id = await live.add_user("organizer")
    auth = live.login(olga_id)
    async with live.db.writer() as session:
        await session.execute(delete(User).where(User.id == olga_id))
        await session.commit()
    assert await _refusal(live, auth) == "bad_token"

    # An admin made organizer (or moved to another account) since the token was minted: the token's
    # claims are stale, so it is refused until the user signs in again.
    adam_id = await live.add_user("admin")
    stale = live.login(adam_id, "admin")
    async with live.db.writer() as session:
        await session.execute(update(User).where(User.id == adam_id).values(role="organizer"))
        await session.commit()
    assert await _refusal(live, stale) == "bad_token"
    adam = await live.client(live.login(adam_id, "organizer"))
    assert (await adam.expect("joined"))["role"] == "host"
