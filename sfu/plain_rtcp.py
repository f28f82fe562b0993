"""RTCP reports towards a room terminal (RFC 3550 §6.4): SR for what we send, a report block for what we get.

Room systems watch RTCP: some lower their rate or drop a call that gets no receiver reports, and they use our
sender reports to align our audio and video. Per m-line, every REPORT_S, PlainPeer sends one compound packet:
an SR when we have sent on it since the last report (with one report block for the terminal's stream), an RR
otherwise, then SDES CNAME. Pure functions of the counters and an injected `now`/`wallclock`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.rtp import (
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)

from sfu.hooks import StreamStatistics

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


def ntp_timestamp(wallclock: float) -> int:
    """64-bit NTP time of a Unix time in seconds."""
    seconds = int(wallclock) + NTP_EPOCH_OFFSET
    fraction = int((wallclock % 1) * (1 << 32))
    return ((seconds & 0xFFFFFFFF) << 32) | (fraction & 0xFFFFFFFF)


class _SeqTs:
    """What aiortc's StreamStatistics reads from a packet."""

    __slots__ = ("sequence_number", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = 0
        self.timestamp = 0


class Receiving:
    """What we received on one m-line from the terminal: sequence/loss/jitter statistics and its last SR."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.ssrc = 0
        self.stats = StreamStatistics(clock_rate)
        self.sr_ntp = 0  # the terminal's last sender report (64-bit NTP) and when it came (monotonic)
        self.sr_at = 0.0
        self._q = _SeqTs()

    def packet(self, ssrc: int, seq: int, ts: int) -> None:
        if ssrc != self.ssrc:  # a new source (the terminal restarted its stream): statistics start over
            self.ssrc = ssrc
            self.stats = StreamStatistics(self.clock_rate)
        self._q.sequence_number, self._q.timestamp = seq, ts
        self.stats.add(self._q)  # type: ignore[arg-type]  # reads only sequence_number and timestamp

    def sender_report(self, ssrc: int, ntp: int, now: float) -> None:
        if ssrc == self.ssrc or not self.ssrc:
            self.sr_ntp, self.sr_at = ntp, now

    def block(self, now: float) -> RtcpReceiverInfo | None:
        """The report block on this stream (None before its first packet)."""
        stats = self.stats
        if stats.max_seq is None or not self.ssrc:
            return None
        return RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=stats.fraction_lost,
            packets_lost=max(-(1 << 23), min(stats.packets_lost, (1 << 23) - 1)),
            highest_sequence=(stats.cycles + stats.max_seq) & 0xFFFFFFFF,
            jitter=stats.jitter,
            lsr=(self.sr_ntp >> 16) & 0xFFFFFFFF,
            dlsr=min(max(0, int((now - self.sr_at) * 65536)), 0xFFFFFFFF) if self.sr_ntp else 0,
        )


@dataclass(frozen=True, slots=True)
class Sent:
    """What we sent on one m-line: our SSRC, counters, and the RTP time of `ntp` (the SR's instant)."""

    ssrc: int
    packets: int
    octets: int
    ntp: int
    rtp_timestamp: int


def compound(our_ssrc: int, cname: str, sent: Sent | None, block: RtcpReceiverInfo | None) -> bytes:
    """SR (when `sent`) or RR, with the report block when there is one, then SDES CNAME (RFC 3550 §6.1)."""
    reports = [block] if block is not None else []
    if sent is not None:
        first = bytes(
            RtcpSrPacket(
                ssrc=sent.ssrc,
                sender_info=RtcpSenderInfo(
                    ntp_timestamp=sent.ntp,
                    rtp_timestamp=sent.rtp_timestamp & 0xFFFFFFFF,
                    packet_count=sent.packets & 0xFFFFFFFF,
                    octet_count=sent.octets & 0xFFFFFFFF,
                ),
                reports=reports,
            )
        )
        our_ssrc = sent.ssrc
    else:
        first = bytes(RtcpRrPacket(ssrc=our_ssrc, reports=reports))
    sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=our_ssrc, items=[(1, cname.encode()[:255])])])
    return first + bytes(sdes)
