"""Settings of pre-recorded videos (``live.videos``): upload limits and the checks.

The normalised profile is the channel's (``live.profile``, recording/live/settings.py)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class VideoSettings(BaseModel):
    """Uploads, checks and normalisation of pre-recorded videos (issue #18, docs/live.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where uploads and normalised files live; None: <live.root_dir>/videos.
    root_dir: Path | None = None
    max_size_bytes: int = Field(default=4 * 1024**3, ge=1024)
    # An upload not finished this long after it was created is deleted (its bytes too).
    upload_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # The checks: what a video must be to be accepted (each refusal has a named reason).
    containers: tuple[str, ...] = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts", "flv", "avi")
    video_codecs: tuple[str, ...] = ("h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video")
    audio_codecs: tuple[str, ...] = ("aac", "mp3", "opus", "vorbis", "ac3", "eac3", "flac", "pcm_s16le")
    min_width: int = Field(default=320, ge=16)
    min_height: int = Field(default=180, ge=16)
    max_width: int = Field(default=3840, ge=16)
    max_height: int = Field(default=2160, ge=16)
    min_fps: float = Field(default=15.0, ge=1.0)
    max_fps: float = Field(default=60.0, ge=1.0)
    min_duration_s: float = Field(default=1.0, ge=0.0)
    max_duration_s: float = Field(default=4 * 3600.0, ge=1.0)
    # Quieter than this (integrated, EBU R128) is silence: loudnorm cannot make a programme of it.
    min_loudness_lufs: float = Field(default=-60.0, ge=-70.0, le=0.0)
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    nice: int = Field(default=19, ge=0, le=19)
    threads: int = Field(default=1, ge=1, le=64)
    # How often the normaliser looks for work it was not told about (another process's uploads).
    poll_interval_seconds: float = Field(default=10.0, ge=0.1)
    # A job's claim on a video; renewed while it runs, so a dead process's video is taken over after it.
    lease_seconds: float = Field(default=120.0, ge=5.0)
