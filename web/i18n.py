"""Message catalogues (zh-CN and en) and language negotiation."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    """The catalogue for one of :data:`LANGUAGES`."""
    if language not in LANGUAGES:
        raise KeyError(language)
    text = resources.files("web").joinpath("i18n", f"{language}.json").read_text("utf-8")
    data: dict[str, str] = json.loads(text)
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
