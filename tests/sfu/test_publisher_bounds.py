"""Publisher bounds: how many tracks an offer may publish and how many SSRCs a publish connection learns."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import struct
from typing import Any

import pylibsrtp
import pytest
from aiortc import RTCPeerConnection

from sfu.bounds import MAX_RIDS, count_media_sections, publish_offer_excess
from sfu.errors import BadRequest
from sfu.metrics import METRICS
from sfu.publish import PublishConnection
from tests.sfu.conftest import Client, Meeting

AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:{mid}\r\n"
VIDEO = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\n"


def test_every_audio_and_video_section_counts() -> None:
    sdp = "v=0\r\n" + AUDIO.format(mid=0) + VIDEO.format(mid=1) + "m=application 9 UDP/DTLS/SCTP x\r\n"
    assert count_media_sections(sdp) == 2
    # A repeated mid still makes aiortc create a transceiver; a rejected section (port 0) is one too.
    assert count_media_sections("v=0\r\n" + AUDIO.format(mid=0) * 3 + "m=video 0 RTP/AVP 96\r\n") == 4


def test_offer_bounds() -> None:
    four = "v=0\r\n" + "".join((AUDIO if i % 2 else VIDEO).format(mid=i) for i in range(4))
    assert publish_offer_excess(four, max_tracks=4) is None
    assert publish_offer_excess(four + AUDIO.format(mid=4), max_tracks=4) == (
        "tracks",
        "offer_sdp: 5 audio/video m-sections; a participant publishes at most 4 tracks",
    )
    rids = [f"r{i}" for i in range(MAX_RIDS + 1)]
    simulcast = "".join(f"a=rid:{r} send\r\n" for r in rids) + "a=simulcast:send " + ";".join(rids) + "\r\n"
    excess = publish_offer_excess("v=0\r\n" + VIDEO.format(mid=0) + simulcast, max_tracks=4)
    assert excess == ("layers", f"offer_sdp: m-section '0' offers 5 simulcast layers; at most {MAX_RIDS}")
    three = "".join(f"a=rid:{r} send\r\n" for r in rids[:3]) + "a=simulcast:send r0;r1;r2\r\n"
    assert publish_offer_excess("v=0\r\n" + VIDEO.format(mid=0) + three, max_tracks=4) is None


async def _offer(kinds: list[str]) -> str:
    pc = RTCPeerConnection()
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        return sdp
    finally:
        await pc.close()


async def test_an_offer_with_too_many_tracks_is_refused_before_anything_is_allocated(
    meeting: Meeting,
) -> None:
    peer = await meeting.router.add_peer("greedy")
    kinds = ["audio", "video", "video", "audio", "video"]
    offer = await _offer(kinds)
    sources = {str(i): "mic" if kind == "audio" else "camera" for i, kind in enumerate(kinds)}
    refused = METRICS.publisher_bounds["tracks"]
    with pytest.raises(
        BadRequest, match="5 audio/video m-sections; a participant publishes at most 4 tracks"
    ):
        await peer.answer_publish(offer, sources)
    assert METRICS.publisher_bounds["tracks"] == refused + 1
    connection = peer.publish_connection
    assert connection is not None
    assert connection.pc.getTransceivers() == []  # setRemoteDescription never ran
    assert connection.pc.signalingState == "stable"
    # The same connection still takes an offer within the bound.
    answer = await peer.answer_publish(await _offer(kinds[:4]), {k: sources[k] for k in "0123"})
    assert len(connection.pc.getTransceivers()) == 4
    assert answer.count("m=") == 4


# -------------------------------------------------------------------------------------- SSRC learning
def _attribute(sdp: str, pattern: str) -> int:
    found = re.search(pattern, sdp)
    assert found is not None, pattern
    return int(found.group(1))


def _rtp(ssrc: int, pt: int, mid_id: int | None, mid: bytes, seq: int) -> bytes:
    """An RTP packet with, when `mid_id` is given, the MID in a one-byte header extension (RFC 8285)."""
    if mid_id is None:
        return struct.pack("!BBHII", 0x80, pt, seq, seq * 3000, ssrc) + b"\x00" * 20
    element = bytes([(mid_id << 4) | (len(mid) - 1)]) + mid
    element += b"\x00" * (-len(element) % 4)
    header = struct.pack("!BBHII", 0x90, pt, seq, seq * 3000, ssrc)
    return header + struct.pack("!HH", 0xBEDE, len(element) // 4) + element + b"\x00" * 20


class Resolves:
    """Counts the packets `connection` had to resolve (an SSRC it did not know), with an event to await."""

    def __init__(self, connection: PublishConnection, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._changed = asyncio.Event()
        original = connection._resolve

        def resolve(data: bytes, h: Any) -> Any:
            self.count += 1
            self._changed.set()
            return original(data, h)

        monkeypatch.setattr(connection, "_resolve", resolve)

    async def reach(self, count: int, within: float = 10) -> None:
        async with asyncio.timeout(within):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


async def _flood(client: Client, resolves: Resolves, ssrcs: list[int], mid_id: int | None) -> None:
    """One packet per SSRC, protected and sent by the client's own transport, in batches the socket holds."""
    assert client.pub_pc is not None
    sdp = client.pub_pc.localDescription.sdp
    pt = _attribute(sdp, r"a=rtpmap:(\d+) VP8/90000")
    video = next(t for t in client.pub_pc.getTransceivers() if t.kind == "video")
    dtls = video.sender.transport
    mid = video.mid.encode()
    for start in range(0, len(ssrcs), 50):
        target = resolves.count + len(ssrcs[start : start + 50])
        for i, ssrc in enumerate(ssrcs[start : start + 50]):
            await dtls._send_rtp(_rtp(ssrc, pt, mid_id, mid, start + i))
        await resolves.reach(target)


