"""Router: the media of one meeting — its peers, their tracks, the active speaker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal

from sfu.allocator import Ranking
from sfu.audio_selection import AudioSelection
from sfu.errors import BadRequest, Closed
from sfu.events import (
    ActiveSpeakerChanged,
    ConnectionStateChanged,
    LayersWanted,
    RouterEvent,
    SubscriberNeedsOffer,
    TrackPublished,
    TrackUnpublished,
)
from sfu.peer import Peer
from sfu.plain import PlainPeer
from sfu.plain_media import MediaKind
from sfu.settings import SfuSettings
from sfu.speaker import SpeakerDetector
from sfu.tap import TappedTrack, TapSink, TapSubscription
from sfu.track import LayerView, Track

log = logging.getLogger(__name__)

SPEAKER_TICK_S = 0.1


class Router:
    """Created by Sfu.router(); owns its peers. Listeners are called synchronously and must not block."""

    def __init__(
        self,
        meeting_id: str,
        settings: SfuSettings,
        *,
        on_closed: Callable[[Router], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.meeting_id = meeting_id
        # The time of speaker, last-N and allocation decisions (tests inject theirs and call tick()).
        self._clock = clock
        self._settings = settings
        self._on_closed = on_closed
        self._listeners: list[Callable[[RouterEvent], None]] = []
        self._peers: dict[str, Peer] = {}
        self._plain: dict[str, PlainPeer] = {}  # SIP legs (sfu/plain.py)
        self.tracks: dict[str, Track] = {}
        self._speaker = SpeakerDetector(
            threshold=settings.speaker_threshold,
            margin=settings.speaker_margin,
            switch_after=settings.speaker_switch_ms / 1000,
        )
        self._speaker_task: asyncio.Task[None] | None = None
        self._audio = AudioSelection(
            size=settings.audio_last_n,
            start_at=settings.audio_last_n_from,
            speech_dbov=settings.audio_last_n_speech_dbov,
            hold=settings.audio_last_n_hold_ms / 1000,
        )
        # When each participant last spoke (a packet at speech level): the allocator forwards recent speakers
        # first.
        self._spoke_at: dict[str, float] = {}
        self._closed = False

    @property
    def active_speaker(self) -> str | None:
        return self._speaker.speaker

    def audio_scores(self) -> dict[str, float]:
        """Each participant's recent loudness (SpeakerDetector: 127 - dBov, silence 0): the SIP mixer decodes
        the loudest few."""
        return self._speaker.scores()

    @property
    def peers(self) -> dict[str, Peer]:
        return dict(self._peers)

    def add_listener(self, cb: Callable[[RouterEvent], None]) -> None:
        """Call `cb` with every RouterEvent (synchronously: enqueue, never block)."""
        self._listeners.append(cb)

    async def add_peer(self, participant_id: str, *, publish: bool = True) -> Peer:
        """A new participant's media; `publish=False` for receive-only participants (viewers, recorders)."""
        if self._closed:
            raise Closed(f"router {self.meeting_id!r} is closed")
        if not participant_id:
            raise BadRequest("participant_id: must not be empty")
        if participant_id in self._peers:
            raise BadRequest(f"participant_id: {participant_id!r} already has a peer in this meeting")
        peer = Peer(self, participant_id, self._settings, publish=publish)
        self._peers[participant_id] = peer
        if self._speaker_task is None:
            self._speaker_task = asyncio.create_task(
                self._run_speaker(), name=f"sfu-speaker:{self.meeting_id}"
            )
        return peer

    async def add_plain_peer(
        self,
        participant_id: str,
        kinds: tuple[MediaKind, ...] = ("audio", "video"),
        *,
        host: str = "127.0.0.1",
    ) -> PlainPeer:
        """A SIP leg's media (plain RTP/SRTP): sockets on `host` per kind from the configured port range; call
        ``start`` on the returned PlainPeer once the SDP is negotiated. Removed with ``remove_peer``."""
        if self._closed:
            raise Closed(f"router {self.meeting_id!r} is closed")
        if not participant_id:
            raise BadRequest("participant_id: must not be empty")
        if participant_id in self._peers or participant_id in self._plain:
            raise BadRequest(f"participant_id: {participant_id!r} already has a peer in this meeting")
        peer = PlainPeer.open(self, participant_id, self._settings, kinds, host)
        self._plain[participant_id] = peer
        if self._speaker_task is None:
            self._speaker_task = asyncio.create_task(
                self._run_speaker(), name=f"sfu-speaker:{self.meeting_id}"
            )
        return peer

    async def adopt_plain_peer(self, peer: PlainPeer, participant_id: str) -> PlainPeer:
        """Move a SIP leg's PlainPeer from its Router (the IVR's) into this one as `participant_id`: its
        sockets, keys and latched addresses stay, its tracks are published here."""
        if self._closed:
            raise Closed(f"router {self.meeting_id!r} is closed")
        if participant_id in self._peers or participant_id in self._plain:
            raise BadRequest(f"participant_id: {participant_id!r} already has a peer in this meeting")
        peer._router._release_plain(peer)
        self._plain[participant_id] = peer
        await peer.move(self, participant_id)
        if self._speaker_task is None:
            self._speaker_task = asyncio.create_task(
                self._run_speaker(), name=f"sfu-speaker:{self.meeting_id}"
            )
        return peer

    def _release_plain(self, peer: PlainPeer) -> None:
        """Forget a PlainPeer that moves to another Router (not closed)."""
        if self._plain.get(peer.participant_id) is peer:
            del self._plain[peer.participant_id]
            if self._speaker.remove(peer.participant_id) is None:
                self._emit(ActiveSpeakerChanged(None))

    async def remove_peer(self, participant_id: str) -> None:
        """Close the participant's peer: its tracks are unpublished, the others renegotiate. Unknown: no-op"""
        peer: Peer | PlainPeer | None = self._peers.pop(participant_id, None) or self._plain.pop(
            participant_id, None
        )
        if peer is None:
            return
        await peer.close()
        self._spoke_at.pop(participant_id, None)
        if self._speaker.remove(participant_id) is None:
            self._emit(ActiveSpeakerChanged(None))
            self._follow_speaker()

    def tap(self, track_id: str, sink_for: Callable[[TappedTrack], TapSink]) -> TapSubscription:
        """Feed a published Track's packets to an in-process sink (a recorder), made by `sink_for` for it.

        Nobody renegotiates; the tap waits for a keyframe of the best layer and asks for one. Close the
        returned TapSubscription to stop; it ends by itself (the sink is told) when the Track is unpublished.
        """
        track = self.tracks.get(track_id)
        if track is None or track.closed:
            raise BadRequest(f"track_id: {track_id!r} is not published in this meeting")
        tap = TapSubscription(track, sink_for(TapSubscription.describe_track(track)))
        log.info("router %s: %s is tapped", self.meeting_id, track_id)
        return tap

    async def close(self) -> None:
        """Close every peer and stop the speaker task (idempotent)."""
        if self._closed:
            return
        self._closed = True
        peers = self._every_peer()
        self._peers, self._plain = {}, {}
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
        if self._speaker_task is not None:
            self._speaker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._speaker_task
        self._listeners.clear()
        if self._on_closed is not None:
            self._on_closed(self)

    # ------------------------------------------------------------------------------------- from the peers
    def _emit(self, event: RouterEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("router %s: listener failed on %s", self.meeting_id, event)

    def _track_published(self, track: Track) -> None:
        self.tracks[track.id] = track
        if track.kind == "audio":
            track.selected = self._audio.forwards(track.participant_id)  # no subscriptions yet
            self._audio_publishers_changed()
        self._emit(TrackPublished(track.participant_id, track.id, track.kind, track.source))  # type: ignore[arg-type]
        for peer in self._every_peer():
            peer.track_published(track)

    def _track_unpublished(self, track: Track) -> None:
        if self.tracks.pop(track.id, None) is None:
            return
        for subscription in track.subscriptions:
            subscription.unbind()
        self._emit(TrackUnpublished(track.participant_id, track.id))
        for peer in self._every_peer():
            peer.track_unpublished(track)
        if track.kind == "audio":
            if not self._audio_tracks_of(track.participant_id):
                self._audio.remove(track.participant_id)
            self._audio_publishers_changed()

    def _needs_offer(self, participant_id: str) -> None:
        if participant_id in self._peers:
            self._emit(SubscriberNeedsOffer(participant_id))

    def _connection_state(self, participant_id: str, pc: Literal["publish", "subscribe"], state: str) -> None:
        if participant_id in self._peers:
            self._emit(ConnectionStateChanged(participant_id, pc, state))

    def _audio_level(self, participant_id: str, level: int) -> None:
        self._speaker.observe(participant_id, level)
        if (level & 0x7F) <= self._settings.audio_last_n_speech_dbov:
            self._spoke_at[participant_id] = self._clock()  # the allocator forwards recent speakers first
        if not self._audio.active:
            return
        displaced = self._audio.observe(participant_id, level, self._clock())
        if displaced is not None:
            # Before this packet is forwarded: the new speaker's first syllable goes out.
            for track in self._audio_tracks_of(participant_id):
                track.set_selected(True)
            for track in self._audio_tracks_of(displaced):
                track.set_selected(False)
            for peer in list(self._peers.values()):
                connection = peer.subscribe_connection
                if connection is not None:
                    connection.audio_selection_changed()  # slots rebound: no renegotiation
            self._undefer(participant_id)  # a recent speaker's camera is placed where the cap deferred it

    def _audio_tracks_of(self, participant_id: str) -> list[Track]:
        return [t for t in self.tracks.values() if t.kind == "audio" and t.participant_id == participant_id]

    def _audio_publishers_changed(self) -> None:
        publishers = {t.participant_id for t in self.tracks.values() if t.kind == "audio"}
        if not self._audio.publishers_changed(len(publishers)):
            return
        log.info(
            "router %s: audio last-N %s (%d publishers)",
            self.meeting_id,
            "on" if self._audio.active else "off",
            len(publishers),
        )
        for track in self.tracks.values():
            if track.kind == "audio":
                track.set_selected(self._audio.forwards(track.participant_id))
        for peer in list(self._peers.values()):
            connection = peer.subscribe_connection
            if connection is not None:
                connection.set_audio_slots(self.audio_slots)

    @property
    def audio_slots(self) -> int:
        """Audio m-sections a subscriber needs while the audio last-N is on; 0 when it is off."""
        return self._audio.size if self._audio.active and self._settings.audio_last_n_slots else 0

    @property
    def audio_selected(self) -> frozenset[str] | None:
        """The participants whose audio subscribers get while the audio last-N is on; None when it is off."""
        return self._audio.selected if self._audio.active else None

    def _every_peer(self) -> list[Peer | PlainPeer]:
        return [*self._peers.values(), *self._plain.values()]

    def _follow_speaker(self) -> None:
        for peer in self._every_peer():
            peer.follow_speaker()

    async def _check_layers(self, now: float) -> None:
        """Sample which simulcast layers are being sent; move subscriptions off layers that stopped (or onto
        better ones that started), asking for a keyframe of the new layer; tell publishers which layers are
        wanted (LayersWanted, when that changes)."""
        for track in list(self.tracks.values()):
            if not track.simulcast:
                continue
            for layer in track.layers.values():
                layer.activity.observe(layer.packets, now)
            view = track.layer_view(now)  # sampled once for all the track's subscriptions
            for subscription in track.subscriptions:
                target = subscription.reselect_layer(now, view)
                if target is not None:
                    log.debug("router %s: %s -> layer %r", self.meeting_id, track.id, target.rid)
                    await track.request_keyframe(target, now)
            active = track.pauser.update(track.wanted_rids(now, view), now)
            if active is not None:
                rids = tuple(rid for rid in track.rids if rid in active)
                log.debug("router %s: %s sends %s", self.meeting_id, track.id, rids)
                self._emit(LayersWanted(track.participant_id, track.id, track.mid, rids))

    def _undefer(self, speaker: str | None) -> None:
        """A new active speaker's camera gets an m-section where the video cap had deferred it."""
        if speaker is None:
            return
        for track in self._video_tracks_of(speaker):
            for peer in list(self._peers.values()):
                connection = peer.subscribe_connection
                if connection is not None:
                    connection.undefer(track.id)

    def _video_tracks_of(self, participant_id: str) -> list[Track]:
        return [t for t in self.tracks.values() if t.kind == "video" and t.participant_id == participant_id]

    def _allocate(self, now: float) -> None:
        """Split each subscriber's downlink across its videos (when due; all when the speaker changed)."""
        speaker = self._speaker.speaker
        ranking = Ranking(speaker, self._spoke_at)
        views: dict[str, LayerView] = {}  # one sample of each track's layers for every subscriber
        for peer in list(self._peers.values()):
            connection = peer.subscribe_connection
            if connection is not None:
                connection.allocate(now, ranking, views)

    async def _run_speaker(self) -> None:
        """The router's one task: speaker ticks and simulcast layer checks, every SPEAKER_TICK_S."""
        while True:
            await asyncio.sleep(SPEAKER_TICK_S)
            await self.tick(self._clock())

    async def tick(self, now: float) -> None:
        """One tick: simulcast layer checks, the active speaker, the downlink allocation (tests call it)."""
        try:
            await self._check_layers(now)
        except Exception:
            log.exception("router %s: checking simulcast layers failed", self.meeting_id)
        changed = self._speaker.tick(now)
        if changed is not False:
            self._emit(ActiveSpeakerChanged(changed))  # type: ignore[arg-type]
            self._undefer(changed if isinstance(changed, str) else None)
            try:
                self._follow_speaker()
            except Exception:
                log.exception("router %s: following the speaker failed", self.meeting_id)
        try:
            self._allocate(now)
        except Exception:
            log.exception("router %s: allocating downlinks failed", self.meeting_id)
