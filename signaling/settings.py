"""Settings section of the signaling package (composed by yunhui/settings.py)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from signaling.ratelimit import EventRates


class TurnSettings(BaseModel):
    """STUN and TURN servers handed to clients in ``joined`` (docs/operations.md, "TURN").

    Browsers behind a firewall that blocks UDP reach the SFU through TURN over TCP or TLS on 443. Each
    participant gets its own time-limited credential, minted from ``secret`` (coturn's static-auth-secret
    with use-auth-secret), so nothing else has to be shared with coturn.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # e.g. ["turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478?transport=tcp",
    #       "turns:turn.example.org:443?transport=tcp"]; without a secret, no TURN server is handed out.
    urls: tuple[str, ...] = ()
    secret: SecretStr | None = None
    # coturn checks the expiry on every refresh of an allocation: longer than the longest stay.
    ttl_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    # e.g. ["stun:turn.example.org:3478"]: given to clients as is (no credential).
    stun_urls: tuple[str, ...] = ()

    @field_validator("urls")
    @classmethod
    def _turn_uris(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("turn:", "turns:")):
                raise ValueError(f"{url!r} is not a turn: or turns: URI")
        return value

    @field_validator("stun_urls")
    @classmethod
    def _stun_uris(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"{url!r} is not a stun: URI")
        return value


class SignalingSettings(BaseModel):
    """Live-meeting tunables. Durations are in seconds so environment variables stay plain numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turn: TurnSettings = TurnSettings()
    # A participant whose connection drops keeps its identity, role and hand this long.
    reconnect_grace_seconds: float = Field(default=30.0, gt=0)
    # A meeting with nobody in it (recorders and viewers do not count) ends after this long.
    empty_meeting_grace_seconds: float = Field(default=60.0, gt=0)
    # Everyone is warned this long before the session deadline, once per offset.
    warning_offsets_seconds: tuple[float, ...] = (300.0, 60.0)
    chat_max_length: int = Field(default=2000, ge=1)
    chat_history_size: int = Field(default=200, ge=0)
    # At most chat_rate_count chat messages (and as many reactions) per chat_rate_window_seconds.
    chat_rate_count: int = Field(default=5, ge=1)
    chat_rate_window_seconds: float = Field(default=5.0, gt=0)
    display_name_max_length: int = Field(default=64, ge=1)
    upload_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    # None: "files" under the process's state directory (paths.var_dir), filled in by the composition root.
    files_dir: Path | None = None
    # Shared files (and their links) are removed this long after upload.
    file_retention_seconds: float = Field(default=24 * 3600.0, gt=0)
    # A client is disconnected after this many malformed or unknown events.
    max_protocol_errors: int = Field(default=20, ge=1)
    # Messages queued for one slow client before it is disconnected; broadcasting never waits on a client.
    outbox_limit: int = Field(default=2000, ge=10)
    # A participant whose publish or subscribe PeerConnection failed (and was not renegotiated to connected
    # again) leaves with reason media_failed after this long, instead of staying seated and billed.
    media_failed_timeout_seconds: float = Field(default=30.0, gt=0)
    # Failed passcode joins (a wrong passcode, or a meeting number that does not exist) per client address
    # and per meeting: this many cost nothing, then each more blocks for passcode_backoff_base_seconds,
    # doubling per failure up to passcode_backoff_max_seconds; one failure is forgiven every
    # passcode_forgive_seconds. The meeting's limit lets addresses without failures through (attempts.py).
    passcode_free_failures_per_address: int = Field(default=5, ge=0)
    passcode_free_failures_per_meeting: int = Field(default=20, ge=0)
    passcode_backoff_base_seconds: float = Field(default=1.0, gt=0)
    passcode_backoff_max_seconds: float = Field(default=300.0, gt=0)
    passcode_forgive_seconds: float = Field(default=120.0, gt=0)
    # Client addresses (and, apart, meetings) whose failures are remembered; bounds the memory of the limits.
    passcode_tracked_keys: int = Field(default=10_000, ge=1)
    # Wrong host keys (claim_host): a participant gets host_key_attempts_per_participant in one stay; the
    # meeting takes at most host_key_attempts_per_meeting within host_key_window_seconds from everyone.
    host_key_attempts_per_participant: int = Field(default=5, ge=1)
    host_key_attempts_per_meeting: int = Field(default=10, ge=1)
    host_key_window_seconds: float = Field(default=600.0, gt=0)
    # Quotas on shared files, counted over the files a meeting keeps (file_retention_seconds) and the uploads
    # under way: per participant and per meeting, in files and in bytes. Over a count: 429 too_many_files;
    # over bytes: 413 quota_exceeded (docs/protocol.md, "File sharing").
    upload_max_files_per_participant: int = Field(default=20, ge=1)
    upload_max_bytes_per_participant: int = Field(default=100 * 1024 * 1024, ge=1)
    upload_max_files_per_meeting: int = Field(default=200, ge=1)
    upload_max_bytes_per_meeting: int = Field(default=1024 * 1024 * 1024, ge=1)
    # WHEP viewer sessions open at once on one join token (each takes a PeerConnection and a UDP port): a
    # leaked token cannot exhaust the media port range. Over: 429.
    whep_sessions_per_token: int = Field(default=3, ge=1)
    # Every client event costs a token of its class's bucket (burst, then per_second; ratelimit.py); over it
    # the event is refused with error rate_limited, which counts towards max_protocol_errors.
    event_rates: EventRates = EventRates()
    # Client events waiting in one participant's inbox (behind a slow negotiation); more are rate_limited.
    inbox_limit: int = Field(default=256, ge=1)
    # Bytes queued for one client at Engine.IO that its writer has not taken yet: a client that does
    # not read is disconnected (slow_client) past this, whatever its outbox holds.
    unsent_bytes_limit: int = Field(default=2 * 1024 * 1024, ge=64 * 1024)
    # A burst of changes of one participant reaches the others as one participant_changed per interval.
    participant_changed_interval_seconds: float = Field(default=0.1, ge=0)
