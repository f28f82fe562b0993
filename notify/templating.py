"""E-mail templates in zh-CN and en: shipped files under notify/templates/{locale}/, rendered sandboxed.

Each template key has three files: ``{key}.subject.txt``, ``{key}.txt`` and ``{key}.html``. Account admins
may override them later, so rendering is sandboxed with autoescape (HTML only) and undefined variables fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
LOCALES = ("zh-CN", "en")
# Every key shipped in both locales; a test checks the files exist and render with the declared variables.
MEETING_VARIABLES = (
    "title",
    "description",
    "start",
    "end",
    "time_zone",
    "recurring",
    "room_name",
    "meeting_number",
    "passcode",
    "join_url",
    "sip_uri",
    "organizer_name",
    "invitee_name",
)
MAINTENANCE_VARIABLES = ("name", "title", "text", "starts", "ends", "time_zone", "emergency_reason")
VARIABLES: Mapping[str, tuple[str, ...]] = {
    "invite": MEETING_VARIABLES,
    "update": MEETING_VARIABLES,
    "cancel": MEETING_VARIABLES,
    "reminder": (*MEETING_VARIABLES, "minutes_before", "unsubscribe_url"),
    "password_reset": ("name", "one_time_password", "expires_minutes", "login_url"),
    "recording_ready": ("name", "title", "start", "url", "watch_url", "watch_until"),
    "invoice_issued": (
        "name",
        "account_name",
        "number",
        "period",
        "issue_date",
        "due_date",
        "currency",
        "amount_due",
        "amount_in_words",
        "open_balance",
    ),
    "statement": ("name", "account_name", "month"),
    "maintenance": MAINTENANCE_VARIABLES,
    "maintenance_reminder": MAINTENANCE_VARIABLES,
}


class TemplateMissing(LookupError):
    """No template for the key in the locale (or in the default locale)."""


class RenderError(ValueError):
    """The template failed: an undefined variable, a syntax error, a sandbox violation."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """The shipped templates; one per process (the Jinja2 environment caches compiled templates)."""

    def __init__(self, directory: Path = TEMPLATES_DIR, *, default_locale: str = "zh-CN") -> None:
        self._default_locale = default_locale
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=False,
        )

    def render(self, key: str, locale: str, variables: Mapping[str, Any]) -> Rendered:
        """Subject, plain text and HTML of `key` in `locale` (the default locale if it has none)."""
        for candidate in dict.fromkeys((locale, self._default_locale, *LOCALES)):
            try:
                return Rendered(
                    subject=" ".join(self._render(f"{candidate}/{key}.subject.txt", variables).split()),
                    text=self._render(f"{candidate}/{key}.txt", variables).strip() + "\n",
                    html=self._render(f"{candidate}/{key}.html", variables),
                )
            except TemplateNotFound:
                continue
        raise TemplateMissing(f"no template {key!r} in {locale!r}")

    def _render(self, name: str, variables: Mapping[str, Any]) -> str:
        template = self._env.get_template(name)
        try:
            return template.render(**variables)
        except TemplateNotFound:
            raise
        except TemplateError as exc:
            raise RenderError(f"{name}: {exc}") from exc
