"""The SMS routes under schemathesis with the SMS text service present (the suite-wide contract test builds
the API alone, where these routes answer 409 sms_unavailable): bad input is a 4xx with a message, never a
500, and every answer matches the OpenAPI document. Path ids point at a real batch and template."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from notify.smpp_settings import SmppSettings
from rooms.database import Database
from rooms.sms import store, templates
from rooms.sms.store import BatchRow
from tests.api.conftest import PASSWORD, SECRET, START, Clock, _build_template
from web.api import create_api
from web.api.sms_schemas import SMS_SPACING, SMS_TEXTS
from yunhui.sms import SmsTexts

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


async def test_schemathesis_with_the_sms_service(tmp_path: Path) -> None:
    accounts = await _build_template(tmp_path / "sms.db")
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'sms.db'}")
    bare = create_api(db, secret_key=SECRET, clock=Clock())
    api = create_api(db, secret_key=SECRET, clock=Clock())
    api[SMS_TEXTS] = SmsTexts(SmppSettings())
    api[SMS_SPACING] = 0.1
    root = web.Application()
    root.add_subapp("/api/v1", api)
    root.add_subapp("/bare/v1", bare)
    server = TestServer(root, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        account = accounts["a"]
        batch = await store.create_batch(
            db, account_id=account, name="b", locale="en", template_key=None, text="x",
            rows=[BatchRow("+8613800138000", "x")], skipped=0, now=START, spacing=0.1,
        )  # fmt: skip
        await templates.save_template(
            db, account_id=account, key="notice", texts={"zh-CN": "你好", "en": "Hi"}, variables=[],
            provider_code=None, now=START,
        )  # fmt: skip
        url = str(server.make_url("/api/v1"))
        async with aiohttp.ClientSession() as http:
            login = {"email": "admin@a.example", "password": PASSWORD}
            async with http.post(f"{url}/auth/login", json=login) as resp:
                token = (await resp.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            bare_url = str(server.make_url("/bare/v1/sms/preview"))
            async with http.post(bare_url, json={"text": "x"}, headers=headers) as r:
                assert (r.status, (await r.json())["error"]["code"]) == (409, "sms_unavailable")
        config = tmp_path / "schemathesis.toml"
        config.write_text(
            f'[parameters]\n"path.account_id" = {account}\n"path.key" = "notice"\n'
            f'"path.batch_id" = {batch.id}\n'
        )
        argv = [
            str(Path(sys.executable).parent / "st"), "--config-file", str(config),
            "run", f"{url}/openapi.json", "--url", url, "--checks", CHECKS,
            "--mode", "positive", "--phases", "examples,fuzzing", "--max-examples", "15", "--seed", "1",
            "-H", f"Authorization: Bearer {token}", "--no-color", "--include-tag", "sms",
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=100)
        assert process.returncode == 0, output.decode()[-8000:]
    finally:
        await server.close()
        await db.close()
