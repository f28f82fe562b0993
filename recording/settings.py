"""Settings section of the recording package (composed by yunhui/settings.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RecordingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
