"""``python -m bench``: run the scenarios on Janus and Yunhui, interleaved, and write docs/benchmarks.md.

    python -m bench                              # everything, 3 repeats (about 25-35 minutes on 2 cores)
    python -m bench --quick                      # tiny steps, 1 repeat: checks the bench works (< 1 min)
    python -m bench --scenario fanout --repeats 5
    python -m bench --scenario soak              # both RTP wraps on both SFUs (about 2.5 minutes)
    python -m bench --report-only var/bench/results.jsonl

The outer process installs what is missing (Janus from Debian, the ``bench`` extra from PyPI), creates the
network namespace, re-runs itself inside it, renders the report and removes the namespace again.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.metadata
import importlib.util
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import (
    constrained_uplink,
    hotspots,
    janus,
    joins,
    large_meeting,
    netns,
    recording,
    report,
    sections,
    workers,
)
from bench.media import ensure_media
from bench.scenarios import (
    LOADGEN_CPU_LIMIT_PCT,
    SCENARIOS,
    SFUS,
    Environment,
    Plan,
    Run,
    load,
    run_plan,
    save,
)
from bench.sip import main as sip_main
from bench.sip import wanted as sip_wanted
from bench.sip_load import main as sip_load_main
from bench.sip_load import wanted as sip_load_wanted
from sfu import fanout

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parent.parent
INSIDE_FLAG = "--inside-netns"
JOINS, HOTSPOTS, JOIN_HOTSPOTS = "joins.json", "hotspots.md", "join-hotspots.md"
MEETING_HOTSPOTS = "meeting-hotspots.md"


def _ladder(text: str) -> list[int]:
    try:
        steps = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not steps or min(steps) < 1 or steps != sorted(steps):
        raise argparse.ArgumentTypeError("steps must be positive and increasing")
    return steps


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smallest steps, 1 repeat: a smoke run")
    parser.add_argument(
        "--scenario", action="append", choices=[*SCENARIOS, "joins"], help="repeatable; default: all"
    )
    parser.add_argument("--sfu", action="append", choices=SFUS, help="repeatable; default: both")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--ladder", type=_ladder, help="fan-out subscriber steps, e.g. 10,40,80,140")
    parser.add_argument("--window", type=float, help="measuring window per step in s (default 15; quick 2)")
    parser.add_argument("--warmup", type=float, help="s between the last keyframe and the window (default 4)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the SFU and the load generator to cores"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="fail instead of installing Janus / the extra"
    )
    parser.add_argument("--profile", action="store_true", help="also sample Yunhui's SFU with py-spy")
    parser.add_argument("--profile-subscribers", type=int, default=None, help="fan-out K while profiling")
    parser.add_argument("--report-only", type=Path, help="render the report from a results.jsonl")
    parser.add_argument(INSIDE_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats: must be at least 1")
    return args


# ------------------------------------------------------------------------------------------------ setup
def ensure_janus(allow_install: bool) -> None:
    if shutil.which("janus"):
        return
    if not allow_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("janus is not installed: apt-get install janus (Debian 12 ships Janus 1.1.2)")
    log.warning("installing janus with apt-get")
    subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "janus"], check=True)


def ensure_extra(allow_install: bool) -> None:
    """The bench's own PyPI needs (the ``bench`` extra: matplotlib for the plot)."""
    if importlib.util.find_spec("matplotlib") is not None:
        return
    if not allow_install:
        log.warning("matplotlib is missing: the report will have no plot (pip install -e '.[bench]')")
        return
    log.warning("installing the bench extra (matplotlib)")
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if (
        subprocess.run([*pip, "-e", f"{ROOT}[bench]"], check=False).returncode != 0
        or importlib.util.find_spec("matplotlib") is None
    ):
        subprocess.run([*pip, "matplotlib"], check=False)
    importlib.invalidate_caches()


def machine_lines() -> list[str]:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    os_name = "Linux"
    os_release = Path("/etc/os-release")
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    return [
        f"machine: {model}, {os.cpu_count()} CPUs, {int(memory) / 2**20:.0f} GiB RAM, {os_name}, "
        f"kernel {platform.release()}",
        "shared machine: other workloads may run; CPU is counted per process from /proc, and "
        "*machine busy %* shows the noise",
    ]


