"""Settings section of the SIP gateway (composed by yunhui/settings.py as ``sip``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from signaling.sip.call_settings import SipCallSettings


class SipRateLimits(BaseModel):
    """Per source address limits (A19): a scanner is cut off cheaply, a room system never notices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Token bucket over every message from one IP (datagrams and stream messages alike).
    messages_per_second: float = Field(default=50.0, gt=0)
    burst: int = Field(default=200, ge=1)
    # Failed digest answers (wrong password or unknown user) per IP before it is blocked.
    auth_failures: int = Field(default=20, ge=1)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    # How long an address that broke a limit is ignored (its messages are dropped unanswered).
    block_seconds: float = Field(default=60.0, gt=0)
    # Simultaneous TCP/TLS connections from one IP.
    connections_per_ip: int = Field(default=32, ge=1)


class SipSettings(BaseModel):
    """Listeners, timers and policies of the SIP gateway (issue #16, docs/sip.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # False: no SIP listener (the default until the gateway is configured).
    enabled: bool = False
    # Address the listeners bind to, and the host put in Via/Contact/Warning (the public name or IP).
    host: str = "0.0.0.0"
    advertised_host: str | None = None
    # 0 = an ephemeral port (tests); None = that transport is off.
    udp_port: int | None = Field(default=5060, ge=0, le=65535)
    tcp_port: int | None = Field(default=5060, ge=0, le=65535)
    tls_port: int | None = Field(default=5061, ge=0, le=65535)
    # PEM files; without them a self-signed certificate is made at start (fine for tests, not for Poly:
    # it wants a certificate it can verify, see docs/sip.md).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Digest realm (HA1 is computed over it: changing it invalidates every stored HA1) and our domain.
    realm: str = "yunhui"
    domain: str = "yunhui.local"
    # RFC 3261 §17 timers. Tests scale them down (T1 = 50 ms).
    t1_ms: int = Field(default=500, ge=1)
    t2_ms: int = Field(default=4000, ge=1)
    t4_ms: int = Field(default=5000, ge=1)
    # Registrations shorter than this get 423 with Min-Expires; longer than max_expires are cut.
    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    default_expires: int = Field(default=3600, ge=1)
    # RFC 4028 session timers: the smallest interval we accept and the one we ask for.
    min_se: int = Field(default=90, ge=90)
    session_expires: int = Field(default=1800, ge=90)
    # A message larger than this gets 513 (requests over streams, where we can answer) or is dropped.
    max_message_bytes: int = Field(default=65535, ge=1500)
    rate_limits: SipRateLimits = SipRateLimits()
    # Kamailio or an SBC in front: from these IPs Via/received are trusted, no per-IP limits apply,
    # and the Endpoint comes from ``identity_header`` instead of digest.
    trusted_proxies: tuple[str, ...] = ()
    identity_header: str = "P-Asserted-Identity"
    # The HMAC key of stateless nonces; generated at start when empty (nonces then die with the process).
    nonce_secret: SecretStr | None = None
    nonce_ttl_seconds: int = Field(default=300, ge=10)
    # Digest algorithms offered, preferred first (RFC 8760: ("SHA-256", "MD5")). MD5 alone by default:
    # Debian's baresip 1.0 and sipp 3.6 fail to register when any SHA-256 challenge is present
    # (docs/decisions.md). Offer SHA-256 where the whole fleet handles it.
    digest_algorithms: tuple[Literal["SHA-256", "MD5"], ...] = Field(default=("MD5",), min_length=1)
    # False: an INVITE without credentials is challenged; True: it reaches the calls layer as a guest
    # (endpoint None), which admits or refuses it by the account's policy.
    allow_guests: bool = False
    # Terminal TCP/TLS connections that say nothing for this long are closed.
    idle_connection_seconds: float = Field(default=600.0, gt=0)
    user_agent: str = "Yunhui"
    # The calls layer: media address, SRTP policy, silence timeout, IVR (signaling/sip/call_settings.py).
    calls: SipCallSettings = SipCallSettings()

    @model_validator(mode="after")
    def _consistent(self) -> SipSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("sip.tls_cert and sip.tls_key go together")
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("sip expires: min_expires <= default_expires <= max_expires")
        if self.t2_ms < self.t1_ms:
            raise ValueError("sip.t2_ms must not be below t1_ms")
        return self
