"""sfu/certificate.py: one certificate per process, renewed by age; one SSL context per SRTP profile list."""

from __future__ import annotations

from aiortc.rtcdtlstransport import SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80

from sfu.certificate import CertificateStore
from sfu.hooks import make_peer_connection
from sfu.settings import SfuSettings


def test_the_certificate_is_shared_until_it_is_a_day_old() -> None:
    store = CertificateStore(max_age_s=86_400)
    first = store.current(now=1000.0)
    assert store.current(now=1000.0 + 86_399) is first
    renewed = store.current(now=1000.0 + 86_400)
    assert renewed is not first
    assert renewed.getFingerprints() != first.getFingerprints()


def test_one_ssl_context_per_profile_list() -> None:
    certificate = CertificateStore().current(now=0.0)
    both = [SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80]
    context = certificate._create_ssl_context(srtp_profiles=both)
    assert certificate._create_ssl_context(srtp_profiles=list(both)) is context
    assert certificate._create_ssl_context(srtp_profiles=[SRTP_AES128_CM_SHA1_80]) is not context
    assert certificate.getFingerprints() == certificate.getFingerprints()


async def test_peer_connections_announce_the_same_fingerprint() -> None:
    pcs = [make_peer_connection(SfuSettings()) for _ in range(2)]
    try:
        sdps = []
        for pc in pcs:
            pc.addTransceiver("audio", direction="sendonly")
            sdps.append((await pc.createOffer()).sdp)
        fingerprints = [
            next(line for line in sdp.splitlines() if line.startswith("a=fingerprint:")) for sdp in sdps
        ]
        assert fingerprints[0] == fingerprints[1]
    finally:
        for pc in pcs:
            await pc.close()
