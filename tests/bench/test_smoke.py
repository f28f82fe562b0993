"""The bench runs: a tiny fan-out and a tiny soak on Janus and Yunhui produce numbers and a report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import joins
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_quick_fanout_and_soak_produce_numbers_for_both_sfus(tmp_path: Path) -> None:
    require_tool("janus")
    out, workdir = tmp_path / "benchmarks.md", tmp_path / "work"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--scenario",
            "fanout",
            "--scenario",
            "soak",
            "--no-install",
            "--out",
            str(out),
            "--workdir",
            str(workdir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    runs = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
    by_sfu = {run["sfu"]: run for run in runs if run["scenario"] == "fanout"}
    assert set(by_sfu) == {"janus", "yunhui"}
    for sfu, run in by_sfu.items():
        assert run["ready"] == run["subscribers"], (sfu, run["errors"])
        # Two subscribers of a ~280 pkt/s publisher: anything far below means media did not flow.
        assert run["forwarded_pps"] > 300, (sfu, run)
        assert run["cpu_s_per_mpkt"] and run["cpu_s_per_mpkt"] > 0, (sfu, run)
        assert run["latency_p50_ms"] is not None and 0 < run["latency_p50_ms"] < 1000, (sfu, run)

    soaks = {run["sfu"]: run for run in runs if run["scenario"] == "soak"}
    assert set(soaks) == {"janus", "yunhui"}
    for sfu, run in soaks.items():
        # Per subscriber: what the publisher sent it and what it got (expected - received is the loss).
        assert len(run["received"]) == len(run["expected"]) == run["subscribers"], (sfu, run)
        assert all(e > 1000 for e in run["expected"]) and run["video_sent"] > 1000, (sfu, run)
        ratios = [r / e for r, e in zip(run["received"], run["expected"], strict=True)]
        assert all(0.5 < ratio <= 1.01 for ratio in ratios), (sfu, run)

    (baseline,) = [run for run in runs if run["scenario"] == "baseline"]
    assert baseline["latency_p50_ms"] is not None and baseline["latency_p50_ms"] > 0, baseline

    report = out.read_text()
    row = next(line for line in report.splitlines() if line.startswith("| SFU CPU per forwarded packet"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[3]) > 0 and float(cells[4]) > 0 and cells[5].endswith("×"), row
    assert (tmp_path / "benchmarks-cpu.png").stat().st_size > 1000
    assert "## Soak" in report and "| yunhui | 2 |" in report


async def test_join_benchmark_admits_every_guest(tmp_path: Path) -> None:
    result = await joins.run(5, 1.0, workdir=tmp_path, cpu=None)
    assert result.errors == ()
    assert result.succeeded == 5
    assert result.median_ms is not None and 0 < result.median_ms < 10_000
    assert result.server_cpu_ms_per_join is not None
    joins.save(result, tmp_path / "joins.json", measured_at="today")
    assert joins.load(tmp_path / "joins.json") == (result, "today")
    assert "| 5 | 1 s | 5 |" in joins.section(result, "today")
