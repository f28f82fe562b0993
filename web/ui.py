"""Pages of the browser code: the meeting client, the admin UI, the live placeholder, and their static files.

The browser code is plain ES modules (no build step). Third-party modules are served from
``web/static/node_modules`` (installed with ``npm ci`` by the setup command) under ``/static/vendor/``,
through an explicit list so that only the files the pages import are reachable.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Protocol

from aiohttp import web

from web.i18n import LANGUAGES, catalogue, negotiate
from web.keys import CLOCK
from web.proxies import CLIENT_ADDRESS

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


class PasscodeLookup(Protocol):
    """Whether a meeting number needs a passcode: signaling.prejoin.PasscodeProbe (rate-limited)."""

    async def needs_passcode(self, meeting_number: str, *, address: str, now: datetime) -> bool: ...


# Set by the composition root; without it the meeting page asks for a passcode only after a refusal.
PASSCODE_PROBE: web.AppKey[PasscodeLookup] = web.AppKey("passcode_probe")
# Whether a room's meetings feed a live channel (issue #18): then the page publishes in H.264, which the
# channel copies without transcoding. Set by the composition root (yunhui/live.py).
LiveRoomLookup = Callable[[str], Awaitable[bool]]
LIVE_ROOMS: web.AppKey[LiveRoomLookup] = web.AppKey("live_rooms")
# Whether every meeting page publishes in H.264 (issue #16): set when the SIP gateway runs, so a room terminal
# that dials in gets the browsers' video forwarded (terminals speak H.264 only) instead of the slate.
PREFER_H264: web.AppKey[bool] = web.AppKey("prefer_h264", bool)

STATIC_DIR = Path(__file__).resolve().parent / "static"
NODE_MODULES = STATIC_DIR / "node_modules"

# /static/vendor/<name> -> file under node_modules; the import map in the page shell names these.
VENDOR_FILES: dict[str, str] = {
    "preact/preact.mjs": "preact/dist/preact.mjs",
    "preact/hooks.mjs": "preact/hooks/dist/hooks.mjs",
    "htm/htm.mjs": "htm/dist/htm.mjs",
    "socket.io/socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
    "hls.js/hls.mjs": "hls.js/dist/hls.min.mjs",
}

IMPORT_MAP = {
    "imports": {
        "preact": "/static/vendor/preact/preact.mjs",
        "preact/hooks": "/static/vendor/preact/hooks.mjs",
        "htm": "/static/vendor/htm/htm.mjs",
        "socket.io-client": "/static/vendor/socket.io/socket.io.esm.min.js",
        "hls.js": "/static/vendor/hls.js/hls.mjs",
    }
}

_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

MEETING_NUMBER = re.compile(r"^[0-9]{9,10}$")

_SHELL = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/css/{css}.css">
<script type="importmap">{import_map}</script>
<script type="application/json" id="yunhui-i18n">{catalogues}</script>
</head>
<body>
<div id="app" data-page="{page}" data-arg="{arg}"{data}><noscript>{noscript}</noscript></div>
<script type="module" src="/static/{script}"></script>
</body>
</html>
"""


def _json_for_script(value: object) -> str:
    # "</script>" inside a string would end the element early; \\u003c is the same character in JSON.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


# The import map is the pages' one inline script: the Content-Security-Policy allows it by this hash
# (web/headers.py), so it must not change per request.
IMPORT_MAP_JSON = _json_for_script(IMPORT_MAP)


