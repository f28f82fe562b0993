"""Helpers of the SIP core tests: a SipServer on loopback, fake credentials and handler, sipp, raw clients."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from signaling.clock import LoopScheduler, Scheduler, Timer
from signaling.sip.api import CallEnded, EndpointCredentials, SipCall
from signaling.sip.auth import ALGORITHMS, ha1, parse_authorization
from signaling.sip.message import SipRequest, SipResponse, parse
from signaling.sip.server import SipServer
from signaling.sip.settings import SipSettings

SCENARIOS = Path(__file__).parent / "scenarios"
REALM = "yunhui"
WAIT = 10.0

SDP = (
    "v=0\r\no=yunhui 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def endpoint(
    username: str, password: str, *, refusal: str | None = None, number: int = 1
) -> EndpointCredentials:
    return EndpointCredentials(
        endpoint_id=f"ep{number}",
        site_id=f"site{number}",
        account_id="acct1",
        ha1_md5=ha1(username, REALM, password),
        ha1_sha256=ha1(username, REALM, password, "SHA-256"),
        refusal=refusal,
    )


class FakeCredentials:
    """Endpoints by SIP username; counts lookups."""

    def __init__(self, **endpoints: EndpointCredentials) -> None:
        self.endpoints = endpoints
        self.lookups: list[str] = []

    async def lookup(self, username: str) -> EndpointCredentials | None:
        self.lookups.append(username)
        return self.endpoints.get(username)


@dataclass
class RecordingHandler:
    """Answers every INVITE with ``answer_sdp`` unless ``behaviour`` says otherwise; records what happened."""

    answer_sdp: str | None = SDP
    behaviour: Callable[[SipCall], Awaitable[None]] | None = None
    calls: list[SipCall] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    ended: list[CallEnded] = field(default_factory=list)
    infos: list[tuple[str, bytes]] = field(default_factory=list)
    reoffers: list[str] = field(default_factory=list)
    got_call: asyncio.Event = field(default_factory=asyncio.Event)
    call_ended: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when answer() returned, i.e. the terminal's ACK arrived.
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_invite(self, call: SipCall) -> None:
        self.calls.append(call)
        call.on_info = lambda content_type, body: self.infos.append((content_type, body))
        call.on_reinvite = self._reinvite
        call.on_end = self._ended
        self.got_call.set()
        if self.behaviour is not None:
            await self.behaviour(call)
        elif self.answer_sdp is not None:
            self.results.append(await call.answer(self.answer_sdp))
            self.acked.set()

    async def _reinvite(self, sdp: str) -> str:
        self.reoffers.append(sdp)
        # An identical offer is answered identically (same o= version): here, always our one answer.
        return self.answer_sdp or SDP

    def _ended(self, reason: CallEnded) -> None:
        self.ended.append(reason)
        self.call_ended.set()


class ScaledScheduler:
    """Wall time running ``scale`` times faster: a 90 s session timer takes 90/scale real seconds."""

    def __init__(self, scale: float) -> None:
        self._scale = scale
        self._start = datetime.now(UTC)
        self._loop_start = asyncio.get_running_loop().time()

    def now(self) -> datetime:
        elapsed = asyncio.get_running_loop().time() - self._loop_start
        return self._start + timedelta(seconds=elapsed * self._scale)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> Timer:
        delay = max(0.0, (when - self.now()).total_seconds() / self._scale)
        return asyncio.get_running_loop().call_later(delay, callback)


def settings(**overrides: Any) -> SipSettings:
    base: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "udp_port": 0,
        "tcp_port": 0,
        "tls_port": None,
        "realm": REALM,
        # sipp answers only the first challenge and knows only MD5.
        "digest_algorithms": ("MD5",),
        "t1_ms": 50,
        "t2_ms": 400,
        "t4_ms": 500,
    }
    base.update(overrides)
    return SipSettings(**base)


@contextlib.asynccontextmanager
async def running_server(
    sip: SipSettings,
    credentials: FakeCredentials | None = None,
    handler: RecordingHandler | None = None,
    clock: Scheduler | None = None,
) -> AsyncIterator[SipServer]:
    server = SipServer(
        sip,
        clock or LoopScheduler(lambda: datetime.now(UTC)),
        credentials or FakeCredentials(),
        handler or RecordingHandler(),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (sipp binds it next)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


@dataclass(frozen=True)
class SippRun:
    returncode: int
    output: str
    messages: str
    errors: str


async def run_sipp(
    scenario: str,
    server_port: int,
    *args: str,
    transport: str = "u1",
    tmp: Path,
    limit: float = 20.0,
) -> SippRun:
    """One sipp call of ``scenarios/<scenario>`` against 127.0.0.1:server_port; killed by PID on a hang."""
    name = secrets.token_hex(3)
    message_file, error_file = tmp / f"sipp-{name}.msg", tmp / f"sipp-{name}.err"
    argv = [
        "sipp",
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-t",
        transport,
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        f"{int(limit)}s",
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        str(message_file),
        "-trace_err",
        "-error_file",
        str(error_file),
        "-key",
        "user",
        "room101",
        *args,
        f"127.0.0.1:{server_port}",
    ]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), limit + 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    def read(path: Path) -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    return SippRun(
        process.returncode or 0, output.decode(errors="replace"), read(message_file), read(error_file)
    )


class UdpClient:
    """A raw SIP client over one UDP socket: send text, receive parsed messages."""

    def __init__(self, server_port: int) -> None:
        self.server = ("127.0.0.1", server_port)
        self.queue: asyncio.Queue[SipRequest | SipResponse] = asyncio.Queue()
        self.raw: list[bytes] = []
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> UdpClient:
        loop = asyncio.get_running_loop()
        client = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                client.raw.append(data)
                with contextlib.suppress(ValueError):
                    client.queue.put_nowait(parse(data))

        self._transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    def send(self, data: bytes | str) -> None:
        assert self._transport is not None
        raw = data.encode() if isinstance(data, str) else data
        self._transport.sendto(raw, self.server)

    async def receive(self, wait: float = WAIT) -> SipRequest | SipResponse:
        return await asyncio.wait_for(self.queue.get(), wait)

    async def response(self, wait: float = WAIT) -> SipResponse:
        while True:
            message = await self.receive(wait)
            if isinstance(message, SipResponse) and message.status != 100:
                return message

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.queue.get(), seconds)
        except TimeoutError:
            return True
        return False


def request_text(
    method: str,
    port: int,
    *,
    user: str = "room101",
    branch: str | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    extra: str = "",
    body: str = "",
    uri: str | None = None,
) -> str:
    """A request from a UdpClient bound to ``port``."""
    branch = branch or "z9hG4bK" + secrets.token_hex(6)
    call_id = call_id or secrets.token_hex(8)
    extra_lines = "".join(f"{line}\r\n" for line in extra.split("\n") if line)
    return (
        f"{method} {uri or f'sip:{user}@127.0.0.1'} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag=t{cseq}x\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{port}>\r\n"
        f"{extra_lines}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    )


def digest_answer(challenge: str, username: str, password: str, method: str, uri: str, *, nc: int = 1) -> str:
    params = parse_authorization(challenge)
    assert params is not None
    algorithm = params.get("algorithm", "MD5")
    h = ALGORITHMS[algorithm]
    ha1 = h(f"{username}:{params['realm']}:{password}".encode()).hexdigest()
    ha2 = h(f"{method}:{uri}".encode()).hexdigest()
    cnonce, nc_text = "0a4f113b", f"{nc:08x}"
    response = h(f"{ha1}:{params['nonce']}:{nc_text}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="{username}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc_text}, cnonce="{cnonce}"'
    )


async def register_once(
    client: UdpClient, username: str, password: str, *, cseq: int = 1
) -> tuple[int, list[str]]:
    """REGISTER, answer the first challenge; (final status, header names of the final response)."""
    client.send(request_text("REGISTER", client.port, user=username, cseq=cseq, extra="Expires: 300"))
    challenge = await client.response()
    assert challenge.status == 401
    value = challenge.headers.get("WWW-Authenticate")
    assert value is not None
    uri = f"sip:{username}@127.0.0.1"
    authorization = digest_answer(value, username, password, "REGISTER", uri)
    client.send(
        request_text(
            "REGISTER",
            client.port,
            user=username,
            cseq=cseq + 1,
            extra=f"Expires: 300\nAuthorization: {authorization}",
        )
    )
    final = await client.response()
    return final.status, [name for name, _ in final.headers]
