"""Settings section of the SFU (composed into the process settings by yunhui/settings.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IceServer(BaseModel):
    """One STUN or TURN server handed to every PeerConnection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class SfuSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Empty by default: aiortc would otherwise use a public STUN server.
    ice_servers: list[IceServer] = Field(default_factory=list)
    # Address written into our ICE candidates instead of the local one (1:1 NAT, containers); None keeps them.
    announced_address: str | None = None
    # UDP ports for media (one per PeerConnection: two per participant); both unset: any ephemeral port.
    udp_port_min: int | None = Field(default=None, ge=1024, le=65535)
    udp_port_max: int | None = Field(default=None, ge=1024, le=65535)
    # A publisher is asked for a keyframe at most this often per stream; wishes while a request is
    # outstanding wait for its keyframe, and an unanswered request is repeated after keyframe_retry_ms.
    keyframe_min_interval_ms: int = Field(default=300, ge=20, le=10_000)
    keyframe_retry_ms: int = Field(default=300, ge=20, le=10_000)
    # A subscriber's first keyframe of a track (it just joined, or the track just started) is asked for
    # at most this often per stream instead: a join storm then waits about one publisher round trip, not
    # keyframe_min_interval_ms. Each subscription gets one such request per track it is bound to, so it
    # cannot be repeated to force keyframes (a re-shown tile, a layer switch or a PLI is not a join).
    keyframe_join_interval_ms: int = Field(default=100, ge=20, le=10_000)
    # Keyframe requests a subscriber's own PLI/FIR may cause per stream per 10 s (a token bucket, full at
    # the start); the SFU's own requests (attach, layer switch) obey only keyframe_min_interval_ms.
    subscriber_keyframe_budget: int = Field(default=5, ge=1, le=100)
    # Sequence numbers of subscribers' NACKs looked at per RTCP datagram, and answered per subscriber per
    # second (a bucket holding one second's worth); a packet resent within one RTT is not resent again.
    nack_seqs_per_packet: int = Field(default=64, ge=1, le=1000)
    nack_seqs_per_second: int = Field(default=1000, ge=1, le=100_000)
    # Round-trip time assumed until one is measured (subscribers: RRs answering our SRs; publishers: NACK
    # to retransmission).
    default_rtt_ms: int = Field(default=100, ge=1, le=2000)
    # A NACK to a publisher is repeated every RTT x nack_rtt_factor, within [nack_retry_min_ms, ..max_ms].
    nack_rtt_factor: float = Field(default=1.5, ge=1.0, le=10.0)
    nack_retry_min_ms: int = Field(default=50, ge=5, le=2000)
    nack_retry_max_ms: int = Field(default=500, ge=5, le=5000)
    # Active speaker: how long a challenger must lead before taking over, and by how much (audio-level units).
    speaker_switch_ms: int = Field(default=300, ge=0, le=10_000)
    speaker_margin: float = Field(default=6.0, ge=0.0, le=127.0)
    # Level (127 - dBov, averaged) under which nobody counts as speaking.
    speaker_threshold: float = Field(default=30.0, ge=0.0, le=127.0)
    # Audio last-N: once audio_last_n_from participants publish a microphone, each subscriber gets only the
    # audio_last_n most recent speakers (a speaker keeps its place audio_last_n_hold_ms after it last spoke;
    # sfu/audio_selection.py). 0 forwards every microphone always.
    # Answer publishers' transport-wide congestion control (sfu/twcc.py): they run their own delay-based
    # estimator on our feedback and probe; REMB then only carries max_publish_bitrate as the ceiling.
    transport_cc: bool = True
    audio_last_n: int = Field(default=4, ge=0, le=100)
    audio_last_n_from: int = Field(default=10, ge=2)
    audio_last_n_hold_ms: int = Field(default=1500, ge=0, le=60_000)
    # While the audio last-N is on, a subscriber gets audio_last_n audio m-sections that carry whichever
    # microphones are selected (rebound without renegotiation), not one per microphone: a join then costs
    # the others no offer. Off: one m-section per microphone, as below the threshold.
    audio_last_n_slots: bool = True
    # A packet at least this loud (its audio level at or under -N dBov) is speech: speech sits around
    # -20 to -40 dBov, a quiet room's noise under -55.
    audio_last_n_speech_dbov: int = Field(default=50, ge=0, le=127)
    # Videos forwarded to one subscriber at a time (0: no cap): screen share, the active speaker, larger
    # tiles, then the most recent speakers first (sfu/allocator.py); the others are paused.
    max_videos_per_subscriber: int = Field(default=16, ge=0, le=1000)
    # Upper bound of the bandwidth estimate sent to publishers in REMB.
    max_publish_bitrate: int = Field(default=2_500_000, ge=50_000)
    # Packets kept per incoming video stream (shared by its subscribers) to answer their NACKs.
    nack_history: int = Field(default=512, ge=64, le=4096)
    # Publisher bounds. Tracks: audio/video m-sections of one participant's publish offer (the web client
    # uses 3: mic, camera, screen; WHIP 2). SSRCs: streams one publish connection learns (signalled or bound
    # by MID/RID); a simulcast camera takes 6 (3 layers + RTX), so 32 leaves room for SSRC changes.
    max_published_tracks: int = Field(default=4, ge=1, le=64)
    max_publish_ssrcs: int = Field(default=32, ge=2, le=1024)
    # Remote ICE candidates one PeerConnection holds (signalled, trickled, peer-reflexive; trickled ones
    # beyond are ignored), and whether trickled candidates at loopback, link-local or unspecified addresses
    # are kept (tests, development on one host).
    max_remote_candidates: int = Field(default=32, ge=1, le=1000)
    allow_loopback_candidates: bool = False

    @model_validator(mode="after")
    def _port_range(self) -> SfuSettings:
        low, high = self.udp_port_min, self.udp_port_max
        if (low is None) != (high is None):
            raise ValueError("udp_port_min and udp_port_max: set both or neither")
        if low is not None and high is not None and low > high:
            raise ValueError(f"udp_port_min ({low}) is above udp_port_max ({high})")
        return self
