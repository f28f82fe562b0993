"""Every module that declares tables on rooms.models.Base: migrations and checks see the whole schema."""

from __future__ import annotations

import importlib
import importlib.util

# One line per package that owns tables; a package not written yet is skipped, a broken one fails loudly.
MODEL_MODULES: tuple[str, ...] = (
    "rooms.models",
    "rooms.billing.models",
    "rooms.outbox.models",
    "rooms.sms.models",
    "rooms.incidents.models",
    "rooms.webhooks.models",
    "rooms.audit.models",
    "rooms.recordings.models",
    "rooms.sip.models",
    "rooms.sip.calls",
    "rooms.live.models",
    "rooms.live.videos",
)


def load_models() -> None:
    """Import every table module, so ``Base.metadata`` holds the whole schema."""
    for name in MODEL_MODULES:
        if importlib.util.find_spec(name.rsplit(".", 1)[0]) is None:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            importlib.import_module(name)
