"""The SFU under test as a child process: Janus or Yunhui, pinned to one core, started fresh for every run."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bench import janus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SfuServer:
    """Owns one SFU process; ``close()`` stops it by its PID (idempotent)."""

    def __init__(
        self, kind: str, process: subprocess.Popen[bytes], url: str, ready_url: str, log_path: Path
    ) -> None:
        self.kind = kind
        self.process = process
        self.url = url
        self._ready_url = ready_url
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def spawn(
        cls,
        kind: str,
        *,
        workdir: Path,
        cpu: int | None,
        ice_interface: str,
        ice_address: str,
        extra_args: list[str] | None = None,
    ) -> SfuServer:
        """Start the process; ``ready()`` waits until it answers HTTP. extra_args go to Yunhui's server."""
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        if kind == "janus":
            config = janus.write_config(workdir / "janus-etc", http_port=port, ice_interface=ice_interface)
            command = janus.janus_command(config)
            url, ready = f"http://127.0.0.1:{port}/janus", f"http://127.0.0.1:{port}/janus/info"
        elif kind == "yunhui":
            command = [sys.executable, "-m", "bench.yunhui_server", "--port", str(port)]
            command += ["--ice-address", ice_address, *(extra_args or [])]
            url, ready = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/ready"
        else:
            raise ValueError(f"kind: unknown SFU {kind!r}")
        if cpu is not None:
            # taskset execs the SFU, so the PID we measure is the SFU's and every thread it starts is pinned.
            command = ["taskset", "-c", str(cpu), *command]
        log_path = workdir / f"{kind}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        return cls(kind, process, url, ready, log_path)

    @classmethod
    async def start(
        cls, kind: str, *, workdir: Path, cpu: int | None, ice_interface: str, ice_address: str
    ) -> SfuServer:
        server = cls.spawn(
            kind, workdir=workdir, cpu=cpu, ice_interface=ice_interface, ice_address=ice_address
        )
        try:
            await server.ready()
        except BaseException:
            await server.close()
            raise
        return server

    async def ready(self, within_s: float = 30.0) -> None:
        deadline = time.monotonic() + within_s
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.kind} exited with {self.process.returncode}; see {self.log_path}"
                    )
                try:
                    async with http.get(self._ready_url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.kind} not ready after {within_s} s; see {self.log_path}")
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 5)
