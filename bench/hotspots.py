"""Where Yunhui's SFU spends its CPU while forwarding: py-spy samples of a fan-out step, summarised.

``python -m bench --profile [--profile-subscribers K]`` starts the Yunhui SFU, loads it with 1 publisher -> K
subscribers and samples it with py-spy (``record --format raw``: collapsed stacks, no overhead inside the
process). Without py-spy the SFU runs under cProfile instead (slower, and it skews towards small functions).
The summary (self time by function, inclusive time by function, self time by package) goes into the report.
"""

from __future__ import annotations

import asyncio
import json
import pstats
import re
import shutil
import signal
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from bench.load_spec import LoadSpec
from bench.scenarios import LOADGEN_CPU, SFU_CPU, Environment
from bench.servers import SfuServer

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
TOP = 15
FORWARDING_TITLE = "## Hotspots of Yunhui's forwarding path"
MEETING_TITLE = "## Hotspots of Yunhui's forwarding path in a meeting"
# (self samples by function, inclusive samples by function, self samples by package, total samples)
Summary = tuple[Counter[str], Counter[str], Counter[str], int]


def package_of(path: str) -> str:
    """The top-level package of a source file: py-spy names files relative to sys.path ("sfu/rtp.py")."""
    match = re.search(r"site-packages/([^/]+)", path)
    if match:
        return match.group(1).removesuffix(".py")
    if not path.startswith(("/", "<")) and "/" in path:
        return path.split("/", 1)[0]
    return "python stdlib / other"


def _short(frame: str) -> tuple[str, str]:
    """(function with a short file name, package) of one collapsed-stack frame."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), "other"
    path = match.group("file")
    tail = "/".join(path.split("/")[-2:])
    return f"{match.group('func')} ({tail})", package_of(path)


def summarise_collapsed(text: str) -> Summary:
    """(self samples by function, inclusive samples by function, self samples by package, total samples)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        # py-spy prefixes the thread ("process 12:..."/"thread (0x..)"); those frames have no file.
        frames = [f for f in frames if f[1] != "other"] or frames
        if not frames:
            continue
        total += count
        name, package = frames[-1]
        own[name] += count
        packages[package] += count
        for seen in {f[0] for f in frames}:
            inclusive[seen] += count
    return own, inclusive, packages, total


def summarise_pstats(path: Path) -> Summary:
    stats = pstats.Stats(str(path))
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    for (file, _, func), (_, _, tottime, cumtime, _) in raw.items():
        name = f"{func} ({'/'.join(file.split('/')[-2:])})"
        own[name] += int(tottime * 1e6)
        inclusive[name] = max(inclusive[name], int(cumtime * 1e6))
        packages[package_of(file)] += int(tottime * 1e6)
    return own, inclusive, packages, sum(own.values())


def py_spy_path() -> str | None:
    # pip installs py-spy next to the interpreter, which need not be on PATH.
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(py_spy: str, pid: int, seconds: float, output: Path) -> None:
    """Sample a process with py-spy for seconds into a collapsed-stack file."""
    sampler = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "250",
        "--format", "raw", "--nonblocking", "--output", str(output),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await sampler.wait()


def render(summary: Summary, *, title: str, tool: str, context: str) -> str:
    own, inclusive, packages, total = summary
    if not total:
        return f"{title}\n\nNo samples were taken."

    def share(n: int) -> str:
        return f"{100 * n / total:.1f} %"

    lines = [
        title,
        "",
        f"{tool}, {context}, "
        f"{total:,} {'samples' if tool.startswith('py-spy') else 'µs'}. Shares are of the process's "
        "busy time (idle waiting excluded by py-spy; cProfile counts the event loop's wait as `run`). "
        "Time spent in C (uvloop's socket reads and callback dispatch, libsrtp, the copy loop of "
        "sfu/_fanout.c with its sendto calls) is charged to the "
        "Python frame that called it: `Runner.run` is the event loop itself.",
        "",
        "| package | self |",
        "|---|---:|",
        *[f"| {name} | {share(n)} |" for name, n in packages.most_common()],
        "",
        "| function (self time) | self |",
        "|---|---:|",
        *[f"| `{name}` | {share(n)} |" for name, n in own.most_common(TOP)],
        "",
        "| function (inclusive time) | inclusive |",
        "|---|---:|",
        *[f"| `{name}` | {share(n)} |" for name, n in inclusive.most_common(TOP)],
    ]
    return "\n".join(lines)


async def profile_yunhui(env: Environment, *, subscribers: int, seconds: float, publishers: int = 1) -> str:
    """Run one fan-out (or, with publishers > 1, meeting) step on Yunhui under a profiler; the markdown."""
    workdir = env.workdir / "profile"
    py_spy = py_spy_path()
    profile_path = workdir / "yunhui.pstats"
    server = SfuServer.spawn(
        "yunhui",
        workdir=workdir,
        cpu=SFU_CPU if env.pin else None,
        ice_interface=env.ice_interface,
        ice_address=env.ice_address,
        extra_args=[] if py_spy else ["--profile", str(profile_path)],
    )
    try:
        await server.ready()
        join_s = subscribers / 15
        spec = LoadSpec(
            backend="yunhui",
            url=server.url,
            sfu_pid=server.pid,
            video=str(env.video),
            audio=str(env.audio),
            ice_address=env.ice_address,
            publishers=publishers,
            subscribers=subscribers,
            join_rate=15,
            warmup_s=2,
            window_s=seconds + 4,
            cpus=(LOADGEN_CPU,) if env.pin else (),
        )
        spec_path, result_path = workdir / "spec.json", workdir / "result.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        loadgen = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", str(spec_path), str(result_path)
        )
        collapsed = workdir / "yunhui.collapsed.txt"
        if py_spy:
            await asyncio.sleep(join_s + 4)
            await record(py_spy, server.pid, seconds, collapsed)
        await loadgen.wait()
    finally:
        if not py_spy and server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)  # the server writes its cProfile stats on SIGTERM
        await server.close()
    pps = json.loads(result_path.read_text())["forwarded_pps"] if result_path.exists() else 0.0
    if py_spy and collapsed.exists():
        summary = summarise_collapsed(collapsed.read_text())
        tool = "py-spy (sampling, 250 Hz)"
    elif profile_path.exists():
        summary = summarise_pstats(profile_path)
        tool = "cProfile (deterministic; inflates small functions)"
    else:
        return f"{FORWARDING_TITLE}\n\nThe profiler produced nothing."
    if publishers == 1:
        context = f"fan-out 1 publisher → {subscribers} subscribers ({pps:,.0f} forwarded pkt/s)"
        return render(summary, title=FORWARDING_TITLE, tool=tool, context=context)
    context = f"meeting {publishers} publishers × {subscribers} subscribers ({pps:,.0f} forwarded pkt/s)"
    return render(summary, title=MEETING_TITLE, tool=tool, context=context)
