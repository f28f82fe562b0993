"""schemathesis against the live channels' routes (console and viewers'), with path ids pointing at real
channels in each state, so generated bodies and tokens reach the rules: every answer is a 4xx with a message
or a success that matches the OpenAPI document, never a 500."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from tests.live.conftest import Env, write_hls

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


async def test_schemathesis_on_the_live_routes(env: Env, tmp_path: Path) -> None:
    ids = {}
    for state in ("draft", "live"):
        _, channel = await env.call(
            "POST", "/live", json={"title": state, "language": "en", "source_kind": "playlist"}
        )
        ids[state] = channel["id"]
    await env.call("POST", f"/live/{ids['live']}/go-live")
    write_hls(env.run_dir(ids["live"]), rehearsal=1, public=2)
    await env.call("GET", "/live")  # logs in
    token = env.tokens["admin@a.example"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.channel_id" = {ids["live"]}\n"path.name" = "seg-000002.ts"\n')
    st = Path(sys.executable).parent / "st"
    process = await asyncio.create_subprocess_exec(
        str(st), "--config-file", str(config), "run", f"{env.url}/openapi.json", "--url", env.url,
        "--include-path-regex", "^/live/(\\{channel_id\\}|$)",
        "--checks", CHECKS,
        "--mode", "positive", "--phases", "examples,fuzzing", "--max-examples", "4", "--seed", "1",
        "--exclude-method", "DELETE", "-H", f"Authorization: Bearer {token}", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=150)
    text = output.decode()
    assert process.returncode == 0, text[-8000:]
    operations = re.search(r"(\d+) passed", text)
    assert operations is not None and int(operations.group(1)) >= 18, text[-3000:]
