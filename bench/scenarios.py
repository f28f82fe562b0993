"""The scenarios, run against both SFUs in one run, interleaved, and what each run's numbers mean.

fan-out      1 publisher (720p H.264 2 Mb/s + Opus) -> K subscribers, K stepped up until a step loses packets
meeting      4 publishers x 12 subscribers, everyone receiving all four
join-storm   50 subscribers joining one publisher at 10 per second
soak         1 publisher -> 4 subscribers, RTP numbering starting just before both wraps, video 10x faster
             until its sequence number has wrapped twice (bench/soak.py); once per run, not per repeat

Every run starts a fresh SFU process pinned to CPU 0 and a fresh load generator pinned to CPU 1. Repeats
alternate which SFU goes first at each step (A B, B A, ...) so slow drifts of a shared machine hit both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import netns
from bench.delivery import LOSS_TOLERANCE, Delivery
from bench.load_spec import LoadSpec
from bench.servers import SfuServer
from bench.soak import Soak
from bench.stats import percentile

log = logging.getLogger(__name__)

SFUS = ("janus", "yunhui")
SCENARIOS = ("fanout", "meeting", "join-storm", "soak")
LOADGEN_CPU_LIMIT_PCT = 80.0
LATE_MS = 400.0
SATURATED_PCT = 95.0  # of its core: said next to a loss, as the likely cause (not a criterion itself)
SFU_CPU, LOADGEN_CPU = 0, 1


@dataclass(frozen=True)
class Step:
    scenario: str
    publishers: int
    subscribers: int
    join_rate: float
    warmup_s: float
    window_s: float
    soak: Soak | None = None


@dataclass(frozen=True)
class Plan:
    scenarios: tuple[str, ...]
    repeats: int
    fanout_ladder: tuple[int, ...]
    meeting: tuple[int, int]  # publishers, subscribers
    storm_subscribers: int
    warmup_s: float
    window_s: float
    join_rate: float = 10.0
    soak: Soak = field(default_factory=Soak.full)

    @classmethod
    def full(cls, scenarios: tuple[str, ...], repeats: int) -> Plan:
        return cls(scenarios, repeats, (10, 25, 50, 80, 120, 160, 200), (4, 12), 50, 4.0, 15.0, 15.0)

    @classmethod
    def quick(cls, scenarios: tuple[str, ...], repeats: int) -> Plan:
        return cls(scenarios, repeats, (2,), (2, 2), 5, 1.0, 2.0, 10.0, Soak.quick())

    def steps(self, scenario: str) -> list[Step]:
        if scenario == "fanout":
            return [
                Step("fanout", 1, k, self.join_rate, self.warmup_s, self.window_s) for k in self.fanout_ladder
            ]
        if scenario == "meeting":
            pubs, subs = self.meeting
            return [Step("meeting", pubs, subs, self.join_rate, self.warmup_s, self.window_s)]
        if scenario == "join-storm":
            # The rate (10/s) whatever the fan-out join rate; the window only has to exist.
            return [Step("join-storm", 1, self.storm_subscribers, 10.0, 1.0, min(self.window_s, 5.0))]
        if scenario == "soak":
            # The window is as long as the video takes to send soak.video_packets; window_s is a minimum.
            soak = self.soak
            return [Step("soak", 1, soak.subscribers, self.join_rate, self.warmup_s, 1.0, soak)]
        raise ValueError(f"scenario: unknown {scenario!r}")


@dataclass
class Run:
    """One SFU x one step x one repeat, reduced to the numbers the report uses (raw lists dropped)."""

    sfu: str
    scenario: str
    repeat: int
    publishers: int
    subscribers: int
    ready: int = 0
    forwarded_pps: float = 0.0
    expected_pps: float = 0.0
    lost: int = 0  # expected minus received, summed over subscribers (bench/delivery.py)
    received: list[int] = field(default_factory=list)  # per subscriber in join order, in the window
    expected: list[int] = field(default_factory=list)
    gaps: list[int] = field(default_factory=list)
    window_s: float = 0.0
    video_sent: int = 0
    seq_wraps: int | None = None
    video_speed: float = 1.0
    seq_start: int | None = None
    timestamp_start: int | None = None
    min_wraps: int = 0
    sfu_cpu_pct: float = 0.0
    sfu_user_pct: float = 0.0
    sfu_system_pct: float = 0.0
    cpu_s_per_mpkt: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    first_keyframe_p50_ms: float | None = None
    first_keyframe_p95_ms: float | None = None
    first_rtp_p50_ms: float | None = None
    memory_per_peer_kib: float | None = None
    sfu_rss_mib: float = 0.0
    sfu_threads: int = 0
    loadgen_cpu_pct: float = 0.0
    loadgen_drops: int = 0
    machine_busy_pct: float = 0.0
    keyframe_requests: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def invalid_because(self) -> list[str]:
        """Why the load generator may not have kept up (empty: the step measured the SFU)."""
        out = []
        if self.loadgen_cpu_pct >= LOADGEN_CPU_LIMIT_PCT:
            out.append(
                f"load generator at {self.loadgen_cpu_pct:.0f}% of its core "
                f"(limit {LOADGEN_CPU_LIMIT_PCT:.0f}%)"
            )
        if self.loadgen_drops:
            out.append(f"load generator dropped {self.loadgen_drops:,} datagrams at its sockets")
        if self.ready == 0:
            out.append(f"no subscriber of {self.subscribers} got a keyframe")
        return out

    @property
    def lossy_because(self) -> list[str]:
        """Why the SFU did not deliver everything in time (empty: loss-free)."""
        out = []
        if self.ready < self.subscribers:
            out.append(f"{self.subscribers - self.ready} of {self.subscribers} subscribers got no keyframe")
        if self.expected:
            out += Delivery(tuple(self.received), tuple(self.expected), tuple(self.gaps)).problems()
        elif self.lost or self.forwarded_pps < (1 - LOSS_TOLERANCE) * self.expected_pps:
            # A result from before per-subscriber counts (or a load generator that never measured).
            out.append(f"forwarded {self.forwarded_pps:,.0f} of {self.expected_pps:,.0f} pkt/s expected")
        # An SFU that queues instead of dropping delivers everything, too late to be played: a frame later
        # than ITU-T G.114's 400 ms for interactive use counts as lost.
        if self.latency_p99_ms is not None and self.latency_p99_ms > LATE_MS:
            out.append(f"p99 latency {self.latency_p99_ms:.0f} ms > {LATE_MS:.0f} ms")
        if (self.seq_wraps or 0) < self.min_wraps:
            out.append(
                f"{self.seq_wraps or 0} sequence wraps in the window (the soak needs {self.min_wraps})"
            )
        out += [f"error: {e}" for e in self.errors]
        return out

    @property
    def reasons(self) -> list[str]:
        """Every reason this step is not clean, and the SFU's CPU when it was saturated (empty: clean)."""
        out = [*self.invalid_because, *self.lossy_because]
        if out and self.sfu_cpu_pct >= SATURATED_PCT:
            out.append(f"SFU CPU saturated ({self.sfu_cpu_pct:.0f}% of its core)")
        return out

    @property
    def valid(self) -> bool:
        """The load generator kept up: below the CPU limit and no datagram dropped at its sockets."""
        return not self.invalid_because

    @property
    def loss_free(self) -> bool:
        return not self.lossy_because

    @classmethod
    def from_result(cls, sfu: str, step: Step, repeat: int, r: dict[str, Any]) -> Run:
        window = r["window_s"] or 1.0
        packets = r["forwarded_pps"] * window
        run = cls(sfu, step.scenario, repeat, step.publishers, step.subscribers)
        run.ready = r["subscribers_ready"]
        run.forwarded_pps = r["forwarded_pps"]
        run.expected_pps = r["expected_pps"]
        run.lost = r["lost"]
        run.received, run.expected, run.gaps = r["received"], r["expected"], r["gaps"]
        run.window_s, run.video_sent, run.seq_wraps = r["window_s"], r["video_sent"], r["seq_wraps"]
        if step.soak is not None:
            soak = step.soak
            run.video_speed, run.min_wraps = soak.video_speed, soak.min_wraps
            run.seq_start, run.timestamp_start = soak.seq_start, soak.timestamp_start
        run.sfu_cpu_pct = 100 * r["sfu_cpu_s"] / window
        run.sfu_user_pct = 100 * r["sfu_user_s"] / window
        run.sfu_system_pct = 100 * r["sfu_system_s"] / window
        run.cpu_s_per_mpkt = r["sfu_cpu_s"] / packets * 1e6 if packets else None
        run.latency_p50_ms = percentile(r["latency_ms"], 50)
        run.latency_p99_ms = percentile(r["latency_ms"], 99)
        run.first_keyframe_p50_ms = percentile(r["first_keyframe_ms"], 50)
        run.first_keyframe_p95_ms = percentile(r["first_keyframe_ms"], 95)
        run.first_rtp_p50_ms = percentile(r["first_rtp_ms"], 50)
        peers = step.publishers + run.ready
        run.memory_per_peer_kib = (r["sfu_rss"] - r["sfu_rss_idle"]) / peers / 1024 if peers else None
        run.sfu_rss_mib = r["sfu_rss"] / 2**20
        run.sfu_threads = r["sfu_threads"]
        run.loadgen_cpu_pct = r["loadgen_cpu_pct"]
        run.loadgen_drops = r["loadgen_drops"]
        run.machine_busy_pct = r["machine_busy_pct"]
        run.keyframe_requests = r["keyframe_requests"]
        run.errors = r["errors"][:5]
        return run

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Environment:
    workdir: Path
    video: Path
    audio: Path
    ice_interface: str = netns.INTERFACE
    ice_address: str = netns.ADDRESS
    pin: bool = True


