"""The dial plan: Request-URI user part -> a meeting (with or without passcode) or the IVR lobby."""

from __future__ import annotations

import pytest

from signaling.sip.dialplan import Direct, Lobby, route


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("123456789", Direct("123456789")),
        ("123456789.4321", Direct("123456789", "4321")),
        ("123456789**4321", Direct("123456789", "4321")),
        ("123456789.Ab12", Direct("123456789", "Ab12")),
        ("123%20456%20789", Direct("123456789")),
        ("123-456-789#", Direct("123456789")),
        ("", Lobby()),
        (None, Lobby()),
        ("0", Lobby()),
        ("127.0.0.1", Lobby()),
        ("[::1]", Lobby()),
        ("conference", Lobby()),
        ("123456789.", Lobby()),
        ("123456789.12.34", Lobby()),
        ("1" * 21, Lobby()),
    ],
)
def test_route(user: str | None, expected: object) -> None:
    assert route(user) == expected
