"""Track: one published media stream and its simulcast layers (the ingress side of forwarding)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc.codecs import is_rtx
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket

from sfu.hooks import NackGenerator, StreamStatistics
from sfu.metrics import METRICS
from sfu.retransmit import TokenBucket
from sfu.rtp import KEYFRAME_DETECTORS, U16, U32, KeyframeDetector, RtpHeader, parse_rtp
from sfu.simulcast import LayerActivity, LayerInfo, LayerPauser, layer_order

if TYPE_CHECKING:
    from sfu.subscription import Subscription
    from sfu.tap import TapSubscription

SendRtcp = Callable[[bytes], Awaitable[bool]]


def codec_key(codec: Any) -> tuple[str, ...]:
    """Identity of a codec across two negotiations (payload types differ, the codec does not)."""
    params = codec.parameters or {}
    mime = codec.mimeType.lower()
    if mime == "video/h264":
        profile = h264_profile_key(str(params.get("profile-level-id", "42e01f")))
        return (mime, str(params.get("packetization-mode", "0")), profile)
    if mime == "video/vp9":
        return (mime, str(params.get("profile-id", "0")))
    return (mime,)


def receivable_key(codec: Any) -> tuple[str, ...]:
    """The codec_key a receiver must have negotiated to take `codec`'s packets as they are: H.264 in
    packetization-mode 0 (single NAL units) is also valid mode 1 (RFC 6184 §6.3), not the other way round."""
    key = codec_key(codec)
    if key[0] == "video/h264" and key[1] == "0":
        return (key[0], "1", key[2])
    return key


def h264_profile_key(profile_level_id: str) -> str:
    """profile_idc and constraint flags, with the Baseline variants that Constrained Baseline decoders take as
    one: room terminals send 4280/42c0, browsers 42e0 (constraint_set0 or set1 on Baseline: RFC 6184 §8.1)."""
    profile = profile_level_id.lower()[:4]
    hexadecimal = len(profile) == 4 and all(c in "0123456789abcdef" for c in profile)
    if hexadecimal and profile.startswith("42") and int(profile[2:], 16) & 0xC0:
        return "42e0"
    return profile


class Layer:
    """One RTP stream of a Track: its only stream, or one simulcast encoding (rid)."""

    def __init__(self, track: Track, rid: str) -> None:
        self.track = track
        self.rid = rid
        self.ssrc = 0
        self.rtx_ssrc = 0
        self.stats = StreamStatistics(track.clock_rate)
        self.nack: Any = NackGenerator() if track.kind == "video" else None
        self.width = 0
        self.height = 0
        self.activity = LayerActivity()  # sampled by the router: is the layer being sent?
        self.packets = 0
        self.rtx_packets = 0
        self.octets = 0
        self.bitrate = 0  # bits per second over the last report interval
        self._octets_mark = 0
        self._mark_at = 0.0
        # The publisher's last sender report: NTP and RTP time of one instant, our monotonic time of arrival.
        self.sr_ntp = 0
        self.sr_rtp = 0
        self.sr_at = 0.0
        # The last packets as received (RTX included), by their original sequence number: repairs holes in a
        # subscriber's stream left by packets held back before a switch.
        self.ring: list[bytes | None] = [None] * track.ring_size if track.kind == "video" else []
        self.last_keyframe_request = -1e9
        self.keyframe_requests = 0
        # A request is outstanding from when it is sent until a keyframe arrives: later wishes ride on it.
        self.awaiting_keyframe = False
        self._fir_seq = 0

    def recent(self, seq: int) -> tuple[bytes, RtpHeader] | None:
        """The received packet with original sequence number `seq`, parsed (RTX unwrapped), if still kept."""
        if not self.ring:
            return None
        data = self.ring[seq % len(self.ring)]
        h = RtpHeader()
        if data is None or not parse_rtp(data, h):
            return None
        if h.ssrc == self.rtx_ssrc and self.rtx_ssrc:
            apt = self.track.rtx_apt.get(h.pt)
            if apt is None or h.payload_end - h.payload_start < 2:
                return None
            h.seq = U16.unpack_from(data, h.payload_start)[0]
            h.pt = apt
            h.ssrc = self.ssrc
            h.payload_start += 2
        return (data, h) if h.seq == seq else None

    def update_bitrate(self, now: float) -> None:
        if self._mark_at:
            elapsed = now - self._mark_at
            if elapsed > 0:
                self.bitrate = int((self.octets - self._octets_mark) * 8 / elapsed)
        self._octets_mark = self.octets
        self._mark_at = now

    def keyframe_request_due(self, now: float, *, join: bool = False) -> bool:
        """Whether a wish at `now` would send a request (`keyframe_request` not None). `join`: for a
        subscriber's first keyframe of the track (SfuSettings.keyframe_join_interval_ms)."""
        track = self.track
        if track.is_keyframe is None or not self.ssrc:
            return False
        since = now - self.last_keyframe_request
        if since < (
            min(track.keyframe_join_interval, track.keyframe_min_interval)
            if join
            else track.keyframe_min_interval
        ):
            return False
        return not self.awaiting_keyframe or since >= track.keyframe_retry

    def keyframe_request(self, now: float, *, join: bool = False) -> bytes | None:
        """The RTCP packet asking the publisher for a keyframe, or None when none should be sent now.

        None while a request is outstanding (its keyframe will serve this wish too) unless it went
        unanswered for ``keyframe_retry``, and within ``keyframe_min_interval`` of the last request
        (a join storm must not turn into a keyframe storm). Once the keyframe arrived the next wish is
        asked for at once: a late joiner waits one publisher round trip, not a fixed throttle.
        """
        if not self.keyframe_request_due(now, join=join):
            return None
        track = self.track
        self.last_keyframe_request = now
        self.keyframe_requests += 1
        METRICS.keyframe_requests_sent += 1
        self.awaiting_keyframe = True
        if track.fir_only:
            self._fir_seq = (self._fir_seq + 1) & 0xFF
            fci = U32.pack(self.ssrc) + bytes((self._fir_seq, 0, 0, 0))
            return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_FIR, ssrc=track.rtcp_ssrc, media_ssrc=0, fci=fci))
        return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=track.rtcp_ssrc, media_ssrc=self.ssrc))


