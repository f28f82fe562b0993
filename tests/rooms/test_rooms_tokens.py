from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rooms.tokens import (
    InvalidToken,
    mint_access_token,
    mint_join_token,
    verify_access_token,
    verify_join_token,
)

KEY = "k" * 40
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)


def test_join_token_round_trip_and_expiry() -> None:
    token, expires = mint_join_token(
        KEY,
        room_id=7,
        meeting_number="123456789",
        account_id=3,
        role="participant",
        display_name="张三",
        now=NOW,
        ttl=timedelta(minutes=15),
        booking_id=11,
    )
    claims = verify_join_token(KEY, token, now=NOW + timedelta(minutes=14))
    assert (claims.room_id, claims.meeting_number, claims.account_id, claims.booking_id) == (
        7,
        "123456789",
        3,
        11,
    )
    assert claims.display_name == "张三"
    assert claims.expires_at == expires
    with pytest.raises(InvalidToken) as info:
        verify_join_token(KEY, token, now=NOW + timedelta(minutes=15))
    assert info.value.code == "token_expired"


def test_tokens_are_bound_to_key_and_audience() -> None:
    access, _ = mint_access_token(
        KEY, user_id=1, account_id=None, role="admin", now=NOW, ttl=timedelta(hours=1)
    )
    assert verify_access_token(KEY, access, now=NOW).account_id is None
    with pytest.raises(InvalidToken):
        verify_join_token(KEY, access, now=NOW)  # an access token is no join token
    with pytest.raises(InvalidToken):
        verify_access_token("other" * 10, access, now=NOW)
    with pytest.raises(InvalidToken):
        verify_access_token(KEY, access + "x", now=NOW)
    with pytest.raises(InvalidToken):
        verify_access_token(KEY, "garbage", now=NOW)


def test_unknown_join_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role"):
        mint_join_token(
            KEY,
            room_id=1,
            meeting_number="1",
            account_id=1,
            role="god",
            display_name="",
            now=NOW,
            ttl=timedelta(1),
        )
