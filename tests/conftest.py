"""Shared fixtures: paths to the real sample committed under data/sample/."""
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def gtzan_wavs() -> list[Path]:
    return sorted((SAMPLE / "gtzan").rglob("*.wav"))


@pytest.fixture(scope="session")
def fma_mp3s() -> list[Path]:
    return sorted((SAMPLE / "fma" / "audio").rglob("*.mp3"))
