"""Janus as the reference SFU: a private configuration, the process, and a VideoRoom client over its HTTP API.

Janus runs from the Debian package with a configuration written into a temporary directory (``/etc/janus`` is
never touched): only the HTTP transport on 127.0.0.1 and the VideoRoom plugin, no STUN/TURN, ICE host
candidates only on the benchmark interface (Janus always skips loopback interfaces, which is why the bench
runs in a private network namespace with an ``ifb`` device), one H.264 + Opus room without bitrate cap or
periodic keyframe requests. Threading is Janus's default (one loop thread per handle).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

ROOM = 1234
_transactions = itertools.count(random.randint(1, 1 << 20))


class JanusError(Exception):
    pass


def janus_version() -> str:
    path = shutil.which("janus")
    if path is None:
        return "not installed"
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False, timeout=10)
    for line in (result.stdout + result.stderr).splitlines():
        if "version" in line.lower():
            return line.strip()
    return "unknown"


def write_config(directory: Path, *, http_port: int, ice_interface: str) -> Path:
    """Write janus.jcfg and the two module configurations into directory; returns the main file."""
    (lib,) = sorted(glob.glob("/usr/lib/*/janus/plugins"))[:1] or ["/usr/lib/janus/plugins"]
    base = Path(lib).parent
    directory.mkdir(parents=True, exist_ok=True)
    plugins = ",".join(
        f"libjanus_{name}.so"
        for name in (
            [
                "audiobridge",
                "duktape",
                "echotest",
                "lua",
                "nosip",
                "recordplay",
                "sip",
                "streaming",
                "textroom",
                "videocall",
                "voicemail",
            ]
        )
    )
    transports = ",".join(f"libjanus_{n}.so" for n in ["mqtt", "nanomsg", "pfunix", "rabbitmq", "websockets"])
    events = ",".join(
        f"libjanus_{n}.so" for n in ["gelfevh", "mqttevh", "nanomsgevh", "rabbitmqevh", "sampleevh", "wsevh"]
    )
    main = directory / "janus.jcfg"
    main.write_text(
        f"""general: {{
\tconfigs_folder = "{directory}"
\tplugins_folder = "{base}/plugins"
\ttransports_folder = "{base}/transports"
\tevents_folder = "{base}/events"
\tloggers_folder = "{base}/loggers"
\tdebug_level = 3
\tsession_timeout = 120
}}
certificates: {{
}}
media: {{
\trtp_port_range = "20000-40000"
}}
nat: {{
\tnice_debug = false
\tfull_trickle = false
\tice_tcp = false
\tignore_mdns = true
\tice_enforce_list = "{ice_interface}"
}}
plugins: {{
\tdisable = "{plugins}"
}}
transports: {{
\tdisable = "{transports}"
}}
loggers: {{
\tdisable = "libjanus_jsonlog.so"
}}
events: {{
\tbroadcast = false
\tdisable = "{events}"
}}
"""
    )
    (directory / "janus.transport.http.jcfg").write_text(
        f"""general: {{
\tjson = "compact"
\tbase_path = "/janus"
\thttp = true
\tport = {http_port}
\tip = "127.0.0.1"
\thttps = false
}}
admin: {{
\tadmin_http = false
}}
cors: {{
}}
"""
    )
    (directory / "janus.plugin.videoroom.jcfg").write_text(
        f"""general: {{
\tstring_ids = false
}}
room-{ROOM}: {{
\tdescription = "bench"
\tpublishers = 64
\tbitrate = 0
\tfir_freq = 0
\taudiocodec = "opus"
\tvideocodec = "h264"
\th264_profile = "42e01f"
\tnotify_joining = false
\trecord = false
}}
"""
    )
    return main


def janus_command(config: Path) -> list[str]:
    path = shutil.which("janus")
    if path is None:
        raise JanusError("janus is not installed (apt-get install janus)")
    # -N: no daemon / no stdout colours (-o). Logs go to stdout, which the runner sends to a file.
    return [path, "-C", str(config), "-F", str(config.parent), "-o"]


class JanusSession:
    """One Janus session with a long-poll task that dispatches asynchronous plugin events."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self._url = url.rstrip("/")
        self._http = http
        self._id = 0
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handles: dict[int, JanusHandle] = {}
        self._poll: asyncio.Task[None] | None = None
        self._closed = False

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": str(next(_transactions))}
        async with self._http.post(self._url + path, json=body) as response:
            result: dict[str, Any] = await response.json(content_type=None)
        return result

    async def create(self) -> None:
        reply = await self.post("", {"janus": "create"})
        if reply.get("janus") != "success":
            raise JanusError(f"create: {reply}")
        self._id = reply["data"]["id"]
        self._poll = asyncio.create_task(self._long_poll())

    async def attach(self) -> JanusHandle:
        reply = await self.post(f"/{self._id}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        if reply.get("janus") != "success":
            raise JanusError(f"attach: {reply}")
        handle = JanusHandle(self, reply["data"]["id"])
        self._handles[handle.id] = handle
        return handle

    async def message(
        self, handle_id: int, body: dict[str, Any], jsep: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Send a plugin request and return the plugin's event (synchronous reply or the event after ack)."""
        transaction = str(next(_transactions))
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        try:
            async with self._http.post(f"{self._url}/{self._id}/{handle_id}", json=message) as response:
                reply: dict[str, Any] = await response.json(content_type=None)
            if reply.get("janus") == "ack":
                reply = await asyncio.wait_for(future, 30)
        finally:
            self._pending.pop(transaction, None)
        data = reply.get("plugindata", {}).get("data", {})
        if reply.get("janus") == "error" or "error" in data:
            raise JanusError(f"{body.get('request')}: {reply}")
        return reply

    async def _long_poll(self) -> None:
        timeout = aiohttp.ClientTimeout(total=40)
        while not self._closed:
            try:
                async with self._http.get(
                    f"{self._url}/{self._id}", params={"maxev": "50"}, timeout=timeout
                ) as response:
                    events = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                if self._closed:
                    return
                await asyncio.sleep(0.2)
                continue
            for event in events if isinstance(events, list) else [events]:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        transaction = event.get("transaction")
        future = self._pending.get(transaction or "")
        if future is not None and event.get("janus") in ("event", "error"):
            if not future.done():
                future.set_result(event)
            return
        handle = self._handles.get(event.get("sender", 0))
        if handle is not None and event.get("janus") == "webrtcup":
            handle.webrtcup.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._poll is not None:
            self._poll.cancel()
            await asyncio.gather(self._poll, return_exceptions=True)
        if self._id:
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                await self.post(f"/{self._id}", {"janus": "destroy"})


class JanusHandle:
    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self.webrtcup = asyncio.Event()

    async def publish(self, offer_sdp: str, display: str) -> tuple[int, str]:
        """Join the room as publisher with a complete (non-trickle) offer; returns (feed id, answer SDP)."""
        reply = await self.session.message(
            self.id,
            {"request": "joinandconfigure", "room": ROOM, "ptype": "publisher", "display": display},
            {"type": "offer", "sdp": offer_sdp, "trickle": False},
        )
        return int(reply["plugindata"]["data"]["id"]), str(reply["jsep"]["sdp"])

    async def subscribe(self, feeds: list[int]) -> str:
        """Join as subscriber to all streams of feeds; returns Janus's offer."""
        reply = await self.session.message(
            self.id,
            {"request": "join", "room": ROOM, "ptype": "subscriber", "streams": [{"feed": f} for f in feeds]},
            None,
        )
        return str(reply["jsep"]["sdp"])

    async def start(self, answer_sdp: str) -> None:
        await self.session.message(
            self.id,
            {"request": "start", "room": ROOM},
            {"type": "answer", "sdp": answer_sdp, "trickle": False},
        )
