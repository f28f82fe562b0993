"""Who a removal keeps out, on the real server: bans follow the server's identity of a participant (a login's
user, the rejoin key this meeting signed), never a browser-chosen device id or a token many people share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.signaling.live_server import Client, Live, start_live
from tests.signaling.signaling_fakes import join_token


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:  # capacity 3
        yield state


async def _refusal(live: Live, auth: dict[str, Any]) -> str:
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, auth)
    code: str = client.refusal["data"]["code"]
    return code


async def _newest_waiting(host: Client) -> Any:
    while True:
        waiting = (await host.expect("lobby_changed"))["waiting"]
        if waiting:
            return waiting[-1]


def _guest(live: Live, device_id: str, key: str | None = None) -> dict[str, Any]:
    auth = {"meeting_number": live.room.meeting_number, "passcode": "2468", "display_name": "Gus"}
    auth["device_id"] = device_id
    return auth if key is None else {**auth, "rejoin_key": key}


async def _remove(host: Client, client: Client, participant_id: str) -> None:
    await host.sio.emit("moderate", {"action": "remove", "participant_id": participant_id})
    assert await client.expect("removed") == {"reason": "removed"}
    await client.gone.wait()


async def test_a_removed_guest_cannot_rejoin_with_a_fresh_device_id(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    eve = await live.client({**_guest(live, "browser-of-eve-0001"), "display_name": "Eve"})
    e = await eve.expect("joined")
    gus = await live.client(_guest(live, "browser-of-gus-0001"))
    g = await gus.expect("joined")
    assert g["rejoin_key"] and g["rejoin_key"] != e["rejoin_key"]
    await _remove(ann, gus, g["participant_id"])

    # The SDK sends back the key it was given: a new device id changes nothing.
    assert await _refusal(live, _guest(live, "browser-of-gus-0002", g["rejoin_key"])) == "removed"
    # Without the key (site data cleared), the guest is a newcomer on the passcode a removed guest held:
    # it waits in the lobby until a moderator decides, instead of getting in by itself.
    again = await live.client(_guest(live, "browser-of-gus-0003"))
    await again.expect("lobby_waiting")
    entry = await _newest_waiting(ann)
    await ann.sio.emit("moderate", {"action": "reject", "participant_id": entry["participant_id"]})
    assert (await again.expect("lobby_rejected"))["code"] == "rejected"
    # A forged key is no key.
    forged = await live.client(_guest(live, "browser-of-gus-0004", "0123456789abcdef.00000000000000000000"))
    await forged.expect("lobby_waiting")
    await forged.close()

    # Eve, who was in before the removal, comes and goes as before with her key.
    await eve.sio.emit("leave")
    await eve.gone.wait()
    eve_again = await live.client(
        {**_guest(live, "browser-of-eve-0009", e["rejoin_key"]), "display_name": "Eve"}
    )
    assert (await eve_again.expect("joined"))["role"] == "participant"


async def test_removing_one_invitee_does_not_ban_the_others(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    shared = join_token(live.room, "participant", "", live.clock.now())  # one link sent to a team
    bob = await live.client({"token": shared, "display_name": "Bob"})
    b = await bob.expect("joined")
    carol = await live.client({"token": shared, "display_name": "Carol"})
    c = await carol.expect("joined")
    await _remove(ann, bob, b["participant_id"])

    # Dan holds his own invitation: the removal is nothing to him.
    dan, d = await live.join("participant", "Dan")
    assert d["role"] == "participant"
    await dan.close()
    # Carol shares Bob's link but not his identity: she leaves and comes back with her key.
    await carol.sio.emit("leave")
    await carol.gone.wait()
    back = await live.client({"token": shared, "display_name": "Carol", "rejoin_key": c["rejoin_key"]})
    assert (await back.expect("joined"))["role"] == "participant"
    # Bob is refused with his key, and waits for a moderator without it.
    assert await _refusal(live, {"token": shared, "rejoin_key": b["rejoin_key"]}) == "removed"
    await back.sio.emit("leave")
    await back.gone.wait()
    bob_again = await live.client({"token": shared, "display_name": "Bob"})
    await bob_again.expect("lobby_waiting")


async def test_a_removed_invitee_is_refused_with_its_own_token_and_key(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    token = join_token(live.room, "participant", "Bob", live.clock.now())
    bob = await live.client({"token": token})
    b = await bob.expect("joined")
    await _remove(ann, bob, b["participant_id"])
    assert await _refusal(live, {"token": token, "rejoin_key": b["rejoin_key"]}) == "removed"
    waiting = await live.client({"token": token})
    await waiting.expect("lobby_waiting")
