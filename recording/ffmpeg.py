"""Argv lists for Debian's ffmpeg and ffprobe, built by pure functions (never a shell string).

Our own builders rather than ffmpeg-python (docs/decisions.md): ffmpeg-python 0.2.0 is unmaintained since 2019
and its graph DSL hides the argv a test wants to read; these are short lists that unit tests check directly.
The composite's filter graph is built in recording/layout.py.
"""

from __future__ import annotations

from pathlib import Path


def remux(ffmpeg: str, source: Path, target: Path) -> list[str]:
    """Copy every stream into a fresh file: the muxer writes the duration and the Cues a live file lacks."""
    fmt = "webm" if target.suffix == ".webm" else "matroska"
    # -copyts: the timestamps are the recording's clock (a track that starts late starts late), not from 0.
    head = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-copyts", "-i", str(source)]
    return [*head, "-map", "0", "-c", "copy", "-f", fmt, str(target)]


def probe(ffprobe: str, path: Path) -> list[str]:
    """Start, duration and streams of one file as JSON."""
    entries = "format=start_time,duration:stream=codec_type,codec_name,width,height,start_time"
    return [ffprobe, "-v", "error", "-show_entries", entries, "-of", "json", str(path)]


def niced(argv: list[str], nice: int) -> list[str]:
    """Run at a lower CPU priority (nice is in Debian's coreutils)."""
    return ["nice", "-n", str(nice), *argv] if nice > 0 else argv
