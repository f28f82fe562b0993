"""Settings of the calls layer (``settings.sip.calls``): media address, SRTP policy, silence, the IVR."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SipCallSettings(BaseModel):
    """How calls are answered and kept (signaling/sip/call.py, docs/sip.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The address in our SDP (the terminal sends RTP there) and the sockets' bind address. None: the SFU's
    # announced_address, else the SIP listener's host (0.0.0.0 is never announced: then 127.0.0.1).
    media_host: str | None = None
    # SDES-SRTP: off (plain RTP only), best_effort (SRTP when offered, over TLS), mandatory (refuse plain
    # RTP with 488). Keys travel in the SDP, so they are accepted only over TLS.
    srtp: Literal["off", "best_effort", "mandatory"] = "best_effort"
    # Meeting pages publish H.264 while the gateway runs: terminals decode only H.264, so with VP8 from the
    # browsers a terminal would see the slate (no transcoding in the media path). False: browsers' default.
    browsers_publish_h264: bool = True
    # Hang up when the terminal sends no RTP for this long (never while it holds the call).
    silence_timeout_seconds: float = Field(default=30.0, gt=0)
    # The IVR: between digits, after a prompt with nothing typed, attempts before goodbye.
    ivr_digit_timeout_seconds: float = Field(default=5.0, gt=0)
    ivr_no_input_seconds: float = Field(default=15.0, gt=0)
    ivr_attempts: int = Field(default=3, ge=1, le=10)
    # The prompts' languages, spoken in this order (signaling/sip/prompts/<name>.<language>.opus).
    ivr_languages: tuple[Literal["zh-CN", "en"], ...] = Field(default=("zh-CN", "en"), min_length=1)
