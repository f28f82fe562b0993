"""SubscribeConnection: the PeerConnection a participant receives on (the SFU offers, the client answers)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from sfu.allocator import Ranking, SubscriberAllocator
from sfu.errors import BadRequest
from sfu.hooks import PeerHooks, make_peer_connection, port_range, set_stream_id
from sfu.metrics import METRICS
from sfu.retransmit import ResendMemory, RttEstimate, TokenBucket, nack_answers, rtt_from_report
from sfu.rtp import U32
from sfu.sdp import announce_address, media_sections, require_candidates
from sfu.settings import SfuSettings
from sfu.subscription import Subscription
from sfu.track import LayerView, Track, codec_key, receivable_key

log = logging.getLogger(__name__)


class SubscribeConnection:
    """Sends other participants' tracks to one participant; renegotiates as tracks come and go.

    Transceivers are never removed (aiortc cannot): one whose track ended goes inactive and is reused for the
    next track of the same kind, so the offer stays as large as the most tracks ever received at once.
    """

    def __init__(
        self, participant_id: str, settings: SfuSettings, *, on_needs_offer: Callable[[], None]
    ) -> None:
        self.participant_id = participant_id
        self._settings = settings
        self._on_needs_offer = on_needs_offer
        self.pc = make_peer_connection(settings)
        self.hooks = PeerHooks(
            self.pc,
            on_rtp=self._on_rtp,
            on_rtcp=self._on_rtcp,
            on_send=self._on_send,
            ports=port_range(settings),
            sends_media=True,
        )
        self.subscriptions: list[Subscription] = []
        self._by_ssrc: dict[int, Subscription] = {}
        self._wanted: dict[str, Track] = {}
        self._max_sizes: dict[str, tuple[int, int]] = {}
        self._disabled: set[str] = set()
        self._lock = asyncio.Lock()
        self._offer_outstanding = False
        self._dirty = False
        self._closed = False
        self.nacks_received = 0
        self.keyframe_requests_received = 0
        # What this subscriber's feedback may cost (sfu/retransmit.py): NACK answers per second for the
        # whole connection, per subscription (by SSRC, made on first use) what was resent when and the
        # keyframe requests its PLI/FIR may still cause.
        self._nack_bucket = TokenBucket(settings.nack_seqs_per_second, settings.nack_seqs_per_second)
        self._resent: dict[int, ResendMemory] = {}
        self._keyframe_budgets: dict[int, TokenBucket] = {}
        self.rtt = RttEstimate(settings.default_rtt_ms / 1000)  # one path: shared by every subscription
        # Splits the subscriber's one estimate across its videos, caps how many are forwarded.
        self.allocator = SubscriberAllocator(settings.max_videos_per_subscriber)
        # So that a join does not renegotiate everyone: while the audio last-N is on, this many audio
        # m-sections carry whichever microphones are selected (rebound, no renegotiation; browsers just play
        # them), and past the video cap a new camera gets no m-section until it is asked for (a tile reports
        # a size for it, or its participant speaks). 0: off.
        self.audio_slots = 0
        self._deferred: set[str] = set()
        self.renegotiations = 0

    # ------------------------------------------------------------------------------------- what to send
    def want(self, track: Track, *, notify: bool = True) -> None:
        if track.id not in self._wanted:
            self._wanted[track.id] = track
            if track.kind == "audio" and self.audio_slots:
                if not self._fill_audio_slots():
                    return  # unselected, or carried by a slot at once
            elif self._defers(track):
                self._deferred.add(track.id)
                return
            if notify:
                self._changed()

    def _defers(self, track: Track) -> bool:
        """Whether a new video waits without an m-section: the cap's worth of videos are placed already."""
        cap = self._settings.max_videos_per_subscriber
        if track.kind != "video" or track.source == "screen" or cap <= 0:
            return False
        placed = sum(
            1
            for t in self._wanted.values()
            if t.kind == "video" and t is not track and t.id not in self._deferred
        )
        return placed >= cap

    def undefer(self, track_id: str) -> None:
        """A deferred video is asked for (a tile shows it, or its participant speaks): place it."""
        if track_id in self._deferred:
            self._deferred.discard(track_id)
            self._changed()

    def set_audio_slots(self, count: int) -> None:
        """The audio last-N turned on (count: its size) or off (0: every microphone gets an m-section)."""
        if count == self.audio_slots:
            return
        self.audio_slots = count
        if not count or self._fill_audio_slots():
            self._changed()

    def _fill_audio_slots(self) -> bool:
        """Bind the selected microphones to audio slots now; True when some need a new m-section."""
        if self._closed:
            return False
        placed = {id(s.track or s.pending) for s in self.subscriptions}
        waiting = [
            t
            for t in self._wanted.values()
            if t.kind == "audio" and t.selected and not t.closed and id(t) not in placed
        ]
        for subscription in self.subscriptions:
            if not waiting:
                return False
            track = subscription.track
            free = track is None or not track.selected or self._wanted.get(track.id) is not track
            if (
                subscription.kind == "audio"
                and subscription.pending is None
                and subscription.params is not None
                and subscription.transceiver.direction == "sendonly"
                and free
            ):
                subscription.bind(waiting.pop())
        return bool(waiting)

    def audio_selection_changed(self) -> None:
        """The audio last-N moved (Router._audio_level, before the new speaker's packet is forwarded)."""
        if self.audio_slots and self._fill_audio_slots():
            self._changed()

    def unwant(self, track_id: str) -> None:
        track = self._wanted.pop(track_id, None)
        self._max_sizes.pop(track_id, None)
        self._disabled.discard(track_id)
        if track is None:
            return
        for subscription in self.subscriptions:
            if subscription.track is track:
                subscription.unbind()  # stop at once; the m-section goes inactive in the next offer
            if subscription.pending is track:
                subscription.pending = None
        if track.id in self._deferred:
            self._deferred.discard(track.id)
            return
        if track.kind == "audio" and self.audio_slots and not self._fill_audio_slots():
            return  # its slot carries another microphone, or waits for one: nobody renegotiates
        if track.kind == "video" and self._deferred:
            self._deferred.discard(next(iter(self._deferred)))  # a place: the next deferred camera takes it
        self._changed()

    def subscription_for(self, track_id: str) -> Subscription | None:
        """The subscription forwarding `track_id`, or about to (placed in an offer not yet answered)."""
        for subscription in self.subscriptions:
            track = subscription.track or subscription.pending
            if track is not None and track.id == track_id:
                return subscription
        return None

    def mids(self) -> dict[str, str]:
        """mid -> track_id of every m-section that carries (or is about to carry) a track."""
        result: dict[str, str] = {}
        for subscription in self.subscriptions:
            track = subscription.pending or subscription.track
            mid = subscription.transceiver.mid
            if track is not None and mid is not None:
                result[mid] = track.id
        return result

    def _changed(self) -> None:
        if self._offer_outstanding:
            self._dirty = True
        elif not self._dirty:
            self._dirty = True
            self._on_needs_offer()

    # ------------------------------------------------------------------------------------- negotiation
    async def create_offer(self) -> str:
        async with self._lock:
            if self._offer_outstanding:
                raise BadRequest("subscribe offer already outstanding: accept its answer first")
            self._dirty = False
            self.renegotiations += 1
            self._plan()
            self.hooks.attach()
            await self.pc.setLocalDescription(await self.pc.createOffer())
            # Refused before it counts as outstanding: the client never got an offer to answer.
            sdp = require_candidates(self.pc.localDescription.sdp)
            self._offer_outstanding = True
            return announce_address(sdp, self._settings.announced_address)

    async def answer_offer(self, offer_sdp: str) -> str:
        """Answer a client's recvonly offer (WHEP): the client's m-sections become our send slots."""
        if not media_sections(offer_sdp):
            raise BadRequest("offer_sdp: no audio or video section")
        async with self._lock:
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as exc:
                raise BadRequest(f"offer_sdp: {exc}") from exc
            for transceiver in self.pc.getTransceivers():
                if self._subscription_of(transceiver) is None and transceiver.kind in ("audio", "video"):
                    transceiver.direction = "sendonly"
                    self._add_subscription(transceiver)
            self.hooks.attach()
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            sdp = require_candidates(self.pc.localDescription.sdp)
            return announce_address(sdp, self._settings.announced_address)

    async def accept_answer(self, answer_sdp: str) -> None:
        async with self._lock:
            if not self._offer_outstanding:
                raise BadRequest("answer_sdp: no subscribe offer is outstanding")
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
            except Exception as exc:
                raise BadRequest(f"answer_sdp: {exc}") from exc
            self._offer_outstanding = False
            if self._dirty:
                self._on_needs_offer()

    def _plan(self) -> None:
        """Bind wanted tracks to transceivers: keep existing, reuse inactive ones, add only when needed."""
        placed = {id(s.track or s.pending) for s in self.subscriptions if (s.track or s.pending) is not None}
        for subscription in self.subscriptions:
            track = subscription.pending or subscription.track
            if track is not None and (track.closed or self._wanted.get(track.id) is not track):
                subscription.unbind()
                subscription.pending = None
                track = None
            if track is None and not (self.audio_slots and subscription.kind == "audio"):
                subscription.transceiver.direction = "inactive"  # audio slots stay open for the next speaker
        audio_slots = self.audio_slots
        if audio_slots:
            self._fill_audio_slots()  # negotiated slots first: only the rest needs new m-sections
        for track in list(self._wanted.values()):
            if track.closed or id(track) in placed or track.id in self._deferred:
                continue
            if track.kind == "audio" and audio_slots and not track.selected:
                continue
            subscription = self._reusable(track.kind) or self._add_subscription(
                self.pc.addTransceiver(track.kind, direction="sendonly")
            )
            transceiver = subscription.transceiver
            transceiver.direction = "sendonly"
            capabilities = RTCRtpSender.getCapabilities(track.kind).codecs
            keys = (codec_key(track.main_codec), receivable_key(track.main_codec))
            preferences = [c for c in capabilities if not is_rtx(c) and codec_key(c) in keys]
            if track.kind == "video":
                preferences += [c for c in capabilities if is_rtx(c)]
            if preferences:
                transceiver.setCodecPreferences(preferences)
            set_stream_id(transceiver, track.participant_id)
            subscription.enabled = track.id not in self._disabled
            subscription.max_width = subscription.max_height = 0  # a reused transceiver forgets the last tile
            subscription.hidden = False
            if track.id in self._max_sizes:
                subscription.set_max_size(*self._max_sizes[track.id])
            subscription.pending = track
        # As many audio slots as the last-N can select, open before they are needed.
        for _ in range(audio_slots - sum(1 for s in self.subscriptions if s.kind == "audio")):
            self._add_subscription(self.pc.addTransceiver("audio", direction="sendonly"))

    def _reusable(self, kind: str) -> Subscription | None:
        for subscription in self.subscriptions:
            if subscription.track is None and subscription.pending is None and subscription.kind == kind:
                return subscription
        return None

    def _add_subscription(self, transceiver: Any) -> Subscription:
        hooks = self.hooks
        subscription = Subscription(
            transceiver,
            hooks.send,
            send_now=hooks.send_now,
            route=hooks.route,
            connected=lambda: hooks.connected,
        )
        self.subscriptions.append(subscription)
        self._by_ssrc[subscription.ssrc] = subscription
        self._by_ssrc[subscription.rtx_ssrc] = subscription
        return subscription

    def _subscription_of(self, transceiver: Any) -> Subscription | None:
        return next((s for s in self.subscriptions if s.transceiver is transceiver), None)

    def _on_send(self, transceiver: Any, params: Any) -> None:
        subscription = self._subscription_of(transceiver)
        if subscription is not None and not self._closed:
            subscription.configure(params)
            self.allocator.admit(subscription, self.subscriptions)

    def bind(self, subscription: Subscription, track: Track | None) -> None:
        """Point an already negotiated slot at another track (WHEP follows the active speaker)."""
        if track is None:
            subscription.unbind()
        elif subscription.params is None:
            subscription.pending = track
        else:
            subscription.bind(track)

    # ------------------------------------------------------------------------------------- feedback
    async def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        return  # a subscribe connection receives no media

    async def _on_rtcp(self, packets: list[Any], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        # One datagram's NACKs together: the bound is on what one packet from the network can cost.
        nack_limit = self._settings.nack_seqs_per_packet
        for packet in packets:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                subscription = self._by_ssrc.get(packet.media_ssrc)
                # A NACK for the RTX stream names RTX numbers, which are not ours to map back.
                if subscription is not None and packet.media_ssrc == subscription.ssrc:
                    nack_limit -= await self._answer_nack(subscription, packet.lost, nack_limit, now)
            elif isinstance(packet, RtcpPsfbPacket):
                if packet.fmt == RTCP_PSFB_PLI:
                    await self._keyframe_wanted(packet.media_ssrc, now)
                elif packet.fmt == RTCP_PSFB_FIR:  # the target SSRC is in the FCI, media_ssrc is 0
                    for i in range(0, len(packet.fci) - 7, 8):
                        await self._keyframe_wanted(U32.unpack_from(packet.fci, i)[0], now)
                elif packet.fmt == RTCP_PSFB_APP:
                    try:
                        bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    except ValueError:
                        continue
                    # One estimate for the whole connection (it lists every SSRC): the allocator splits it.
                    for ssrc in ssrcs:
                        subscription = self._by_ssrc.get(ssrc)
                        if subscription is not None:
                            subscription.remb = bitrate
                    self.allocator.estimate = bitrate
                    self.allocate(now, force=True)  # the hot path asks for keyframes of new targets
            elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                for report in packet.reports:
                    subscription = self._by_ssrc.get(report.ssrc)
                    # Only the media stream's block: an RTX stream's (receivers may report it too) has next
                    # to no loss and would hide the downlink's from the layer choice.
                    if subscription is not None and report.ssrc == subscription.ssrc:
                        subscription.fraction_lost = report.fraction_lost
                        self._measure_rtt(subscription, report.lsr, report.dlsr, now)

    async def _answer_nack(self, subscription: Subscription, lost: list[int], limit: int, now: float) -> int:
        """Resend what a NACK asks for within the bounds; how much of the datagram's limit it used."""
        self.nacks_received += 1
        METRICS.nacks_received += 1
        METRICS.nack_seqs_requested += len(lost)
        memory = self._resent.get(subscription.ssrc)
        if memory is None:
            memory = self._resent[subscription.ssrc] = ResendMemory()
        seqs, refused = nack_answers(
            lost, memory, self._nack_bucket, limit=max(limit, 0), window=self.rtt.value, now=now
        )
        for seq in seqs:
            if await subscription.retransmit(seq):
                memory.mark(seq, now)
                METRICS.retransmissions += 1
            else:  # no longer in the ring (or never sent, or not connected)
                refused += 1
        METRICS.retransmissions_suppressed += refused
        return min(len(lost), max(limit, 0))

    def _measure_rtt(self, subscription: Subscription, lsr: int, dlsr: int, now: float) -> None:
        """An RTT sample from a report block answering an SR we sent (the track's layers' latest)."""
        track = subscription.track
        if track is None or not lsr:
            return
        for layer in track.layers.values():
            rtt = rtt_from_report(lsr, dlsr, layer.sr_ntp, layer.sr_at, now)
            if rtt is not None:
                self.rtt.add(rtt)
                return

    async def _keyframe_wanted(self, ssrc: int, now: float) -> None:
        subscription = self._by_ssrc.get(ssrc)
        if subscription is None or subscription.track is None:
            return
        self.keyframe_requests_received += 1
        subscription.keyframe_requests_received += 1
        layer = subscription.target or subscription.current
        if layer is None:
            return
        budget = self._keyframe_budgets.get(subscription.ssrc)
        if budget is None:
            per_10s = self._settings.subscriber_keyframe_budget
            budget = self._keyframe_budgets[subscription.ssrc] = TokenBucket(per_10s / 10, per_10s)
        await subscription.track.request_keyframe(layer, now, budget=budget)

    def allocate(
        self,
        now: float,
        ranking: Ranking | None = None,
        views: dict[str, LayerView] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Re-split the downlink (sfu/allocator.py): when due, forced, or when the speaker changed."""
        if not self._closed:
            self.allocator.run(self.subscriptions, now, ranking, views, force=force)

    def set_max_size(self, track_id: str, width: int, height: int) -> None:
        self._max_sizes[track_id] = (width, height)
        if width or height:
            self.undefer(track_id)  # a tile shows it
        subscription = self.subscription_for(track_id)
        if subscription is not None:
            subscription.set_max_size(width, height)
            if subscription.track is not None:
                self.allocate(time.monotonic(), force=True)

    def set_enabled(self, track_id: str, enabled: bool) -> None:
        if enabled:
            self._disabled.discard(track_id)
        else:
            self._disabled.add(track_id)
        subscription = self.subscription_for(track_id)
        if subscription is not None and subscription.enabled != enabled:
            subscription.enabled = enabled
            subscription.source_changed()
            self.allocator.request()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subscription in self.subscriptions:
            subscription.unbind()
            subscription.pending = None
        await self.pc.close()
        self.hooks.close()
