"""The one typed settings tree, loaded once at start.

Sources, strongest first: explicit overrides (CLI flags, tests), environment variables
``YUNHUI_<SECTION>__<KEY>``, an optional TOML file (``--config``), then the defaults, which run everything
on one machine.
Every package owns its own section model; this module only composes them.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from notify.settings import NotifySettings
from recording.live.settings import LiveSettings
from recording.settings import RecordingSettings
from rooms.settings import RoomsSettings
from sfu.settings import SfuSettings
from signaling.settings import SignalingSettings
from signaling.sip.settings import SipSettings

ENV_PREFIX = "YUNHUI_"
ENV_DELIMITER = "__"


class SettingsError(Exception):
    """The configuration cannot be used; the message is one line naming the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_readable(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    return path


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # HTTPS beside HTTP: browsers only give camera and microphone to secure origins other than localhost.
    # 0 (or None) means no HTTPS listener, e.g. behind a TLS-terminating proxy; unlike server.port, 0 never
    # picks a free port.
    tls_port: int | None = Field(default=8443, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    public_url: str | None = None
    shutdown_timeout: float = Field(default=8.0, gt=0, le=60)
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed: the client is the rightmost
    # hop that is not one of them (web/proxies.py). Empty: the connection's peer is the client.
    trusted_proxies: tuple[str, ...] = ()

    _readable_cert = field_validator("tls_cert", "tls_key")(_check_readable)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        return self


class DatabaseSettings(_Section):
    # None means SQLite under paths.var_dir.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class PathSettings(_Section):
    var_dir: Path = Path("var")


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class SecuritySettings(_Section):
    # None: generated once and kept in <var_dir>/secret_key.
    secret_key: SecretStr | None = None
    first_admin_email: str = "admin@localhost"


class JobSettings(_Section):
    # The billing run is idempotent; running it often only brings notices and suspensions forward.
    billing_interval_seconds: float = Field(default=3600.0, ge=1.0)
    # How often the process writes its heartbeat: after a crash its meetings are closed at the last one, so
    # this bounds how much of a crashed meeting is lost from reports (and added to the recorded outage).
    heartbeat_interval_seconds: float = Field(default=60.0, ge=0.1, le=3600.0)


class MonitorSettings(_Section):
    """The health monitor that measures availability and records outages (issue #21)."""

    enabled: bool = True
    # Seconds between check rounds; the first round runs one interval after start.
    interval_seconds: float = Field(default=10.0, ge=0.5, le=3600.0)
    # Consecutive failing rounds that open an outage (dated at the first of them), and passing rounds that
    # close it (dated at the first of those).
    failures_to_open: int = Field(default=2, ge=1, le=100)
    successes_to_close: int = Field(default=2, ge=1, le=100)
    http_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    database_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    # The media check negotiates two PeerConnections through the SFU each round (ICE and DTLS on loopback).
    media: bool = True
    media_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The HTTP check's base URL; None: the app's own listener (http://server.host:server.port).
    http_url: str | None = None


class BackupSettings(_Section):
    """Scheduled backups and their retention (issue #21)."""

    enabled: bool = True
    # None: <var_dir>/backups. Put it on another disk (or copy the archives off the machine) in production.
    directory: Path | None = None
    interval_hours: float = Field(default=24.0, gt=0, le=24 * 31)
    # How many scheduled archives are kept; the backups taken before migrations are not pruned.
    keep: int = Field(default=7, ge=1, le=1000)
    # A first start waits this long before its first backup, so a short-lived run does not make one.
    first_after_seconds: float = Field(default=600.0, ge=0)
    # How often the schedule is looked at; a backup is made only when one is due.
    check_interval_seconds: float = Field(default=60.0, ge=1.0)
    # `yunhui db upgrade` and the start-up upgrade back an existing database up before migrating it.
    before_upgrade: bool = True


class WebhookSettings(_Section):
    """Webhook deliveries: timeouts and retries (issue #21)."""

    enabled: bool = True
    # How often the outbox is looked at for due deliveries.
    poll_interval_seconds: float = Field(default=2.0, ge=0.05, le=600.0)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120.0)
    # Seconds to wait after the 1st, 2nd, ... failed attempt; when the list is spent the delivery has failed
    # (about 10 hours and 9 attempts with the defaults). A failed delivery can be redelivered from the API.
    retry_after_seconds: tuple[float, ...] = (10, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
    # Deliveries sent at once (each to a different webhook; one webhook's events go out one at a time).
    concurrency: int = Field(default=8, ge=1, le=100)
    # Private, loopback and link-local targets are refused unless this is set (tests; an intranet receiver).
    allow_private_addresses: bool = False


def parse_port_range(text: str) -> tuple[int, int]:
    """``"40000-40999"`` as (40000, 40999); ValueError with the reason otherwise."""
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        raise ValueError(f"{text!r} is not a port range like 40000-40999") from None
    if not sep or not 1024 <= first <= last <= 65535:
        raise ValueError(f"{text!r} is not a port range like 40000-40999 (1024-65535, low first)")
    return first, last


class WorkerSettings(_Section):
    """Worker processes on PostgreSQL and Redis (issue #20); one process with embedded defaults needs none.

    ``redis_url`` switches cluster mode on: each worker (``worker_id`` k, from ``yunhui serve --worker k``
    or ``--workers N``) listens on ``base_port + k - 1`` and takes its own UDP slice, registers in Redis and
    leases the meetings it hosts; jobs that must run once run in the worker holding the advisory lock.
    """

    redis_url: str | None = None
    # How many workers `yunhui serve --workers` starts on this machine (ids first_id .. first_id + count - 1).
    count: int = Field(default=1, ge=1, le=64)
    first_id: int = Field(default=1, ge=1, le=999)
    # This process's worker id; None: the single process (or the supervisor of --workers).
    worker_id: int | None = Field(default=None, ge=1, le=999)
    base_port: int = Field(default=8081, ge=1, le=65535)
    # The address other workers and nginx reach this worker's HTTP port at (the machine's, across hosts).
    address: str = "127.0.0.1"
    # Signs the internal HTTP calls between workers (admin actions forwarded to a meeting's owner, the live
    # list); None: derived from the secret key, which every worker shares.
    internal_secret: SecretStr | None = None
    # How long the live list waits for each other worker before it reports that worker as unreachable.
    internal_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # The cluster bus (announcements) PINGs Redis after this long without a message, and subscribes again
    # when no reply comes within two intervals (a deaf listener).
    bus_health_seconds: float = Field(default=15.0, gt=0, le=300)
    # One "low-high" UDP range per worker of this machine; empty: sfu.udp_port_min..max split evenly.
    udp_ranges: tuple[str, ...] = ()
    heartbeat_seconds: float = Field(default=2.0, gt=0, le=60)
    # A worker whose registry key is older than this is gone: no new meetings are placed on it.
    worker_ttl_seconds: float = Field(default=6.0, gt=0, le=600)
    # A meeting's lease; its owner renews it every heartbeat, another worker may take the room after it.
    lease_ttl_seconds: float = Field(default=10.0, gt=0, le=600)
    # How often a worker that does not lead tries to take the advisory lock (and the leader checks it).
    leader_check_seconds: float = Field(default=5.0, gt=0, le=600)
    # A room just placed counts this many participants on its worker for this long (burst ramp-up).
    reserve_seconds: float = Field(default=60.0, ge=0, le=3600)
    # After SIGTERM a draining worker's meetings run on at most this long, then are moved.
    drain_timeout_seconds: float = Field(default=4 * 3600.0, ge=0, le=24 * 3600)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("udp_ranges")
    @classmethod
    def _disjoint(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        ranges = sorted((*parse_port_range(text), text) for text in value)
        for (_, high, text), (low, _, other) in itertools.pairwise(ranges):
            if low <= high:
                raise ValueError(f"the UDP slices {text} and {other} overlap")
        return value


class Settings(BaseSettings):
    """The whole tree. Build it with :func:`load_settings`, never directly from library code."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    paths: PathSettings = PathSettings()
    logging: LoggingSettings = LoggingSettings()
    security: SecuritySettings = SecuritySettings()
    jobs: JobSettings = JobSettings()
    rooms: RoomsSettings = RoomsSettings()
    sfu: SfuSettings = SfuSettings()
    signaling: SignalingSettings = SignalingSettings()
    notify: NotifySettings = NotifySettings()
    recording: RecordingSettings = RecordingSettings()
    monitor: MonitorSettings = MonitorSettings()
    backup: BackupSettings = BackupSettings()
    webhooks: WebhookSettings = WebhookSettings()
    sip: SipSettings = SipSettings()
    live: LiveSettings = LiveSettings()
    workers: WorkerSettings = WorkerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file") is not None:
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)

    @model_validator(mode="after")
    def _cluster_needs_postgresql(self) -> Settings:
        workers = self.workers
        if workers.redis_url is not None and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "workers.redis_url is set but database.url is SQLite: multi-worker needs PostgreSQL"
            )
        if workers.redis_url is None and (workers.count > 1 or workers.worker_id is not None):
            raise ValueError("workers.count and workers.worker_id need workers.redis_url (Redis)")
        if workers.udp_ranges and len(workers.udp_ranges) < workers.count:
            raise ValueError(f"workers.udp_ranges: {workers.count} workers need as many UDP slices")
        return self

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.paths.var_dir / 'yunhui.db').resolve()}"


def _unknown_env_keys(environ: Mapping[str, str]) -> list[str]:
    unknown = []
    for name in environ:
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER)
        model: type[BaseModel] = Settings
        for i, part in enumerate(parts):
            field = model.model_fields.get(part)
            if field is None:
                unknown.append(name)
                break
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
            elif i != len(parts) - 1:
                unknown.append(name)
                break
    return unknown


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown setting"
    if "input" in error and error["type"] != "missing" and not isinstance(error["input"], dict):
        return f"{key}: {message} (got {error['input']!r})"
    return f"{key}: {message}"


def load_settings(
    config_file: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load and validate the tree; raise :class:`SettingsError` with one line on any problem."""
    unknown = _unknown_env_keys(os.environ)
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting (environment variable)")
    loader: type[Settings] = Settings
    if config_file is not None:
        try:
            with config_file.open("rb"):
                pass
        except OSError as exc:
            raise SettingsError(f"--config {str(config_file)!r}: {exc.strerror or exc}") from None
        # Sources are chosen in a classmethod, so the file travels in a per-call subclass's config.
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})
        loader = type("Settings", (Settings,), {"model_config": config, "__module__": __name__})
    try:
        return loader(**dict(overrides or {}))
    except ValidationError as exc:
        raise SettingsError(_describe(exc.errors()[0])) from None
    except ValueError as exc:  # malformed TOML surfaces as a decode error from tomllib
        raise SettingsError(f"--config {str(config_file)!r}: {exc}") from None
