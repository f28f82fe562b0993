"""RTCP towards terminals (sfu/plain_rtcp.py): every REPORT_S of the peer's clock, one compound packet per
m-line — an SR for what the gateway sent (the mix, the slate) with a report block on the terminal's stream
(loss, highest sequence number, LSR/DLSR of the terminal's own SR), or an RR before the gateway sent anything;
SDES CNAME in each. The clock is the `now` given to PlainPeer.tick; the terminal: real sockets on loopback."""

from __future__ import annotations

import contextlib

import pytest
from aiortc.rtp import (
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
)

from sfu.plain import REPORT_S
from sfu.plain_rtcp import NTP_EPOCH_OFFSET, compound, ntp_timestamp
from sfu.rtp import RTP_HEADER
from tests.sfu.conftest import Meeting
from tests.sip.plain_terminal import H264Source, Received, wait_for
from tests.sip.test_sip_plain import Terminal, meeting

pytestmark = pytest.mark.timeout(30)
__all__ = ["meeting"]  # the fixture, used here

TERMINAL_AUDIO_SSRC = 0xA0D10001
WALLCLOCK = 1_780_000_000.25  # the peer's injected Unix time


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0.5) == ((NTP_EPOCH_OFFSET << 32) | (1 << 31))


def test_compound_is_rr_before_anything_is_sent_and_carries_cname() -> None:
    block = RtcpReceiverInfo(
        ssrc=7, fraction_lost=0, packets_lost=1, highest_sequence=9, jitter=0, lsr=0, dlsr=0
    )
    parsed = RtcpPacket.parse(compound(42, "sip-1", None, block))
    assert isinstance(parsed[0], RtcpRrPacket) and parsed[0].ssrc == 42 and parsed[0].reports == [block]
    assert isinstance(parsed[1], RtcpSdesPacket) and parsed[1].chunks[0].items == [(1, b"sip-1")]


def _reports(got: Received, kind: type) -> list[object]:
    return [p for p in got.rtcp if isinstance(p, kind)]


async def test_sr_and_report_blocks_on_the_peers_clock(meeting: Meeting) -> None:
    terminal = Terminal(meeting)
    try:
        peer = await terminal.join()
        # The peer's own ticker runs on time.monotonic(); this test drives tick() with its own `now`.
        assert peer._ticker is not None
        peer._ticker.cancel()
        with contextlib.suppress(BaseException):
            await peer._ticker
        peer.wallclock = lambda: WALLCLOCK
        # The terminal's audio: G.722 (payload type 9) sequence 100..119 with 105 lost; its SR.
        for seq in range(100, 120):
            if seq != 105:
                terminal.audio.send(
                    RTP_HEADER.pack(0x80, 9, seq, seq * 160, TERMINAL_AUDIO_SSRC) + bytes(160)
                )
        terminal_ntp = ntp_timestamp(WALLCLOCK - 3)
        sr = RtcpSrPacket(
            ssrc=TERMINAL_AUDIO_SSRC,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=terminal_ntp, rtp_timestamp=119 * 160, packet_count=19, octet_count=19 * 160
            ),
        )
        terminal.audio.send_rtcp(bytes(sr))
        # The terminal's video (its camera) and what the gateway sends: the mix, the slate.
        source = H264Source(pt=109)
        for packet in source.next_packets(keyframe=True):
            terminal.video.send(packet)
        await wait_for(
            terminal.audio.got,
            lambda: (
                (receiving := peer._receiving.get("audio")) is not None
                and receiving.sr_ntp == terminal_ntp
                and receiving.stats.packets_received == 19
            ),
            5,
            "the terminal's audio and SR at the gateway",
        )
        for _ in range(5):
            peer.send_audio(bytes(160), 160)
        assert peer.send_slate(H264Source(pt=109).access_unit(keyframe=True))

        # The receive side stamps arrivals with time.monotonic(), the clock tick() is given in production.
        sr_at = peer._receiving["audio"].sr_at
        now = sr_at + 1.0
        peer.tick(now)
        got = terminal.audio.got
        await wait_for(got, lambda: bool(_reports(got, RtcpSrPacket)), 5, "an audio SR")
        await wait_for(
            terminal.video.got, lambda: bool(_reports(terminal.video.got, RtcpSrPacket)), 5, "a video SR"
        )
        (audio,) = _reports(got, RtcpSrPacket)
        assert isinstance(audio, RtcpSrPacket)
        assert audio.sender_info.packet_count == 5 and audio.sender_info.octet_count == 5 * (12 + 160)
        assert audio.sender_info.ntp_timestamp == ntp_timestamp(WALLCLOCK)
        (block,) = audio.reports
        assert block.ssrc == TERMINAL_AUDIO_SSRC
        assert block.highest_sequence == 119 and block.packets_lost == 1 and block.fraction_lost > 0
        assert block.lsr == (terminal_ntp >> 16) & 0xFFFFFFFF
        assert block.dlsr == int((now - sr_at) * 65536) == 65536
        assert _reports(got, RtcpSdesPacket)
        (video,) = _reports(terminal.video.got, RtcpSrPacket)
        assert isinstance(video, RtcpSrPacket) and video.sender_info.packet_count > 0
        assert video.reports and video.reports[0].ssrc == source.ssrc
        # One report per interval: the next tick within it sends nothing more.
        peer.tick(now + REPORT_S - 0.1)
        assert peer._reported_at == now  # within the interval: no report
        peer.tick(now + REPORT_S)
        await wait_for(got, lambda: len(_reports(got, RtcpSrPacket)) == 2, 5, "the next SR")
        assert len(_reports(got, RtcpSrPacket)) == 2
    finally:
        terminal.close()
