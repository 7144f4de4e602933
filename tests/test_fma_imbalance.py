"""scripts/fma_imbalance.py: re-balancing on the real Rock/Hip-Hop export, and a tiny end-to-end run
(1 seed, 1 epoch) on the two labelled FMA sample clips tested on the sample GTZAN clips."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from utils.data.datasets import class_balance
from utils.data.fma import load_export

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "data" / "sample" / "fma" / "metadata" / "fma-rock-vs-hiphop.csv.gz"

spec = importlib.util.spec_from_file_location("fma_imbalance", ROOT / "scripts" / "fma_imbalance.py")
imbalance = importlib.util.module_from_spec(spec)
spec.loader.exec_module(imbalance)


def test_each_method_on_the_real_export():
    meta, counts, methods = imbalance.metadata_part(EXPORT, seed=0)
    kept, excluded = load_export(EXPORT)
    assert meta["tracks_kept"] == len(kept) == counts.total.sum()
    assert meta["tracks_excluded_known_bad"] == len(excluded) > 0
    assert meta["class_counts"] == class_balance(kept).total.to_dict()
    small, large = counts.total.min(), counts.total.max()
    by = methods.set_index(["method", "class"])
    assert by.loc["none", "rows"].to_dict() == meta["class_counts"]
    weighted = by.loc["class_weight"]
    assert weighted.total_weight.nunique() == 1  # every class carries the same total weight
    assert weighted.total_weight.sum() == pytest.approx(len(kept))
    assert (by.loc["undersample", "rows"] == small).all() and (by.loc["undersample", "max_repeats"] == 1).all()
    over = by.loc["oversample"]
    assert (over.rows == large).all() and over.distinct.min() == small and over.max_repeats.max() > 1
    assert meta["always_rock"]["accuracy"] == pytest.approx(large / len(kept))


def test_end_to_end_on_the_sample_clips(gtzan_sample, tmp_path):
    argv = ["--gtzan", str(gtzan_sample), "--out", str(tmp_path / "reports"),
            "--work", str(tmp_path / "work"), "--seeds", "0", "--epochs", "1"]
    assert imbalance.main(argv) == 0
    saved = json.loads((tmp_path / "reports" / "fma_imbalance.json").read_text())
    audio = saved["audio"]
    assert sorted(c["label"] for c in audio["fma_clips"]) == ["Hip-Hop", "Rock"]
    assert audio["test"]["root"] == str(gtzan_sample) and set(audio["test"]["clips"]) == {"Hip-Hop", "Rock"}
    runs = {r["method"]: r for r in audio["runs"]}
    assert list(runs) == list(imbalance.METHODS)
    drawn = runs["none"]["windows"]
    assert drawn["Rock"] == round(drawn["Hip-Hop"] * saved["metadata"]["ratio_majority_to_minority"])
    assert runs["undersample"]["windows"]["Rock"] == runs["undersample"]["windows"]["Hip-Hop"] == drawn["Hip-Hop"]
    assert runs["oversample"]["windows"]["Hip-Hop"] == drawn["Rock"]
    assert runs["oversample"]["distinct_windows"]["Hip-Hop"] == drawn["Hip-Hop"]
    w = runs["class_weight"]["class_weight"]
    assert w["Hip-Hop"] * drawn["Hip-Hop"] == pytest.approx(w["Rock"] * drawn["Rock"])
    for r in runs.values():
        assert all(0 <= r[k] <= 1 for k in ("accuracy", "balanced_accuracy", "predicted_hiphop", "mean_p_hiphop"))
        assert r["epochs"] == 1
    assert (tmp_path / "reports" / "figures" / "fma_imbalance.png").stat().st_size > 10_000


def test_audio_without_labelled_clips_is_a_clear_error(tmp_path, sample, capsys):
    (tmp_path / "music").mkdir()
    shutil.copy(sample / "fma" / "audio" / "000" / "000002.mp3", tmp_path / "music" / "song.mp3")
    argv = ["--audio", str(tmp_path / "music"), "--out", str(tmp_path / "reports"), "--work", str(tmp_path)]
    assert imbalance.main(argv) == 1
    assert "not an FMA audio file name" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()
