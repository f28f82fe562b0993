"""docs/benchmarks.md from a list of runs: Yunhui vs Janus with ratios, per-step tables, a PNG plot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench import soak
from bench.delivery import LOSS_TOLERANCE
from bench.scenarios import LATE_MS, LOADGEN_CPU_LIMIT_PCT, Run
from bench.stats import fit_line, median

LOWER, HIGHER = "lower", "higher"
CPU_UNIT = "CPU-s / 10⁶ pkt"
RATIO = "ratio"  # shown with 4 decimals: 0.9996 is not 1.0


@dataclass(frozen=True)
class Row:
    metric: str
    unit: str
    better: str
    janus: float | None
    yunhui: float | None
    note: str = ""
    at_least: frozenset[str] = frozenset()  # SFUs whose value is a lower bound (the ladder ended first)

    @property
    def ratio(self) -> float | None:
        if self.janus is None or self.yunhui is None or self.janus == 0:
            return None
        return self.yunhui / self.janus


def _clean(run: Run) -> bool:
    return run.valid and run.loss_free


def _by(runs: Iterable[Run], scenario: str) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if run.scenario == scenario:
            out[run.sfu].append(run)
    return out


def reference_k(runs: list[Run]) -> int | None:
    """The largest fan-out K that was clean for both SFUs in every repeat (else the smallest K measured)."""
    fanout = [r for r in runs if r.scenario == "fanout"]
    if not fanout:
        return None
    groups: dict[tuple[str, int], set[int]] = defaultdict(set)
    for run in fanout:
        groups.setdefault((run.sfu, run.repeat), set())
        if _clean(run):
            groups[(run.sfu, run.repeat)].add(run.subscribers)
    common = set.intersection(*groups.values()) if groups else set()
    return max(common) if common else min(r.subscribers for r in fanout)


def half_capacity_k(runs: list[Run]) -> int | None:
    """The fan-out K clean for both SFUs whose rate is nearest half the lower loss-free capacity: where the
    issue asks for the added latency ("at half of capacity"), not at the edge where queues build up."""
    k = reference_k(runs)
    capacities = [capacity(runs, sfu)[0] for sfu in ("janus", "yunhui")]
    known = [c for c in capacities if c]
    if k is None or not known:
        return k
    half = min(known) / 2
    rates: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        if run.scenario == "fanout" and run.subscribers <= k and _clean(run):
            rates[run.subscribers].append(run.forwarded_pps)
    if not rates:
        return k
    return min(rates, key=lambda n: abs((median(rates[n]) or 0.0) - half))


def _at(
    runs: list[Run], sfu: str, scenario: str, k: int | None, value: Callable[[Run], float | None]
) -> float | None:
    return median(
        [
            value(r)
            for r in runs
            if r.sfu == sfu and r.scenario == scenario and (k is None or r.subscribers == k)
        ]
    )


def capacity(runs: list[Run], sfu: str) -> tuple[float | None, bool]:
    """Median over repeats of the highest clean fan-out rate, and whether it is only a lower bound."""
    per_repeat: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        if run.sfu == sfu and run.scenario == "fanout":
            per_repeat[run.repeat].append(run)
    best, bounded = [], False
    for ladder in per_repeat.values():
        clean = [r.forwarded_pps for r in ladder if _clean(r)]
        best.append(max(clean) if clean else 0.0)
        # No lossy step on a valid load generator: the SFU was not saturated, the true figure is higher.
        if not any(r.valid and not r.loss_free for r in ladder):
            bounded = True
    return median(best), bounded


def projected_capacity(runs: list[Run], sfu: str, k: int) -> float | None:
    """Forwarded pkt/s at step K divided by the share of its core the SFU used: what one full core would
    carry at the same cost per packet (a linear estimate, for when the load generator ran out first)."""
    return median(
        [
            r.forwarded_pps / (r.sfu_cpu_pct / 100)
            for r in runs
            if r.sfu == sfu
            and r.scenario == "fanout"
            and r.subscribers == k
            and _clean(r)
            and r.sfu_cpu_pct > 0
        ]
    )


def marginal_cost(runs: list[Run], sfu: str) -> float | None:
    """Slope of SFU CPU-s/s against forwarded pkt/s over clean fan-out runs, in CPU-s per 10^6 packets."""
    points = [
        (r.forwarded_pps, r.sfu_cpu_pct / 100)
        for r in runs
        if r.sfu == sfu and r.scenario == "fanout" and _clean(r)
    ]
    fit = fit_line([p[0] for p in points], [p[1] for p in points])
    return fit[0] * 1e6 if fit else None


# (metric, unit, better, scenario, at the reference K?, value, where); latency rows are at half capacity.
_ROWS: tuple[tuple[str, str, str, str, bool, Callable[[Run], float | None], str], ...] = (
    ("SFU CPU per forwarded packet", CPU_UNIT, LOWER, "fanout", True, lambda r: r.cpu_s_per_mpkt, ""),
    ("one-way latency p50", "ms", LOWER, "fanout", True, lambda r: r.latency_p50_ms, "includes both clients"),
    ("one-way latency p99", "ms", LOWER, "fanout", True, lambda r: r.latency_p99_ms, ""),
    (
        "memory per connected peer",
        "KiB",
        LOWER,
        "fanout",
        True,
        lambda r: r.memory_per_peer_kib,
        "RSS growth",
    ),
    ("join → first keyframe p50", "ms", LOWER, "join-storm", False, lambda r: r.first_keyframe_p50_ms, ""),
    ("join → first keyframe p95", "ms", LOWER, "join-storm", False, lambda r: r.first_keyframe_p95_ms, ""),
    ("join → first RTP p50 (ICE + DTLS)", "ms", LOWER, "join-storm", False, lambda r: r.first_rtp_p50_ms, ""),
    (
        "meeting: SFU CPU per forwarded packet",
        CPU_UNIT,
        LOWER,
        "meeting",
        False,
        lambda r: r.cpu_s_per_mpkt,
        "",
    ),
    ("meeting: forwarded packets/s", "pkt/s", HIGHER, "meeting", False, lambda r: r.forwarded_pps, ""),
    ("meeting: packets lost in window", "pkt", LOWER, "meeting", False, lambda r: float(r.lost), ""),
    ("meeting: one-way latency p99", "ms", LOWER, "meeting", False, lambda r: r.latency_p99_ms, ""),
    ("soak: worst received ÷ expected", RATIO, HIGHER, "soak", False, soak.worst_ratio, soak.WHERE),
)


def _fanout_rows(runs: list[Run], k: int, k_half: int) -> list[Row]:
    """The rows only fan-out can give: marginal cost, capacity, latency the SFU adds."""
    rows = [
        Row(
            "marginal CPU per forwarded packet", CPU_UNIT, LOWER, marginal_cost(runs, "janus"),
            marginal_cost(runs, "yunhui"), "slope over clean fan-out steps",
        )
    ]  # fmt: skip
    (janus_pps, janus_bound), (yunhui_pps, yunhui_bound) = capacity(runs, "janus"), capacity(runs, "yunhui")
    bounds = frozenset(s for s, bound in (("janus", janus_bound), ("yunhui", yunhui_bound)) if bound)
    rows.append(
        Row(
            "loss-free forwarded packets/s, SFU on one core", "pkt/s", HIGHER, janus_pps, yunhui_pps,
            "highest clean fan-out step", bounds,
        )
    )  # fmt: skip
    if bounds:
        janus_est, yunhui_est = projected_capacity(runs, "janus", k), projected_capacity(runs, "yunhui", k)
        rows.append(
            Row(
                "projected packets/s at 100 % of one core", "pkt/s", HIGHER, janus_est, yunhui_est,
                f"fan-out K={k}: rate ÷ SFU CPU share (an estimate: the ladder ended before a loss)",
            )
        )  # fmt: skip
    latency: tuple[tuple[str, Callable[[Run], float | None]], ...] = (
        ("p50", lambda r: r.latency_p50_ms),
        ("p99", lambda r: r.latency_p99_ms),
    )
    for name, value in latency:
        base = median([value(r) for r in runs if r.scenario == "baseline"])
        if base is None:
            continue
        j, y = _at(runs, "janus", "fanout", k_half, value), _at(runs, "yunhui", "fanout", k_half, value)
        rows.append(
            Row(
                f"one-way latency {name} added by the SFU", "ms", LOWER, None if j is None else j - base,
                None if y is None else y - base,
                f"fan-out K={k_half} (≈ half of capacity), minus the direct path ({base:.2f} ms)",
            )
        )  # fmt: skip
    return rows


def summary_rows(runs: list[Run]) -> list[Row]:
    k, k_half = reference_k(runs), half_capacity_k(runs)
    rows: list[Row] = []
    for metric, unit, better, scenario, at_k, value, where in _ROWS:
        if at_k and k is None:
            continue
        step = k_half if metric.startswith("one-way latency") else k
        j, y = (
            _at(runs, "janus", scenario, step if at_k else None, value),
            _at(runs, "yunhui", scenario, step if at_k else None, value),
        )
        if j is None and y is None:
            continue
        note = ", ".join(x for x in (f"fan-out K={step}" if at_k else scenario, where) if x)
        rows.append(Row(metric, unit, better, j, y, note))
    if k is not None and k_half is not None:
        rows[1:1] = _fanout_rows(runs, k, k_half)
    return rows


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def summary_table(rows: list[Row]) -> str:
    lines = [
        "| metric | unit | better | Janus | Yunhui | Yunhui ÷ Janus | where |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        digits = 4 if row.unit == RATIO else 1
        j = ("≥ " if "janus" in row.at_least else "") + _fmt(row.janus, digits)
        y = ("≥ " if "yunhui" in row.at_least else "") + _fmt(row.yunhui, digits)
        ratio = "–" if row.ratio is None else f"{row.ratio:.2f}×"
        if row.ratio is not None and row.at_least:
            # A lower bound on one side bounds the ratio; on both sides it says nothing.
            both_bounded = row.at_least >= {"janus", "yunhui"}
            ratio = "–" if both_bounded else ("≤ " if "janus" in row.at_least else "≥ ") + ratio
        lines.append(f"| {row.metric} | {row.unit} | {row.better} | {j} | {y} | {ratio} | {row.note} |")
    return "\n".join(lines)


_STEP_COLUMNS = (
    "scenario", "pubs × subs", "SFU", "clean/runs", "fwd pkt/s", "lost", "SFU CPU % (usr/sys)",
    "CPU-s/10⁶ pkt", "latency p50/p99 ms", "join→KF p50/p95 ms", "KiB/peer", "threads", "loadgen CPU %",
    "machine busy %",
)  # fmt: skip


def _step_cells(group: list[Run]) -> list[str]:
    def med(value: Callable[[Run], float | None], digits: int = 1) -> str:
        return _fmt(median([value(r) for r in group]), digits)

    first = group[0]
    return [
        first.scenario,
        f"{first.publishers} × {first.subscribers}",
        first.sfu,
        f"{sum(1 for r in group if _clean(r))}/{len(group)}",
        med(lambda r: r.forwarded_pps, 0),
        med(lambda r: float(r.lost), 0),
        f"{med(lambda r: r.sfu_cpu_pct)} ({med(lambda r: r.sfu_user_pct)}/{med(lambda r: r.sfu_system_pct)})",
        med(lambda r: r.cpu_s_per_mpkt),
        f"{med(lambda r: r.latency_p50_ms, 2)}/{med(lambda r: r.latency_p99_ms, 2)}",
        f"{med(lambda r: r.first_keyframe_p50_ms, 0)}/{med(lambda r: r.first_keyframe_p95_ms, 0)}",
        med(lambda r: r.memory_per_peer_kib, 0),
        med(lambda r: float(r.sfu_threads), 0),
        med(lambda r: r.loadgen_cpu_pct),
        med(lambda r: r.machine_busy_pct),
    ]


def steps_table(runs: list[Run]) -> str:
    """Median over repeats per (scenario, step, SFU); 'clean' counts repeats that were valid and loss-free."""
    groups: dict[tuple[str, int, int, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.scenario, run.publishers, run.subscribers, run.sfu)].append(run)
    order = {"baseline": -1, "fanout": 0, "meeting": 1, "join-storm": 2, "soak": 3}
    lines = ["| " + " | ".join(_STEP_COLUMNS) + " |", "|" + "---|" * len(_STEP_COLUMNS)]
    for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[1], k[2], k[3])):
        lines.append("| " + " | ".join(_step_cells(groups[key])) + " |")
    return "\n".join(lines)


def plot(runs: list[Run], path: Path) -> bool:
    """CPU (% of the one pinned core) against forwarded packets/s, both SFUs; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not any(r.scenario in ("fanout", "meeting") for r in runs):
        return False  # nothing to plot (a soak or join-storm run alone)
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for sfu, colour in (("janus", "tab:blue"), ("yunhui", "tab:red")):
        mine = [r for r in runs if r.sfu == sfu and r.scenario in ("fanout", "meeting")]
        for scenario, marker in (("fanout", "o"), ("meeting", "s")):
            for clean_step in (True, False):
                pts = [r for r in mine if r.scenario == scenario and _clean(r) == clean_step]
                if pts:
                    axes.scatter(
                        [r.forwarded_pps for r in pts],
                        [r.sfu_cpu_pct for r in pts],
                        c=colour,
                        marker=marker,
                        alpha=1.0 if clean_step else 0.35,
                        label=f"{sfu} {scenario}" + ("" if clean_step else " (not clean)"),
                    )
        slope = marginal_cost(runs, sfu)
        clean = [r for r in mine if r.scenario == "fanout" and _clean(r)]
        fit = fit_line([r.forwarded_pps for r in clean], [r.sfu_cpu_pct for r in clean])
        if slope is not None and fit is not None:
            top = max(r.forwarded_pps for r in clean)
            axes.plot(
                [0, top],
                [fit[1], fit[1] + fit[0] * top],
                c=colour,
                lw=1,
                ls="--",
                label=f"{sfu} fit: {slope:.1f} CPU-s/10⁶ pkt",
            )
    axes.axhline(100, c="grey", lw=0.8, ls=":")
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("forwarded packets/s (delivered to subscribers)")
    axes.set_ylabel("SFU CPU, % of one core")
    axes.set_title("SFU CPU against forwarded packets (faded: lossy or invalid step)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return True


def render(
    runs: list[Run],
    *,
    plot_name: str | None,
    machine: list[str],
    versions: list[str],
    command: str,
    plan_text: str,
    extra_sections: list[str],
) -> str:
    parts = [
        "# Benchmarks: Yunhui's SFU side by side with Janus",
        "",
        f"Reproduce: `{command}` (needs root for the network namespace; installs Janus when missing).",
        "This file is generated by `python -m bench`; edit bench/report.py, not this file.",
        "",
        "## Result",
        "",
        "Medians over repeats. Ratio = Yunhui ÷ Janus; *better* says whether below or above 1 is good.",
        "",
        summary_table(summary_rows(runs)) if runs else "_No runs._",
        "",
    ]
    if plot_name:
        parts += [f"![SFU CPU against forwarded packets/s]({plot_name})", ""]
    parts += [
        "## Every step",
        "",
        f"A step counts (*clean*) only if the load generator stayed below {LOADGEN_CPU_LIMIT_PCT:.0f} % of "
        "its core and dropped no datagram at its sockets, every subscriber got media, every subscriber "
        f"received all but at most {100 * LOSS_TOLERANCE:g} % of the packets the publishers sent it "
        "(*lost* = expected − received, summed over subscribers), no sequence gap appeared in what reached "
        f"it, and the p99 one-way latency stayed under {LATE_MS:.0f} ms (ITU-T G.114: later than that is as "
        "good as lost for a conversation).",
        "",
        steps_table(runs),
        "",
        *soak.section(runs),
        *extra_sections,
        "## Optimisations",
        "",
        "Each change to the forwarding path, with its measured effect, is recorded in",
        "[optimizations.md](optimizations.md): Python-level steps first (instruction counts under callgrind",
        "and CPU time of `python -m bench.forwarding_micro`), then end to end with this benchmark, the",
        "largest being the per-copy loop in C (`sfu/_fanout.c`, third round).",
        "",
        "## How it was measured",
        "",
        plan_text,
        "",
        "## Machine and versions",
        "",
        *[f"- {line}" for line in machine + versions],
        "",
    ]
    return "\n".join(parts)