def _srtp_streams(connection: PublishConnection, ssrcs: list[int]) -> int:
    """How many of `ssrcs` libsrtp holds a receive stream for (removing them: call once, at the end)."""
    srtp = connection.hooks._dtls._rx_srtp
    held = 0
    for ssrc in ssrcs:
        try:
            srtp.remove_stream(ssrc)
        except pylibsrtp.Error:
            continue
        held += 1
    return held


async def test_new_ssrcs_beyond_the_cap_are_not_learnt(
    meeting: Meeting, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = await meeting.client("pub")
    await client.publish(video_start=100, amplitude=0.1)
    await meeting.wait_tracks(2)
    connection = meeting.router.peers["pub"].publish_connection
    assert connection is not None and client.pub_pc is not None
    cap = connection._settings.max_publish_ssrcs
    known = len(connection._by_ssrc)
    assert 0 < known < cap
    rng = random.Random(13)
    ssrcs = [s for s in rng.sample(range(1, 2**32), 1100) if s not in connection._by_ssrc][:1000]
    refused = METRICS.publisher_bounds["ssrcs"]
    resolves = Resolves(connection, monkeypatch)
    mid_id = _attribute(
        client.pub_pc.localDescription.sdp, r"a=extmap:(\d+) urn:ietf:params:rtp-hdrext:sdes:mid"
    )
    caplog.set_level(logging.INFO, logger="sfu")

    await _flood(client, resolves, ssrcs, mid_id)

    learnt = cap - known
    assert len(connection._by_ssrc) == cap
    assert len(connection._nack) <= cap
    assert METRICS.publisher_bounds["ssrcs"] - refused == len(ssrcs) - learnt
    # One line when the table filled, none per refused packet.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"participant pub: {cap} SSRCs learnt, no more are"
    ]
    # libsrtp keeps a stream only for the SSRCs that were learnt: the others were removed again.
    assert _srtp_streams(connection, ssrcs) == learnt
    assert connection.hooks.errors == 0


async def test_packets_no_track_claims_leave_no_srtp_stream(
    meeting: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await meeting.client("pub")
    await client.publish(video_start=100, amplitude=None)
    await meeting.wait_tracks(1)
    connection = meeting.router.peers["pub"].publish_connection
    assert connection is not None
    known = len(connection._by_ssrc)
    ssrcs = [s for s in random.Random(5).sample(range(1, 2**32), 120) if s not in connection._by_ssrc][:100]
    unknown = connection.unknown_packets
    resolves = Resolves(connection, monkeypatch)

    await _flood(client, resolves, ssrcs, None)  # no MID extension: nothing to bind them to

    assert connection.unknown_packets - unknown == len(ssrcs)
    assert len(connection._by_ssrc) == known
    assert _srtp_streams(connection, ssrcs) == 0
