from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder beside the checkout (CI has it)."""
    if not SHARED.is_dir():  # pragma: no cover - CI always has it
        pytest.fail(f"shared data not found at {SHARED}")
    return SHARED
