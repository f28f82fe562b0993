"""Settings section of the notify package (composed by yunhui/settings.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
