"""Server-side HTTP digest for SIP (RFC 3261 §22, RFC 7616 qop=auth, RFC 8760 SHA-256).

Nonces are stateless: ``base64(timestamp || HMAC(secret, timestamp || realm))``, so any nonce we
made can be checked without a table. Only the highest ``nc`` seen per nonce is remembered (replay
check), for as long as the nonce lives. Unknown users are checked against a dummy HA1 and get the
same 401 as a wrong password, so REGISTER cannot enumerate Endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Digest", "DigestAnswer", "ha1", "parse_authorization"]

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 = H(username:realm:password), the value rooms/ stores instead of the secret."""
    return ALGORITHMS[algorithm](f"{username}:{realm}:{password}".encode()).hexdigest()


def parse_authorization(value: str) -> dict[str, str] | None:
    """The parameters of ``Digest k=v, …`` (names lower-cased), or None if it is not Digest."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        raw = match.group(2)
        if raw.startswith('"'):
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[match.group(1).lower()] = raw
    return params


@dataclass(frozen=True)
class DigestAnswer:
    """The checked Authorization header: ``username`` and why it failed (None = it is valid)."""

    username: str
    failure: str | None  # "missing", "malformed", "realm", "nonce", "stale", "replay", "response"
    algorithm: str = "MD5"

    @property
    def ok(self) -> bool:
        return self.failure is None


class Digest:
    """Makes challenges and checks answers for one realm."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        now: Callable[[], float],
        ttl_seconds: int = 300,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    ) -> None:
        self.realm = realm
        self._secret = secret
        self._now = now
        self._ttl = ttl_seconds
        self._algorithms = algorithms
        self._nc: dict[str, tuple[int, float]] = {}
        # Unknown users are checked against this, so their answers cost the same as real ones.
        self._dummy = secrets.token_hex(16)

    def nonce(self) -> str:
        stamp = struct.pack("!d", self._now())
        mac = hmac.new(self._secret, stamp + self.realm.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since we made ``nonce``, or None if we did not make it."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 24:
            return None
        stamp, mac = raw[:8], raw[8:]
        expected = hmac.new(self._secret, stamp + self.realm.encode(), hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            return None
        made: float = struct.unpack("!d", stamp)[0]
        return self._now() - made

    def challenges(self, *, stale: bool = False) -> list[tuple[str, str]]:
        """``WWW-Authenticate`` headers, preferred algorithm first (RFC 8760 §2.4)."""
        nonce = self.nonce()
        tail = ', qop="auth", stale=true' if stale else ', qop="auth"'
        return [
            ("WWW-Authenticate", f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={algorithm}{tail}')
            for algorithm in self._algorithms
        ]

    def username(self, value: str | None) -> str | None:
        """The username of an Authorization header, before it is checked (to look the Endpoint up)."""
        if value is None:
            return None
        params = parse_authorization(value)
        return params.get("username") if params else None

    def check(self, value: str | None, method: str, stored: Callable[[str], str | None]) -> DigestAnswer:
        """Check one Authorization header; ``stored(algorithm)`` gives the HA1 (None = unknown user)."""
        if value is None:
            return DigestAnswer("", "missing")
        params = parse_authorization(value)
        if params is None or not all(k in params for k in ("username", "nonce", "uri", "response")):
            return DigestAnswer("", "malformed")
        username = params["username"]
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in ALGORITHMS or algorithm not in self._algorithms:
            return DigestAnswer(username, "malformed")
        if params.get("realm") != self.realm:
            return DigestAnswer(username, "realm", algorithm)
        age = self._nonce_age(params["nonce"])
        if age is None or age < -5:
            return DigestAnswer(username, "nonce", algorithm)
        known = stored(algorithm)
        h = ALGORITHMS[algorithm]
        hash_a1 = known if known is not None else h(self._dummy.encode()).hexdigest()
        hash_a2 = h(f"{method}:{params['uri']}".encode()).hexdigest()
        qop = params.get("qop")
        if qop is not None:
            if qop.lower() != "auth" or "nc" not in params or "cnonce" not in params:
                return DigestAnswer(username, "malformed", algorithm)
            text = f"{hash_a1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{hash_a2}"
        else:
            text = f"{hash_a1}:{params['nonce']}:{hash_a2}"
        expected = h(text.encode()).hexdigest()
        if not hmac.compare_digest(expected, params["response"].lower()) or known is None:
            return DigestAnswer(username, "response", algorithm)
        if age > self._ttl:
            # The answer is right but the nonce is old: the terminal retries with a fresh one, silently.
            return DigestAnswer(username, "stale", algorithm)
        if qop is not None:
            try:
                nc = int(params["nc"], 16)
            except ValueError:
                return DigestAnswer(username, "malformed", algorithm)
            key = f"{params['nonce']}:{username}"
            last = self._nc.get(key)
            if last is not None and nc <= last[0]:
                return DigestAnswer(username, "replay", algorithm)
            self._prune()
            self._nc[key] = (nc, self._now())
        return DigestAnswer(username, None, algorithm)

    def _prune(self) -> None:
        if len(self._nc) < 4096:
            return
        horizon = self._now() - self._ttl
        for key in [k for k, (_, seen) in self._nc.items() if seen < horizon]:
            del self._nc[key]
