"""The probe scripts (scripts/*_probe.py): real clips through SoX / FFmpeg, classified, tallied and rendered;
and their committed reports describe the shipped model."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from conftest import TINY_MODEL_CLIPS
from utils.evaluation import conditions
from utils.models.runtime import source_hash

ROOT = Path(__file__).resolve().parents[1]
needs_programs = pytest.mark.skipif(not conditions.available(), reason="needs sox and ffmpeg (apt-get install sox ffmpeg)")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


band_probe, excerpt_probe, stress_probe = (_script(n) for n in ("band_probe", "excerpt_probe", "stress_probe"))


@needs_programs
def test_every_clip_is_tallied_under_every_filter(tiny_model, fma_labelled, tmp_path):
    out = tmp_path / "band_probe.json"
    assert band_probe.main(["--gtzan", str(fma_labelled), "--per-genre", "1", "--model", f"tiny={tiny_model}",
                            "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 6 and list(report["models"]["tiny"]["filters"]) == list(band_probe.FILTERS)
    for tally in report["models"]["tiny"]["filters"].values():
        # the tiny model knows Hip-Hop and Rock only: the other 4 clips are wrong under any filter
        assert tally["of"] == 6 and tally["right"] + sum(tally["instead"].values()) == 6 and tally["right"] <= 2
        assert set(tally["instead"]) <= set(TINY_MODEL_CLIPS)
    assert out.with_suffix(".md").read_text() == band_probe.markdown(report)


@needs_programs
def test_a_model_the_code_no_longer_runs_is_carried_with_its_commit(tiny_model, fma_labelled, tmp_path):
    out = tmp_path / "band_probe.json"
    run = ["--gtzan", str(fma_labelled), "--per-genre", "1", "--model", f"tiny={tiny_model}", "--json", str(out)]
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


@needs_programs
def test_every_excerpt_is_tallied_with_both_fills(tiny_model, fma_labelled, tmp_path):
    out = tmp_path / "excerpt_probe.json"
    assert excerpt_probe.main(["--gtzan", str(fma_labelled), "--per-genre", "1", "--model", str(tiny_model),
                               "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 6 and list(report["fills"]) == list(excerpt_probe.FILLS)
    for by_length in report["fills"].values():
        assert list(by_length) == [f"{s:g}" for s in excerpt_probe.SECONDS]
        # the tiny model knows Hip-Hop and Rock only
        assert all(0 <= right <= 2 for right in by_length.values())
    assert out.with_suffix(".md").read_text() == excerpt_probe.markdown(report)


@needs_programs
def test_every_clip_is_tallied_under_every_probe_condition(tiny_model, sample, fma_labelled, tmp_path):
    labelled, fma = tmp_path / "labelled", tmp_path / "fma"
    for genre in TINY_MODEL_CLIPS:  # the two genres the tiny model knows, one clip each
        shutil.copytree(fma_labelled / genre, labelled / genre)
    (fma / "000").mkdir(parents=True)
    shutil.copy(sample / "fma" / "audio" / "000" / "000010.mp3", fma / "000")
    out = tmp_path / "stress_probe.json"
    assert stress_probe.main(["--gtzan", str(labelled), "--per-genre", "1", "--fma", str(fma), "--model", str(tiny_model),
                              "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["results"]) == ["clean", *conditions.PROBE_CONDITIONS]
    assert report["fma"]["files"] == ["000010.mp3"] and report["fma"]["clean_genres"][0] in TINY_MODEL_CLIPS
    assert report["results"]["clean"]["fma"] == {"same": 1, "of": 1, "instead": {}, "instead_sure": 0}
    for r in report["results"].values():
        assert r["gtzan"]["of"] == 2 and r["gtzan"]["same"] + sum(r["gtzan"]["instead"].values()) == 2
        assert r["fma"]["of"] == 1 and r["fma"]["same"] + sum(r["fma"]["instead"].values()) == 1
        assert 0 <= r["fma"]["instead_sure"] <= sum(r["fma"]["instead"].values())
    assert out.with_suffix(".md").read_text() == stress_probe.markdown(report)


def test_a_changed_answer_counts_as_sure_from_the_probability_organize_would_file_it_at():
    answers = [("rock", 0.9), ("jazz", 0.7), ("pop", 0.4), ("rock", 0.2)]
    assert stress_probe.tally(answers, ["rock", "rock", "rock", "rock"], 0.5) == {
        "same": 2, "of": 4, "instead": {"jazz": 1, "pop": 1}, "instead_sure": 1}


@needs_programs
def test_a_probe_with_no_clips_says_so_in_one_line(tiny_model, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert stress_probe.main(["--gtzan", str(tmp_path / "empty"), "--fma", str(tmp_path / "empty"),
                              "--model", str(tiny_model), "--json", str(tmp_path / "s.json")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"no clips: 0 GTZAN clips in {tmp_path / 'empty'}, 0 FMA clips in {tmp_path / 'empty'}"]
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("name", ["excerpt_probe", "stress_probe"])
def test_the_committed_report_probed_the_shipped_model(name):
    report = json.loads((ROOT / "reports" / f"{name}.json").read_text())
    assert report["model_sha256"] == source_hash(ROOT / "models" / "default.keras")


def test_the_committed_stress_report_tried_every_probe_condition():
    report = json.loads((ROOT / "reports" / "stress_probe.json").read_text())
    assert report["conditions"] == {c: [p, *a] for c, (p, a) in conditions.PROBE_CONDITIONS.items()}