def _shell(
    request: web.Request,
    *,
    page: str,
    arg: str,
    script: str,
    css: str,
    title_key: str,
    data: Mapping[str, str] | None = None,
) -> web.Response:
    lang = negotiate(request.headers.get("Accept-Language"), request.query.get("lang"))
    t = catalogue(lang)
    body = _SHELL.format(
        lang=lang,
        title=escape(f"{t[title_key]} · {t['app.name']}"),
        css=css,
        import_map=IMPORT_MAP_JSON,
        catalogues=_json_for_script({code: catalogue(code) for code in LANGUAGES}),
        page=escape(page),
        arg=escape(arg),
        data="".join(f' data-{name}="{escape(value)}"' for name, value in (data or {}).items()),
        noscript=escape(t["ui.noscript"]),
        script=script,
    )
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/m/{meeting_number}")
async def meeting_page(request: web.Request) -> web.Response:
    number = request.match_info["meeting_number"]
    if not MEETING_NUMBER.match(number):
        lang = negotiate(request.headers.get("Accept-Language"), request.query.get("lang"))
        raise web.HTTPNotFound(text=catalogue(lang)["home.join.invalid"])
    return _shell(
        request,
        page="meeting",
        arg=number,
        script="meeting/main.js",
        css="meeting",
        title_key="meeting.title",
        data={"passcode": await _passcode(request, number), **await _live_codec(request, number)},
    )


async def _live_codec(request: web.Request, number: str) -> dict[str, str]:
    if request.app.get(PREFER_H264, False):
        return {"video-codec": "h264"}
    lookup = request.app.get(LIVE_ROOMS)
    try:
        return {"video-codec": "h264"} if lookup is not None and await lookup(number) else {}
    except Exception:  # the page must open anyway; the live channel then transcodes
        log.warning("live channel lookup for the meeting page failed", exc_info=True)
        return {}


async def _passcode(request: web.Request, number: str) -> str:
    """ "required", "none" or "unknown": whether the pre-join page shows the passcode field at once."""
    probe = request.app.get(PASSCODE_PROBE)
    if probe is None:
        return "unknown"
    address = request.app[CLIENT_ADDRESS](request)
    try:
        needed = await probe.needs_passcode(number, address=address, now=request.app[CLOCK]())
    except Exception:  # the page must open anyway; the join itself reports what is wrong
        log.warning("passcode lookup for the pre-join page failed", exc_info=True)
        return "unknown"
    return "required" if needed else "none"


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.Response:
    return _shell(request, page="admin", arg="", script="admin/main.js", css="admin", title_key="admin.title")


@routes.get("/admin/{tail:.*}")
async def admin_subpage(request: web.Request) -> web.Response:
    return _shell(request, page="admin", arg="", script="admin/main.js", css="admin", title_key="admin.title")


@routes.get("/live/{live_id}")
async def live_page(request: web.Request) -> web.Response:
    return _shell(
        request,
        page="live",
        arg=request.match_info["live_id"],
        script="live/main.js",
        css="live",
        title_key="live.title",
    )


@routes.get("/recordings/watch")
async def recording_watch_page(request: web.Request) -> web.Response:
    # The recording's watch page: the host's link when recording stops, and the "recording ready" e-mail's.
    return _shell(
        request, page="watch", arg="", script="recording/watch.js", css="live", title_key="watch.title"
    )


def _file_response(path: Path) -> web.StreamResponse:
    # no-cache, not max-age: without a build step file names carry no hash, so browsers revalidate (ETag).
    content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})


async def _vendor(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    relative = VENDOR_FILES.get(name)
    if relative is None:
        raise web.HTTPNotFound(text=f"no vendor file {name!r}")
    path = NODE_MODULES / relative
    if not path.is_file():
        raise web.HTTPServiceUnavailable(text="front-end packages are missing: run `npm ci` in web/static")
    return _file_response(path)


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = (STATIC_DIR / name).resolve()
    inside = path.is_relative_to(STATIC_DIR) and not path.is_relative_to(NODE_MODULES)
    # package.json / package-lock.json describe the install; they are not part of the site.
    if not inside or not path.is_file() or path.name.startswith("package"):
        raise web.HTTPNotFound(text="not found")
    return _file_response(path)


def add_static(app: web.Application) -> None:
    """Serve ``/static/`` from web/static and ``/static/vendor/`` from the listed npm files."""
    app.router.add_get("/static/vendor/{name:.+}", _vendor)
    app.router.add_get("/static/{name:.+}", _static)
