"""Hard mute on the real server with the real SFU: a moderator's hold outlasts the guest's own unmute, the
guest can ask to be unmuted, and only a moderator's unmute makes the SFU forward the track again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from tests.signaling.live_server import Client, Live, start_live
from tests.signaling.test_signaling_media import MediaClient, _tracks_of


async def _info_of(client: Client, participant_id: str, **fields: Any) -> dict[str, Any]:
    """The next participant_changed of ``participant_id`` whose info has these fields."""
    while True:
        info: dict[str, Any] = (await client.expect("participant_changed"))["participant"]
        if info["participant_id"] == participant_id and all(info[k] == v for k, v in fields.items()):
            return info


def _mic_forwarding(live: Live, sfu: Sfu, participant_id: str) -> bool:
    (conference,) = live.server.conferences()
    router = sfu.router(str(conference.meeting_id))
    (mic,) = (
        t
        for tid, t in router.tracks.items()
        if conference.track_owners()[tid].id == participant_id
        and conference.track_owners()[tid].tracks[tid].source.value == "mic"
    )
    forwarding: bool = mic.forwarding
    return forwarding


async def test_a_hard_mute_holds_the_track_until_a_moderator_unmutes(tmp_path: Path) -> None:
    sfu = Sfu(SfuSettings())
    try:
        async with start_live(tmp_path, sfu) as live:
            ann, _ = await live.join("host", "Ann")
            gus, g = await live.join("participant", "Gus", MediaClient())
            carol, _ = await live.join("participant", "Carol")
            gid = g["participant_id"]
            assert isinstance(gus, MediaClient)
            await gus.publish()
            await _tracks_of(ann, gid, 2)
            assert _mic_forwarding(live, sfu, gid)

            await ann.sio.emit("moderate", {"action": "mute", "participant_id": gid})
            assert await gus.expect("media_request") == {"source": "mic"}
            held = await _info_of(gus, gid, held=["mic"])  # the guest sees the hold in its own state
            assert held["muted"] == ["mic"] and not _mic_forwarding(live, sfu, gid)

            # The guest unmutes itself (a console, or an old client): the SFU keeps holding the track.
            await gus.sio.emit("media_state", {"source": "mic", "muted": False})
            assert await gus.expect("media_request") == {"source": "mic"}
            for other in (ann, carol):
                seen = await _info_of(other, gid, held=["mic"])
                assert seen["muted"] == ["mic"]
            assert not _mic_forwarding(live, sfu, gid)

            # Asking to be unmuted reaches the moderators only, once however often it is asked.
            await gus.sio.emit("ask_unmute", {"source": "mic"})
            asked = await ann.expect("unmute_asked")
            assert asked == {"participant_id": gid, "display_name": "Gus", "source": "mic"}
            await _info_of(ann, gid, unmute_asked=["mic"])
            await gus.sio.emit("ask_unmute", {"source": "mic"})
            await gus.sio.emit("ask_unmute", {"source": "camera"})  # not held: refused
            assert (await gus.expect("error"))["code"] == "bad_state"
            assert not _mic_forwarding(live, sfu, gid)

            # A participant cannot release anyone's hold; the host's unmute does.
            await carol.sio.emit("moderate", {"action": "unmute", "participant_id": gid})
            assert (await carol.expect("error"))["code"] == "not_allowed"
            await ann.sio.emit("moderate", {"action": "unmute", "participant_id": gid})
            assert await gus.expect("media_allowed") == {"source": "mic"}
            released = await _info_of(carol, gid, held=[], unmute_asked=[])
            assert released["muted"] == []
            assert _mic_forwarding(live, sfu, gid)
            await _info_of(ann, gid, held=[])  # comes after any second notice would have
            assert ann.seen.count("unmute_asked") == 1
    finally:
        await sfu.close()


async def test_a_self_muted_microphone_is_not_forwarded(tmp_path: Path) -> None:
    """Whatever a client keeps sending while its microphone is muted (older clients send silence), the SFU
    copies none of it; a moderator's release of a hold does not open a microphone its owner muted."""
    sfu = Sfu(SfuSettings())
    try:
        async with start_live(tmp_path, sfu) as live:
            ann, _ = await live.join("host", "Ann")
            gus, g = await live.join("participant", "Gus", MediaClient())
            gid = g["participant_id"]
            assert isinstance(gus, MediaClient)
            await gus.publish()
            await _tracks_of(ann, gid, 2)
            assert _mic_forwarding(live, sfu, gid)

            await gus.sio.emit("media_state", {"source": "mic", "muted": True})
            await _info_of(ann, gid, muted=["mic"])
            assert not _mic_forwarding(live, sfu, gid)
            await gus.sio.emit("media_state", {"source": "mic", "muted": False})
            await _info_of(ann, gid, muted=[])
            assert _mic_forwarding(live, sfu, gid)

            # Muted by its owner, then held and released: still muted, still not forwarded.
            await gus.sio.emit("media_state", {"source": "mic", "muted": True})
            await _info_of(ann, gid, muted=["mic"])
            await ann.sio.emit("moderate", {"action": "mute", "participant_id": gid})
            await _info_of(ann, gid, held=["mic"])
            await ann.sio.emit("moderate", {"action": "unmute", "participant_id": gid})
            await _info_of(ann, gid, held=[], muted=["mic"])
            assert not _mic_forwarding(live, sfu, gid)
            # The camera is the client's to stop (it sends nothing while off): its mute changes no forwarding.
            await gus.sio.emit("media_state", {"source": "camera", "muted": True})
            await _info_of(ann, gid, muted=["mic", "camera"])
            assert not _mic_forwarding(live, sfu, gid)
    finally:
        await sfu.close()
