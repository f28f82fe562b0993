"""Settings section of the recording package (composed by yunhui/settings.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RecordingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Recordings in the product (issue #17): where they live, how long they stay, how links to them work.
    # None: <paths.var_dir>/recordings (the composition root fills it in).
    root_dir: Path | None = None
    # Days a finished recording is kept (an account's contract may say otherwise); None keeps it forever.
    retention_days: int | None = Field(default=90, ge=1, le=3660)
    download_link_ttl_seconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    # The "recording ready" e-mail's link that plays the composite without signing in.
    email_link_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    purge_interval_seconds: float = Field(default=3600.0, ge=1.0)
    # The composite after the meeting ("grid" or "speaker"); False: per-track files only.
    composite: bool = True
    composite_layout: Literal["grid", "speaker"] = "grid"

    # How long a hole in a video stream waits for its NACK repair before the frames behind it are given up
    # (the SFU repeats NACKs for up to 1.5 s; LiveKit waits 2 s).
    max_wait_ms: int = Field(default=1600, ge=50, le=10_000)
    # A hole still open this long asks for a keyframe (once per hole): when it comes first, the recording
    # continues from it, so decoding resumes this soon after an unrepaired loss instead of after max_wait_ms.
    hole_keyframe_ms: int = Field(default=400, ge=20, le=10_000)
    # Audio is not repaired (no NACK for Opus): a missing packet is skipped after this reordering wait.
    audio_wait_ms: int = Field(default=100, ge=0, le=2_000)
    # A track's frames are held until its first RTCP sender report (the only source of timestamps) for at
    # most this long; then arrival times stand in.
    sender_report_wait_ms: int = Field(default=3000, ge=0, le=30_000)
    # Frames wait this long before they are written, so that the least network delay (the participant's
    # clock offset) is known from everything that arrived by then: a burst at the start (a sender catching
    # up) must not place the first frames late. A kill -9 loses this plus up to cluster_ms.
    settle_ms: int = Field(default=300, ge=0, le=5_000)
    # Packets queued per track between the event loop and the writer thread; past it packets are dropped
    # and counted (a stalled disk must never stall forwarding) and the recording restarts from a keyframe.
    queue_packets: int = Field(default=4000, ge=16, le=1_000_000)
    # How often the writer thread wakes up to drain the queues, time out holes and fsync the timeline.
    tick_ms: int = Field(default=20, ge=1, le=1000)
    # Matroska written live, every packet flushed: a cluster reaches the disk when it closes, at least every
    # cluster_ms (a kill -9 loses the open one; the crash test measured ~0.5 s lost in all with these values).
    cluster_ms: int = Field(default=200, ge=100, le=10_000)
    # Executables of Debian's ffmpeg (composite, remux on close and after a crash, probes).
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    # The composite: output size and rate, x264 preset and quality, nice level and threads (it must not take
    # the CPU live meetings need).
    composite_width: int = Field(default=1280, ge=160, le=3840)
    composite_height: int = Field(default=720, ge=90, le=2160)
    composite_fps: int = Field(default=30, ge=1, le=60)
    composite_preset: str = "veryfast"
    composite_crf: int = Field(default=23, ge=0, le=51)
    composite_audio_bitrate_k: int = Field(default=128, ge=16, le=512)
    composite_nice: int = Field(default=19, ge=0, le=19)
    composite_threads: int = Field(default=1, ge=1, le=64)
