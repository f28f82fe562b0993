"""docs/benchmarks.md keeps every scenario's own section when another one, or the full run, rewrites it."""

from __future__ import annotations

from pathlib import Path

from bench import sections

REPO = Path(__file__).resolve().parents[2]

GENERATED = "# Benchmarks\n\n## Result\n\nx\n\n## Optimisations\n\ny\n\n## How it was measured\n\nz\n"


def test_a_section_is_inserted_before_the_generated_tail_then_replaced_in_place() -> None:
    text = sections.merge(GENERATED, "live", ["## Live", "", "first"])
    text = sections.merge(text, "sip", ["## SIP", "", "legs"])
    assert text.index("## Live") < text.index("## SIP") < text.index("## Optimisations")
    again = sections.merge(text, "live", ["## Live", "", "second"])
    assert "first" not in again and "second" in again and "legs" in again
    assert again.index("## Live") < again.index("## SIP")  # replaced where it was


def test_the_full_report_carries_the_sections_over() -> None:
    text = sections.merge(GENERATED, "recording", ["## Recording", "", "tap 5.6"])
    kept = sections.kept(text)
    assert kept == [sections.wrap("recording", ["## Recording", "", "tap 5.6"])]
    regenerated = GENERATED.replace("## Optimisations", "".join(kept) + "\n## Optimisations")
    assert sections.kept(regenerated) == kept


def test_the_committed_file_marks_its_scenario_sections() -> None:
    names = [
        block.split(" -->", 1)[0].split(": ")[1]
        for block in sections.kept((REPO / "docs/benchmarks.md").read_text())
    ]
    assert "recording" in names
