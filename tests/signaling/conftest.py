from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.signaling.signaling_fakes import Harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    yield h
    await h.server.close()
