"""A private network namespace for the bench: ``lo`` plus one ``ifb`` device holding 198.18.0.1/32.

Janus never gathers ICE candidates on a loopback interface, and an SFU benchmark must not send media to the
machine's real interfaces, so everything (both SFUs, the load generator) runs in a namespace with one
non-loopback address from the RFC 2544 benchmarking range. Packets between local addresses take the kernel's
loopback path and cannot leave the namespace. Needs root (CAP_NET_ADMIN).
"""

from __future__ import annotations

import os
import shutil
import subprocess

NAME = "yunhui-bench"
INTERFACE = "ybench0"
ADDRESS = "198.18.0.1"


class NetnsError(Exception):
    pass


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=10)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def exists(name: str = NAME) -> bool:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False, timeout=10)
    return any(line.split()[:1] == [name] for line in result.stdout.splitlines())


def create(name: str = NAME) -> None:
    """Create the namespace (idempotent)."""
    if not exists(name):
        _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    probe = subprocess.run(
        ["ip", "-n", name, "link", "show", INTERFACE], capture_output=True, check=False, timeout=10
    )
    if probe.returncode != 0:
        _ip("-n", name, "link", "add", INTERFACE, "type", "ifb")
    _ip("-n", name, "addr", "replace", f"{ADDRESS}/32", "dev", INTERFACE)
    _ip("-n", name, "link", "set", INTERFACE, "up")


def delete(name: str = NAME) -> None:
    if exists(name):
        _ip("netns", "delete", name)


def wrap(command: list[str], name: str = NAME) -> list[str]:
    """The command, run inside the namespace (``ip netns exec`` execs it: the PID stays the command's)."""
    return ["ip", "netns", "exec", name, *command]
