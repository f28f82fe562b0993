"""The process as a user runs it: `yunhui serve` in a subprocess, then SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.timeout(60)


async def _read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> re.Match[str]:
    while True:
        line = (await asyncio.wait_for(stream.readline(), 30)).decode()
        if not line:
            raise AssertionError("serve exited early:\n" + "".join(seen))
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match


async def _start(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHUI_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yunhui", *args,
        cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


def _audit_entries(tmp_path: Path) -> list[tuple[str, str, str]]:
    (database,) = [*tmp_path.glob("var/*.db"), *tmp_path.glob("var/*.sqlite*")]
    with sqlite3.connect(database) as db:
        return db.execute("SELECT actor, action, object_type FROM audit_entries").fetchall()


def _free_port() -> int:
    # tls_port = 0 means "no HTTPS", so the HTTPS test needs a real port: one the kernel just handed out.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_serve_starts_prints_admin_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "yunhui.toml"
    config.write_text(f'[server]\nhost = "127.0.0.1"\nport = 0\ntls_port = {_free_port()}\n')
    proc = await _start(tmp_path, "--config", str(config), "serve")
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        password = (await _read_until(proc.stdout, r"one-time password (\S+)", seen)).group(1)
        http_url = (await _read_until(proc.stdout, r"Listening on (http://\S+)", seen)).group(1)
        https_url = (await _read_until(proc.stdout, r"Listening on (https://\S+)", seen)).group(1)
        assert len(password) >= 12
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{http_url}/readyz") as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["status"] == "ready"
            async with http.get(f"{http_url}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{http_url}/", headers={"Accept-Language": "zh-CN"}) as response:
                assert "云会" in await response.text()
            # The self-signed certificate generated on first start serves HTTPS.
            async with http.get(f"{https_url}/healthz", ssl=False) as response:
                assert response.status == 200
        assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0
        assert (tmp_path / "var" / "tls" / "cert.pem").exists()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
        assert code == 0, "".join(seen) + (await proc.stdout.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_second_start_reuses_state_and_creates_no_second_admin(tmp_path: Path) -> None:
    config = tmp_path / "yunhui.toml"
    # tls_port = 0, as in deploy/yunhui.toml behind nginx: no HTTPS listener at all (no random port).
    config.write_text("[server]\nport = 0\ntls_port = 0\n")
    for start in range(2):
        proc = await _start(tmp_path, "--config", str(config), "serve")
        assert proc.stdout is not None
        seen: list[str] = []
        await _read_until(proc.stdout, r"Listening on http://", seen)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        seen.extend((await proc.stdout.read()).decode().splitlines(keepends=True))
        printed_password = any("one-time password" in line for line in seen)
        assert printed_password == (start == 0)
        assert not [line for line in seen if "https://" in line], seen
    assert not (tmp_path / "var" / "tls").exists()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[server]\nprot = 1\n", "server.prot: unknown setting"),
        ("[server]\nport = 70000\n", "server.port: Input should be less than or equal to 65535"),
        (
            '[server]\ntls_cert = "/nonexistent/c.pem"\ntls_key = "/nonexistent/k.pem"\n',
            "server.tls_cert: cannot read",
        ),
    ],
)
async def test_bad_configuration_exits_with_one_line(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "yunhui.toml"
    config.write_text(toml)
    proc = await _start(tmp_path, "--config", str(config), "serve")
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    lines = out.decode().strip().splitlines()
    assert proc.returncode == 2
    assert len(lines) == 1, lines
    assert expected in lines[0]


async def test_version_and_db_upgrade_and_admin_create(tmp_path: Path) -> None:
    proc = await _start(tmp_path, "version")
    out, _ = await proc.communicate()
    assert re.match(r"yunhui \d+\.\d+", out.decode())
    proc = await _start(tmp_path, "db", "upgrade")
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    proc = await _start(tmp_path, "admin", "create", "--email", "ops@example.org")
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    assert re.search(r"created admin ops@example.org with password \S{12,}", out.decode())
    logged = _audit_entries(tmp_path)
    assert logged == [("system: yunhui admin create", "create", "user")]
    proc = await _start(tmp_path, "admin", "create", "--email", "ops@example.org", "--password", "x" * 12)
    out, _ = await proc.communicate()
    assert proc.returncode != 0
    assert "Traceback" not in out.decode()


async def test_json_log_format(tmp_path: Path) -> None:
    proc = await _start(tmp_path, "--log-format", "json", "--log-level", "INFO", "db", "upgrade")
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    lines = out.decode().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert logged, lines
    assert all(entry.keys() >= {"time", "level", "logger", "message"} for entry in logged)
    assert any(entry["logger"] == "rooms.database" and entry["level"] == "INFO" for entry in logged)
    # Everything else on the output is the command's own text, never a text-format log line.
    assert [line for line in lines if not line.startswith("{")] == ["database is at the latest migration"]