def version_lines() -> list[str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "sfu"], capture_output=True, text=True, check=False
    ).stdout.strip()
    libs = ", ".join(
        f"{n} {version(n)}" for n in ("aiortc", "aioice", "pylibsrtp", "av", "aiohttp", "uvloop")
    )
    copies = "in C (sfu/_fanout.c)" if fanout.NATIVE else "in pure Python (sfu._fanout not built)"
    return [
        f"Janus: {janus.janus_version()} (Debian package, stock threading, config written by bench/janus.py)",
        f"Yunhui: commit {commit or 'unknown'}{' with uncommitted changes in sfu/' if dirty else ''}, "
        f"Python {platform.python_version()}, {libs}; per-copy forwarding {copies}",
    ]


METHOD = Path(__file__).with_name("method.md")


# ------------------------------------------------------------------------------------------------ run
def command_line(args: argparse.Namespace) -> str:
    parts = ["python -m bench"]
    if args.quick:
        parts.append("--quick")
    for s in args.scenario or []:
        parts += ["--scenario", s]
    if args.repeats != (1 if args.quick else 3):
        parts += ["--repeats", str(args.repeats)]
    if args.ladder:
        parts += ["--ladder", ",".join(map(str, args.ladder))]
    for flag, value in (("--window", args.window), ("--warmup", args.warmup)):
        if value is not None:
            parts += [flag, f"{value:g}"]
    if args.profile:
        parts.append("--profile")
    return " ".join(parts)


async def run_inside(args: argparse.Namespace) -> int:
    scenarios = tuple(s for s in (args.scenario or [*SCENARIOS, "joins"]) if s in SCENARIOS)
    plan = (Plan.quick if args.quick else Plan.full)(scenarios, args.repeats)
    if args.ladder:
        plan = dataclasses.replace(plan, fanout_ladder=tuple(args.ladder))
    if args.window is not None:
        plan = dataclasses.replace(plan, window_s=args.window)
    if args.warmup is not None:
        plan = dataclasses.replace(plan, warmup_s=args.warmup)
    video, audio = ensure_media(args.workdir / "media")
    env = Environment(args.workdir, video, audio, pin=not args.no_pin and (os.cpu_count() or 1) >= 2)
    started = time.time()

    def show(run: Run) -> None:
        ratios = " ".join(f"{r / e:.4f}" for r, e in zip(run.received, run.expected, strict=True) if e)
        log.warning(
            "%-10s %-6s r%d %dx%-3d fwd %7.0f pkt/s lost %5d%s cpu %5.1f%% %s lat p50 %s p99 %s "
            "loadgen %4.1f%%%s",
            run.scenario,
            run.sfu,
            run.repeat,
            run.publishers,
            run.subscribers,
            run.forwarded_pps,
            run.lost,
            f" (received ÷ expected {ratios})" if run.scenario == "soak" else "",
            run.sfu_cpu_pct,
            f"{run.cpu_s_per_mpkt:5.1f} s/Mpkt" if run.cpu_s_per_mpkt else "",
            run.latency_p50_ms,
            run.latency_p99_ms,
            run.loadgen_cpu_pct,
            "" if run.valid and run.loss_free else f"  (not clean: {'; '.join(run.reasons)})",
        )

    runs = await run_plan(plan, env, tuple(args.sfu or SFUS), show)
    results = args.workdir / "results.jsonl"
    save(runs, results)
    if args.profile:
        k = args.profile_subscribers or (4 if args.quick else 30)
        seconds = 5 if args.quick else 20
        text = await hotspots.profile_yunhui(env, subscribers=k, seconds=seconds)
        (args.workdir / HOTSPOTS).write_text(f"{text}\n\nMeasured {now_text()}.\n")
        if args.scenario is None or "meeting" in args.scenario:
            pubs, subs = (2, 2) if args.quick else (4, 12)
            text = await hotspots.profile_yunhui(env, subscribers=subs, seconds=seconds, publishers=pubs)
            (args.workdir / MEETING_HOTSPOTS).write_text(f"{text}\n\nMeasured {now_text()}.\n")
    if args.scenario is None or "joins" in args.scenario:
        collapsed = args.workdir / "joins" / "server.collapsed.txt"
        collapsed.unlink(missing_ok=True)
        join_result = await joins.run(
            200 if not args.quick else 20,
            10.0 if not args.quick else 2.0,
            workdir=args.workdir / "joins",
            cpu=0 if env.pin else None,
            profile=collapsed if args.profile else None,
        )
        log.warning("joins: %s", join_result)
        joins.save(join_result, args.workdir / JOINS, measured_at=now_text())
        if collapsed.exists():
            text = hotspots.render(
                hotspots.summarise_collapsed(collapsed.read_text()),
                title="## Hotspots of the meeting server during the join storm",
                tool="py-spy (sampling, 250 Hz)",
                context=f"{join_result.joins} guests joining within {join_result.window_s:.0f} s",
            )
            (args.workdir / JOIN_HOTSPOTS).write_text(f"{text}\n\nMeasured {now_text()}.\n")
    write_report(args, runs, time.time() - started)
    return 0 if any(r.forwarded_pps > 0 for r in runs) or not scenarios else 1


