"""One DTLS certificate for the SFU's PeerConnections, renewed daily, with its OpenSSL context built once.

aiortc generates a new ECDSA key and certificate for every RTCPeerConnection and a new OpenSSL context for
every DTLS handshake. For a server that accepts joins by the hundred both are pure overhead: browsers keep one
certificate per origin too, the fingerprint in each SDP is what authenticates the handshake, and an
``SSL_CTX`` is meant to be shared by many connections. The certificate (valid 30 days, see aiortc's
``generate_certificate``) is replaced after ``MAX_AGE_S``; PeerConnections already made keep theirs.
"""

from __future__ import annotations

import time
from typing import Any

from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint

MAX_AGE_S = 24 * 3600.0


class SharedCertificate(RTCCertificate):
    """An RTCCertificate whose fingerprints and SSL contexts (per SRTP profile list) are computed once."""

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key=key, cert=cert)
        self._fingerprints: list[RTCDtlsFingerprint] | None = None
        self._contexts: dict[tuple[bytes, ...], Any] = {}

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:
        if self._fingerprints is None:
            self._fingerprints = super().getFingerprints()
        return list(self._fingerprints)

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> Any:
        key = tuple(p.openssl_profile for p in srtp_profiles)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = super()._create_ssl_context(srtp_profiles)
        return context


class CertificateStore:
    """Hands out the current SharedCertificate; `now` is injectable for tests."""

    def __init__(self, max_age_s: float = MAX_AGE_S) -> None:
        self._max_age_s = max_age_s
        self._certificate: SharedCertificate | None = None
        self._made_at = 0.0

    def current(self, now: float | None = None) -> SharedCertificate:
        now = time.monotonic() if now is None else now
        if self._certificate is None or now - self._made_at >= self._max_age_s:
            self._certificate = SharedCertificate.generateCertificate()
            self._made_at = now
        return self._certificate
