"""scripts/band_probe.py: real clips through SoX brick-wall filters, classified, tallied and rendered."""
import importlib.util
import json
from pathlib import Path

import pytest

from utils.evaluation import conditions

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("band_probe", ROOT / "scripts" / "band_probe.py")
band_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(band_probe)


@pytest.mark.skipif(not conditions.available(), reason="needs sox (apt-get install sox)")
def test_every_clip_is_tallied_under_every_filter(tiny_model, sample, tmp_path):
    out = tmp_path / "band_probe.json"
    assert band_probe.main(["--gtzan", str(sample / "gtzan"), "--per-genre", "1", "--model", f"tiny={tiny_model}",
                            "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 10 and list(report["models"]["tiny"]["filters"]) == list(band_probe.FILTERS)
    for tally in report["models"]["tiny"]["filters"].values():
        # the tiny model knows classical and metal only: the other 8 clips are wrong under any filter
        assert tally["of"] == 10 and tally["right"] + sum(tally["instead"].values()) == 10 and tally["right"] <= 2
        assert set(tally["instead"]) <= {"classical", "metal"}
    assert out.with_suffix(".md").read_text() == band_probe.markdown(report)


@pytest.mark.skipif(not conditions.available(), reason="needs sox (apt-get install sox)")
def test_a_model_the_code_no_longer_runs_is_carried_with_its_commit(tiny_model, sample, tmp_path):
    out = tmp_path / "band_probe.json"
    run = ["--gtzan", str(sample / "gtzan"), "--per-genre", "1", "--model", f"tiny={tiny_model}", "--json", str(out)]
    assert band_probe.main(run) == 0
    first = json.loads(out.read_text())
    assert band_probe.main([*run, "--carry", "earlier=tiny"]) == 0
    report = json.loads(out.read_text())
    assert list(report["models"]) == ["earlier", "tiny"]
    assert report["models"]["earlier"]["filters"] == first["models"]["tiny"]["filters"]
    assert report["models"]["earlier"]["measured"] == {
        "date": first["provenance"]["date"], "commit": first["provenance"]["commit"],
        "command": first["provenance"]["command"], "as": "tiny"}
    assert f"earlier: measured at commit {first['provenance']['commit'][:8]}" in out.with_suffix(".md").read_text()
