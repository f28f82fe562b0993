"""The TLS listener's certificate: the configured PEM files, or a self-signed one made at start."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["self_signed", "server_context"]


def self_signed(host: str | None) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) valid for ``host`` (a name or an IP), localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = host or "localhost"
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(name)))
    except ValueError:
        names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def server_context(
    cert: Path | None, key: Path | None, state_dir: Path | None, host: str | None
) -> ssl.SSLContext:
    """A TLS server context; without ``cert``/``key`` a self-signed pair is made (kept in ``state_dir``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Room systems authenticate by digest, not by client certificates.
    context.verify_mode = ssl.CERT_NONE
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
        return context
    if state_dir is not None:
        cert_path, key_path = state_dir / "sip-tls.crt", state_dir / "sip-tls.key"
        if not cert_path.exists() or not key_path.exists():
            state_dir.mkdir(parents=True, exist_ok=True)
            cert_pem, key_pem = self_signed(host)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key_pem)
            cert_path.write_bytes(cert_pem)
        context.load_cert_chain(cert_path, key_path)
        return context
    cert_pem, key_pem = self_signed(host)
    # load_cert_chain reads files only; a private temporary directory holds them just long enough.
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        cert_path.write_bytes(cert_pem)
        context.load_cert_chain(cert_path, key_path)
    return context
