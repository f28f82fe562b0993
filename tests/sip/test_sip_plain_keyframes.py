"""Keyframe requests to and from a terminal: FIR/PLI as its SDP says, SIP INFO (on_keyframe_wanted) when it
offers neither or no IDR came within 1 s, at most one per 500 ms; its own PLI asks the forwarded speaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiortc.rtp import RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket

from sfu.plain import INFO_AFTER_S
from sfu.plain_stream import tmmbn, tmmbr_requests
from tests.sfu.conftest import Meeting
from tests.sip.plain_terminal import H264Source, wait_for
from tests.sip.test_sip_plain import Terminal, _decode, _h264_client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def meeting() -> AsyncIterator[Meeting]:
    m = Meeting()
    try:
        yield m
    finally:
        await m.close()


async def _wanted_by_subscriber(meeting: Meeting, terminal: Terminal) -> None:
    """A subscriber of the terminal's camera, and a frame that is not a keyframe: it wants one."""
    alice = await meeting.client("alice")
    await alice.subscribe()
    await meeting.wait_event(lambda: bool(meeting.router.tracks["sip-1:video"].subscriptions), 10)
    source = H264Source(pt=109)
    source.next_packets()  # the IDR is lost
    for packet in source.next_packets():
        terminal.video.send(packet)


async def test_a_terminal_without_rtcp_feedback_is_asked_by_info(meeting: Meeting) -> None:
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join(feedback=False)
        wanted = asyncio.Event()
        peer.on_keyframe_wanted = wanted.set
        await _wanted_by_subscriber(meeting, terminal)
        await asyncio.wait_for(wanted.wait(), 10)
        assert peer.infos_wanted == 1
        for _ in range(5):
            await asyncio.sleep(0.02)  # more datagrams' worth of time: no RTCP request may follow
        assert terminal.video.got.keyframe_requests() == []
    finally:
        terminal.close()


async def test_info_follows_an_unanswered_fir_once_and_not_faster_than_500_ms(meeting: Meeting) -> None:
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join(fir_only=True)
        calls: list[float] = []
        peer.on_keyframe_wanted = lambda: calls.append(time.monotonic())
        await _wanted_by_subscriber(meeting, terminal)
        got = terminal.video.got
        await wait_for(got, lambda: bool(got.keyframe_requests()), 10, "FIR")
        assert set(got.keyframe_requests()) == {4}
        assert peer.video_track is not None
        asked = peer.video_track.layers[""].last_keyframe_request
        # The peer's clock: nothing before INFO_AFTER_S, one INFO after it, not repeated for the same FIR.
        peer.tick(asked + INFO_AFTER_S - 0.05)
        assert calls == []
        peer.tick(asked + INFO_AFTER_S + 0.01)
        assert len(calls) == 1
        peer.tick(asked + INFO_AFTER_S + 0.6)
        assert len(calls) == 1
        # The IDR comes: nothing is outstanding any more.
        for packet in H264Source(pt=109, start=5000).next_packets(keyframe=True):
            terminal.video.send(packet)
        layer = peer.video_track.layers[""]
        for _ in range(500):
            if not layer.awaiting_keyframe:
                break
            await asyncio.sleep(0.01)  # the datagrams' delivery on the loop
        assert not layer.awaiting_keyframe
    finally:
        terminal.close()


async def test_the_terminals_pli_asks_the_forwarded_speaker(meeting: Meeting) -> None:
    alice = await _h264_client(meeting, "alice", 10_000, 0.5)
    await meeting.wait_tracks(2)
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join()
        got = terminal.video.got
        await wait_for(got, lambda: len(_decode(got.rtp).counters) >= 3, 20, "alice's video")
        sub = peer.video_out
        assert sub is not None and sub.track is not None and sub.current is not None
        layer = sub.current
        before = layer.keyframe_requests
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=0x5EED0001, media_ssrc=sub.ssrc)

        def asked() -> bool:  # the terminal repeats its PLI on every packet until alice is asked
            terminal.video.send_rtcp(bytes(pli))
            return layer.keyframe_requests > before

        await wait_for(got, asked, 5, "a keyframe request to alice")
        assert alice.peer is not None
    finally:
        terminal.close()


async def test_the_terminals_nack_is_answered_from_the_ring(meeting: Meeting) -> None:
    await _h264_client(meeting, "alice", 10_000, 0.5)
    await meeting.wait_tracks(2)
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join()
        got = terminal.video.got
        await wait_for(got, lambda: len(_decode(got.rtp).counters) >= 3, 20, "alice's video")
        sub = peer.video_out
        assert sub is not None
        _, ssrc, seq, _, _, _, payload = got.rtp[-2]
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=0x5EED0001, media_ssrc=ssrc)
        nack.lost = [seq]

        def resent() -> bool:
            return sum(1 for x in got.rtp if x[2] == seq) >= 2

        terminal.video.send_rtcp(bytes(nack))
        await wait_for(got, resent, 5, "the retransmission")
        assert [x[6] for x in got.rtp if x[2] == seq] == [payload, payload]
        assert sub.retransmitted >= 1
    finally:
        terminal.close()


def test_tmmbr_and_tmmbn_round_trip() -> None:
    entries = [(0x11223344, 300_000, 40), (0x55667788, 6_000_000, 0)]
    packet = tmmbn(0xABCDEF01, entries)
    assert packet[0] & 0x1F == 4 and packet[1] == 205
    request = bytes((0x80 | 3,)) + packet[1:]  # the same FCI as a TMMBR
    assert tmmbr_requests(request) == entries
    assert tmmbr_requests(b"\x80\xc8\x00\x06" + bytes(24) + request) == entries  # after an SR
    assert tmmbr_requests(request[:-3]) == []  # cut short: ignored


async def test_the_terminals_tmmbr_caps_its_video_and_is_acknowledged(meeting: Meeting) -> None:
    await _h264_client(meeting, "alice", 10_000, 0.5)
    await meeting.wait_tracks(2)
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join()
        got = terminal.video.got
        await wait_for(got, lambda: len(_decode(got.rtp).counters) >= 2, 20, "alice's video")
        sub = peer.video_out
        assert sub is not None
        request = bytes((0x80 | 3,)) + tmmbn(0x5EED0001, [(sub.ssrc, 300_000, 40)])[1:]
        terminal.video.send_rtcp(request)
        await wait_for(
            got,
            lambda: any(
                getattr(p, "fmt", None) == 4 and p.__class__.__name__ == "RtcpRtpfbPacket" for p in got.rtcp
            ),
            5,
            "TMMBN",
        )
        assert peer.tmmbr_bitrate == 300_000 and sub.remb == 300_000
    finally:
        terminal.close()
