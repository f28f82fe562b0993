"""Message catalogues (zh-CN and en) and language negotiation."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    """The catalogue for one of :data:`LANGUAGES`.

    It is ``i18n/<language>.json`` and every ``i18n/<part>.<language>.json``: a part per feature keeps each
    feature's texts in its own file. A key defined twice is an error.
    """
    if language not in LANGUAGES:
        raise KeyError(language)
    folder = resources.files("web").joinpath("i18n")
    parts = sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name.endswith(f".{language}.json") and entry.name != f"{language}.json"
    )
    names = [f"{language}.json", *parts]
    data: dict[str, str] = {}
    for name in names:
        part: dict[str, str] = json.loads(folder.joinpath(name).read_text("utf-8"))
        duplicated = data.keys() & part.keys()
        if duplicated:
            raise ValueError(f"i18n/{name} defines {sorted(duplicated)[0]!r} again")
        data.update(part)
    return data


def negotiate(accept_language: str | None, requested: str | None = None) -> str:
    """Pick a language: an explicit request first, then the browser's Accept-Language order."""
    if requested in LANGUAGES:
        return requested
    ranked: list[tuple[float, str]] = []
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((quality, tag.strip().lower()))
    for _, tag in sorted(ranked, key=lambda pair: -pair[0]):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE
