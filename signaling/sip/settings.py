"""Settings section of the SIP gateway (composed by yunhui/settings.py as ``sip``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SipSettings(BaseModel):
    """Listeners, timers and policies of the SIP gateway (issue #16)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # False: no SIP listener (the default until the gateway is configured).
    enabled: bool = False
