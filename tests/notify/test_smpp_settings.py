"""The notify.smpp settings: SMS is off without a host; a half-configured bind stops the start with one line
naming the key."""

from __future__ import annotations

import pytest

from yunhui.settings import SettingsError, load_settings


def test_sms_is_off_by_default_and_a_complete_bind_loads() -> None:
    assert not load_settings().notify.smpp.enabled
    smpp = load_settings(
        overrides={
            "notify": {"smpp": {"host": "smsc.example.net", "system_id": "yunhui", "source_addr": "10690"}}
        }
    ).notify.smpp
    assert (smpp.enabled, smpp.port, smpp.tps, smpp.window) == (True, 2775, 10.0, 10)
    assert (smpp.signature_for("zh-CN"), smpp.signature_for("en")) == ("【云会】", "Yunhui: ")


@pytest.mark.parametrize(
    ("smpp", "message"),
    [
        ({"host": "smsc"}, "notify.smpp: system_id is required when host is set"),
        ({"host": "smsc", "system_id": "y"}, "notify.smpp: source_addr is required when host is set"),
        ({"system_id": "x" * 16}, "notify.smpp: system_id is longer than SMPP allows (16 > 15 characters)"),
        ({"password": "123456789"}, "notify.smpp: password is longer than SMPP allows (9 > 8 characters)"),
        ({"system_id": "云会"}, "notify.smpp: system_id must be ASCII (SMPP C-octet string)"),
        ({"tps": 0}, "notify.smpp.tps: Input should be greater than 0 (got 0)"),
        ({"window": 0}, "notify.smpp.window: Input should be greater than or equal to 1 (got 0)"),
        ({"port": 70000}, "notify.smpp.port: Input should be less than or equal to 65535 (got 70000)"),
        ({"hostname": "smsc"}, "notify.smpp.hostname: unknown setting"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_key(smpp: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(overrides={"notify": {"smpp": smpp}})
    assert str(caught.value) == message


def test_an_environment_variable_sets_one_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUNHUI_NOTIFY__SMPP__TPS", "25")
    assert load_settings().notify.smpp.tps == 25.0
