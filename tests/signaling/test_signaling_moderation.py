"""The moderation permission matrix: every action by every role, with its effect or its refusal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sfu.events import TrackPublished
from signaling.messages import ModerationAction, Role
from signaling.permissions import may_moderate
from tests.signaling.signaling_fakes import FakeClient, Harness, Refused, join_token

ALL = frozenset(ModerationAction)
HOST_ONLY = frozenset({ModerationAction.MAKE_COHOST, ModerationAction.REVOKE_COHOST})
ALLOWED: dict[Role, frozenset[ModerationAction]] = {
    Role.HOST: ALL,
    Role.COHOST: ALL - HOST_ONLY,
    Role.PARTICIPANT: frozenset(),
    Role.VIEWER: frozenset(),
    Role.RECORDER: frozenset(),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(ModerationAction))
def test_permission_table(role: Role, action: ModerationAction) -> None:
    assert may_moderate(role, action, Role.PARTICIPANT) is (action in ALLOWED[role])


@pytest.mark.parametrize("action", list(ModerationAction))
def test_only_the_host_acts_on_the_host(action: ModerationAction) -> None:
    assert may_moderate(Role.HOST, action, Role.HOST)
    assert not may_moderate(Role.COHOST, action, Role.HOST)


@dataclass
class Cast:
    h: Harness
    clients: dict[str, FakeClient]
    ids: dict[str, str]
    guest: FakeClient
    guest_id: str


async def _newest_waiting(host: FakeClient) -> Any:
    while True:
        waiting = (await host.expect("lobby_changed"))["waiting"]
        if waiting:
            return waiting[-1]


async def _admit(h: Harness, host: FakeClient, auth: dict[str, Any]) -> tuple[FakeClient, Any]:
    client = await h.sio.connect(auth)
    await client.expect("lobby_waiting")
    entry = await _newest_waiting(host)
    await host.emit("moderate", {"action": "admit", "participant_id": entry["participant_id"]})
    return client, await client.expect("joined")


async def _cast(h: Harness) -> Cast:
    room = h.store.add_room(lobby=True)
    host, joined = await h.join(room, "host", "Host")
    clients, ids = {"host": host}, {"host": joined["participant_id"]}
    for name in ("cohost", "participant", "target"):
        clients[name], joined = await _admit(h, host, {"token": join_token(room, "participant", name)})
        ids[name] = joined["participant_id"]
    clients["viewer"], joined = await h.join(room, "viewer", "viewer")
    ids["viewer"] = joined["participant_id"]
    await host.emit("moderate", {"action": "make_cohost", "participant_id": ids["cohost"]})
    await clients["cohost"].expect("lobby_changed")
    guest = await h.guest(room, "guest")
    await guest.expect("lobby_waiting")
    guest_id = (await _newest_waiting(host))["participant_id"]
    router = h.router()
    for tid, kind, source in (("tm", "audio", "mic"), ("tc", "video", "camera"), ("ts", "video", "screen")):
        router.emit(TrackPublished(ids["target"], tid, kind, source))  # type: ignore[arg-type]
    # A chat message from the host is a barrier: everything sent before it has arrived once it arrives.
    await host.emit("chat_send", {"text": "ready"})
    for client in clients.values():
        await client.expect("chat")
        client.seen.clear()
    return Cast(h, clients, ids, guest, guest_id)


ACTORS = [Role.HOST, Role.COHOST, Role.PARTICIPANT, Role.VIEWER]


@pytest.mark.parametrize("actor_role", ACTORS)
@pytest.mark.parametrize("action", list(ModerationAction))
async def test_moderation_matrix(tmp_path: Path, actor_role: Role, action: ModerationAction) -> None:
    h = Harness(tmp_path)
    try:
        cast = await _cast(h)
        actor = cast.clients[actor_role.value]
        target_name = "cohost" if action is ModerationAction.REVOKE_COHOST else "target"
        target_id = cast.guest_id if action in (ModerationAction.ADMIT, ModerationAction.REJECT) else None
        payload: dict[str, Any] = {"action": action.value}
        if action in (ModerationAction.ADMIT, ModerationAction.REJECT):
            payload["participant_id"] = target_id
        elif action not in (ModerationAction.MUTE_ALL, ModerationAction.LOCK, ModerationAction.UNLOCK):
            payload["participant_id"] = cast.ids[target_name]
        if action is ModerationAction.END:
            payload.pop("participant_id", None)
        await actor.emit("moderate", payload)
        if action not in ALLOWED[actor_role]:
            error = await actor.expect("error")
            assert error["code"] == "not_allowed"
            assert error["event"] == "moderate"
            await _assert_no_effect(cast)
            return
        await _assert_effect(cast, action)
    finally:
        await h.server.close()


async def _assert_no_effect(cast: Cast) -> None:
    # A harmless request from the host flushes everyone's queue: nothing moderated may arrive before it.
    await cast.clients["host"].emit("chat_send", {"text": "flush"})
    for name, client in cast.clients.items():
        await client.expect("chat")
        unexpected = {"media_request", "removed", "meeting_ended", "meeting_changed", "participant_left"}
        assert not [e for e, _ in client.seen if e in unexpected], name
    assert all(cast.h.router().peers[cast.ids["target"]].forwarding.get(t, True) for t in ("tm", "tc", "ts"))
    assert cast.guest.drain() == []


async def _assert_effect(cast: Cast, action: ModerationAction) -> None:
    target = cast.clients["target"]
    peer = cast.h.router().peers[cast.ids["target"]]
    match action:
        case ModerationAction.MUTE | ModerationAction.MUTE_ALL:
            assert await target.expect("media_request") == {"source": "mic"}
            assert peer.forwarding == {"tm": False}
            info = (await cast.clients["host"].expect("participant_changed"))["participant"]
            assert info["muted"] == ["mic"]
            if action is ModerationAction.MUTE_ALL:
                other = await cast.clients["participant"].expect("media_request")
                assert other == {"source": "mic"}
        case ModerationAction.STOP_CAMERA:
            assert await target.expect("media_request") == {"source": "camera"}
            assert peer.forwarding == {"tc": False}
        case ModerationAction.STOP_SCREEN:
            assert await target.expect("media_request") == {"source": "screen"}
            assert peer.forwarding == {"ts": False}
        case ModerationAction.REMOVE:
            assert await target.expect("removed") == {"reason": "removed"}
            await target.disconnected.wait()
            row = await cast.h.store.wait_left(cast.ids["target"])
            assert row.leave_reason == "removed"
            left = await cast.clients["host"].expect("participant_left")
            assert left == {"participant_id": cast.ids["target"], "reason": "removed"}
        case ModerationAction.LOCK:
            assert (await target.expect("meeting_changed"))["meeting"]["locked"] is True
            room = cast.h.store.rooms[1]
            with pytest.raises(Refused) as refused:
                await cast.h.guest(room, "late")
            assert refused.value.code == "locked"
        case ModerationAction.UNLOCK:
            assert (await target.expect("meeting_changed"))["meeting"]["locked"] is False
        case ModerationAction.ADMIT:
            assert (await cast.guest.expect("joined"))["participant_id"] == cast.guest_id
        case ModerationAction.REJECT:
            assert (await cast.guest.expect("lobby_rejected"))["code"] == "rejected"
            await cast.guest.disconnected.wait()
        case ModerationAction.END:
            for client in cast.clients.values():
                assert await client.expect("meeting_ended") == {"reason": "host_ended"}
            assert (await cast.guest.expect("meeting_ended")) == {"reason": "host_ended"}
            (meeting,) = cast.h.store.meetings.values()
            await meeting.ended.wait()
            assert meeting.end_reason == "host_ended"
        case ModerationAction.MAKE_COHOST:
            info = (await cast.clients["participant"].expect("participant_changed"))["participant"]
            assert (info["participant_id"], info["role"]) == (cast.ids["target"], "cohost")
            assert "waiting" in await target.expect("lobby_changed")
        case ModerationAction.REVOKE_COHOST:
            info = (await cast.clients["participant"].expect("participant_changed"))["participant"]
            assert (info["participant_id"], info["role"]) == (cast.ids["cohost"], "participant")


async def test_a_cohost_cannot_remove_or_mute_the_host(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    try:
        cast = await _cast(h)
        for action in ("remove", "mute", "revoke_cohost"):
            await cast.clients["cohost"].emit(
                "moderate", {"action": action, "participant_id": cast.ids["host"]}
            )
            assert (await cast.clients["cohost"].expect("error"))["code"] == "not_allowed"
        await _assert_no_effect(cast)
    finally:
        await h.server.close()


async def test_only_a_moderator_releases_a_moderator_mute(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    try:
        cast = await _cast(h)
        host, target, tid = cast.clients["host"], cast.clients["target"], cast.ids["target"]
        await host.emit("moderate", {"action": "mute", "participant_id": tid})
        await target.expect("media_request")
        await target.emit("media_state", {"source": "mic", "muted": False})
        assert await target.expect("media_request") == {"source": "mic"}  # the hold stays: told again
        peer = h.router().peers[tid]
        assert peer.forwarding == {"tm": False}
        await host.emit("moderate", {"action": "unmute", "participant_id": tid})
        assert await target.expect("media_allowed") == {"source": "mic"}
        info = None
        while info is None or info["participant_id"] != tid or info["held"]:
            info = (await host.expect("participant_changed"))["participant"]
        assert info["muted"] == [] and peer.forwarding == {"tm": True}
    finally:
        await h.server.close()


async def test_moderating_someone_unknown_is_not_found(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    try:
        cast = await _cast(h)
        await cast.clients["host"].emit("moderate", {"action": "remove", "participant_id": "ghost"})
        assert (await cast.clients["host"].expect("error"))["code"] == "not_found"
        await cast.clients["host"].emit("moderate", {"action": "remove"})
        assert (await cast.clients["host"].expect("error"))["code"] == "bad_payload"
    finally:
        await h.server.close()
