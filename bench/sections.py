"""Sections of docs/benchmarks.md that scenarios run on their own (recording, live, sip, ...) write.

Each lives between two markers, so a scenario replaces only its own section and the full run
(``python -m bench``), which regenerates the rest of the file, carries every such section over unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(
    r"<!-- bench-section: (?P<name>[\w-]+) -->\n.*?<!-- /bench-section: (?P=name) -->\n", re.S
)
# A new section goes before the first of these headings (the generated tail of the file).
_BEFORE = ("## Optimisations", "## How it was measured", "## Machine and versions")


def wrap(name: str, lines: list[str]) -> str:
    """The section's markdown between its markers."""
    body = "\n".join(lines).rstrip("\n")
    return f"<!-- bench-section: {name} -->\n{body}\n<!-- /bench-section: {name} -->\n"


def kept(text: str) -> list[str]:
    """Every marked section of a benchmarks file, in file order."""
    return [m.group(0) for m in _BLOCK.finditer(text)]


def merge(text: str, name: str, lines: list[str]) -> str:
    """``text`` with the section ``name`` replaced by ``lines``, or inserted before the generated tail."""
    block = wrap(name, lines)
    for m in _BLOCK.finditer(text):
        if m.group("name") == name:
            return text[: m.start()] + block + text[m.end() :]
    for heading in _BEFORE:
        at = text.find(f"\n{heading}\n")
        if at >= 0:
            return text[: at + 1] + block + "\n" + text[at + 1 :]
    return text.rstrip("\n") + "\n\n" + block


def merge_into(path: Path, name: str, lines: list[str]) -> None:
    """Write the section into the benchmarks file at ``path`` (created if missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(merge(text, name, lines))
