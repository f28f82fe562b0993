from __future__ import annotations

from pathlib import Path

import pytest

from yunhui.settings import SettingsError, load_settings


def test_defaults_run_on_one_machine() -> None:
    settings = load_settings()
    assert settings.server.port == 8080
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("var/yunhui.db")


def test_environment_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUNHUI_SERVER__PORT", "9090")
    monkeypatch.setenv("YUNHUI_LOGGING__FORMAT", "json")
    settings = load_settings()
    assert settings.server.port == 9090
    assert settings.logging.format == "json"


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "yunhui.toml"
    config.write_text('[server]\nport = 7000\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("YUNHUI_SERVER__PORT", "7001")
    settings = load_settings(config)
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 7001


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "yunhui.toml"
    config.write_text("[server]\nprot = 7000\n")
    with pytest.raises(SettingsError, match=r"^server\.prot: unknown setting$"):
        load_settings(config)


def test_unknown_section_in_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "yunhui.toml"
    config.write_text("[servre]\nport = 7000\n")
    with pytest.raises(SettingsError, match=r"^servre: unknown setting$"):
        load_settings(config)


def test_unknown_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUNHUI_SERVER__PROT", "1")
    with pytest.raises(SettingsError, match=r"^YUNHUI_SERVER__PROT: unknown setting"):
        load_settings()


@pytest.mark.parametrize("port", ["70000", "-1", "eighty"])
def test_port_out_of_range_is_named(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("YUNHUI_SERVER__PORT", port)
    with pytest.raises(SettingsError, match=r"^server\.port: .*\(got '?" + port):
        load_settings()


def test_unreadable_certificate_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(SettingsError, match=r"^server\.tls_cert: cannot read .*nope\.pem"):
        load_settings(overrides={"server": {"tls_cert": str(missing), "tls_key": str(missing)}})


def test_malformed_toml_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "yunhui.toml"
    config.write_text("[server\nport=1\n")
    with pytest.raises(SettingsError, match=r"^--config .*yunhui\.toml"):
        load_settings(config)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^--config .*absent\.toml.*No such file"):
        load_settings(tmp_path / "absent.toml")


def test_unknown_database_driver_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUNHUI_DATABASE__URL", "mysql://x")
    with pytest.raises(SettingsError, match=r"^database\.url: must start with"):
        load_settings()


def test_the_shipped_production_example_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "yunhui.toml"
    settings = load_settings(example)
    assert settings.server.public_url == "https://meet.example.org"
    assert (settings.sfu.udp_port_min, settings.sfu.udp_port_max) == (40000, 40999)


def test_a_half_open_media_port_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUNHUI_SFU__UDP_PORT_MIN", "40000")
    with pytest.raises(SettingsError, match="udp_port_min and udp_port_max: set both or neither"):
        load_settings()
