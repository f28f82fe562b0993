"""Who may REGISTER or call: digest per Endpoint, a trusted front proxy's asserted identity, refusals."""

from __future__ import annotations

import logging

from signaling.sip.api import Credentials, EndpointCredentials
from signaling.sip.auth import Digest
from signaling.sip.limits import AddressLimits
from signaling.sip.message import SipParseError, SipRequest
from signaling.sip.settings import SipSettings
from signaling.sip.transaction import ServerTransaction, new_tag
from signaling.sip.uri import NameAddr, SipUri

__all__ = ["Gatekeeper"]

logger = logging.getLogger(__name__)


class Gatekeeper:
    """Answers 401/403/503 itself; returns (True, endpoint) when the request may go on."""

    def __init__(
        self,
        settings: SipSettings,
        digest: Digest,
        credentials: Credentials,
        limits: AddressLimits,
        host: str,
    ) -> None:
        self.settings = settings
        self._digest = digest
        self._credentials = credentials
        self._limits = limits
        self.host = host

    async def check(
        self, request: SipRequest, transaction: ServerTransaction, *, guest_ok: bool
    ) -> tuple[bool, EndpointCredentials | None]:
        """(True, endpoint) when the request may go on; otherwise the answer (401/403/503) is sent."""
        source = transaction.source
        if source.host in self.settings.trusted_proxies:
            return await self._asserted(request, transaction, guest_ok=guest_ok)
        header = request.headers.get("Authorization") or request.headers.get("Proxy-Authorization")
        username = self._digest.username(header)
        if username is None:
            if guest_ok and self.settings.allow_guests:
                return True, None
            transaction.reply(401, headers=tuple(self._digest.challenges()), to_tag=new_tag())
            return False, None
        try:
            endpoint = await self._credentials.lookup(username)
        except Exception:
            logger.exception("sip: credentials lookup failed")
            transaction.reply(503, headers=(("Retry-After", "30"),), to_tag=new_tag())
            return False, None

        def stored(algorithm: str) -> str | None:
            if endpoint is None:
                return None
            return endpoint.ha1_md5 if algorithm == "MD5" else endpoint.ha1_sha256

        answer = self._digest.check(header, request.method, stored)
        if not answer.ok:
            if answer.failure not in ("stale", "replay"):
                self._limits.auth_failed(source.host)
            # The same 401 for an unknown user and a wrong password (no enumeration).
            stale = answer.failure == "stale"
            transaction.reply(401, headers=tuple(self._digest.challenges(stale=stale)), to_tag=new_tag())
            return False, None
        assert endpoint is not None
        if endpoint.refusal is not None:
            self._refuse(transaction, endpoint.refusal)
            return False, None
        return True, endpoint

    async def _asserted(
        self, request: SipRequest, transaction: ServerTransaction, *, guest_ok: bool
    ) -> tuple[bool, EndpointCredentials | None]:
        """Trusted front proxy: the identity header names the Endpoint, the proxy did the digest."""
        value = request.headers.get(self.settings.identity_header)
        if value is None:
            if guest_ok and self.settings.allow_guests:
                return True, None
            transaction.reply(403, "No asserted identity", to_tag=new_tag())
            return False, None
        try:
            user = SipUri.parse(NameAddr.parse(value).uri).user
            endpoint = await self._credentials.lookup(user)
        except SipParseError:
            endpoint = None
        except Exception:
            logger.exception("sip: credentials lookup failed")
            transaction.reply(503, headers=(("Retry-After", "30"),), to_tag=new_tag())
            return False, None
        if endpoint is None:
            transaction.reply(403, "Unknown asserted identity", to_tag=new_tag())
            return False, None
        if endpoint.refusal is not None:
            self._refuse(transaction, endpoint.refusal)
            return False, None
        return True, endpoint

    def _refuse(self, transaction: ServerTransaction, refusal: str) -> None:
        text = refusal.replace("\\", "").replace('"', "'")
        transaction.reply(
            403,
            headers=(
                ("Warning", f'399 {self.host} "{text}"'),
                ("Reason", f'SIP;cause=403;text="{text}"'),
            ),
            to_tag=new_tag(),
        )
