"""Fixtures of the cluster tests: real redis-server and PostgreSQL on 127.0.0.1, and worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
import redis.asyncio as redis_asyncio

from rooms.database import Database
from rooms.models import Account, Room
from tests.conftest import require_tool
from tests.rooms.conftest import _create_pg_database, _drop_pg_database, postgres_server

__all__ = ["postgres_server"]

# Generous: they only bound a hang on a loaded 2-core machine; every wait polls an observable condition.
START_TIMEOUT = 90.0
NUMBER, PASSCODE = "800100200", "2468"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def client(self) -> redis_asyncio.Redis:
        return redis_asyncio.Redis.from_url(self.url, decode_responses=True)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A throwaway redis-server (no persistence: the registry is ephemeral)."""
    binary = require_tool("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):  # up to 10 s for the port to accept
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                if process.poll() is not None:
                    raise AssertionError("redis-server exited at start") from None
                time.sleep(0.05)
        yield RedisServer(f"redis://127.0.0.1:{port}/0", port, process)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(10)


@pytest.fixture
async def pg_url(postgres_server: str) -> AsyncIterator[str]:
    """A migrated PostgreSQL database with one account and one room."""
    url, name = await _create_pg_database(postgres_server)
    database = await Database.connect(url)
    try:
        await database.upgrade()
        now = datetime.now(UTC)
        async with database.session() as session:
            account = Account(name="Acme", created_at=now)
            session.add(account)
            await session.flush()
            for i in range(21):
                session.add(
                    Room(
                        account_id=account.id, name=f"Room {i}", meeting_number=f"8001002{i:02d}",
                        passcode=PASSCODE, capacity=10, created_at=now,
                    )
                )  # fmt: skip
            await session.commit()
    finally:
        await database.close()
    try:
        yield url
    finally:
        await _drop_pg_database(postgres_server, name)


@dataclass
class Worker:
    """One `yunhui serve --worker k` subprocess."""

    worker_id: int
    url: str
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    async def metrics(self, http: aiohttp.ClientSession) -> dict[str, float]:
        async with http.get(f"{self.url}/metrics") as response:
            body = await response.text()
        values: dict[str, float] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), 30)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        return code


class PortTaken(Exception):
    """The port picked for a worker was taken by another process before the worker bound it."""


@dataclass
class Cluster:
    tmp_path: Path
    database_url: str
    redis: RedisServer
    extra: str = ""
    workers: dict[int, Worker] = field(default_factory=dict)

    def config(self) -> Path:
        # A new file each time, never rewritten: a worker starting beside this one may be reading the last.
        path = self.tmp_path / f"yunhui-{len(self.workers)}-{time.monotonic_ns()}.toml"
        path.write_text(
            f'[database]\nurl = "{self.database_url}"\n'
            '[server]\nhost = "127.0.0.1"\ntls_port = 0\n'
            '[security]\nsecret_key = "cluster-test-secret-key-0123456789abcdef"\n'
            "[backup]\nenabled = false\n"
            "[monitor]\nmedia = false\n"
            f'[workers]\nredis_url = "{self.redis.url}"\ncount = 2\nheartbeat_seconds = 0.3\n'
            "worker_ttl_seconds = 1.5\nlease_ttl_seconds = 2.5\nleader_check_seconds = 0.5\n" + self.extra
        )
        return path

    async def start(self, worker_id: int) -> Worker:
        # A worker binds a fixed port (nginx's upstream): a port picked free may be taken before it binds.
        for attempt in range(3):
            try:
                return await self._start(worker_id)
            except PortTaken:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _start(self, worker_id: int) -> Worker:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHUI_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "yunhui", "--config", str(self.config()), "serve",
            "--worker", str(worker_id), "--port", str(port),
            cwd=self.tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        worker = Worker(worker_id, f"http://127.0.0.1:{port}", process)
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    output = "".join(worker.output)
                    await process.wait()
                    if "address already in use" in output:
                        raise PortTaken(output)
                    raise AssertionError(f"worker {worker_id} exited early:\n{output}")
                worker.output.append(line)
                if line.startswith("Listening on http://"):
                    break
        worker._reader = asyncio.create_task(_drain(process.stdout, worker.output))
        self.workers[worker_id] = worker
        return worker

    async def close(self) -> None:
        for worker in self.workers.values():
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.stop(signal.SIGKILL)


async def _drain(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, redis_server: RedisServer) -> AsyncIterator[Cluster]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    made = Cluster(tmp_path, pg_url, redis_server)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


T = TypeVar("T")


async def wait_until(condition: Callable[[], Awaitable[T]], within: float = 20.0, every: float = 0.1) -> T:
    """Poll an observable condition (an async callable returning a truthy value) within a deadline."""
    async with asyncio.timeout(within):
        while True:
            value = await condition()
            if value:
                return value
            await asyncio.sleep(every)


@dataclass
class Nginx:
    url: str
    process: asyncio.subprocess.Process


def nginx_config(tmp: Path, port: int, workers: dict[int, str], entry: int | None) -> str:
    """deploy/nginx-cluster.conf's routing on loopback: /w/k/ to worker k, the rest to ``entry`` (one
    worker, so a test knows where a client enters) or round robin over all (None)."""
    hosts = {k: url.removeprefix("http://") for k, url in workers.items()}
    any_servers = "".join(f"server {hosts[k]};" for k in ([entry] if entry is not None else sorted(hosts)))
    upstreams = "".join(f"upstream yunhui_w{k} {{ server {host}; }}\n" for k, host in hosts.items())
    mapping = "".join(f"{k} yunhui_w{k}; " for k in hosts)
    proxy = (
        "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;"
        " proxy_set_header Connection $yunhui_connection; proxy_set_header Host $http_host;"
        " proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_read_timeout 120s;"
    )
    temp = " ".join(
        f"{kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
user root;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/access.log;
    {temp}
    upstream yunhui_any {{ {any_servers} }}
    {upstreams}
    map $yunhui_wid $yunhui_worker {{ {mapping} default yunhui_any; }}
    map $http_upgrade $yunhui_connection {{ default upgrade; "" ""; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 100m;
        location ~ ^(/w/[0-9]+)?/internal/ {{ return 404; }}
        location ~ ^/w/(?<yunhui_wid>[0-9]+)(?<yunhui_rest>/.*)$ {{
            proxy_pass http://$yunhui_worker$yunhui_rest$is_args$args; {proxy}
            proxy_set_header X-Forwarded-Prefix /w/$yunhui_wid;
        }}
        location / {{ proxy_pass http://yunhui_any; {proxy} }}
    }}
}}
"""


async def start_nginx(tmp_path: Path, workers: dict[int, Worker], entry: int | None = None) -> Nginx:
    binary = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if binary is None:
        pytest.skip("nginx is not installed (Debian nginx, in TEST_DEBS)")
    tmp = tmp_path / "nginx"
    tmp.mkdir(exist_ok=True)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_config(tmp, port, {k: w.url for k, w in workers.items()}, entry))
    process = await asyncio.create_subprocess_exec(
        binary,
        "-p",
        str(tmp),
        "-c",
        str(conf),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            if process.returncode is not None:
                assert process.stderr is not None
                raise AssertionError(f"nginx exited: {(await process.stderr.read()).decode()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
    return Nginx(url, process)


async def stop_nginx(nginx: Nginx) -> None:
    if nginx.process.returncode is None:
        nginx.process.terminate()
    await asyncio.wait_for(nginx.process.wait(), 10)
