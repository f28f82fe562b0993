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
    purge_interval_seconds: float = Field(default=3600.0, ge=1.0)
    # The composite after the meeting ("grid" or "speaker"); False: per-track files only.
    composite: bool = True
    composite_layout: Literal["grid", "speaker"] = "grid"
