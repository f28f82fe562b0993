"""Settings section of the notify package (composed by yunhui/settings.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from notify.smpp_settings import SmppSettings

LOCALES = ("zh-CN", "en")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Section):
    """The operator's smarthost. DKIM, SPF and DMARC are its job; Yunhui only relays to it."""

    # Empty: e-mail is off; messages stay queued (and expire) until a host is configured.
    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    # Implicit TLS from the first byte (port 465), or STARTTLS after the greeting (port 587); not both.
    tls: bool = False
    starttls: bool = True
    # A CA bundle for a smarthost with a private certificate; None: the system's trust store.
    ca_file: str | None = None
    user: str = ""
    password: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.tls and self.starttls:
            raise ValueError("tls (implicit TLS) and starttls cannot both be on")
        if self.password.get_secret_value() and not self.user:
            raise ValueError("a password needs a user")
        return self


class NotifySettings(_Section):
    # The From address of every message, and the domain of Message-IDs <outbox-{id}@{domain}>.
    sender: str = "Yunhui <noreply@localhost>"
    domain: str = "localhost"
    # The language of mail to recipients with none of their own.
    default_locale: str = "zh-CN"
    # Times in maintenance notices are written in this zone (invitations use each booking's own).
    time_zone: str = "Asia/Shanghai"
    # The domain of the SIP dial string number@domain in invitations; empty: the public URL's host.
    sip_domain: str = ""
    smtp: SmtpSettings = SmtpSettings()
    # Reminders before each booked occurrence, in minutes (the brief's defaults: e-mail a day ahead).
    email_reminder_minutes: tuple[int, ...] = (24 * 60,)
    sms_reminder_minutes: tuple[int, ...] = (15,)
    # How long an invitation or account mail is retried before it expires.
    expiry_hours: float = Field(default=48.0, gt=0, le=24 * 30)
    # The dispatcher looks for due rows this often (seconds); it also wakes at once after a local enqueue.
    dispatch_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    # The scheduler queues the reminders due within the next interval this often (idempotent).
    reminder_interval_seconds: float = Field(default=300.0, ge=1, le=3600)
    # The purge of sent history and the monthly statement run this often.
    purge_interval_seconds: float = Field(default=3600.0, ge=1)
    # The SMS channel's SMSC bind (notify/smpp_settings.py).
    smpp: SmppSettings = SmppSettings()

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)}")
        return value

    @field_validator("email_reminder_minutes", "sms_reminder_minutes")
    @classmethod
    def _positive_leads(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(lead <= 0 or lead > 30 * 24 * 60 for lead in value):
            raise ValueError("each reminder lead time is 1 minute to 30 days")
        return tuple(sorted(set(value), reverse=True))

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone") from None
        return value

    @field_validator("domain")
    @classmethod
    def _bare_domain(cls, value: str) -> str:
        if not value or any(c in value for c in "<>@ \t"):
            raise ValueError("must be a bare domain name such as meet.example.com")
        return value
