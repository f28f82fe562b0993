"""Peer: one participant's media — a publish PeerConnection and a subscribe PeerConnection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from sfu.bounds import candidate_allowed
from sfu.errors import BadRequest, Closed
from sfu.hooks import parse_candidate
from sfu.metrics import METRICS
from sfu.publish import PublishConnection
from sfu.settings import SfuSettings
from sfu.subscribe import SubscribeConnection
from sfu.track import Track

if TYPE_CHECKING:
    from sfu.router import Router

log = logging.getLogger(__name__)


class Peer:
    """Created by Router.add_peer; closed by Router.remove_peer or Router.close (close() is idempotent)."""

    def __init__(self, router: Router, participant_id: str, settings: SfuSettings, *, publish: bool) -> None:
        self.participant_id = participant_id
        self.may_publish = publish
        self._router = router
        self._settings = settings
        self._publish: PublishConnection | None = None
        self._subscribe: SubscribeConnection | None = None
        self._playback = False
        self._closed = False

    # ------------------------------------------------------------------------------------- public API
    @property
    def tracks(self) -> dict[str, Track]:
        """This participant's published tracks by track id."""
        if self._publish is None:
            return {}
        return {t.id: t for t in self._publish.tracks.values()}

    async def answer_publish(self, offer_sdp: str, sources: dict[str, str]) -> str:
        """Answer the client's publish offer; `sources` maps mid -> "mic" | "camera" | "screen"."""
        self._check_open()
        if not self.may_publish:
            raise BadRequest(f"participant {self.participant_id!r} may not publish")
        if self._publish is None:
            self._publish = PublishConnection(
                self.participant_id,
                self._settings,
                on_track=self._router._track_published,
                on_track_ended=self._router._track_unpublished,
                on_audio_level=self._router._audio_level,
            )
            self._watch("publish", self._publish)
        return await self._publish.answer(offer_sdp, sources)

    async def create_subscribe_offer(self) -> str:
        """An offer for the subscribe PeerConnection with every current track of the other participants."""
        return await self._subscriber().create_offer()

    async def accept_subscribe_answer(self, answer_sdp: str) -> None:
        """Apply the client's answer to the last subscribe offer."""
        self._check_open()
        if self._subscribe is None:
            raise BadRequest("answer_sdp: no subscribe offer was made")
        await self._subscribe.accept_answer(answer_sdp)

    async def add_remote_candidate(
        self,
        pc: Literal["publish", "subscribe"],
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        """A trickled remote ICE candidate in SDP form (the "candidate:" prefix optional); empty: the end."""
        self._check_open()
        if pc not in ("publish", "subscribe"):
            raise BadRequest(f"pc: {pc!r} is not 'publish' or 'subscribe'")
        connection = self._publish if pc == "publish" else self._subscribe
        if connection is None:
            raise BadRequest(f"pc: the {pc} connection has not been negotiated")
        if sdp_mid is None and sdp_mline_index is None:
            raise BadRequest("sdp_mid / sdp_mline_index: one of them is required")
        if not candidate.strip():
            return  # end-of-candidates
        try:
            parsed = parse_candidate(candidate, sdp_mid, sdp_mline_index)
        except (ValueError, IndexError) as exc:
            raise BadRequest(f"candidate: {exc}") from exc
        # Both refusals below are silent (counted, not an error): browsers trickle loopback and link-local
        # candidates of their own, and a machine with many interfaces (VPNs, docker bridges) may send more
        # than the cap; an error would count toward max_protocol_errors and could disconnect them.
        if not candidate_allowed(parsed.ip, allow_local=self._settings.allow_loopback_candidates):
            METRICS.candidates_dropped += 1
            return
        # The cap is on what ICE holds for this PeerConnection (signalled, trickled and peer-reflexive
        # candidates alike): each one is paired with every local candidate and STUN-checked.
        transports = {t.receiver.transport.transport for t in connection.pc.getTransceivers()}
        if sum(len(t.getRemoteCandidates()) for t in transports) >= self._settings.max_remote_candidates:
            METRICS.candidates_dropped += 1
            return
        await connection.pc.addIceCandidate(parsed)

    def set_forwarding(self, track_id: str, enabled: bool) -> None:
        """Moderation mute. On this participant's own track: stop forwarding it to everyone. On another
        participant's track: stop forwarding it to this participant only. Resuming waits for a keyframe."""
        own = self.tracks.get(track_id)
        if own is not None:
            own.set_forwarding(enabled)
            return
        if track_id not in self._router.tracks:
            raise BadRequest(f"track_id: unknown track {track_id!r}")
        self._subscriber().set_enabled(track_id, enabled)

    def set_max_size(self, track_id: str, width: int, height: int) -> None:
        """The size of the tile showing `track_id` here; picks the simulcast layer (0 x 0 = no limit)."""
        if width < 0 or height < 0:
            raise BadRequest("width / height: must not be negative")
        self._subscriber().set_max_size(track_id, width, height)

    def subscribe_mids(self) -> dict[str, str]:
        """mid -> track_id of the subscribe connection's m-sections (tell the client which tile is which)."""
        return {} if self._subscribe is None else self._subscribe.mids()

    async def answer_playback(self, offer_sdp: str) -> str:
        """WHEP: answer a client's recvonly offer; its audio and video follow the active speaker."""
        self._playback = True
        subscriber = self._subscriber()
        answer = await subscriber.answer_offer(offer_sdp)
        self.follow_speaker()
        return answer

    async def restart(self, pc: Literal["publish", "subscribe"]) -> None:
        """Drop one PeerConnection so the client can negotiate a new one (aiortc has no ICE restart): the
        next publish offer, or subscribe offer, builds it afresh. Dropping the publish connection unpublishes
        this participant's tracks (the others renegotiate, and get them back with the new offer); dropping the
        subscribe connection touches nobody else."""
        self._check_open()
        if pc == "publish":
            old: PublishConnection | SubscribeConnection | None = self._publish
            self._publish = None
        elif pc == "subscribe":
            old, self._subscribe = self._subscribe, None
        else:
            raise BadRequest(f"pc: {pc!r} is not 'publish' or 'subscribe'")
        if old is not None:
            log.info("peer %s: %s connection replaced", self.participant_id, pc)
            await old.close()

    async def close(self) -> None:
        """Close both PeerConnections (idempotent); Router.remove_peer is the usual way."""
        if self._closed:
            return
        self._closed = True
        if self._publish is not None:
            await self._publish.close()
        if self._subscribe is not None:
            await self._subscribe.close()

    # ------------------------------------------------------------------------------------- from the router
    def track_published(self, track: Track) -> None:
        if track.participant_id == self.participant_id:
            return
        if self._subscribe is None:
            self._needs_offer()  # not offered yet (nothing to receive): the first offer will carry it
            return
        if self._playback:
            self.follow_speaker()
        else:
            self._subscribe.want(track)

    def track_unpublished(self, track: Track) -> None:
        if self._subscribe is None:
            return
        if self._playback:
            self.follow_speaker()
        else:
            self._subscribe.unwant(track.id)

    def follow_speaker(self) -> None:
        """Playback peers show one participant: the active speaker, else the first one publishing."""
        if not self._playback or self._subscribe is None:
            return
        tracks = [t for t in self._router.tracks.values() if t.participant_id != self.participant_id]
        speaker = self._router.active_speaker
        for kind in ("audio", "video"):
            candidates = [t for t in tracks if t.kind == kind and t.source != "screen"]
            chosen = next((t for t in candidates if t.participant_id == speaker), None)
            for subscription in self._subscribe.subscriptions:
                if subscription.kind != kind:
                    continue
                current = subscription.track or subscription.pending
                if chosen is None:
                    chosen = current if current in candidates else (candidates[0] if candidates else None)
                if chosen is not current:
                    self._subscribe.bind(subscription, chosen)

    @property
    def publish_connection(self) -> PublishConnection | None:
        return self._publish

    @property
    def subscribe_connection(self) -> SubscribeConnection | None:
        return self._subscribe

    def _subscriber(self) -> SubscribeConnection:
        self._check_open()
        if self._subscribe is None:
            self._subscribe = SubscribeConnection(
                self.participant_id, self._settings, on_needs_offer=self._needs_offer
            )
            self._watch("subscribe", self._subscribe)
            self._subscribe.audio_slots = self._router.audio_slots
            if not self._playback:
                for track in self._router.tracks.values():
                    if track.participant_id != self.participant_id:
                        self._subscribe.want(track, notify=False)  # the caller is about to offer
        return self._subscribe

    def _watch(
        self, name: Literal["publish", "subscribe"], connection: PublishConnection | SubscribeConnection
    ) -> None:
        """Report the connection's state changes to the router, so that dead media are noticed (nobody else
        would: a forwarding route to a dead subscriber just keeps failing per packet)."""
        pc = connection.pc

        def changed() -> None:
            current = self._publish if name == "publish" else self._subscribe
            if self._closed or current is not connection:
                return  # we closed or replaced it ourselves: not news
            self._router._connection_state(self.participant_id, name, pc.connectionState)

        pc.on("connectionstatechange", changed)

    def _needs_offer(self) -> None:
        if not self._playback:
            self._router._needs_offer(self.participant_id)

    def _check_open(self) -> None:
        if self._closed:
            raise Closed(f"peer {self.participant_id!r} is closed")