async def run_step(env: Environment, sfu: str, step: Step, repeat: int) -> Run:
    """Start the SFU, run the load generator against it in its own process, stop the SFU."""
    tag = f"{step.scenario}-{sfu}-p{step.publishers}-k{step.subscribers}-r{repeat}"
    workdir = env.workdir / "runs" / tag
    server = await SfuServer.start(
        sfu,
        workdir=workdir,
        cpu=SFU_CPU if env.pin else None,
        ice_interface=env.ice_interface,
        ice_address=env.ice_address,
    )
    try:
        spec = LoadSpec(
            backend=sfu,
            url=server.url,
            sfu_pid=server.pid,
            video=str(env.video),
            audio=str(env.audio),
            ice_address=env.ice_address,
            publishers=step.publishers,
            subscribers=step.subscribers,
            workers=1 if step.subscribers < 60 else 2,
            join_rate=step.join_rate,
            warmup_s=step.warmup_s,
            window_s=step.window_s,
            ready_timeout_s=max(20.0, step.subscribers / step.join_rate + 15),
            cpus=(LOADGEN_CPU,) if env.pin else (),
            **soak_spec(step.soak),
        )
        spec_path, result_path = workdir / "spec.json", workdir / "result.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.loadgen",
            str(spec_path),
            str(result_path),
            stdout=(workdir / "loadgen.log").open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        timeout = spec.ready_timeout_s + step.warmup_s + _longest_window_s(step) + 90
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            code = -9
        if code != 0 or not result_path.exists():
            failed = Run(sfu, step.scenario, repeat, step.publishers, step.subscribers)
            failed.errors = [f"load generator exited with {code}; see {workdir / 'loadgen.log'}"]
            return failed
        return Run.from_result(sfu, step, repeat, json.loads(result_path.read_text()))
    finally:
        await server.close()