@dataclass(frozen=True, slots=True)
class LayerView:
    """A track's layers from the lowest to the highest, with what a layer choice reads of them."""

    layers: list[Layer]
    available: list[LayerInfo]  # as sampled: a paused or stopped layer is not available
    every: list[LayerInfo]  # every layer taken as available; `available` itself when all of them are


class Track:
    """A published stream: codecs and layers from the publish negotiation, the subscriptions it feeds."""

    def __init__(
        self,
        *,
        track_id: str,
        participant_id: str,
        kind: str,
        source: str,
        mid: str,
        params: Any,
        rtcp_ssrc: int,
        send_rtcp: SendRtcp,
        rids: list[str],
        keyframe_min_interval: float,
        keyframe_retry: float,
        keyframe_join_interval: float = 0.1,
        ring_size: int = 512,
    ) -> None:
        self.id = track_id
        self.participant_id = participant_id
        self.kind = kind
        self.source = source
        self.mid = mid
        self.rtcp_ssrc = rtcp_ssrc
        self.keyframe_min_interval = keyframe_min_interval
        self.keyframe_retry = keyframe_retry
        self.keyframe_join_interval = keyframe_join_interval
        self.ring_size = ring_size
        self._send_rtcp = send_rtcp
        main = [c for c in params.codecs if not is_rtx(c)]
        if not main:
            raise ValueError(f"mid {mid}: no media codec negotiated")
        self.codecs: dict[int, Any] = {c.payloadType: c for c in main}
        self.main_codec = main[0]
        self.rtx_apt: dict[int, int] = {
            c.payloadType: int(c.parameters["apt"])
            for c in params.codecs
            if is_rtx(c) and "apt" in c.parameters
        }
        self.clock_rate = int(self.main_codec.clockRate)
        self.codec_name = self.main_codec.name.lower()
        self.is_keyframe: KeyframeDetector | None = (
            KEYFRAME_DETECTORS.get(self.codec_name) if kind == "video" else None
        )
        feedback = {(f.type, f.parameter) for f in (self.main_codec.rtcpFeedback or [])}
        self.fir_only = ("nack", "pli") not in feedback and ("ccm", "fir") in feedback
        self.rids = rids
        self.layers: dict[str, Layer] = {rid: Layer(self, rid) for rid in (rids or [""])}
        self.pauser = LayerPauser(rids)
        # Replaced, never mutated: the hot path iterates it across awaits.
        self.subscriptions: tuple[Subscription | TapSubscription, ...] = ()
        self.forwarding = True
        # Audio last-N (Router, sfu/audio_selection.py): False while subscribers do not get this microphone.
        self.selected = True
        self.closed = False
        if not rids and params.encodings:
            encoding = params.encodings[0]
            self.layers[""].ssrc = encoding.ssrc or 0
            self.layers[""].rtx_ssrc = encoding.rtx.ssrc if encoding.rtx else 0

    @property
    def simulcast(self) -> bool:
        return bool(self.rids)

    def ordered_layers(self) -> list[Layer]:
        """Layers from the lowest to the highest quality: negotiated rid order, by decoded size once known."""
        layers = list(self.layers.values())
        return [layers[i] for i in layer_order([(x.width, x.height) for x in layers])]

    def layer_view(self, now: float) -> LayerView:
        """The layers as sampled at `now`, for every subscription's choice in one router tick."""
        layers = self.ordered_layers()
        available = [LayerInfo(x.width, x.height, x.bitrate, x.activity.available(now)) for x in layers]
        if all(info.available for info in available):
            return LayerView(layers, available, available)
        return LayerView(layers, available, [LayerInfo(x.width, x.height, x.bitrate) for x in available])

    def wanted_rids(self, now: float, view: LayerView) -> set[str]:
        """The rids somebody needs (the lowest always: a new subscriber starts on something at once); call
        after every subscription's reselect_layer with the same view."""
        wanted = {view.layers[0].rid}
        for subscription in self.subscriptions:
            wanted.update(layer.rid for layer in subscription.wanted_layers(now, view))
        return wanted

    def watched(self, layer: Layer) -> bool:
        """Whether any subscription forwards or waits for this layer (unwatched layers are not forwarded)."""
        return any(s.current is layer or s.target is layer for s in self.subscriptions)

    async def request_keyframe(
        self, layer: Layer, now: float | None = None, *, budget: TokenBucket | None = None, join: bool = False
    ) -> None:
        """Ask the publisher for a keyframe of `layer` (within the layer's limits).

        `budget`: the requester's own (a subscriber's PLI/FIR), spent only by a wish that would send a
        request: one riding on the outstanding request, or dropped within the minimum interval, costs
        nothing, so a subscriber that repeats its PLI while it waits does not run out. `join`: the wish of a
        subscription waiting for its first keyframe of this track (Subscription.joining).
        """
        now = time.monotonic() if now is None else now
        if budget is not None and layer.keyframe_request_due(now) and not budget.take(now):
            METRICS.keyframe_requests_refused += 1
            return
        packet = layer.keyframe_request(now, join=join and budget is None)
        if packet is not None:
            await self._send_rtcp(packet)

    def set_selected(self, selected: bool) -> None:
        """Audio last-N: whether subscribers get this track (taps, which record everyone, always do)."""
        if selected == self.selected:
            return
        self.selected = selected
        for subscription in self.subscriptions:
            if getattr(subscription, "follows_selection", False):
                subscription.source_changed()

    def set_forwarding(self, enabled: bool) -> None:
        if enabled == self.forwarding:
            return
        self.forwarding = enabled
        for subscription in self.subscriptions:
            subscription.source_changed()
