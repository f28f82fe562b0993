"""A network namespace joined to this one by a veth pair, for browsers behind a firewall or a slow uplink.

198.18.x.1 here, 198.18.x.2 there (RFC 2544's benchmarking range, never routed). What the namespace sends
can be shaped on its end of the link: UDP blackholed (a routing rule on the protocol: this machine's kernel
has no packet filter modules), or the rate limited with tbf. Chromium started through ``chromium_wrapper``
runs inside; pages reach the server through ``relay`` (127.0.0.1 in the namespace, so still a secure origin).
Needs root and ip(8).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

# Runs inside the namespace: 127.0.0.1:<ephemeral> there -> a server here; prints its port.
_RELAY = """
import asyncio, sys
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data); await w.drain()
    finally:
        w.close()
async def serve(r, w):
    ur, uw = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]))
    await asyncio.gather(pipe(r, uw), pipe(ur, w), return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _run(*args: str) -> None:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


class VethNamespace:
    def __init__(self, name: str, subnet: int) -> None:
        self.name = name
        self.host_address = f"198.18.{subnet}.1"
        self.address = f"198.18.{subnet}.2"
        self.network = f"198.18.{subnet}.0/30"
        self._host_if, self._ns_if = f"yh{subnet}h", f"yh{subnet}n"

    def create(self) -> None:
        _run("ip", "netns", "add", self.name)
        try:
            _run(
                "ip",
                "link",
                "add",
                self._host_if,
                "type",
                "veth",
                "peer",
                "name",
                self._ns_if,
                "netns",
                self.name,
            )
            _run("ip", "addr", "add", f"{self.host_address}/30", "dev", self._host_if)
            _run("ip", "link", "set", self._host_if, "up")
            _run("ip", "-n", self.name, "link", "set", "lo", "up")
            _run("ip", "-n", self.name, "addr", "add", f"{self.address}/30", "dev", self._ns_if)
            _run("ip", "-n", self.name, "link", "set", self._ns_if, "up")
        except Exception:
            self.delete()
            raise

    def delete(self) -> None:
        # Deleting the namespace deletes the veth pair with it.
        subprocess.run(["ip", "netns", "delete", self.name], check=False, timeout=20)

    def blackhole_udp(self) -> None:
        """Every UDP datagram the namespace sends off its own addresses fails, as behind a firewall."""
        _run("ip", "-n", self.name, "rule", "add", "ipproto", "udp", "blackhole")

    def limit(self, rate: str, burst: str = "16kb", latency: str = "100ms") -> None:
        """The namespace's uplink at `rate` (tbf: a queue that drops past `latency`)."""
        _run(
            "ip", "netns", "exec", self.name, "tc", "qdisc", "replace", "dev", self._ns_if, "root",
            "tbf", "rate", rate, "burst", burst, "latency", latency,
        )  # fmt: skip

    def unlimit(self) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, "tc", "qdisc", "del", "dev", self._ns_if, "root"],
            check=False,
            timeout=20,
        )

    def chromium_wrapper(self, directory: Path, chromium: str) -> Path:
        """An executable that runs `chromium` inside (ip netns exec keeps Playwright's pipe to it)."""
        wrapper = directory / "chromium"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {chromium} "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    @contextlib.asynccontextmanager
    async def relay(self, port: int) -> AsyncIterator[str]:
        """http://127.0.0.1:<port> inside, relayed over TCP to ``host_address:port`` here."""
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.name, sys.executable, "-c", _RELAY, self.host_address, str(port),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 15)
            yield f"http://127.0.0.1:{int(line)}"
        finally:
            process.kill()
            await process.wait()
