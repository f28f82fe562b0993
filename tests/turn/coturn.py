"""A real coturn (Debian's turnserver) on a loopback or namespace address, with the TURN REST secret."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from tests.conftest import require_tool

# Relay ports above the kernel's ephemeral range (32768-60999), so they never collide with the SFU's.
RELAY_PORTS = (61000, 61999)


@dataclasses.dataclass(frozen=True)
class Coturn:
    address: str
    port: int
    secret: str
    realm: str


def _free_port(address: str) -> int:
    # coturn listens on the same port over UDP and TCP: find one free for both.
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for coturn")


async def _listening(address: str, port: int, process: asyncio.subprocess.Process) -> None:
    # coturn prints no "ready" line: its TCP listener accepting is the readiness signal.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"turnserver exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError:
            if loop.time() > deadline:
                raise RuntimeError("turnserver did not start listening") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def coturn(tmp: Path, address: str = "127.0.0.1", relay: str = "127.0.0.1") -> AsyncIterator[Coturn]:
    """coturn with ``use-auth-secret`` listening on ``address`` (UDP and TCP), relaying from ``relay``."""
    executable = require_tool("turnserver")
    port = _free_port(address)
    server = Coturn(address, port, secrets.token_hex(16), "yunhui.test")
    process = await asyncio.create_subprocess_exec(
        executable,
        "-n",
        "--no-cli",
        "--listening-ip", address,
        "--listening-port", str(port),
        "--relay-ip", relay,
        "--min-port", str(RELAY_PORTS[0]),
        "--max-port", str(RELAY_PORTS[1]),
        "--use-auth-secret",
        "--static-auth-secret", server.secret,
        "--realm", server.realm,
        "--fingerprint",
        # The SFU under test listens on 127.0.0.1 only: coturn refuses loopback peers unless told.
        "--allow-loopback-peers",
        "--no-tls",
        "--no-dtls",
        "--no-multicast-peers",
        "--pidfile", str(tmp / "turnserver.pid"),
        "--userdb", str(tmp / "turndb"),
        "--log-file", str(tmp / "turnserver.log"),
        "--simple-log",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _listening(address, port, process)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