def now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def write_report(args: argparse.Namespace, runs: list[Run], elapsed: float) -> None:
    """The report of these runs, plus the latest join benchmark and profile found in the workdir."""
    plot_path = args.out.with_name(args.out.stem + "-cpu.png")
    has_plot = report.plot(runs, plot_path) if runs else False
    extra = [joins.section(*joins.load(args.workdir / JOINS)), ""]
    for name in (HOTSPOTS, MEETING_HOTSPOTS, JOIN_HOTSPOTS):
        if (args.workdir / name).exists():
            extra += [(args.workdir / name).read_text(), ""]
    # Sections that scenarios write on their own (recording, live, sip, ...) are not rerun here: kept.
    if args.out.exists():
        extra += sections.kept(args.out.read_text())
    text = report.render(
        runs,
        plot_name=plot_path.name if has_plot else None,
        machine=[
            *machine_lines(),
            f"run took {elapsed / 60:.1f} min, finished {now_text()}",
        ],
        versions=version_lines(),
        command=command_line(args),
        plan_text=METHOD.read_text().replace("{limit}", f"{LOADGEN_CPU_LIMIT_PCT:.0f}"),
        extra_sections=extra,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    log.warning("report written to %s", args.out)


def main(argv: list[str] | None = None) -> int:
    if sip_wanted(sys.argv[1:] if argv is None else argv):  # in-process SIP legs: no Janus, no namespace
        return sip_main(sys.argv[1:] if argv is None else argv)
    if sip_load_wanted(sys.argv[1:] if argv is None else argv):  # sipp against the app in this process (A18)
        return sip_load_main(sys.argv[1:] if argv is None else argv)
    if recording.wanted(sys.argv[1:] if argv is None else argv):  # needs no Janus and no namespace
        return recording.main(sys.argv[1:] if argv is None else argv)
    if workers.wanted(sys.argv[1:] if argv is None else argv):  # PostgreSQL, Redis, worker subprocesses
        return workers.main(sys.argv[1:] if argv is None else argv)
    if large_meeting.wanted(sys.argv[1:] if argv is None else argv):  # neither does this one
        return large_meeting.main(sys.argv[1:] if argv is None else argv)
    if constrained_uplink.wanted(sys.argv[1:] if argv is None else argv):  # its own namespace and browsers
        return constrained_uplink.main(sys.argv[1:] if argv is None else argv)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    if args.report_only:
        write_report(args, load(args.report_only), 0.0)
        return 0
    if args.inside_netns:
        return asyncio.run(run_inside(args))
    ensure_janus(not args.no_install)
    ensure_extra(not args.no_install)
    if not netns.available():
        raise SystemExit(
            "the bench needs root (a private network namespace; Janus cannot use loopback for ICE)"
        )
    created = not netns.exists()
    netns.create()
    try:
        command = netns.wrap(
            [sys.executable, "-m", "bench", *(sys.argv[1:] if argv is None else argv), INSIDE_FLAG]
        )
        log.warning("running: %s", shlex.join(command))
        return subprocess.run(command, cwd=ROOT, check=False).returncode
    finally:
        if created:
            netns.delete()
