"""Subscription: one outgoing stream on a subscribe PeerConnection, fed by one Track at a time."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.codecs import is_rtx
from aiortc.rtp import RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket

from sfu.fanout import Route, SubscriptionBase
from sfu.hooks import sender_ssrcs
from sfu.metrics import METRICS
from sfu.rtp import (
    RTP_HEADER,
    U16,
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    ExtensionTemplate,
    RtpHeader,
    abs_send_time,
    rtx_wrap,
    seq_newer,
    split_payload,
)
from sfu.simulcast import select_layer
from sfu.track import Layer, LayerView, Track, codec_key, receivable_key

SendRtp = Callable[[bytes], Awaitable[bool]]
SendNow = Callable[[bytes], bool]


def _not_connected(data: bytes) -> bool:
    return False


# No output payload type for any input payload type (before the first negotiation).
_UNMAPPED = bytes((255,)) * 128

# Longest timestamp gap we carry across a switch; longer pauses restart the clock at this gap.
MAX_SWITCH_GAP_S = 5.0

# How far the switch point trails the newest packet forwarded at most (input sequence numbers). It holds back
# only packets older than the switch (their output numbers would collide with the previous source's); kept
# within this window, the 16-bit comparison never wraps however long the stream runs (it did after 32,768
# packets). Larger than any ingress ring (SfuSettings.nack_history), so whatever a NACK can still ask for
# is inside it. sfu/_fanout.c's GUARD_WINDOW is the same number.
GUARD_WINDOW = 0x2000


def _always_connected() -> bool:
    return True


class Subscription(SubscriptionBase):
    """Rewrites a Track's packets for one subscriber: own SSRC, seq/ts offsets, PT map, extension block.

    It belongs to one transceiver of the subscriber's PeerConnection and outlives the Track it forwards: when
    the transceiver is reused for another Track, sequence numbers, timestamps and VP8 picture ids continue.
    The state the copy loop needs lives in SubscriptionBase (C fields when sfu._fanout is built):
    sfu/fanout.py copies packets of the current layer to `route` in C, and ``_rewrite`` below is the same
    rewrite in Python (the layer switch, retransmissions, and the whole path without the C module).
    """

    # A subscriber gets a microphone only while the audio last-N selects it (Track.set_selected).
    follows_selection = True

    def __init__(
        self,
        transceiver: Any,
        send: SendRtp,
        *,
        send_now: SendNow | None = None,
        route: Route | None = None,
        connected: Callable[[], bool] = _always_connected,
    ) -> None:
        self.transceiver = transceiver
        self.route = route
        self.kind: str = transceiver.kind
        self.ssrc, self.rtx_ssrc = sender_ssrcs(transceiver)
        self._send = send
        # The synchronous form of `send` (PeerHooks.send_now) for the hot path, `forward_now`.
        self._send_now = send_now or _not_connected
        # Whether the subscriber's connection can carry media yet: a switch waits for it, or the keyframe it
        # switches on would be consumed unsent and the subscriber would have to ask again (one more RTT).
        self._connected = connected
        self.track: Track | None = None
        self.pending: Track | None = None  # bound once the next answer is applied
        self.enabled = True  # this subscriber's own switch (Peer.set_forwarding on a foreign track)
        self.params: Any = None
        self.mid = ""
        self.cname = ""
        self.pt_map: dict[int, int] = {}
        self.rtx_pt: dict[int, int] = {}  # media PT -> RTX PT, both as sent to the subscriber
        self.pt_table = _UNMAPPED
        self._set_template(ExtensionTemplate(0, "", 0, 0))
        self.current: Layer | None = None
        self.target: Layer | None = None
        self.seq_offset = 0
        self.ts_offset = 0
        self.switch_seq = 0
        self.last_seq = random.getrandbits(15)
        self.last_ts = random.getrandbits(32)
        self.last_sent_at = 0.0
        self.vp8_resync = True
        self.pid_offset = 0
        self.tl0_offset = 0
        self.last_pid = random.getrandbits(15)
        self.last_tl0 = random.getrandbits(8)
        self.video = self.kind == "video"
        self.rtx_seq = random.getrandbits(15)
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0
        self.retransmit_misses = 0  # NACKed packets no longer in the ingress ring, or never sent
        self.dropped_before_keyframe = 0
        self.keyframe_requests_received = 0
        self.switches = 0
        self.remb = 0
        self.fraction_lost = 0
        self.max_width = 0  # the tile's size; 0: no limit (nothing reported)
        self.max_height = 0
        self.hidden = False  # the subscriber reported 0x0: the video is not shown, nothing is forwarded
        # The downlink allocator's decision (sfu/allocator.py): paused videos forward nothing; `allowance`
        # is the bitrate this video's layer choice may use (0: no limit).
        self.paused = False
        self.allowance = 0
        # Waiting for the first keyframe of the bound track: its request may come sooner (a join storm
        # would otherwise wait keyframe_min_interval_ms); once per binding, so it cannot be repeated.
        self.joining = False

    # ------------------------------------------------------------------------------------- binding
    def configure(self, params: Any) -> None:
        """Apply the parameters negotiated for this transceiver (every renegotiation)."""
        self.params = params
        if self.pending is not None:
            self.bind(self.pending)
        else:
            self._apply()

    def bind(self, track: Track) -> None:
        if self.track is not track:
            self.unbind()
            self.track = track
            self.joining = True
            track.subscriptions = (*track.subscriptions, self)
        self.pending = None
        self._apply()
        self.source_changed()

    def unbind(self) -> None:
        if self.track is not None:
            self.track.subscriptions = tuple(s for s in self.track.subscriptions if s is not self)
        self.track = None
        self.current = self.target = None

    def _apply(self) -> None:
        params, track = self.params, self.track
        if params is None or track is None:
            return
        self.mid = params.muxId or ""
        self.cname = params.rtcp.cname or ""
        out_by_key = {codec_key(c): c.payloadType for c in params.codecs if not is_rtx(c)}
        self.pt_map = {
            pt: out
            for pt, c in track.codecs.items()
            if (out := out_by_key.get(codec_key(c), out_by_key.get(receivable_key(c)))) is not None
        }
        table = bytearray(_UNMAPPED)
        for pt, out in self.pt_map.items():
            table[pt & 0x7F] = out
        self.pt_table = bytes(table)
        self.rtx_pt = {
            int(c.parameters["apt"]): c.payloadType
            for c in params.codecs
            if is_rtx(c) and "apt" in c.parameters
        }
        ids = {x.uri: x.id for x in params.headerExtensions}
        mid_id = ids.get(URI_MID, 0)
        if self.kind == "video":
            self._set_template(ExtensionTemplate(mid_id, self.mid, ids.get(URI_ABS_SEND_TIME, 0), 3))
        else:
            self._set_template(ExtensionTemplate(mid_id, self.mid, ids.get(URI_AUDIO_LEVEL, 0), 1))

    def _set_template(self, template: ExtensionTemplate) -> None:
        self.ext_head, self.ext_tail, self.ext_bare = template.head, template.tail, template.bare
        self.ext_value_len = template.value_len

    def source_changed(self) -> None:
        """Start over from a keyframe: on attach, after a moderation mute, or when re-enabled."""
        self.current = None
        self.target = None
        track = self.track
        if track is None or self.params is None or not track.forwarding or not self.enabled or self.hidden:
            return
        if not track.selected or self.paused:
            return
        self.target = self._chosen_layer()

    def set_max_size(self, width: int, height: int) -> None:
        """The size the subscriber shows this video at (the layer that fills it is chosen). 0x0: not shown,
        so nothing is forwarded until a size comes again (then from a keyframe, as after a mute)."""
        self.max_width, self.max_height = width, height
        hidden = self.video and width == 0 and height == 0
        if hidden != self.hidden:
            self.hidden = hidden
            self.source_changed()
        else:
            self.reselect_layer()

    # ------------------------------------------------------------------------------------- layers
    def _chosen_layer(
        self, now: float | None = None, view: LayerView | None = None, *, every_layer: bool = False
    ) -> Layer:
        """The layer this subscriber should get among the available ones (or among all: `every_layer`).
        `view`: the router's sample of the track's layers at `now`, shared by all its subscriptions."""
        assert self.track is not None
        now = time.monotonic() if now is None else now
        if view is None:
            view = self.track.layer_view(now)
        layers = view.layers
        if len(layers) == 1:
            return layers[0]
        # Stay on the current layer when everything went quiet (not when nothing was ever sampled).
        current = self.current
        stay = layers.index(current) if current in layers and current.activity.seen else None
        index = select_layer(
            view.every if every_layer else view.available,
            max_width=self.max_width,
            max_height=self.max_height,
            bandwidth=self.allowance,
            current=stay,
        )
        return layers[index]

    def wanted_layers(self, now: float, view: LayerView) -> tuple[Layer, ...]:
        """What this subscriber needs the publisher to send: the layers it forwards or waits for, and the one
        it would choose if every layer were sent (LayerPauser). Call after reselect_layer(now, view)."""
        if self.track is None or self.params is None or not self.enabled or not self.track.forwarding:
            return ()
        if self.hidden or self.paused:
            return ()
        if view.every is view.available:  # every layer sends: reselect_layer's choice is current or target
            return tuple(x for x in (self.current, self.target) if x is not None)
        chosen = self._chosen_layer(now, view, every_layer=True)
        return tuple(x for x in (self.current, self.target, chosen) if x is not None)

    def reselect_layer(self, now: float | None = None, view: LayerView | None = None) -> Layer | None:
        """Re-evaluate the layer choice; the new target (switched on its next keyframe), or None."""
        if self.track is None or not self.track.simulcast or (self.current is None and self.target is None):
            return None
        chosen = self._chosen_layer(now, view)
        if chosen is self.current:
            self.target = None
            return None
        if chosen is self.target:
            return None
        self.target = chosen
        return chosen

    # ------------------------------------------------------------------------------------- hot path
    def forward_now(self, layer: Layer, data: bytes, h: RtpHeader, level: bytes | None, abs3: bytes) -> bool:
        """Forward one packet of `layer` synchronously (already RTX-unwrapped: h.seq/h.pt are the original's).

        True when the packet was held back waiting for a keyframe: the caller then awaits
        ``layer.track.request_keyframe(layer)``. The publisher's hook calls this once per packet and
        subscriber, so it is a plain function: a coroutine per copy cost more than the rewrite itself.
        """
        if layer is self.current:
            if not self._after_switch(h.seq):
                return False
        elif not self._admit(layer, data, h):
            return layer is self.target and self._connected()
        packet = self._rewrite(layer, data, h, abs3 if self.video else level)
        if packet is not None:
            if self._send_now(packet):
                METRICS.forwarded_packets += 1
                METRICS.forwarded_bytes += len(packet)
            else:
                METRICS.dropped["not_connected"] += 1
        return False

    async def forward(
        self, layer: Layer, data: bytes, h: RtpHeader, level: bytes | None, abs3: bytes
    ) -> None:
        """`forward_now` sending through the awaitable `send` and awaiting the keyframe request itself."""
        if layer is self.current:
            if not self._after_switch(h.seq):
                return
        elif not self._admit(layer, data, h):
            if layer is self.target and self._connected():
                await layer.track.request_keyframe(layer, join=self.joining)
            return
        packet = self._rewrite(layer, data, h, abs3 if self.video else level)
        if packet is not None:
            if await self._send(packet):
                METRICS.forwarded_packets += 1
                METRICS.forwarded_bytes += len(packet)
            else:
                METRICS.dropped["not_connected"] += 1

    def _after_switch(self, seq: int) -> bool:
        """Whether a packet of the current layer may be forwarded: not older than the switch point. The
        switch point follows the stream at GUARD_WINDOW behind (sfu/_fanout.c does the same)."""
        behind = (seq - self.switch_seq) & 0xFFFF
        if behind >= 0x8000:
            METRICS.dropped["guard"] += 1
            return False
        if behind > GUARD_WINDOW:
            self.switch_seq = (seq - GUARD_WINDOW) & 0xFFFF
        return True

    def _admit(self, layer: Layer, data: bytes, h: RtpHeader) -> bool:
        """A packet of a layer we do not forward yet: switch to it on a keyframe (True), else hold it back.
        Not before the subscriber's connection is up: that keyframe would be lost."""
        if layer is not self.target:
            return False
        track = layer.track
        if track.is_keyframe is not None and not track.is_keyframe(data, h.payload_start, h.payload_end):
            self.dropped_before_keyframe += 1
            METRICS.keyframe_waits += 1
            return False
        if not self._connected():
            return False
        self._switch(layer, h)
        return True

    def _rewrite(
        self, layer: Layer, data: bytes, h: RtpHeader, ext_value: bytes | None, resend: bool = False
    ) -> bytes | None:
        """The packet as this subscriber gets it; None for an unmapped PT.

        Nothing is kept per subscriber: a NACK is answered by rewriting the input packet again from the
        layer's ingress ring (shared by every subscriber), so a copy lives only until it is sent. `resend`
        leaves the counters alone.
        """
        out_pt = self.pt_map.get(h.pt)
        if out_pt is None:
            return None
        if h.split < 0:  # the first subscriber of this input packet cuts the payload for all the others
            split_payload(data, h, layer.track.codec_name)
        out_seq = (h.seq + self.seq_offset) & 0xFFFF
        out_ts = (h.ts + self.ts_offset) & 0xFFFFFFFF
        # ExtensionTemplate.render(), from the fields sfu/_fanout.c reads too
        if ext_value is not None and len(ext_value) == self.ext_value_len:
            ext = self.ext_head + ext_value + self.ext_tail
        else:
            ext = self.ext_bare
        header = RTP_HEADER.pack(0x90 if ext else 0x80, (h.marker << 7) | out_pt, out_seq, out_ts, self.ssrc)
        # One join: the 1.2 kB body is copied once, straight from the input packet into ours.
        if h.split > h.payload_start:
            packet = b"".join((header, ext, self._vp8_descriptor(data, h), h.body))
        else:
            packet = b"".join((header, ext, h.body))
        if resend:
            return packet
        if 0 < ((out_seq - self.last_seq) & 0xFFFF) < 0x8000:  # seq_newer, inlined (once per copy)
            self.last_seq = out_seq
            self.last_ts = out_ts
        self.last_sent_at = h.arrival or time.monotonic()
        self.packets += 1
        self.octets += h.payload_end - h.payload_start
        return packet

    def _switch(self, layer: Layer, h: RtpHeader) -> None:
        """Continue our numbering from the last packet sent, whatever the new source's numbering is."""
        now = time.monotonic()
        self.seq_offset = (self.last_seq + 1 - h.seq) & 0xFFFF
        gap = min(now - self.last_sent_at, MAX_SWITCH_GAP_S) if self.last_sent_at else 0.0
        delta = max(1, int(gap * layer.track.clock_rate))
        self.ts_offset = (self.last_ts + delta - h.ts) & 0xFFFFFFFF
        self.switch_seq = h.seq
        self.vp8_resync = True
        self.current = layer
        self.target = None
        self.joining = False
        self.switches += 1

    def _vp8_descriptor(self, data: bytes, h: RtpHeader) -> bytearray:
        """This subscriber's copy of the VP8 descriptor: picture id and TL0PICIDX continue across switches
        (browsers track them)."""
        d = h.vp8
        start = h.payload_start
        out = bytearray(data[start : h.split])
        mask = 0x7FFF if d.pid_bits == 15 else 0x7F
        if self.vp8_resync:
            self.vp8_resync = False
            self.pid_offset = (self.last_pid + 1 - d.picture_id) & 0x7FFF
            if d.tl0_offset >= 0:
                self.tl0_offset = (self.last_tl0 + 1 - d.tl0) & 0xFF
        pid = (d.picture_id + self.pid_offset) & mask
        i = d.pid_offset - start
        if d.pid_bits == 15:
            out[i] = 0x80 | (pid >> 8)
            out[i + 1] = pid & 0xFF
        else:
            out[i] = pid
        # A retransmission rewrites an older picture: it must not move where the next switch continues from.
        current = ((pid - self.last_pid) & mask) < (mask >> 1)
        if current:
            self.last_pid = pid
        if d.tl0_offset >= 0:
            tl0 = (d.tl0 + self.tl0_offset) & 0xFF
            out[d.tl0_offset - start] = tl0
            if current:
                self.last_tl0 = tl0
        return out

    # ------------------------------------------------------------------------------------- feedback
    async def retransmit(self, seq: int) -> bool:
        """Answer one NACKed sequence number from the ingress ring (RTX when negotiated)."""
        packet = self._resend(seq)
        if packet is None:
            self.retransmit_misses += 1
            return False
        rtx_pt = self.rtx_pt.get(packet[1] & 0x7F)
        if rtx_pt is not None:
            header_len = 12 + ((packet[0] & 0x0F) << 2)
            if packet[0] & 0x10:
                header_len += 4 + (U16.unpack_from(packet, header_len + 2)[0] << 2)
            self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
            packet = rtx_wrap(packet, header_len, rtx_pt, self.rtx_seq, self.rtx_ssrc)
        self.retransmitted += 1
        return await self._send(packet)

    def _resend(self, seq: int) -> bytes | None:
        """Our packet `seq` again, rebuilt from the ingress ring: only since the last switch (older numbers
        had other offsets) and up to the last one sent. Packets held back before a keyframe are included."""
        layer = self.current
        if layer is None:
            return None
        in_seq = (seq - self.seq_offset) & 0xFFFF
        if in_seq != self.switch_seq and not seq_newer(in_seq, self.switch_seq):
            return None
        if seq != self.last_seq and not seq_newer(self.last_seq, seq):
            return None
        found = layer.recent(in_seq)
        if found is None:
            return None
        data, h = found
        return self._rewrite(layer, data, h, abs_send_time() if self.video else None, resend=True)

    async def send_rtcp(self, data: bytes) -> bool:
        return await self._send(data)

    def sender_report(self, layer: Layer) -> bytes | None:
        """The publisher's last SR for `layer`, translated to our SSRC and timestamps (keeps A/V lip sync)."""
        if layer is not self.current or not self.packets or not layer.sr_ntp:
            return None
        report = RtcpSrPacket(
            ssrc=self.ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=layer.sr_ntp,
                rtp_timestamp=(layer.sr_rtp + self.ts_offset) & 0xFFFFFFFF,
                packet_count=self.packets & 0xFFFFFFFF,
                octet_count=self.octets & 0xFFFFFFFF,
            ),
        )
        sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=self.ssrc, items=[(1, self.cname.encode())])])
        return bytes(report) + bytes(sdes)
