"""What one load-generator run is asked to do (LoadSpec, the JSON the bench writes) and what it measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.rtp_origin import RtpOrigin


@dataclass(frozen=True)
class LoadSpec:
    backend: str  # "janus" | "yunhui"
    url: str
    sfu_pid: int
    video: str
    audio: str
    ice_address: str
    publishers: int = 1
    subscribers: int = 4
    workers: int = 1
    join_rate: float = 10.0
    warmup_s: float = 3.0
    window_s: float = 10.0
    ready_timeout_s: float = 30.0
    keyframe_min_interval_s: float = 0.1
    cpus: tuple[int, ...] = ()
    video_speed: float = 1.0  # the file played this many times faster (bench/media.py)
    window_video_packets: int = 0  # when set, the window lasts until the video has sent this many packets
    seq_start: int | None = None  # first RTP sequence number and timestamp of every publisher stream
    timestamp_start: int | None = None  # (None: aiortc's random origin)

    @property
    def origin(self) -> RtpOrigin | None:
        if self.seq_start is None or self.timestamp_start is None:
            return None
        return RtpOrigin(self.seq_start, self.timestamp_start)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> LoadSpec:
        return cls(**{**data, "cpus": tuple(data.get("cpus", ()))})


@dataclass
class LoadResult:
    spec: dict[str, Any]
    window_s: float = 0.0
    subscribers_ready: int = 0
    sent_pps: float = 0.0  # per publisher, all its streams
    expected_pps: float = 0.0  # what loss-free forwarding would deliver
    forwarded_pps: float = 0.0
    forwarded_mbps: float = 0.0
    lost: int = 0  # expected minus received, summed over subscribers
    received: list[int] = field(default_factory=list)  # per subscriber in join order, over the window
    expected: list[int] = field(default_factory=list)
    gaps: list[int] = field(default_factory=list)
    video_sent: int = 0  # packets of the (first) publisher's video in the window
    seq_wraps: int | None = None  # times its sequence number wrapped in the window (None: origin unknown)
    sfu_cpu_s: float = 0.0
    sfu_user_s: float = 0.0
    sfu_system_s: float = 0.0
    sfu_rss_idle: int = 0
    sfu_rss: int = 0
    sfu_threads: int = 0
    loadgen_cpu_pct: float = 0.0
    loadgen_drops: int = 0
    machine_busy_pct: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    first_rtp_ms: list[float] = field(default_factory=list)
    first_keyframe_ms: list[float] = field(default_factory=list)
    keyframe_requests: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
