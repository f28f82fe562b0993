"""web.ui on its own: page shells, the import map, vendor files from npm, static files kept inside."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from web import ui


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(ui.routes)
    ui.add_static(app)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def _script_json(page: str, element: str) -> dict[str, object]:
    match = re.search(rf"<script type=\"{element}\"[^>]*>(.*?)</script>", page, re.S)
    assert match is not None, element
    data: dict[str, object] = json.loads(match.group(1))
    return data


async def test_meeting_page_embeds_import_map_and_both_catalogues(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{base_url}/m/123456789", headers={"Accept-Language": "zh-CN,zh;q=0.9"}) as r:
        assert r.status == 200
        page = await r.text()
    assert '<html lang="zh-CN">' in page
    assert 'data-arg="123456789"' in page
    assert '<script type="module" src="/static/meeting/main.js">' in page
    imports = _script_json(page, "importmap")["imports"]
    assert isinstance(imports, dict)
    assert set(imports) == {"preact", "preact/hooks", "htm", "socket.io-client", "hls.js"}
    match = re.search(r'<script type="application/json" id="yunhui-i18n">(.*?)</script>', page, re.S)
    assert match is not None
    catalogues = json.loads(match.group(1))
    assert set(catalogues) == {"en", "zh-CN"}
    assert catalogues["zh-CN"]["prejoin.join"] == "加入会议"


async def test_catalogue_json_cannot_close_the_script_element(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{base_url}/admin") as r:
        page = await r.text()
    body = page.split('id="yunhui-i18n">', 1)[1].split("</script>", 1)[0]
    assert "<" not in body


@pytest.mark.parametrize("number", ["12345", "abcdefghi", "12345678901"])
async def test_a_malformed_meeting_number_is_404(
    base_url: str, http: aiohttp.ClientSession, number: str
) -> None:
    async with http.get(f"{base_url}/m/{number}") as r:
        assert r.status == 404
        assert "9 or 10 digits" in await r.text()


@pytest.mark.parametrize("path", ["/admin", "/admin/bookings", "/admin/rooms/7", "/live/abc"])
async def test_admin_and_live_pages_are_shells(base_url: str, http: aiohttp.ClientSession, path: str) -> None:
    async with http.get(base_url + path, headers={"Accept-Language": "en-US"}) as r:
        assert r.status == 200
        page = await r.text()
    script = "live/main.js" if path.startswith("/live") else "admin/main.js"
    assert f'src="/static/{script}"' in page
    assert "<title>" in page


@pytest.mark.parametrize("name", sorted(ui.VENDOR_FILES))
async def test_vendor_files_are_served_as_javascript(
    base_url: str, http: aiohttp.ClientSession, name: str
) -> None:
    if not (ui.NODE_MODULES / ui.VENDOR_FILES[name]).is_file():
        pytest.fail("web/static/node_modules is missing: run `npm ci` in web/static")
    async with http.get(f"{base_url}/static/vendor/{name}") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/javascript")
        assert len(await r.read()) > 1000


async def test_every_import_map_target_is_served(base_url: str, http: aiohttp.ClientSession) -> None:
    for target in ui.IMPORT_MAP["imports"].values():
        async with http.get(base_url + target) as r:
            assert r.status == 200, target


@pytest.mark.parametrize(
    "path",
    [
        "/static/vendor/preact/package.json",
        "/static/node_modules/preact/package.json",
        "/static/package.json",
        "/static/%2e%2e/ui.py",
        "/static/..%2fui.py",
        "/static/nothing.js",
    ],
)
async def test_only_our_static_files_are_reachable(
    base_url: str, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(base_url + path) as r:
        assert r.status == 404


async def test_modules_and_styles_have_their_content_types(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    for path, kind in [
        ("/static/sdk/yunhui.js", "text/javascript"),
        ("/static/meeting/main.js", "text/javascript"),
        ("/static/css/meeting.css", "text/css"),
    ]:
        async with http.get(base_url + path) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith(kind)
