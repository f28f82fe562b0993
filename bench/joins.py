"""The meeting server alone: N joins within 10 s on one process, median and p95 join time.

bench/meeting_server.py runs the meeting protocol on one process (pinned to the SFU's core). N python-socketio
clients connect at an even rate over the window, each as a guest (meeting number + passcode) over WebSocket;
a join's time runs from the start of ``connect()`` to the server's ``joined`` message, so it covers the
WebSocket handshake, admission (rooms.policy, an Attendance row in SQLite) and the participant list.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench import hotspots, procstat
from bench.meeting_server import PASSCODE
from bench.servers import free_port
from bench.stats import percentile

MEETING_NUMBER = "9000000001"


@dataclass(frozen=True)
class JoinResult:
    joins: int
    window_s: float
    succeeded: int
    median_ms: float | None
    p95_ms: float | None
    server_cpu_ms_per_join: float | None
    client_cpu_pct: float | None = None  # the clients' process; near 100 % means the clients limited the rate
    errors: tuple[str, ...] = ()


async def _join(url: str, name: str, results: list[float], errors: list[str]) -> socketio.AsyncClient:
    client: Any = socketio.AsyncClient(reconnection=False)
    joined = asyncio.get_running_loop().create_future()

    def on_joined(data: object) -> None:
        if not joined.done():
            joined.set_result(data)

    client.on("joined", on_joined)
    start = time.perf_counter()
    try:
        await client.connect(
            url,
            auth={"meeting_number": MEETING_NUMBER, "passcode": PASSCODE, "display_name": name},
            transports=["websocket"],
            wait_timeout=20,
        )
        await asyncio.wait_for(joined, 20)
        results.append((time.perf_counter() - start) * 1000)
    except (TimeoutError, socketio.exceptions.ConnectionError) as exc:
        errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return client


async def _wait_ready(url: str, process: subprocess.Popen[bytes], within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"meeting server exited with {process.returncode}")
            try:
                async with http.get(url + "/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("meeting server not ready")


def _spawn(port: int, workdir: Path, cpu: int | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench.meeting_server", "--port", str(port)]
    command += ["--workdir", str(workdir), "--meeting-number", MEETING_NUMBER]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "meeting_server.log").open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


async def run(
    joins: int, window_s: float, *, workdir: Path, cpu: int | None, profile: Path | None = None
) -> JoinResult:
    """The server on ``cpu`` (None: unpinned); the clients, in this process, on the other cores meanwhile.

    With ``profile``, py-spy samples the server during the storm into that collapsed-stack file.
    """
    port = free_port()
    process = _spawn(port, workdir, cpu)
    affinity = os.sched_getaffinity(0)
    if cpu is not None and len(affinity - {cpu}) > 0:
        os.sched_setaffinity(0, affinity - {cpu})
    url = f"http://127.0.0.1:{port}"
    clients: list[Any] = []
    try:
        await _wait_ready(url, process)
        results: list[float] = []
        errors: list[str] = []
        cpu_before = procstat.cpu_times(process.pid).total
        client_before = procstat.cpu_times(os.getpid()).total
        start = time.monotonic()
        py_spy = hotspots.py_spy_path() if profile is not None else None
        sampler = (
            asyncio.create_task(hotspots.record(py_spy, process.pid, window_s, profile))
            if py_spy is not None and profile is not None
            else None
        )
        tasks = []
        for n in range(joins):
            delay = start + n * window_s / joins - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_join(url, f"guest {n}", results, errors)))
        clients = list(await asyncio.gather(*tasks))
        if sampler is not None:
            await sampler
        cpu_used = procstat.cpu_times(process.pid).total - cpu_before
        client_pct = (
            100 * (procstat.cpu_times(os.getpid()).total - client_before) / (time.monotonic() - start)
        )
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
        os.sched_setaffinity(0, affinity)
    return JoinResult(
        joins=joins,
        window_s=window_s,
        succeeded=len(results),
        median_ms=percentile(results, 50),
        p95_ms=percentile(results, 95),
        server_cpu_ms_per_join=cpu_used * 1000 / len(results) if results else None,
        client_cpu_pct=client_pct,
        errors=tuple(errors[:5]),
    )


def save(result: JoinResult, path: Path, *, measured_at: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"measured_at": measured_at, **asdict(result)}))


def load(path: Path) -> tuple[JoinResult | None, str]:
    """The last saved result and when it was measured, or (None, "")."""
    if not path.exists():
        return None, ""
    data = json.loads(path.read_text())
    measured_at = data.pop("measured_at", "")
    data["errors"] = tuple(data.get("errors", ()))
    return JoinResult(**data), measured_at


def section(result: JoinResult | None, measured_at: str = "") -> str:
    lines = ["## Meeting server: joins", ""]
    if result is None:
        lines.append("Not measured yet (`python -m bench --scenario joins` runs it).")
        return "\n".join(lines)
    lines += [
        "One process (bench/meeting_server.py: Socket.IO + Conference + SQLite + SFU, pinned to one core); "
        "guests join with meeting number + passcode over WebSocket at an even rate; join time = "
        "`connect()` → `joined`.",
        "",
        "| joins | within | succeeded | join median | join p95 | server CPU per join | clients' CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result.joins} | {result.window_s:.0f} s | {result.succeeded} | {_ms(result.median_ms)} | "
        f"{_ms(result.p95_ms)} | {_ms(result.server_cpu_ms_per_join)} | "
        f"{'–' if result.client_cpu_pct is None else f'{result.client_cpu_pct:.0f} %'} |",
    ]
    if result.errors:
        lines += ["", "First errors: " + "; ".join(f"`{e}`" for e in result.errors)]
    if measured_at:
        lines += ["", f"Measured {measured_at}."]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"
