"""PlainPeer: a room terminal's media as plain RTP/SRTP on UDP sockets (no ICE, no DTLS).

Created by ``Router.add_plain_peer``. The terminal's video becomes a Track of the router; a speaker-following
video Subscription writes back to the terminal's socket. Audio goes through the gateway's mixer: the peer
hands the terminal's audio payloads to ``on_audio``, sends the mixer's encoded frames with ``send_audio`` and
publishes the mixer's Opus of the terminal with ``publish_audio``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from sfu.errors import BadRequest, Closed
from sfu.plain_media import MediaKind, PlainMedia

if TYPE_CHECKING:
    from sfu.router import Router
    from sfu.settings import SfuSettings
    from sfu.track import Track

log = logging.getLogger(__name__)


class PlainPeer:
    """One SIP leg's media in one Router: an RTP socket (and RTCP socket, the next port) per kind.

    Owned by the Router (closed with it, or by ``Router.remove_peer``); ``close()`` is idempotent.
    """

    def __init__(
        self,
        router: Router,
        participant_id: str,
        sockets: dict[MediaKind, tuple[socket.socket, socket.socket]],
    ) -> None:
        self.participant_id = participant_id
        self._router = router
        self._sockets = sockets
        self.media: PlainMedia | None = None
        self.closed = False
        # The terminal must be asked for a keyframe by SIP INFO picture_fast_update (it offers neither FIR nor
        # PLI, or no IDR came within 1 s of an RTCP request): the call sends it.
        self.on_keyframe_wanted: Callable[[], None] | None = None
        # An RFC 4733 digit ("0"-"9", "*", "#", "A"-"D"), once per event however often its end is repeated.
        self.on_dtmf: Callable[[str], None] | None = None
        # The terminal's audio: (payload, payload type, RTP timestamp) of every non-DTMF packet.
        self.on_audio: Callable[[bytes, int, int], None] | None = None

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
                sockets[kind] = _bind_pair(host, settings.udp_port_min, settings.udp_port_max)
        except OSError:
            for rtp, rtcp in sockets.values():
                rtp.close()
                rtcp.close()
            raise
        return cls(router, participant_id, sockets)

    @property
    def local_ports(self) -> dict[MediaKind, int]:
        """The RTP port of each kind's socket (its RTCP socket is the next port), for the SDP answer."""
        return {kind: pair[0].getsockname()[1] for kind, pair in self._sockets.items()}

    async def start(self, media: PlainMedia) -> None:
        """Start sending to and receiving from the terminal as negotiated (call again after a re-INVITE)."""
        if self.closed:
            raise Closed(f"plain peer {self.participant_id!r} is closed")
        for stream in media.streams:
            if stream.kind not in self._sockets:
                raise BadRequest(f"{stream.kind}: no socket was allocated for it")
        self.media = media

    def send_audio(self, payload: bytes, samples: int) -> None:
        """Send one encoded audio frame (this leg's mix) of `samples` RTP clock ticks to the terminal."""

    def publish_audio(self, opus: bytes, level: int) -> None:
        """Publish one 20 ms Opus frame of the terminal's voice into the router, with its RFC 6464 level
        (0 loudest .. 127 silence), so that SpeakerDetector can pick the terminal."""

    def send_slate(self, frame: bytes) -> None:
        """Send one H.264 access unit (Annex B, an IDR) to the terminal while no video source is forwarded."""

    def request_keyframe(self) -> None:
        """Ask the terminal for a keyframe: FIR if it offered `ccm fir`, else PLI, else on_keyframe_wanted."""

    def keyframe_wanted_by_terminal(self) -> None:
        """The terminal asked for a keyframe by SIP INFO: ask the forwarded speaker's publisher for one."""

    # ----------------------------------------------------------------------------------- from the router
    def track_published(self, track: Track) -> None:
        """A Track was published in the router (the video subscription may follow it)."""

    def track_unpublished(self, track: Track) -> None:
        """A Track was unpublished."""

    def follow_speaker(self) -> None:
        """The active speaker changed: forward the new speaker's video (keyframe requested)."""

    async def close(self) -> None:
        """Unpublish, stop forwarding, close the sockets (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for rtp, rtcp in self._sockets.values():
            rtp.close()
            rtcp.close()
        self._sockets = {}
        await asyncio.sleep(0)


def _bind_pair(host: str, low: int | None, high: int | None) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on an even port and the next one (RFC 3550 §11), from [low, high] or ephemeral."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    attempts = 64 if low is None or high is None else max(1, (high - low + 1) // 2)
    start = random.randrange(1 << 16)
    for i in range(attempts):
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if low is None or high is None:
                rtp.bind((host, 0))
                port = rtp.getsockname()[1]
                if port % 2 or port == 65535:
                    rtp.close()
                    continue
            else:
                first = low + (low % 2)
                count = max(1, (high - first) // 2)
                port = first + 2 * ((start + i) % count)
                rtp.bind((host, port))
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
            except OSError:
                rtcp.close()
                raise
        except OSError:
            rtp.close()
            continue
        rtp.setblocking(False)
        rtcp.setblocking(False)
        return rtp, rtcp
    raise OSError(f"no free RTP/RTCP port pair on {host}")
