"""Tap: a Track's packets handed to an in-process sink (a recorder) instead of a subscriber's connection.

A recorder reading the meeting through a second PeerConnection would have every packet SRTP-protected, sent,
decrypted and jitter-buffered again for nothing (research/recording.md §0). A TapSubscription is one more
subscription of the Track with no Route, so sfu/_fanout.c hands each of its packets to Python
(``forward_now``); it takes part in the layer machinery like a viewer that wants the best layer: the
LayerPauser keeps that layer on, a switch (and the first packet) waits for a keyframe. The sink sees plain
values only, so ``sfu`` and ``recording`` stay leaves.

The sink's calls run on the event loop inside the publisher's receive path: they must only enqueue
(no I/O, no locks held for long). ``packet`` returning True asks the publisher for a keyframe of that layer
(rate-limited by the Track like every other request).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sfu.fanout import SubscriptionBase
from sfu.metrics import METRICS
from sfu.rtp import RtpHeader
from sfu.subscription import GUARD_WINDOW

if TYPE_CHECKING:
    from sfu.track import Layer, LayerView, Track

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TappedTrack:
    """What a sink is told about the Track it is made for."""

    track_id: str
    participant_id: str
    kind: str  # "audio" or "video"
    source: str  # "mic", "camera", "screen"
    codec: str  # lower-case codec name: "opus", "vp8", "h264", ...
    clock_rate: int
    channels: int  # audio channels as negotiated (Opus: 2); 0 for video
    simulcast: bool


class TapSink(Protocol):
    """Receives one Track's packets as plain values (RTX already unwrapped: seq is the original's)."""

    def packet(  # noqa: PLR0917 (the hot path: plain values, no object per packet)
        self, rid: str, seq: int, ts: int, marker: bool, payload: bytes, arrival: float
    ) -> bool:
        """One RTP packet of layer `rid` ("" without simulcast); `arrival` in time.monotonic() seconds.
        Return True to have a keyframe of this layer requested."""
        ...

    def sender_report(self, rid: str, ntp: int, rtp: int, arrival: float) -> None:
        """The publisher's RTCP sender report of layer `rid`: 64-bit NTP and RTP time of one instant."""
        ...

    def ended(self) -> None:
        """No more packets: the Track was unpublished or the tap closed (called once)."""
        ...


