"""Settings section of live channels (composed by yunhui/settings.py as ``live``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recording.live.video_settings import VideoSettings


class LiveProfile(BaseModel):
    """The one media profile of a channel's output: every source is copied or turned into it (docs/live.md).

    Uploaded videos are normalised to it, so that playout copies their packets; a VP8 publisher is transcoded
    to it; an H.264 publisher is copied as it is sent (its size may differ: a DISCONTINUITY marks a change).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(default=1280, ge=160, le=3840)
    height: int = Field(default=720, ge=90, le=2160)
    fps: int = Field(default=30, ge=1, le=60)
    video_bitrate_k: int = Field(default=2500, ge=100, le=20_000)
    audio_rate: int = 48000
    audio_channels: int = Field(default=2, ge=1, le=2)
    audio_bitrate_k: int = Field(default=128, ge=32, le=512)
    # x264 preset of the transcodes (VP8 publishers): veryfast keeps a 720p30 stream under 0.75 core.
    preset: str = "veryfast"
    # Normalised uploads (recording/live/normalize.py): a keyframe every gop_seconds, the H.264 profile, and
    # the EBU R128 targets of loudnorm, so that every item of a playlist plays at the same loudness.
    gop_seconds: float = Field(default=2.0, ge=0.5, le=10.0)
    h264_profile: Literal["baseline", "main"] = "main"
    loudness_lufs: float = Field(default=-16.0, ge=-70.0, le=-5.0)
    true_peak_db: float = Field(default=-1.5, ge=-9.0, le=0.0)
    loudness_range_lu: float = Field(default=11.0, ge=1.0, le=20.0)


class LiveSettings(BaseModel):
    """Segmenting, playout, standby and viewer statistics of live channels (issue #18)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Pre-recorded videos: uploads, checks, the normalised profile (recording/live/video_settings.py).
    videos: VideoSettings = VideoSettings()

    # Where channels write their playlists and segments; None: <paths.var_dir>/live (the composition root).
    root_dir: Path | None = None
    profile: LiveProfile = LiveProfile()

    # HLS: the segment length aimed at (cut at the first keyframe once it is reached) and the live window.
    segment_seconds: float = Field(default=2.0, ge=0.5, le=10.0)
    window_segments: int = Field(default=5, ge=3, le=60)
    # A keyframe is requested from a copied source this long before a segment is due, so that it arrives in
    # time (a publisher answers a PLI within about a frame plus the round trip, and frames wait settle_ms).
    keyframe_lead_s: float = Field(default=0.5, ge=0.0, le=2.0)
    # Frames wait this long for their sender report mapping (the recorder's settle) before they are cut.
    settle_ms: int = Field(default=150, ge=0, le=5_000)
    # Without a sender report after this long a copied stream is timed by arrival.
    sender_report_wait_ms: int = Field(default=1500, ge=0, le=30_000)
    # A video hole waits this long for its repair (NACK) before the frames behind it are given up.
    max_wait_ms: int = Field(default=1000, ge=50, le=10_000)
    hole_keyframe_ms: int = Field(default=400, ge=20, le=10_000)
    audio_wait_ms: int = Field(default=80, ge=0, le=2_000)
    # Packets queued per channel between the event loop and the channel's worker thread (then dropped and
    # counted: a stalled disk never stalls forwarding).
    queue_packets: int = Field(default=8000, ge=16, le=1_000_000)
    # How often the worker thread wakes up to drain the queues, pace playout and time out holes.
    tick_ms: int = Field(default=20, ge=1, le=1000)

    # Hot standby: the standby source goes on air when the primary sent no video this long, and the primary
    # takes over again after it has been healthy this long (prefer-primary).
    standby_after_s: float = Field(default=3.0, ge=0.2, le=120.0)
    standby_hold_s: float = Field(default=10.0, ge=0.0, le=3600.0)
    # A backup encoder (a channel's standby "encoder"): the WHIP publisher of the channel's room whose join
    # token bears this display name (case-insensitive) is the standby; the room's other encoders the primary.
    backup_encoder_name: str = Field(default="backup", min_length=1, max_length=200)

    # RTMP push: restarted after the receiver drops, waiting backoff_min, doubled up to backoff_max; a push
    # that ran this long without failing starts over at backoff_min.
    rtmp_backoff_min_s: float = Field(default=1.0, ge=0.05, le=60.0)
    rtmp_backoff_max_s: float = Field(default=30.0, ge=0.05, le=600.0)
    rtmp_healthy_s: float = Field(default=30.0, ge=0.1, le=3600.0)

    # RTMP ingest (an "rtmp" source): each running RTMP channel listens on its own port of this range
    # (port_min + channel id mod the range's size; docs/decisions.md), on rtmp_ingest_bind; the ingest URL
    # shown in the console names rtmp_ingest_host (None: the host the console was opened with).
    rtmp_ingest_port_min: int = Field(default=19350, ge=1, le=65535)
    rtmp_ingest_port_max: int = Field(default=19449, ge=1, le=65535)
    rtmp_ingest_bind: str = "0.0.0.0"
    rtmp_ingest_host: str | None = None

    # Viewer sessions (web/): a signed session token lives this long; a session is concurrent while its last
    # request is younger than concurrent_window_s (2 × target duration + grace, research/recording.md §4).
    session_token_ttl_s: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    concurrent_window_s: float = Field(default=15.0, ge=1.0, le=600.0)

    # Debian's ffmpeg (RTMP push, tests' probes) and the transcodes' CPU priority.
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    transcode_nice: int = Field(default=5, ge=0, le=19)
