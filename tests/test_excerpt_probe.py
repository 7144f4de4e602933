"""scripts/excerpt_probe.py: real excerpts under and over one window, cut by SoX, classified with both fills;
and its committed report describes the shipped model."""
import importlib.util
import json
from pathlib import Path

import pytest

from utils.evaluation import conditions
from utils.models.runtime import source_hash

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("excerpt_probe", ROOT / "scripts" / "excerpt_probe.py")
excerpt_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(excerpt_probe)


@pytest.mark.skipif(not conditions.available(), reason="needs sox (apt-get install sox)")
def test_every_excerpt_is_tallied_with_both_fills(tiny_model, sample, tmp_path):
    out = tmp_path / "excerpt_probe.json"
    assert excerpt_probe.main(["--gtzan", str(sample / "gtzan"), "--per-genre", "1", "--model", str(tiny_model),
                               "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 10 and list(report["fills"]) == list(excerpt_probe.FILLS)
    for by_length in report["fills"].values():
        assert list(by_length) == [f"{s:g}" for s in excerpt_probe.SECONDS]
        # the tiny model knows classical and metal only
        assert all(0 <= right <= 2 for right in by_length.values())
    assert out.with_suffix(".md").read_text() == excerpt_probe.markdown(report)


def test_the_committed_report_probed_the_shipped_model():
    report = json.loads((ROOT / "reports" / "excerpt_probe.json").read_text())
    assert report["model_sha256"] == source_hash(ROOT / "models" / "default.keras")
