"""Settings section of live channels (composed by yunhui/settings.py as ``live``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LiveSettings(BaseModel):
    """Segmenting, playout, standby and viewer statistics of live channels (issue #18)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
