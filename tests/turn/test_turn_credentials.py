"""TURN REST credentials: what clients get in `joined`, and a real coturn accepting them (nothing else)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aioice
import pytest
from pydantic import SecretStr

from signaling.settings import TurnSettings
from signaling.turn import client_ice_servers, turn_credential
from tests.turn.coturn import coturn

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
URLS = ("turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp")


def test_no_secret_means_no_turn_server() -> None:
    settings = TurnSettings(urls=URLS, stun_urls=("stun:turn.example.org:3478",))
    (stun,) = client_ice_servers(settings, "p1", NOW)
    assert stun.urls == ("stun:turn.example.org:3478",) and stun.username is None


def test_each_participant_gets_its_own_expiring_credential() -> None:
    settings = TurnSettings(urls=URLS, secret=SecretStr("s3cret"), ttl_seconds=3600)
    (mine,) = client_ice_servers(settings, "p1", NOW)
    (theirs,) = client_ice_servers(settings, "p2", NOW)
    assert mine.urls == URLS
    assert mine.username == f"{int((NOW + timedelta(hours=1)).timestamp())}:p1"
    assert mine.credential != theirs.credential
    # The RFC-draft "TURN REST API" form coturn documents: base64(HMAC-SHA1(secret, username)).
    assert turn_credential("s3cret", "p1", NOW + timedelta(hours=1)) == (mine.username, mine.credential)


def test_settings_refuse_what_is_not_a_turn_uri() -> None:
    with pytest.raises(ValueError, match="not a turn: or turns: URI"):
        TurnSettings(urls=("http://turn.example.org",))
    with pytest.raises(ValueError, match="not a stun: URI"):
        TurnSettings(stun_urls=("turn:turn.example.org",))


async def _relay_candidates(
    port: int, username: str, password: str, transport: str
) -> list[aioice.Candidate]:
    connection = aioice.Connection(
        ice_controlling=True,
        turn_server=("127.0.0.1", port),
        turn_username=username,
        turn_password=password,
        turn_transport=transport,
        use_ipv6=False,
        transport_policy=aioice.TransportPolicy.RELAY,
    )
    try:
        await connection.gather_candidates()
        return [c for c in connection.local_candidates if c.type == "relay"]
    finally:
        await connection.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_coturn_allocates_with_the_minted_credential_only(tmp_path: Path, transport: str) -> None:
    async with coturn(tmp_path) as turn:
        settings = TurnSettings(
            urls=(f"turn:127.0.0.1:{turn.port}?transport={transport}",), secret=SecretStr(turn.secret)
        )
        (server,) = client_ice_servers(settings, "p1", datetime.now(UTC))
        assert server.username is not None and server.credential is not None
        relayed = await _relay_candidates(turn.port, server.username, server.credential, transport)
        assert relayed, "coturn gave no relay address for the minted credential"
        # A wrong secret, and an expired credential, get no allocation.
        forged = turn_credential("not-the-secret", "p1", datetime.now(UTC) + timedelta(hours=1))
        assert await _relay_candidates(turn.port, *forged, transport) == []
        expired = turn_credential(turn.secret, "p1", datetime.now(UTC) - timedelta(minutes=1))
        assert await _relay_candidates(turn.port, *expired, transport) == []
