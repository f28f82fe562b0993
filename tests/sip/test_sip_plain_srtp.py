"""SDES-SRTP through a PlainPeer, pylibsrtp on both ends: the terminal's SRTP video reaches a subscriber,
the speaker's video and the mix go back protected (the C copy loop and the Python path)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sfu import fanout
from tests.sfu.conftest import Meeting
from tests.sip.plain_terminal import H264Source, wait_for
from tests.sip.test_sip_plain import Terminal, _decode, _h264_client, _send_video

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def meeting() -> AsyncIterator[Meeting]:
    m = Meeting()
    try:
        yield m
    finally:
        await m.close()


@pytest.mark.parametrize("native", [True, False])
async def test_srtp_both_ways(meeting: Meeting, native: bool) -> None:
    assert fanout.NATIVE
    alice = await _h264_client(meeting, "alice", 10_000, 0.5)
    await alice.subscribe()
    await meeting.wait_tracks(2)
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join(srtp=True, native=native)
        assert terminal.answer is not None and terminal.answer.encrypted
        assert (
            "RTP/SAVP" in terminal.answer.sdp
            and "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in terminal.answer.sdp
        )
        # Speaker's video to the terminal: protected by the gateway, unprotected by the terminal's libsrtp.
        got = terminal.video.got
        await wait_for(got, lambda: len(_decode(got.rtp).counters) >= 5, 20, "alice's video")
        assert all(c >= 10_000 for c in _decode(got.rtp).counters)
        route = peer.video_out.route if peer.video_out is not None else None
        if native:
            assert route is not None and route.sent > 0 and route.errors == 0  # protected in C
        else:
            assert route is None
        # The mix back: SRTP audio the terminal decrypts.
        peer.send_audio(b"\xff" * 160, 160)
        await wait_for(terminal.audio.got, lambda: bool(terminal.audio.got.rtp), 5, "SRTP audio")
        assert terminal.audio.got.rtp[0][6] == b"\xff" * 160
        # The terminal's SRTP video reaches the subscriber.
        sender = asyncio.create_task(_send_video(terminal, H264Source(pt=109, start=1000), 60))
        try:
            await alice.wait_until(lambda: len(alice.counters_from(1000)) >= 5, within=20)
        finally:
            sender.cancel()
        sock = peer.sockets("video")
        assert sock is not None and sock.refused == 0
    finally:
        terminal.close()


async def test_packets_with_a_wrong_key_or_from_another_host_are_refused(meeting: Meeting) -> None:
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join(srtp=True)
        sock = peer.sockets("video")
        assert sock is not None
        source = H264Source(pt=109)
        plain = source.next_packets(keyframe=True)[0]
        terminal.video.tx = None  # not protected: libsrtp refuses it
        terminal.video.send(plain)
        # An authentic packet from another host than the SIP peer's may not latch the destination.
        sock.admit(b"\x80" * 40, ("192.0.2.99", 5000), rtcp=False)
        for _ in range(100):
            if sock.refused >= 2:
                break
            await asyncio.sleep(0.01)  # the datagram's delivery on the loop
        assert sock.refused == 2 and sock.received == 0 and not sock.latched
        assert peer.video_track is not None and peer.video_track.layers[""].packets == 0
    finally:
        terminal.close()