class TapSubscription(SubscriptionBase):
    """A subscription of one Track feeding a TapSink; made by Router.tap, closed by its owner (idempotent).

    It forwards one layer at a time: the highest one being sent (a recording wants the best quality), and
    switches up on the better layer's next keyframe when one starts; a Track that is unpublished unbinds it
    (the sink is told ``ended``).
    """

    def __init__(self, track: Track, sink: TapSink) -> None:
        self.route = None  # every packet takes the Python path (forward_now)
        self.track: Track | None = track
        self.sink = sink
        self.kind = track.kind
        self.video = track.kind == "video"
        self.current: Layer | None = None
        self.target: Layer | None = None
        self.joining = (
            True  # the first keyframe of the track may be asked for sooner (Layer.keyframe_request)
        )
        self.packets = 0
        self.octets = 0
        self.dropped_before_keyframe = 0
        self.sink_errors = 0
        self.switches = 0
        self._ended = False
        track.subscriptions = (*track.subscriptions, self)
        self.source_changed()

    @staticmethod
    def describe_track(track: Track) -> TappedTrack:
        codec = track.main_codec
        return TappedTrack(
            track_id=track.id,
            participant_id=track.participant_id,
            kind=track.kind,
            source=track.source,
            codec=track.codec_name,
            clock_rate=track.clock_rate,
            channels=int(codec.channels or 0) if track.kind == "audio" else 0,
            simulcast=track.simulcast,
        )

    def close(self) -> None:
        """Stop tapping the Track; the sink is told ``ended`` (idempotent)."""
        self.unbind()

    # ------------------------------------------------------------------------------ the subscription surface
    def unbind(self) -> None:
        track, self.track = self.track, None
        if track is not None:
            track.subscriptions = tuple(s for s in track.subscriptions if s is not self)
        self.current = self.target = None
        if not self._ended:
            self._ended = True
            try:
                self.sink.ended()
            except Exception:
                log.exception("tap of %s: the sink failed on ended", track.id if track else "?")

    def source_changed(self) -> None:
        """Start over from a keyframe (attach, a moderation mute lifted)."""
        self.current = None
        self.target = None
        track = self.track
        if track is None or not track.forwarding:
            return
        self.target = self._best(track.layer_view(time.monotonic()))
        self.joining = True

    def _best(self, view: LayerView) -> Layer:
        available = [layer for layer, info in zip(view.layers, view.available, strict=True) if info.available]
        return (available or view.layers)[-1]

    def wanted_layers(self, now: float, view: LayerView) -> tuple[Layer, ...]:
        """The layers forwarded or waited for, and the best one (so that the publisher keeps sending it)."""
        if self.track is None or not self.track.forwarding:
            return ()
        return tuple(x for x in (self.current, self.target, view.layers[-1]) if x is not None)

    def reselect_layer(self, now: float | None = None, view: LayerView | None = None) -> Layer | None:
        """Move to the best available layer (switched on its next keyframe); the new target, or None."""
        track = self.track
        if track is None or not track.simulcast or (self.current is None and self.target is None):
            return None
        if view is None:
            view = track.layer_view(time.monotonic() if now is None else now)
        chosen = self._best(view)
        if chosen is self.current:
            self.target = None
            return None
        if chosen is self.target:
            return None
        self.target = chosen
        return chosen

    def forward_now(self, layer: Layer, data: bytes, h: RtpHeader, level: bytes | None, abs3: bytes) -> bool:
        """Hand one packet of `layer` to the sink; True when a keyframe of `layer` should be requested."""
        if layer is self.current:
            # sfu/_fanout.c drops packets older than switch_seq before they reach a Python-path subscription
            # (and moves it only for its own copies): keep it GUARD_WINDOW behind the stream, as
            # Subscription._after_switch does, or half of the sequence number space would be dropped.
            if ((h.seq - self.switch_seq) & 0xFFFF) > GUARD_WINDOW:
                self.switch_seq = (h.seq - GUARD_WINDOW) & 0xFFFF
        else:
            if layer is not self.target:
                return False
            track = layer.track
            if track.is_keyframe is not None and not track.is_keyframe(data, h.payload_start, h.payload_end):
                self.dropped_before_keyframe += 1
                return True
            self.current, self.target = layer, None
            self.switch_seq = h.seq
            self.joining = False
            self.switches += 1
            if layer.sr_ntp:  # the new layer's timing, before its first packet
                self.sender_report(layer)
        self.packets += 1
        self.octets += h.payload_end - h.payload_start
        try:
            return self.sink.packet(
                layer.rid, h.seq, h.ts, h.marker == 1, data[h.payload_start : h.payload_end], h.arrival
            )
        except Exception:
            self.sink_errors += 1
            METRICS.hook_errors += 1
            if self.sink_errors == 1:  # once per tap, then counted
                log.exception("tap of %s: the sink failed", layer.track.id)
            return False

    def sender_report(self, layer: Layer) -> bytes | None:
        """Pass the publisher's SR of a layer we forward or wait for to the sink; nothing to send back."""
        if (layer is self.current or layer is self.target) and layer.sr_ntp:
            try:
                self.sink.sender_report(layer.rid, layer.sr_ntp, layer.sr_rtp, layer.sr_at)
            except Exception:
                self.sink_errors += 1
                log.exception("tap of %s: the sink failed on a sender report", layer.track.id)
        return None

    async def send_rtcp(self, data: bytes) -> bool:
        return False
