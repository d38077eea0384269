"""Shared fixtures: the sample photos and a settings object that writes into a temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    return {
        "portrait": EXAMPLES / "astronaut.png",
        "product": EXAMPLES / "coffee.png",
        "scenic": EXAMPLES / "rocket.jpg",
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        outputs_dir=tmp_path / "outputs",
        user_presets_dir=tmp_path / "user-presets",
        long_side=192,
        workers=2,
    )
