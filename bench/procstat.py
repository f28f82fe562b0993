"""Process accounting from /proc: CPU-seconds, memory, threads and UDP socket drops of given PIDs.

The machine is shared, so the bench never reads load averages or machine-wide CPU shares for its metrics: an
SFU's cost is the CPU-seconds its own process (all threads) spent, from ``/proc/<pid>/stat``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class CpuTimes:
    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user - other.user, self.system - other.system)


def cpu_times(pid: int) -> CpuTimes:
    """utime and stime of a process, all threads, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()  # the command name may contain spaces and parentheses
    return CpuTimes(int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_times(pid).total
        except FileNotFoundError:
            continue
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size (the second field of /proc/<pid>/statm)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def machine_busy_seconds() -> float:
    """Non-idle CPU-seconds of the whole machine since boot (to show how noisy the machine was)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except FileNotFoundError:
        return inodes
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def udp_drops(pids: list[int]) -> int:
    """Datagrams the kernel dropped on the UDP sockets of these processes (full receive buffers).

    /proc/net/udp lists every socket of the network namespace with its own ``drops`` counter, so drops at the
    load generator's sockets are told apart from drops at the SFU's.
    """
    inodes: set[int] = set()
    for pid in pids:
        inodes |= socket_inodes(pid)
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[9]) in inodes:
                drops += int(fields[-1])
    return drops
