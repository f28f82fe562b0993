"""The ``constrained-uplink`` scenario: a Chromium publisher behind a 1 Mbit/s uplink (tbf in a network
namespace), with transport-cc against REMB-only. Runs bench/constrained_uplink_probe.py under pytest (it
uses the browser tests' fixtures), several times, and writes the medians into docs/benchmarks.md.

    python -m bench --scenario constrained-uplink --runs 3 --out docs/benchmarks.md   (root: a namespace)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import sections
from bench.recording import load_line

ROOT = Path(__file__).resolve().parent.parent


def measure(runs: int, window: float) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-uplink-") as scratch:
        out = Path(scratch) / "results.jsonl"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_UPLINK_OUT": str(out)}
        env["BENCH_UPLINK_WINDOW"] = f"{window:g}"
        for _ in range(runs):
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "bench/constrained_uplink_probe.py",
                 "-p", "tests.conftest", "-p", "tests.browser.conftest", "-p", "no:cacheprovider"],
                cwd=ROOT, env=env, check=False, timeout=600,
            )  # fmt: skip
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def lines(results: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    def med(tcc: bool, key: str) -> str:
        values = [r[key] for r in results if r["transport_cc"] is tcc and r[key] is not None]
        if not values:
            return "—"
        value = statistics.median(values)
        return f"{100 * value:.2f} %" if key in ("loss", "link_loss") else f"{value:.1f}"

    counts = {tcc: sum(1 for r in results if r["transport_cc"] is tcc) for tcc in (True, False)}
    command = f"python -m bench --scenario constrained-uplink --runs {args.runs} --out docs/benchmarks.md"
    rows = [
        ("time to a stable rate (s): the estimate within 0.6–1.1 Mbit/s for 3 s", "stable_after_s"),
        ("send-side estimate at the end (kbit/s)", "estimate_last_kbit"),
        ("loss at the link: packets the tbf dropped / offered, over the stay", "link_loss"),
        ("packets the tbf dropped, over the stay", "link_dropped"),
        ("video loss in the SFU's receiver reports (after NACK repair), over the stay", "loss"),
        ("round-trip time p50 (ms), from 5 s on", "rtt_p50_ms"),
        ("round-trip time p95 (ms), from 5 s on", "rtt_p95_ms"),
    ]
    return [
        "## Constrained uplink (issue #15)",
        "",
        f"`{command}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
        f"Python {platform.python_version()}; {load_line()} when it ended (a shared machine: other work "
        "ran).",
        "",
        "A Chromium publisher (camera in three simulcast layers, watched large by another browser so its top "
        "layer is wanted) joins through a veth network namespace whose uplink is shaped to 1 Mbit/s with tbf "
        "with a shallow queue (latency 20 ms, burst 4 kB: a sender that overshoots the link loses packets "
        "instead of queueing them) before it joins; sampled every 250 ms for "
        f"{args.window:g} s from its getStats "
        "(bench/constrained_uplink_probe.py). Once with transport-cc feedback from the SFU, once REMB-only "
        f"(`sfu.transport_cc = false`). Median of {counts[True]} and {counts[False]} runs.",
        "",
        "| | transport-cc | REMB only |",
        "|---|---:|---:|",
        *(f"| {label} | {med(True, key)} | {med(False, key)} |" for label, key in rows),
        "",
        "The round-trip time is the SFU's receiver reports' (remote-inbound-rtp): it includes the time "
        "packets wait in the shaped queue, which is what a delay-based estimator keeps short. The loss at "
        "the link is expected minus received where it happens (tc's counters of the namespace's tbf: "
        "dropped over sent plus dropped; the page's signaling is in it, a few packets a second); the "
        "receiver reports' loss is what is still missing after retransmissions.",
        "",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench --scenario constrained-uplink")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=30.0, help="seconds sampled per run and mode")
    parser.add_argument("--out", type=Path, required=True, help="the benchmarks file its section goes into")
    args, _ = parser.parse_known_args(argv)
    results = measure(args.runs, args.window)
    if not results:
        raise SystemExit("no results: the probe needs root (a network namespace) and Chromium")
    text = lines(results, args)
    sections.merge_into(args.out, "constrained-uplink", text)
    print("\n".join(text))
    return 0


def wanted(argv: list[str]) -> bool:
    """Whether the command line asks for this scenario only (it runs its own namespace and browsers)."""
    scenarios = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--scenario"]
    return scenarios == ["constrained-uplink"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