def soak_spec(soak: Soak | None) -> dict[str, Any]:
    if soak is None:
        return {}
    return {
        "video_speed": soak.video_speed,
        "window_video_packets": soak.video_packets,
        "seq_start": soak.seq_start,
        "timestamp_start": soak.timestamp_start,
    }


def _longest_window_s(step: Step) -> float:
    if step.soak is None:
        return step.window_s
    # The video sends ~234 packets/s at 30 fps; the window ends at soak.video_packets of them.
    return max(step.window_s, 2 * step.soak.video_packets / (234 * step.soak.video_speed))


async def run_plan(
    plan: Plan, env: Environment, sfus: tuple[str, ...] = SFUS, report: Callable[[Run], None] = lambda r: None
) -> list[Run]:
    runs: list[Run] = []
    for repeat in range(plan.repeats):
        order = sfus if repeat % 2 == 0 else tuple(reversed(sfus))
        if "fanout" in plan.scenarios:
            baseline = await run_baseline(env, repeat, seconds=min(plan.window_s, 10.0))
            runs.append(baseline)
            report(baseline)
        for scenario in plan.scenarios:
            if scenario == "soak" and repeat > 0:
                continue  # a check of hours of numbering on both SFUs, not a figure to take a median of
            stopped: set[str] = set()
            for step in plan.steps(scenario):
                for sfu in order:
                    if sfu in stopped:
                        continue
                    run = await run_step(env, sfu, step, repeat)
                    runs.append(run)
                    report(run)
                    # Up the ladder only while the previous step was clean: the first loss ends it.
                    if not (run.valid and run.loss_free):
                        stopped.add(sfu)
                if stopped.issuperset(order):
                    break
    return runs


async def run_baseline(env: Environment, repeat: int, *, seconds: float) -> Run:
    """Publisher straight to subscriber (bench/baseline.py): the clients' share of the one-way latency."""
    run = Run("direct", "baseline", repeat, 1, 1)
    result_path = env.workdir / "runs" / f"baseline-r{repeat}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "bench.baseline", str(env.video), str(env.audio), env.ice_address]
    command += [f"{seconds:g}", str(result_path), *([str(LOADGEN_CPU)] if env.pin else [])]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    try:
        code = await asyncio.wait_for(process.wait(), seconds + 60)
    except TimeoutError:
        process.kill()
        code = await process.wait()
    if code != 0 or not result_path.exists():
        run.errors = [f"baseline exited with {code}"]
        return run
    result = json.loads(result_path.read_text())
    run.ready = 1
    run.latency_p50_ms, run.latency_p99_ms = result["p50"], result["p99"]
    return run


def save(runs: list[Run], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in runs))


def load(path: Path) -> list[Run]:
    runs = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        runs.append(Run(**data))
    return runs
