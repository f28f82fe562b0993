"""NotifySettings: clear one-line start-up errors naming the key; the shipped templates exist in both
languages for every key and render with exactly their declared variables."""

from __future__ import annotations

import pytest

from notify.templating import LOCALES, TEMPLATES_DIR, VARIABLES, RenderError, Templates
from yunhui.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        (
            {"smtp": {"tls": True, "starttls": True}},
            "notify.smtp: tls (implicit TLS) and starttls cannot both be on",
        ),
        ({"smtp": {"password": "x"}}, "notify.smtp: a password needs a user"),
        ({"smtp": {"port": 0}}, "notify.smtp.port:"),
        ({"time_zone": "Mars/Olympus"}, "notify.time_zone: unknown time zone (got 'Mars/Olympus')"),
        ({"default_locale": "fr"}, "notify.default_locale: must be one of zh-CN, en (got 'fr')"),
        ({"domain": "a@b"}, "notify.domain: must be a bare domain name"),
        (
            {"email_reminder_minutes": [0]},
            "notify.email_reminder_minutes: each reminder lead time is 1 minute to 30 days",
        ),
        ({"smpt": {}}, "notify.smpt: unknown setting"),
    ],
)
def test_bad_settings_stop_the_start_with_one_line(notify: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(overrides={"notify": notify})
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_the_defaults_load_and_lead_times_are_sorted() -> None:
    settings = load_settings(overrides={"notify": {"email_reminder_minutes": [60, 1440, 60]}}).notify
    assert settings.email_reminder_minutes == (1440, 60)
    assert settings.sms_reminder_minutes == (15,)
    assert not settings.smtp.host  # e-mail is off until a smarthost is configured


def test_every_template_exists_in_both_languages_and_uses_only_its_variables() -> None:
    templates = Templates()
    for key, names in VARIABLES.items():
        for locale in LOCALES:
            for suffix in ("subject.txt", "txt", "html"):
                assert (TEMPLATES_DIR / locale / f"{key}.{suffix}").is_file(), (key, locale, suffix)
            rendered = templates.render(key, locale, {n: f"<{n}>" for n in names})
            assert rendered.subject and rendered.text
            assert "&lt;" in rendered.html and "&lt;" not in rendered.text  # autoescaped in HTML only
            missing = dict.fromkeys(names, "x")
            missing.pop(names[0])
            with pytest.raises(RenderError):  # StrictUndefined: a missing variable never renders as ""
                templates.render(key, locale, missing)
