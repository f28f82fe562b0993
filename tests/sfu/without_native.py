"""pytest plugin (``-p tests.sfu.without_native``): tests as on a machine where sfu/_fanout.c is not built."""

from __future__ import annotations

import sys

# None in sys.modules makes `import sfu._fanout` raise ImportError, as when the extension is missing.
assert "sfu" not in sys.modules, "load this plugin before anything imports the SFU"
sys.modules["sfu._fanout"] = None  # type: ignore[assignment]


def pytest_sessionstart() -> None:
    from sfu import fanout

    assert not fanout.NATIVE and fanout.fan_out is fanout.python_fan_out
