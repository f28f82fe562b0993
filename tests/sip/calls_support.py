"""The calls layer on its own: the real MeetingServer, SFU and database with a stand-in SIP core (FakeCall).

FakeCall is the SipCall a SipServer would hand the Gateway; the terminal's media are real UDP sockets on
127.0.0.1 (tests/sip/plain_terminal.py's Line), so what the gateway sends is what a terminal would get.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rooms.database import Database
from rooms.settings import RoomsSettings
from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from signaling.clock import LoopScheduler
from signaling.server import MeetingServer, socketio_server
from signaling.settings import SignalingSettings
from signaling.sip.api import CallEnded, EndpointCredentials, Transport
from signaling.sip.gateway import Gateway
from signaling.sip.ivr_media import PromptLibrary, make_slate
from signaling.store import RoomsMeetingStore
from tests.sip.conftest import Seed

WAIT = 10.0


@functools.cache
def prompts() -> PromptLibrary:
    """One library per test process (encoding the prompts takes about a second per codec)."""
    library = PromptLibrary(("en",))  # one language: the goodbye of a test call is shorter
    library.prepare(("g722", "pcmu"))  # as yunhui/sip.py does at start (for the codecs these tests use)
    return library


@dataclass
class FakeCall:
    """A SipCall as the core hands it over; records what the calls layer did with it."""

    request_user: str
    offer: str | None
    endpoint: EndpointCredentials | None
    remote: tuple[str, int] = ("127.0.0.1", 5099)
    transport: Transport = "udp"
    call_id: str = "call-1@127.0.0.1"
    user_agent: str = "PolyX30/4.1"
    ack_sdp: str | None = None
    on_info: Callable[[str, bytes], None] | None = None
    on_reinvite: Callable[[str], Awaitable[str]] | None = None
    on_end: Callable[[CallEnded], None] | None = None
    answered: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    rejected: asyncio.Future[tuple[int, list[tuple[str, str]]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    infos: list[tuple[str, bytes]] = field(default_factory=list)
    ended: asyncio.Future[CallEnded] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    async def answer(self, sdp: str) -> str | None:
        self.answered.set_result(sdp)
        return self.ack_sdp

    async def ringing(self) -> None:
        return None

    async def reject(self, status: int, reason: str = "", headers: Sequence[tuple[str, str]] = ()) -> None:
        self.rejected.set_result((status, list(headers)))
        self._end("rejected")

    async def send_info(self, content_type: str, body: bytes) -> int:
        self.infos.append((content_type, body))
        return 200

    async def reinvite(self, sdp: str) -> str | None:
        return None

    async def hangup(self) -> None:
        self._end("hangup")

    async def wait_ended(self) -> CallEnded:
        return await asyncio.shield(self.ended)

    def bye(self) -> None:
        """The terminal hangs up."""
        self._end("bye")

    def _end(self, reason: CallEnded) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)
            if self.on_end is not None:
                self.on_end(reason)


def credentials(seed: Seed, refusal: str | None = None) -> EndpointCredentials:
    return EndpointCredentials(
        str(seed.endpoint_id), str(seed.site_id), str(seed.account_id), "0" * 32, refusal=refusal
    )


@dataclass
class Stack:
    db: Database
    sfu: Sfu
    meetings: MeetingServer
    gateway: Gateway


@contextlib.asynccontextmanager
async def stack(
    db: Database, tmp_path: Path, *, silence_timeout: timedelta = timedelta(seconds=30), **gateway: Any
) -> AsyncIterator[Stack]:
    sfu = Sfu(SfuSettings(allow_loopback_candidates=True))
    scheduler = LoopScheduler(lambda: datetime.now(UTC))
    meetings = MeetingServer(
        socketio_server(),
        sfu=sfu,
        store=RoomsMeetingStore(db, RoomsSettings()),
        settings=SignalingSettings(files_dir=tmp_path / "files"),
        secret_key="k" * 40,
        clock=lambda: datetime.now(UTC),
        scheduler=scheduler,
    )
    gw = Gateway(
        meetings=meetings,
        sfu=sfu,
        db=db,
        scheduler=scheduler,
        prompts=prompts(),
        slate=make_slate(),
        media_host="127.0.0.1",
        sip_host="yunhui.test",
        silence_timeout=silence_timeout,
        **gateway,
    )
    try:
        yield Stack(db, sfu, meetings, gw)
    finally:
        await gw.close()
        await meetings.close()
        await sfu.close()


async def until(predicate: Callable[[], bool], what: str, within: float = WAIT) -> None:
    """Poll a condition of the system under test (bounded; the loop runs other tasks between checks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.02)
