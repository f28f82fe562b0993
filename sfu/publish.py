"""PublishConnection: the PeerConnection a participant publishes on (the client offers, the SFU answers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections.abc import Callable
from typing import Any

from aiortc import RTCSessionDescription
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    pack_remb_fci,
)

from sfu import fanout
from sfu.bounds import publish_offer_excess
from sfu.errors import BadRequest
from sfu.events import SOURCES
from sfu.hooks import PeerHooks, RemoteBitrateEstimator, make_peer_connection, port_range
from sfu.metrics import METRICS
from sfu.nack import NackTracker
from sfu.rtp import (
    U16,
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    URI_RID,
    URI_RRID,
    RtpHeader,
    abs_send_time,
    get_extension,
    parse_rtp,
    split_payload,
    vp8_keyframe_size,
)
from sfu.sdp import (
    announce_address,
    answer_with_simulcast,
    media_sections,
    offered_rids,
    require_candidates,
)
from sfu.settings import SfuSettings
from sfu.simulcast import PublisherRemb
from sfu.track import Layer, Track
from sfu.twcc import FEEDBACK_INTERVAL_S, TransportFeedback, answer_with_transport_cc, offered_extension_id

log = logging.getLogger(__name__)

REPORT_INTERVAL_S = 1.0


class _SeqTs:
    """What aiortc's StreamStatistics reads from a packet."""

    __slots__ = ("sequence_number", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = 0
        self.timestamp = 0


class PublishConnection:
    """Receives a participant's tracks: demux (SSRC, MID, RID), RTX unwrap, RR, NACK, REMB, fan-out."""

    def __init__(
        self,
        participant_id: str,
        settings: SfuSettings,
        *,
        on_track: Callable[[Track], None],
        on_track_ended: Callable[[Track], None],
        on_audio_level: Callable[[str, int], None],
    ) -> None:
        self.participant_id = participant_id
        self._settings = settings
        self._on_track = on_track
        self._on_track_ended = on_track_ended
        self._on_audio_level = on_audio_level
        self.pc = make_peer_connection(settings)
        self.hooks = PeerHooks(
            self.pc,
            on_rtp=self._on_rtp,
            on_rtcp=self._on_rtcp,
            on_receive=self._on_receive,
            ports=port_range(settings),
        )
        self.tracks: dict[str, Track] = {}  # by mid
        self._by_ssrc: dict[int, Layer] = {}
        self._nack: dict[int, NackTracker] = {}  # by media SSRC
        self._sources: dict[str, str] = {}
        self._rids: dict[str, list[str]] = {}
        self._mid_id = self._abs_id = self._level_id = self._rid_id = self._rrid_id = 0
        self._remb = RemoteBitrateEstimator()
        # transport-cc (sfu/twcc.py): the offer's extension id once answered; 0 while REMB is all there is.
        self._twcc_id = 0
        self._twcc = TransportFeedback()
        self._remb_policy = PublisherRemb(settings.max_publish_bitrate)
        self._rtcp_ssrc = random.getrandbits(32)  # sender SSRC of our RTCP feedback
        self._h = RtpHeader()
        self._q = _SeqTs()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.unknown_packets = 0
        self._failed_copies: weakref.WeakSet[Any] = weakref.WeakSet()
        self.nacks_sent = 0
        self.rembs_sent = 0

    async def answer(self, offer_sdp: str, sources: dict[str, str]) -> str:
        for mid, source in sources.items():
            if source not in SOURCES:
                raise BadRequest(f"sources[{mid!r}]: {source!r} is not one of {sorted(SOURCES)}")
        sections = media_sections(offer_sdp)
        if not sections:
            raise BadRequest("offer_sdp: no audio or video section")
        unknown = sorted(set(sources) - set(sections))
        if unknown:
            raise BadRequest(f"sources: no audio or video m-section with mid {unknown[0]!r} in the offer")
        # Before setRemoteDescription: aiortc makes a transceiver per m-section, and tracks follow.
        excess = publish_offer_excess(offer_sdp, max_tracks=self._settings.max_published_tracks)
        if excess is not None:
            METRICS.publisher_bounds[excess[0]] += 1
            raise BadRequest(excess[1])
        async with self._lock:
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as exc:  # aiortc raises ValueError, InvalidStateError, OperationError...
                raise BadRequest(f"offer_sdp: {exc}") from exc
            self._sources.update(sources)
            rids = offered_rids(offer_sdp)
            self._rids.update(rids)
            self.hooks.attach()
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            require_candidates(self.pc.localDescription.sdp)
            for transceiver in self.pc.getTransceivers():
                track = self.tracks.get(transceiver.mid or "")
                if track is not None and transceiver.currentDirection not in ("recvonly", "sendrecv"):
                    self._end_track(track)
            if self._task is None:
                self._task = asyncio.create_task(
                    self._run_reports(), name=f"sfu-publish:{self.participant_id}"
                )
            sdp = answer_with_simulcast(self.pc.localDescription.sdp, rids)
            if self._settings.transport_cc:
                sdp = answer_with_transport_cc(offer_sdp, sdp)
                self._twcc_id = offered_extension_id(offer_sdp)
            return announce_address(sdp, self._settings.announced_address)

    def _on_receive(self, transceiver: Any, params: Any) -> None:
        for ext in params.headerExtensions:
            if ext.uri == URI_MID:
                self._mid_id = ext.id
            elif ext.uri == URI_ABS_SEND_TIME:
                self._abs_id = ext.id
            elif ext.uri == URI_AUDIO_LEVEL:
                self._level_id = ext.id
            elif ext.uri == URI_RID:
                self._rid_id = ext.id
            elif ext.uri == URI_RRID:
                self._rrid_id = ext.id
        mid = params.muxId
        if mid in self.tracks or self._closed:
            return
        kind = transceiver.kind
        track = Track(
            track_id=f"{self.participant_id}:{mid}",
            participant_id=self.participant_id,
            kind=kind,
            source=self._sources.get(mid, "mic" if kind == "audio" else "camera"),
            mid=mid,
            params=params,
            rtcp_ssrc=self._rtcp_ssrc,
            send_rtcp=self.hooks.send,
            rids=self._rids.get(mid, []),
            keyframe_min_interval=self._settings.keyframe_min_interval_ms / 1000,
            keyframe_retry=self._settings.keyframe_retry_ms / 1000,
            keyframe_join_interval=self._settings.keyframe_join_interval_ms / 1000,
            ring_size=self._settings.nack_history,
        )
        self.tracks[mid] = track
        for layer in track.layers.values():
            self._learn(layer, layer.ssrc, rtx=False)
            self._learn(layer, layer.rtx_ssrc, rtx=True)
        log.info("participant %s publishes %s %s as %s", self.participant_id, kind, mid, track.id)
        self._on_track(track)

    def _learn(self, layer: Layer, ssrc: int, *, rtx: bool) -> bool:
        if not ssrc:
            return False
        cap = self._settings.max_publish_ssrcs
        if ssrc not in self._by_ssrc and len(self._by_ssrc) >= cap:
            METRICS.publisher_bounds["ssrcs"] += 1  # per packet refused; no log line per packet
            return False
        if rtx:
            layer.rtx_ssrc = ssrc
        else:
            layer.ssrc = ssrc
            if layer.track.kind == "video":
                self._nack[ssrc] = NackTracker()
        self._by_ssrc[ssrc] = layer
        if len(self._by_ssrc) == cap:  # once per filling, not per refused packet
            log.warning("participant %s: %d SSRCs learnt, no more are", self.participant_id, cap)
        return True

    def _resolve(self, data: bytes, h: RtpHeader) -> Layer | None:
        """An unsignalled SSRC: bind it by the MID extension, then RID (or repaired RID for RTX)."""
        raw_mid = get_extension(data, h, self._mid_id)
        track = self.tracks.get(raw_mid.decode(errors="replace")) if raw_mid else None
        layer: Layer | None = None
        rtx = False
        if track is not None and track.simulcast:
            rid = get_extension(data, h, self._rid_id)
            rrid = None if rid is not None else get_extension(data, h, self._rrid_id)
            name = rid if rid is not None else rrid
            layer = track.layers.get(name.decode(errors="replace")) if name else None
            rtx = rid is None
        elif track is not None:
            layer = track.layers[""]
            rtx = h.pt in track.rtx_apt
        if layer is not None and self._learn(layer, h.ssrc, rtx=rtx):
            return layer
        # libsrtp already made a stream for this SSRC when it authenticated the packet (hooks.forget_ssrc).
        self.hooks.forget_ssrc(h.ssrc)
        return None

    # ------------------------------------------------------------------------------------- hot path
    async def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        h = self._h
        if not parse_rtp(data, h):
            return
        # The one clock read of this packet: NACK timing, abs-send-time and each subscriber's last-sent time.
        now = h.arrival = time.monotonic()
        if self._twcc_id:
            await self._transport_feedback(data, h, now)
        layer = self._by_ssrc.get(h.ssrc)
        if layer is None:
            layer = self._resolve(data, h)
            if layer is None:
                self.unknown_packets += 1
                return
        track = layer.track
        if track.kind == "video" and self._abs_id:
            value = get_extension(data, h, self._abs_id)
            if value is not None and len(value) == 3:
                estimate = self._remb.add(
                    arrival_ms,
                    (value[0] << 16) | (value[1] << 8) | value[2],
                    h.payload_end - h.payload_start,
                    h.ssrc,
                )
                if estimate is not None:
                    bitrate = self._remb_policy.update(estimate[0], time.monotonic())
                    if self._twcc_id:
                        # The publisher estimates for itself from our feedback; REMB is only the ceiling.
                        bitrate = self._settings.max_publish_bitrate
                    fci = pack_remb_fci(bitrate, estimate[1])
                    self.rembs_sent += 1
                    remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=track.rtcp_ssrc, media_ssrc=0, fci=fci)
                    await self.hooks.send(bytes(remb))
        repaired = h.ssrc == layer.rtx_ssrc
        if repaired:
            apt = track.rtx_apt.get(h.pt)
            if apt is None or h.payload_end - h.payload_start < 2:
                return  # padding probe on the RTX stream
            layer.rtx_packets += 1
            h.seq = U16.unpack_from(data, h.payload_start)[0]
            h.pt = apt
            h.ssrc = layer.ssrc
            h.payload_start += 2
        elif h.pt not in track.codecs:
            return
        if layer.ring:
            layer.ring[h.seq % len(layer.ring)] = data
        q = self._q
        q.sequence_number = h.seq
        q.timestamp = h.ts
        layer.stats.add(q)  # type: ignore[arg-type]  # reads only sequence_number and timestamp
        layer.packets += 1
        layer.octets += h.payload_end - h.payload_start
        nack = self._nack.get(h.ssrc)
        # With RTX negotiated, only an RTX arrival answers our NACK (the RTT sample); an original that
        # arrives late was reordered, not retransmitted. Without RTX nobody can tell the two apart.
        if nack is not None and nack.add(
            h.seq, now, rtx=True if repaired else (False if layer.rtx_ssrc else None)
        ):
            if track.simulcast and not track.watched(layer):
                nack.missing.clear()  # a simulcast layer nobody watches is not repaired
            else:
                await self._send_nacks(layer, nack, now)
        if h.payload_end == h.payload_start:
            return  # padding only
        if layer.awaiting_keyframe and track.is_keyframe is not None:
            layer.awaiting_keyframe = not track.is_keyframe(data, h.payload_start, h.payload_end)
        level = None
        if track.kind == "audio" and self._level_id:
            level = get_extension(data, h, self._level_id)
            # A held or self-muted microphone that still sends is nobody's speech: it takes no last-N place.
            if level is not None and track.forwarding:
                self._on_audio_level(self.participant_id, level[0])
        elif track.simulcast and not layer.width:
            size = (
                vp8_keyframe_size(data, h.payload_start, h.payload_end) if track.codec_name == "vp8" else None
            )
            if size is not None:
                layer.width, layer.height = size
        if not track.forwarding or not track.subscriptions:
            return
        video = track.kind == "video"
        abs3 = abs_send_time(now) if video else b""
        if h.split < 0:
            split_payload(data, h, track.codec_name)
        # The steady-state copies go out inside fan_out (in C when built); what it hands back is a layer
        # switch, a subscriber waiting for a keyframe, or the pure-Python path.
        slow = fanout.fan_out(track.subscriptions, layer, data, h, abs3 if video else level)
        if slow is not None:
            for subscription in slow:
                # Synchronous per subscriber; only a keyframe request (rate-limited, rare) awaits. One
                # subscriber's failure must not cost the others this packet.
                try:
                    wants_keyframe = subscription.forward_now(layer, data, h, level, abs3)
                except Exception:
                    self._copy_failed(subscription)
                    continue
                if wants_keyframe:
                    await track.request_keyframe(layer, now, join=subscription.joining)

    def _copy_failed(self, subscription: Any) -> None:
        METRICS.hook_errors += 1
        METRICS.dropped["error"] += 1
        if subscription not in self._failed_copies:  # logged once per subscription, then counted
            self._failed_copies.add(subscription)
            log.exception("participant %s: a copy to a subscriber failed", self.participant_id)

    async def _send_nacks(self, layer: Layer, nack: NackTracker, now: float) -> None:
        if not nack.configured:  # trackers are made where SSRCs are learnt; the settings arrive here
            settings = self._settings
            nack.configure(
                rtt=settings.default_rtt_ms / 1000,
                rtt_factor=settings.nack_rtt_factor,
                min_retry=settings.nack_retry_min_ms / 1000,
                max_retry=settings.nack_retry_max_ms / 1000,
            )
        abandoned = nack.abandoned
        lost = nack.due(now)
        if nack.abandoned != abandoned:  # a hole that will not be repaired: start over from a keyframe
            await layer.track.request_keyframe(layer, now)
        if lost:
            self.nacks_sent += 1
            METRICS.nacks_sent += 1
            packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=layer.track.rtcp_ssrc, media_ssrc=layer.ssrc)
            packet.lost = lost
            await self.hooks.send(bytes(packet))

    async def _on_rtcp(self, packets: list[Any]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                layer = self._by_ssrc.get(packet.ssrc)
                if layer is None:
                    continue
                layer.sr_ntp = packet.sender_info.ntp_timestamp
                layer.sr_rtp = packet.sender_info.rtp_timestamp
                layer.sr_at = time.monotonic()
                for subscription in layer.track.subscriptions:
                    report = subscription.sender_report(layer)
                    if report is not None:
                        await subscription.send_rtcp(report)
            elif isinstance(packet, RtcpByePacket):
                for ssrc in packet.sources:
                    layer = self._by_ssrc.get(ssrc)
                    if layer is not None and not layer.track.simulcast and layer.ssrc == ssrc:
                        self._end_track(layer.track)

    # ------------------------------------------------------------------------------------- reports
    async def _transport_feedback(self, data: bytes, h: Any, now: float) -> None:
        # Every packet counts, padding probes and retransmissions too: that is what the estimator measures.
        value = get_extension(data, h, self._twcc_id)
        if value is None or len(value) != 2:
            return
        feedback = self._twcc
        feedback.record((value[0] << 8) | value[1], int(now * 1_000_000))
        if now - feedback.last_sent < FEEDBACK_INTERVAL_S:
            return
        feedback.last_sent = now
        for packet in feedback.build(0, h.ssrc):
            METRICS.transport_feedback_sent += 1
            await self.hooks.send(packet)

    async def _run_reports(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL_S * (0.75 + random.random() / 2))
            try:
                await self._report(time.monotonic())
            except Exception:  # a bug here must not end receiver reports for good
                log.exception("participant %s: receiver reports failed", self.participant_id)

    async def _report(self, now: float) -> None:
        """Receiver reports (with LSR/DLSR for the publisher's RTT), layer bitrates and layer choices."""
        reports = []
        for track in list(self.tracks.values()):
            for layer in track.layers.values():
                layer.update_bitrate(now)
                if layer.stats.max_seq is None or not layer.ssrc:
                    continue
                dlsr = 0
                if layer.sr_ntp:
                    dlsr = min(int((now - layer.sr_at) * 65536), 0xFFFFFFFF)
                reports.append(
                    RtcpReceiverInfo(
                        ssrc=layer.ssrc,
                        fraction_lost=layer.stats.fraction_lost,
                        packets_lost=layer.stats.packets_lost,
                        highest_sequence=layer.stats.max_seq,
                        jitter=layer.stats.jitter,
                        lsr=(layer.sr_ntp >> 16) & 0xFFFFFFFF,
                        dlsr=dlsr,
                    )
                )
            for subscription in track.subscriptions:
                target = subscription.reselect_layer()
                if target is not None:
                    await track.request_keyframe(target)
        for i in range(0, len(reports), 31):  # an RR carries at most 31 report blocks
            await self.hooks.send(bytes(RtcpRrPacket(ssrc=self._rtcp_ssrc, reports=reports[i : i + 31])))

    def _end_track(self, track: Track) -> None:
        if self.tracks.get(track.mid) is not track:
            return
        del self.tracks[track.mid]
        for layer in track.layers.values():
            for ssrc in (layer.ssrc, layer.rtx_ssrc):
                self._by_ssrc.pop(ssrc, None)
                self._nack.pop(ssrc, None)
        track.closed = True
        self._on_track_ended(track)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for track in list(self.tracks.values()):
            self._end_track(track)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pc.close()
        self.hooks.close()
