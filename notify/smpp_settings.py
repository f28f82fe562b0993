"""The SMPP sub-section of the notify settings: the SMSC bind of the SMS channel (notify.smpp)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

# SMPP 3.4 field limits (C-octet strings without their terminator).
SYSTEM_ID_MAX = 15
PASSWORD_MAX = 8
SYSTEM_TYPE_MAX = 12
SOURCE_ADDR_MAX = 20


class SmppSettings(BaseModel):
    """One transceiver bind to the operator's SMSC; an empty host turns SMS off (rows stay queued)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = ""
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = ""
    password: SecretStr = SecretStr("")
    system_type: str = ""
    # The sender the handset shows: a service number (10690…) or, where allowed, an alphanumeric name.
    source_addr: str = ""
    source_ton: int = Field(default=0, ge=0, le=6)
    source_npi: int = Field(default=0, ge=0, le=18)
    # The contract's rate per bind, and the unacknowledged submit_sm PDUs allowed in flight.
    tps: float = Field(default=10.0, gt=0, le=1000)
    window: int = Field(default=10, ge=1, le=100)
    enquire_link_seconds: float = Field(default=30.0, gt=0, le=600)
    # How long a submit_sm may wait for its response before the message counts as ambiguous (unknown).
    response_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # How long a part is retried at a lower rate while the SMSC answers ESME_RTHROTTLED or ESME_RMSGQFUL.
    throttle_give_up_seconds: float = Field(default=60.0, gt=0, le=3600)
    # How long submit waits for a bind before it answers "retry later".
    bind_wait_seconds: float = Field(default=10.0, gt=0, le=600)
    # At most this many account SMS (real-time and batch) to one number in 24 hours, as carriers cap them
    # (Aliyun: 10 a day); reminders are not counted. 0: no cap.
    daily_cap_per_number: int = Field(default=10, ge=0, le=10_000)
    # A national MO sender number (no +, TON unknown) gets this country code to become E.164.
    default_country_code: str = Field(default="86", pattern=r"^[0-9]{0,3}$")
    # The approved signature starts every text (carriers require it and count it): part-count previews
    # include it. English texts get their own, so that they can stay GSM-7.
    signature: str = Field(default="【云会】", max_length=20)
    signature_en: str = Field(default="Yunhui: ", max_length=20)

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def signature_for(self, locale: str) -> str:
        return self.signature_en if locale == "en" else self.signature

    @model_validator(mode="after")
    def _complete_bind(self) -> SmppSettings:
        limits = (
            ("system_id", self.system_id, SYSTEM_ID_MAX),
            ("password", self.password.get_secret_value(), PASSWORD_MAX),
            ("system_type", self.system_type, SYSTEM_TYPE_MAX),
            ("source_addr", self.source_addr, SOURCE_ADDR_MAX),
        )
        for name, value, limit in limits:
            if len(value) > limit:
                raise ValueError(f"{name} is longer than SMPP allows ({len(value)} > {limit} characters)")
            if not value.isascii():
                raise ValueError(f"{name} must be ASCII (SMPP C-octet string)")
        if self.host and not self.system_id:
            raise ValueError("system_id is required when host is set")
        if self.host and not self.source_addr:
            raise ValueError("source_addr is required when host is set")
        return self
