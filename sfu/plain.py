"""PlainPeer: a room terminal's media as plain RTP/SRTP on UDP sockets (no ICE, no DTLS).

Created by ``Router.add_plain_peer``. The terminal's video becomes a Track of the router; one video
Subscription follows the active speaker back to the terminal (one SSRC, continuous numbers: Subscription's
switch). Audio goes through the gateway's mixer: the peer hands the terminal's audio payloads to
``on_audio``, sends the mixer's encoded frames with ``send_audio`` and publishes the terminal's voice (Opus,
from the mixer) with ``publish_audio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
)

from sfu import fanout
from sfu.dtmf import DigitCollector
from sfu.errors import BadRequest, Closed
from sfu.metrics import METRICS
from sfu.plain_media import MediaKind, PlainMedia, PlainStream
from sfu.plain_rtcp import Receiving, Sent, compound, ntp_timestamp
from sfu.plain_stream import Address, MediaSocket, bind_pair, tmmbn, tmmbr_requests
from sfu.plain_tracks import (
    KEYFRAME_INTERVAL_S,
    OPUS_PT,
    Transceiver,
    aiortc_codec,
    camera_track,
    h264_payloads,
    opus_track,
    size_for_max_fs,
)
from sfu.plain_transcode import TranscodeFormat, Transcoder, transcodable, transcodes
from sfu.retransmit import TokenBucket
from sfu.rtp import RTP_HEADER, RtpHeader, abs_send_time, parse_rtp, split_payload
from sfu.subscription import Subscription
from sfu.track import Track, codec_key, receivable_key

if TYPE_CHECKING:
    from sfu.router import Router
    from sfu.settings import SfuSettings

log = logging.getLogger(__name__)

# A keyframe asked for by RTCP and not come after this long is asked for again by SIP INFO.
INFO_AFTER_S = 1.0
TICK_S = 0.1
REPORT_S = 2.0
NACK_LIMIT = 32  # sequence numbers answered per NACK packet from a terminal
TRANSCODE_BITRATE = 1_000_000  # bit/s of a transcoded camera (below the terminal's b=TIAS)


class PlainPeer:
    """One SIP leg's media in one Router: an RTP socket (and RTCP socket, the next port) per kind.

    Owned by the Router (closed with it, or by ``Router.remove_peer``); ``close()`` is idempotent.
    ``native`` (default: the C copy loop when built) is for tests and benchmarks comparing the two paths.
    """

    def __init__(
        self,
        router: Router,
        participant_id: str,
        settings: SfuSettings,
        sockets: dict[MediaKind, tuple[socket.socket, socket.socket]],
    ) -> None:
        self.participant_id = participant_id
        self._router = router
        self._settings = settings
        self._media: dict[MediaKind, MediaSocket] = {k: MediaSocket(k, *pair) for k, pair in sockets.items()}
        self.media: PlainMedia | None = None
        self.closed = False
        self.native = fanout.NATIVE
        # The terminal must be asked for a keyframe by SIP INFO picture_fast_update (it offers neither FIR nor
        # PLI, or no IDR came within 1 s of an RTCP request): the call sends it.
        self.on_keyframe_wanted: Callable[[], None] | None = None
        # An RFC 4733 digit ("0"-"9", "*", "#", "A"-"D"), once per event however often its end is repeated.
        self.on_dtmf: Callable[[str], None] | None = None
        # The terminal's audio: (payload, payload type, RTP timestamp) of every non-DTMF packet.
        self.on_audio: Callable[[bytes, int, int], None] | None = None
        self.video_track: Track | None = None  # the terminal's camera, published
        self.audio_track: Track | None = None  # the terminal's voice as Opus (publish_audio)
        self.video_out: Subscription | None = None  # the speaker's video to the terminal
        self._transcoder: Transcoder | None = None  # the source re-encoded for the terminal (shared)
        self._releasing: set[asyncio.Task[None]] = set()  # Transcodes.release of a source let go
        self._digits = DigitCollector()
        self._h = RtpHeader()
        self._rtcp_ssrc = random.getrandbits(32) or 1
        self._opus_seq = random.getrandbits(15)
        self._opus_ts = random.getrandbits(32)
        per_10s = settings.subscriber_keyframe_budget
        self._keyframe_budget = TokenBucket(per_10s / 10, per_10s)  # the terminal's own requests
        self._info_at = -1e9  # last SIP INFO keyframe request
        self._info_for = -1e9  # the RTCP request an INFO was sent for
        self._slate_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._reported_at = 0.0
        self._receiving: dict[MediaKind, Receiving] = {}  # the terminal's streams, for our report blocks
        self._audio_sent_at = 0.0  # when the last mix frame went out (the SR's RTP time is extrapolated)
        self.wallclock: Callable[[], float] = time.time  # the SRs' NTP time (tests inject it)
        self.infos_wanted = 0  # on_keyframe_wanted calls (tests, metrics)
        self.tmmbr_bitrate = 0  # the terminal's last TMMBR cap on our video, bit/s (0: none)

    @classmethod
    def open(
        cls,
        router: Router,
        participant_id: str,
        settings: SfuSettings,
        kinds: tuple[MediaKind, ...],
        host: str,
    ) -> PlainPeer:
        """Bind an RTP/RTCP socket pair (even port, next odd port) per kind on `host`."""
        sockets: dict[MediaKind, tuple[socket.socket, socket.socket]] = {}
        try:
            for kind in kinds:
                sockets[kind] = bind_pair(host, settings.udp_port_min, settings.udp_port_max)
        except OSError:
            for rtp, rtcp in sockets.values():
                rtp.close()
                rtcp.close()
            raise
        return cls(router, participant_id, settings, sockets)

    @property
    def local_ports(self) -> dict[MediaKind, int]:
        """The RTP port of each kind's socket (its RTCP socket is the next port), for the SDP answer."""
        return {kind: media.local_port for kind, media in self._media.items()}

    @property
    def forwarding_video(self) -> bool:
        """Whether a participant's video is being forwarded to the terminal (else: send the slate)."""
        sub = self.video_out
        return sub is not None and sub.current is not None

    def sockets(self, kind: MediaKind) -> MediaSocket | None:
        """The m-line's sockets and counters (tests, diagnostics)."""
        return self._media.get(kind)

    # ------------------------------------------------------------------------------------- negotiation
    async def start(self, media: PlainMedia) -> None:
        """Start sending to and receiving from the terminal as negotiated (call again after a re-INVITE)."""
        if self.closed:
            raise Closed(f"plain peer {self.participant_id!r} is closed")
        for stream in media.streams:
            if stream.kind not in self._media:
                raise BadRequest(f"{stream.kind}: no socket was allocated for it")
        first = self.media is None
        self.media = media
        for stream in media.streams:
            sock = self._media[stream.kind]
            if stream.kind not in self._receiving:
                self._receiving[stream.kind] = Receiving(stream.main.clock_rate)
            if sock.rtp_transport is None:
                kind = stream.kind
                await sock.open(
                    lambda data, addr, k=kind: self._on_rtp(k, data, addr),  # type: ignore[misc]
                    lambda data, addr, k=kind: self._on_rtcp(k, data, addr),  # type: ignore[misc]
                )
            sock.configure(stream, "" if media.latch_any else (media.signalling_host or stream.remote_host))
        video = media.stream("video")
        if video is not None:
            self._start_video(video)
        audio = media.stream("audio")
        if audio is not None and self.audio_track is None and audio.receives:
            self.audio_track = opus_track(self.participant_id, self._rtcp_ssrc, self._no_rtcp)
            self._router._track_published(self.audio_track)
        if first and self._ticker is None:
            self._ticker = asyncio.create_task(self._run(), name=f"sfu-plain:{self.participant_id}")
        self.follow_speaker()

    def _start_video(self, stream: PlainStream) -> None:
        codec = aiortc_codec(stream)
        if self.video_track is None and stream.receives:
            track = camera_track(
                self.participant_id, codec, self._settings, self._rtcp_ssrc, self._send_keyframe_request
            )
            self.video_track = track
            self._router._track_published(track)
        if stream.sends:
            if self.video_out is None:
                sock = self._media["video"]
                self.video_out = Subscription(Transceiver("video"), self._send_video, send_now=sock.send_rtp)
                if self.native and fanout.NATIVE:
                    self.video_out.route = fanout.Route(self._refresh_route)
            params = RTCRtpSendParameters(codecs=[codec], rtcp=RTCRtcpParameters(cname=self.participant_id))
            self.video_out.configure(params)
            if stream.max_fs > 0:  # (0, 0) would mean "not shown" to the Subscription
                self.video_out.set_max_size(*size_for_max_fs(stream.max_fs))
        elif self.video_out is not None:
            self.video_out.unbind()  # on hold: nothing goes out until a re-INVITE resumes

    def _refresh_route(self) -> bool | None:
        """sfu/_route.c asks when the latched address or the keys changed (RouteState.nominated[1])."""
        route = self.video_out.route if self.video_out is not None else None
        sock = self._media.get("video")
        if route is None or sock is None or sock.remote is None or sock.rtp_transport is None:
            if route is not None:
                route.clear()
            return False
        state = sock.route_state
        route.set(
            dtls=state,
            nominated=state.nominated,
            connected=state.CONNECTED,
            pair=state.nominated.setdefault(1, object()),
            session=sock.tx,
            srtp=fanout.srtp_context_address(sock.tx) if sock.tx is not None else 0,
            fd=sock.rtp_sock.fileno(),
            host=sock.remote[0],
            port=sock.remote[1],
        )
        return True

    async def move(self, router: Router, participant_id: str) -> None:
        """Leave this peer's Router for `router` as `participant_id`, sockets and negotiation kept (a call
        admitted from the IVR: no re-INVITE). Called by Router.adopt_plain_peer."""
        if self.closed:
            raise Closed(f"plain peer {self.participant_id!r} is closed")
        if self.video_out is not None:
            self.video_out.unbind()
        self._release_transcoder()  # it belongs to the old Router's sources
        for track in (self.video_track, self.audio_track):
            if track is not None:
                track.closed = True
                self._router._track_unpublished(track)
        self.video_track = self.audio_track = None
        self._router, self.participant_id = router, participant_id
        if self.media is not None:
            await self.start(self.media)

    # ------------------------------------------------------------------------------------- from the router
    def track_published(self, track: Track) -> None:
        """A Track was published in the router (the video subscription may follow it)."""
        if track.kind == "video" and track.participant_id != self.participant_id:
            self.follow_speaker()

    def track_unpublished(self, track: Track) -> None:
        """A Track was unpublished (the router has already unbound its subscriptions)."""
        if track.kind == "video":
            self.follow_speaker()

    def follow_speaker(self) -> None:
        """Forward the active speaker's camera; else keep the current one, else the first camera the terminal
        can take, else any; none: the terminal gets the slate. A camera in a codec the terminal cannot take
        (VP8; H.264 mode 1 to a mode-0 terminal) goes through a Transcoder (sfu/plain_transcode.py). A switch
        waits for the new source's keyframe (asked for at once) and keeps SSRC, sequence numbers and
        timestamps continuous."""
        sub = self.video_out
        if sub is None or sub.params is None or self.closed:
            return
        keys = {codec_key(c) for c in sub.params.codecs}
        cameras = [
            t
            for t in self._router.tracks.values()
            if t.kind == "video"
            and t.source != "screen"
            and t.participant_id != self.participant_id
            and not t.closed
        ]

        def direct(t: Track) -> bool:
            return codec_key(t.main_codec) in keys or receivable_key(t.main_codec) in keys

        candidates = [t for t in cameras if direct(t) or transcodable(t)]
        current = self._transcoder.source if self._transcoder is not None else sub.track
        speaker = self._router.active_speaker
        source = next((t for t in candidates if t.participant_id == speaker), None)
        if source is None and current in candidates:
            source = current
        if source is None:
            source = next((t for t in candidates if direct(t)), candidates[0] if candidates else None)
        chosen = source
        if source is not None and not direct(source):
            chosen = self._transcoded(source).output
        elif self._transcoder is not None:
            self._release_transcoder()
        if chosen is None:
            if sub.track is not None:
                sub.unbind()
            return
        if chosen is sub.track:
            return
        log.info("plain %s: video follows %s", self.participant_id, chosen.id)
        sub.bind(chosen)
        if sub.target is not None:
            self._spawn(chosen.request_keyframe(sub.target, join=True))

    def _transcoded(self, source: Track) -> Transcoder:
        """The shared Transcoder of `source` into this terminal's format (the previous one released)."""
        current = self._transcoder
        if current is not None and current.source is source and not current.closed:
            return current
        self._release_transcoder()
        stream = self.media.stream("video") if self.media is not None else None
        assert self.video_out is not None and self.video_out.params is not None
        fmt = TranscodeFormat(
            codec=self.video_out.params.codecs[0],
            max_fs=stream.max_fs if stream is not None else 0,
            bitrate=min(stream.tias or TRANSCODE_BITRATE, TRANSCODE_BITRATE) if stream else TRANSCODE_BITRATE,
        )
        self._transcoder = transcodes(self._router).acquire(source, fmt, self.participant_id)
        return self._transcoder

    def _release_transcoder(self) -> None:
        transcoder, self._transcoder = self._transcoder, None
        if transcoder is not None:
            task = asyncio.get_running_loop().create_task(
                transcodes(self._router).release(transcoder, self.participant_id)
            )
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    # ------------------------------------------------------------------------------------- media in
    def _on_rtp(self, kind: MediaKind, data: bytes, addr: Address) -> None:
        sock = self._media[kind]
        if sock.stream is not None and sock.stream.rtcp_mux and len(data) > 1 and 191 < data[1] < 224:
            self._on_rtcp(kind, data, addr)
            return
        plain = sock.admit(data, addr, rtcp=False)
        if plain is None:
            return
        sock.last_received = time.monotonic()
        try:
            if kind == "video":
                self._video_in(plain)
            else:
                self._audio_in(sock, plain)
        except Exception:
            METRICS.hook_errors += 1
            log.exception("plain %s: %s packet failed", self.participant_id, kind)

    def _audio_in(self, sock: MediaSocket, data: bytes) -> None:
        h = self._h
        if not parse_rtp(data, h) or sock.stream is None:
            return
        self._received("audio", h)
        payload = data[h.payload_start : h.payload_end]
        if sock.stream.telephone_event_pt is not None and h.pt == sock.stream.telephone_event_pt:
            digit = self._digits.packet(payload, h.ts)
            if digit is not None and self.on_dtmf is not None:
                self.on_dtmf(digit)
            return
        if h.pt == sock.stream.main.pt and self.on_audio is not None:
            self.on_audio(payload, h.pt, h.ts)

    def _video_in(self, data: bytes) -> None:
        track = self.video_track
        h = self._h
        if track is None or not parse_rtp(data, h):
            return
        self._received("video", h)
        if h.pt not in track.codecs:
            return
        now = h.arrival = time.monotonic()
        layer = track.layers[""]
        if layer.ssrc != h.ssrc:
            if layer.ssrc:
                log.info("plain %s: video SSRC %08x -> %08x", self.participant_id, layer.ssrc, h.ssrc)
            layer.ssrc = h.ssrc
        if layer.ring:
            layer.ring[h.seq % len(layer.ring)] = data
        layer.packets += 1
        layer.octets += h.payload_end - h.payload_start
        if h.payload_end == h.payload_start:
            return
        if layer.awaiting_keyframe and track.is_keyframe is not None:
            layer.awaiting_keyframe = not track.is_keyframe(data, h.payload_start, h.payload_end)
        if not track.forwarding or not track.subscriptions:
            return
        abs3 = abs_send_time(now)
        split_payload(data, h, track.codec_name)
        slow = fanout.fan_out(track.subscriptions, layer, data, h, abs3)
        for subscription in slow or ():
            try:
                wants_keyframe = subscription.forward_now(layer, data, h, None, abs3)
            except Exception:
                METRICS.hook_errors += 1
                continue
            if wants_keyframe:
                packet = layer.keyframe_request(now, join=subscription.joining)
                if packet is not None:
                    self._send_keyframe_request_now(packet)

    def _on_rtcp(self, kind: MediaKind, data: bytes, addr: Address) -> None:
        sock = self._media[kind]
        plain = sock.admit(data, addr, rtcp=True)
        if plain is None:
            return
        if kind == "video":
            self._tmmbr(sock, plain)
        try:
            packets = RtcpPacket.parse(plain)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.keyframe_wanted_by_terminal()
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK and kind == "video":
                sub = self.video_out
                if sub is not None and packet.media_ssrc == sub.ssrc:
                    # Resent from the publisher's ring (Subscription.retransmit), a few per report at most.
                    self._spawn(self._retransmit(sub, packet.lost[:NACK_LIMIT]))
            elif isinstance(packet, RtcpSrPacket) and kind in self._receiving:
                self._receiving[kind].sender_report(
                    packet.ssrc, packet.sender_info.ntp_timestamp, time.monotonic()
                )
            if isinstance(packet, RtcpSrPacket) and kind == "video" and self.video_track is not None:
                layer = self.video_track.layers[""]
                if packet.ssrc == layer.ssrc:
                    layer.sr_ntp = packet.sender_info.ntp_timestamp
                    layer.sr_rtp = packet.sender_info.rtp_timestamp
                    layer.sr_at = time.monotonic()

    def _tmmbr(self, sock: MediaSocket, compound: bytes) -> None:
        """The terminal caps what we send it (RFC 5104 TMMBR): the cap is the Subscription's downlink estimate
        (the layer choice reads it), acknowledged by a TMMBN."""
        sub = self.video_out
        entries = [e for e in tmmbr_requests(compound) if sub is not None and e[0] == sub.ssrc]
        if sub is None or not entries:
            return
        sub.remb = min(bitrate for _, bitrate, _ in entries)
        self.tmmbr_bitrate = sub.remb
        sub.reselect_layer()
        sock.send_rtcp(tmmbn(self._rtcp_ssrc, entries))

    async def _retransmit(self, sub: Subscription, lost: list[int]) -> None:
        for seq in lost:
            await sub.retransmit(seq)

    # ------------------------------------------------------------------------------------- media out
    def send_audio(self, payload: bytes, samples: int) -> None:
        """Send one encoded audio frame (this leg's mix) of `samples` RTP clock ticks to the terminal."""
        sock = self._media.get("audio")
        if sock is None or sock.stream is None or not sock.stream.sends:
            return
        if sock.send_rtp(sock.packet(sock.stream.main.pt, payload, samples)):
            self._audio_sent_at = time.monotonic()

    def publish_audio(self, opus: bytes, level: int) -> None:
        """Publish one 20 ms Opus frame of the terminal's voice into the router, with its RFC 6464 level
        (0 loudest .. 127 silence), so that SpeakerDetector can pick the terminal."""
        track = self.audio_track
        if track is None or self.closed:
            return
        layer = track.layers[""]
        self._opus_seq = (self._opus_seq + 1) & 0xFFFF
        self._opus_ts = (self._opus_ts + 960) & 0xFFFFFFFF
        data = RTP_HEADER.pack(0x80, OPUS_PT, self._opus_seq, self._opus_ts, layer.ssrc) + opus
        h = RtpHeader()
        parse_rtp(data, h)
        h.arrival = time.monotonic()
        layer.packets += 1
        layer.octets += len(opus)
        level &= 0x7F
        self._router._audio_level(self.participant_id, level)
        if not track.subscriptions:
            return
        value = bytes((level,))
        split_payload(data, h, "opus")
        slow = fanout.fan_out(track.subscriptions, layer, data, h, value)
        for subscription in slow or ():
            try:
                subscription.forward_now(layer, data, h, value, b"")
            except Exception:
                METRICS.hook_errors += 1

    def send_slate(self, frame: bytes) -> bool:
        """Send one H.264 access unit (Annex B, an IDR) to the terminal while no participant's video is
        forwarded, on the video subscription's SSRC and numbering (a later switch continues from it).
        False when a video is being forwarded or the terminal takes no video."""
        sub = self.video_out
        sock = self._media.get("video")
        if (
            sub is None
            or sock is None
            or sub.current is not None
            or sub.params is None
            or sock.stream is None
        ):
            return False
        now = time.monotonic()
        if sub.last_sent_at:
            sub.last_ts = (sub.last_ts + max(1, int(min(now - sub.last_sent_at, 5.0) * 90000))) & 0xFFFFFFFF
        pt = sock.stream.main.pt
        payloads = h264_payloads(frame)
        for i, payload in enumerate(payloads):
            sub.last_seq = (sub.last_seq + 1) & 0xFFFF
            marker = 0x80 if i == len(payloads) - 1 else 0
            sock.send_rtp(RTP_HEADER.pack(0x80, marker | pt, sub.last_seq, sub.last_ts, sub.ssrc) + payload)
            sub.packets += 1
            sub.octets += len(payload)
        sub.last_sent_at = now
        return True

    def request_keyframe(self) -> None:
        """Ask the terminal for a keyframe: FIR if it offered `ccm fir`, else PLI, else on_keyframe_wanted."""
        track = self.video_track
        if track is None:
            return
        packet = track.layers[""].keyframe_request(time.monotonic())
        if packet is not None:
            self._send_keyframe_request_now(packet)

    def keyframe_wanted_by_terminal(self) -> None:
        """The terminal asked for a keyframe (RTCP PLI/FIR, or SIP INFO): ask the forwarded publisher."""
        sub = self.video_out
        if sub is None or sub.track is None:
            return
        layer = sub.target or sub.current
        if layer is not None:
            self._spawn(sub.track.request_keyframe(layer, budget=self._keyframe_budget))

    async def _send_video(self, data: bytes) -> bool:
        """Subscription's awaitable send: retransmissions, and its sender reports (RTCP: the RTCP port)."""
        sock = self._media.get("video")
        if sock is None:
            return False
        return sock.send_rtcp(data) if 191 < data[1] < 209 else sock.send_rtp(data)

    async def _no_rtcp(self, data: bytes) -> bool:
        return False

    async def _send_keyframe_request(self, data: bytes) -> bool:
        return self._send_keyframe_request_now(data)

    def _send_keyframe_request_now(self, data: bytes) -> bool:
        """Track.keyframe_request made FIR (FIR-only terminals) or PLI: send it if the terminal offered it,
        else hand the wish to on_keyframe_wanted (SIP INFO)."""
        sock = self._media.get("video")
        stream = sock.stream if sock is not None else None
        if sock is None or stream is None:
            return False
        feedback = stream.feedback
        if ("ccm", "fir") in feedback or ("nack", "pli") in feedback:
            return sock.send_rtcp(data)
        self._want_info(time.monotonic())
        return True

    def _want_info(self, now: float) -> None:
        if now - self._info_at < KEYFRAME_INTERVAL_S or self.on_keyframe_wanted is None:
            return
        self._info_at = now
        self.infos_wanted += 1
        try:
            self.on_keyframe_wanted()
        except Exception:
            log.exception("plain %s: on_keyframe_wanted failed", self.participant_id)

    # ------------------------------------------------------------------------------------- clock
    def tick(self, now: float) -> None:
        """Periodic work (every TICK_S by the peer's task; tests call it with their own `now`): SIP INFO
        when an RTCP keyframe request went unanswered for INFO_AFTER_S; receiver/sender reports."""
        track = self.video_track
        if track is not None:
            layer = track.layers[""]
            asked = layer.last_keyframe_request
            if layer.awaiting_keyframe and now - asked >= INFO_AFTER_S and self._info_for != asked:
                self._info_for = asked
                self._want_info(now)
        if now - self._reported_at >= REPORT_S:
            self._reported_at = now
            self._report(now)

    def _received(self, kind: MediaKind, h: RtpHeader) -> None:
        receiving = self._receiving.get(kind)
        if receiving is not None:
            receiving.packet(h.ssrc, h.seq, h.ts)

    def _report(self, now: float) -> None:
        """One compound RTCP packet per m-line (sfu/plain_rtcp.py): SR for what we sent, else RR; the report
        block on the terminal's stream; SDES CNAME."""
        for kind, sock in self._media.items():
            if sock.stream is None:
                continue
            receiving = self._receiving.get(kind)
            block = receiving.block(now) if receiving is not None else None
            sent = self._sent_video(now) if kind == "video" else self._sent_audio(sock, now)
            sock.send_rtcp(compound(self._rtcp_ssrc, self.participant_id, sent, block))

    def _sent_audio(self, sock: MediaSocket, now: float) -> Sent | None:
        if not sock.sent_first or sock.stream is None:
            return None
        elapsed = max(0.0, now - self._audio_sent_at)
        rtp = sock.ts + int(elapsed * sock.stream.main.clock_rate)
        return Sent(sock.ssrc, sock.packets_sent, sock.octets_sent, ntp_timestamp(self.wallclock()), rtp)

    def _sent_video(self, now: float) -> Sent | None:
        """Forwarding with the publisher's SR: that SR translated (lip sync); else our own clock (slate)."""
        sub = self.video_out
        if sub is None or not sub.packets:
            return None
        layer = sub.current
        if layer is not None and layer.sr_ntp:
            return Sent(sub.ssrc, sub.packets, sub.octets, layer.sr_ntp, layer.sr_rtp + sub.ts_offset)
        elapsed = max(0.0, now - sub.last_sent_at) if sub.last_sent_at else 0.0
        rtp = sub.last_ts + int(elapsed * 90000)
        return Sent(sub.ssrc, sub.packets, sub.octets, ntp_timestamp(self.wallclock()), rtp)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.tick(time.monotonic())
            except Exception:
                log.exception("plain %s: tick failed", self.participant_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        if self.closed:
            coroutine.close()
            return
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Unpublish, stop forwarding, close the sockets (idempotent)."""
        if self.closed:
            return
        self.closed = True
        tasks = [t for t in (self._ticker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._release_transcoder()
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)
        if self.video_out is not None:
            self.video_out.unbind()
            if self.video_out.route is not None:
                self.video_out.route.close()
        for track in (self.video_track, self.audio_track):
            if track is not None:
                track.closed = True
                self._router._track_unpublished(track)
        for sock in self._media.values():
            sock.close()
