"""The notebooks' helpers (utils.data.explore, utils.evaluation.growth) on the real sample.

Known answers come from independent computations (pandas on the raw CSVs,
soundfile headers, NumPy means of cached windows) or, where a test needs an
exact answer (ordering by distance, confusion pairs), from small generated inputs.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from utils.data import cache

from utils.data import datasets

from utils.data import explore

from utils.data import fma

from utils.evaluation import growth
from utils.data import splits
from utils.data.splits import Split
from utils.audio.frontend import FrontEnd, LogMel

ROOT = Path(__file__).resolve().parents[1]
META = ROOT / "data" / "sample" / "fma" / "metadata"
TRACKS_CSV = ROOT / "tests" / "fixtures" / "fma_tracks.csv"


@pytest.fixture(scope="module")
def gtzan(gtzan_sample) -> pd.DataFrame:
    return datasets.gtzan(gtzan_sample)


@pytest.fixture(scope="module")
def two_genre_cache(fma_tracks, tmp_path_factory) -> cache.Cache:
    tracks = fma_tracks[fma_tracks.label.isin(["Hip-Hop", "Rock"])]
    out = tmp_path_factory.mktemp("cache") / "c"
    cache.extract(tracks, out, progress=False)
    return cache.Cache(out)


def test_metadata_table_of_the_export_counts_the_real_imbalance():
    raw = pd.read_csv(META / "fma-rock-vs-hiphop.csv.gz")
    table = explore.metadata_table(META / "fma-rock-vs-hiphop.csv.gz")
    _, excluded = fma.load_export(META / "fma-rock-vs-hiphop.csv.gz")
    kept = raw[~raw.track_id.isin(excluded.track_id.astype(int))]
    assert table.label.value_counts().to_dict() == kept.genre_top.value_counts().to_dict()
    assert table.split.isna().all()  # a flat export has no split
    row = table.set_index("track_id").loc["000002"]
    source = raw.set_index("track_id").loc[2]
    assert (row.duration, row.bit_rate) == (source.duration, source.bit_rate)


def test_metadata_table_of_tracks_csv_keeps_the_subset_and_split():
    table = explore.metadata_table(TRACKS_CSV, "small")
    kept, _ = fma.subset(fma.load_tracks(TRACKS_CSV), "small")
    raw = fma.load_tracks(TRACKS_CSV)
    assert list(table.track_id) == list(kept.track_id)
    assert list(table.split) == list(kept.split)
    expected = raw.loc[[int(t) for t in kept.track_id], ("track", "bit_rate")].to_numpy()
    assert np.array_equal(table.bit_rate.to_numpy(float), expected.astype(float))


def test_genre_hierarchy_of_the_real_genre_tree():
    genres = fma.load_genres(META / "genres.csv")
    tree = explore.genre_hierarchy(genres)
    assert len(tree) == 16 and tree.subgenres.sum() == len(genres) - 16
    rock = tree.set_index("genre").loc["Rock"]
    assert rock.tracks == genres.loc[12, "#tracks"]
    assert rock.subgenres == ((genres.top_level == 12).sum() - 1)
    assert rock.depth >= 2  # e.g. Rock > Punk > Hardcore
    assert list(tree.tracks) == sorted(tree.tracks, reverse=True)


def test_clip_durations_match_the_file_headers(fma_wavs):
    seconds = explore.clip_durations(fma_wavs[:3], limit=None)
    for path, s in seconds.items():
        assert s == pytest.approx(soundfile.info(path).duration, abs=1e-6)
    assert len(explore.clip_durations(fma_wavs, limit=4)) == 4


def test_listen_embeds_an_excerpt_from_the_middle(fma_wavs):
    player = explore.listen(fma_wavs[0], seconds=2.0, sr=22050)
    assert player.data[:4] == b"RIFF"
    assert len(player.data) == pytest.approx(44 + 2 * 22050 * 2, abs=64)  # 16-bit mono WAV


def test_examples_takes_one_track_per_genre(gtzan):
    picked = explore.examples(gtzan)
    assert list(picked.label) == sorted(gtzan.label.unique())
    assert all(t.endswith("00000") for t in picked.track_id)


def test_frontend_and_log_variants(fma_wavs):
    fe = FrontEnd()
    variants = explore.frontend_variants(fe, "n_mels", [32, 64])
    assert {k: v.n_mels for k, v in variants.items()} == {"n_mels = 32": 32, "n_mels = 64": 64}
    # a run's own front end (hop 1024) cannot take n_fft 512: that variant is left out, not an error
    assert list(explore.frontend_variants(FrontEnd(hop_length=1024), "n_fft", [512, 2048])) == ["n_fft = 2048"]
    y = np.asarray(soundfile.read(fma_wavs[0], frames=22050, dtype="float32")[0])
    logs = explore.log_variants(y, fe)
    db = logs["dB: 10 log10(S)"]
    assert np.allclose(10 * np.log10(np.maximum(logs["power (no log)"], 1e-10)), db, atol=1e-3)
    assert np.allclose(logs["log10(1 + 10000 S)"], np.log10(1 + 1e4 * logs["power (no log)"]), atol=1e-3)


def test_mean_spectrograms_are_the_mean_of_the_cached_windows(two_genre_cache):
    w = two_genre_cache.windows()
    means = explore.mean_spectrograms(two_genre_cache, w, max_windows=None)
    assert list(means) == ["Hip-Hop", "Rock"]
    for label, m in means.items():
        idx = np.flatnonzero(w.label == label)
        assert np.allclose(m, two_genre_cache.read(w, idx).mean(axis=0), atol=1e-3)
    capped = explore.mean_spectrograms(two_genre_cache, w, max_windows=5)
    assert capped["Rock"].shape == (128, 128)


def test_distances_and_most_distinct_order():
    # four genres on a line at 0, 1, 5 and 10 dB (every band): farthest pair a-d, then c (5 from both), then b
    spectra = pd.DataFrame(np.repeat([[0.0], [1.0], [5.0], [10.0]], 4, axis=1), index=list("abcd"))
    d = explore.genre_distances(spectra)
    assert d.loc["a", "d"] == pytest.approx(20.0) and d.loc["b", "b"] == 0 and d.equals(d.T)
    assert explore.distinct_order(d) == ["a", "d", "c", "b"]


def test_figures_have_their_panels(fma_wavs, two_genre_cache):
    fe = FrontEnd()
    S = LogMel(fe)(np.asarray(soundfile.read(fma_wavs[0], frames=44100, dtype="float32")[0]))
    fig = explore.plot_spectrograms({"a": (S, fe), "b": (S, fe), "c": (S, fe)}, ncols=2, shared_scale=True)
    panels = fig.axes[:4]  # the colour bars come after the 2 x 2 grid
    assert [ax.get_title() for ax in panels] == ["a", "b", "c", ""] and not panels[3].axison
    assert len({ax.collections[0].get_clim() for ax in panels[:3]}) == 1  # one colour scale
    spectra = explore.mean_spectra(explore.mean_spectrograms(two_genre_cache, two_genre_cache.windows()))
    assert spectra.shape == (2, 128)
    assert len(explore.plot_mean_spectra(spectra, fe).axes[0].lines) == 2


def test_plan_splits_on_two_tracks_per_genre_validates_on_training(gtzan):
    plan = splits.plan_splits(gtzan, folds=5)
    parts = plan.splits()
    assert len(parts) == 2 and "2-fold" in plan.how
    for s in parts:
        assert s.validation == s.training and not set(s.training) & set(s.test)
        assert sorted(t.split(".")[0] for t in s.test) == sorted(gtzan.label.unique())  # one per genre
    assert set(parts[0].test) == set(parts[1].training)


def test_plan_splits_with_three_folds_validates_on_the_next_fold():
    ids = [f"{g}.{i:05d}" for g in ("x", "y") for i in range(6)]
    table = pd.DataFrame({"track_id": ids, "label": [i[0] for i in ids], "split": pd.NA, "artist": pd.NA})
    plan = splits.plan_splits(table, folds=3, repeats=2, seed=1)
    parts = plan.splits()
    assert len(parts) == 6
    for s in parts:
        assert len(s.test) == len(s.validation) == 4 and len(s.training) == 4
        assert not (set(s.training) & set(s.validation)) | (set(s.training) & set(s.test))


def test_plan_splits_takes_the_official_split_and_refuses_one_track_per_class(tmp_path):
    kept, _ = fma.subset(fma.load_tracks(TRACKS_CSV), "medium")
    labelled = kept[kept.label.notna()]
    plan = splits.plan_splits(labelled)
    assert plan.how == "the dataset's official split"
    assert plan.holdout.test == tuple(labelled.track_id[labelled.split == "test"])
    again = splits.SplitPlan.load(plan.save(tmp_path / "split.json"))
    assert again.holdout == plan.holdout
    one_each = pd.DataFrame({"track_id": ["a", "b"], "label": ["x", "y"], "split": pd.NA, "artist": pd.NA})
    with pytest.raises(ValueError, match="at least 2"):
        splits.plan_splits(one_each)


def test_split_plan_round_trips_through_json(gtzan, tmp_path):
    plan = splits.plan_splits(gtzan)
    again = splits.SplitPlan.load(plan.save(tmp_path / "split.json"))
    assert again.splits() == plan.splits() and again.how == plan.how
    with pytest.raises(FileNotFoundError, match="01_eda"):
        splits.SplitPlan.load(tmp_path / "missing.json")


def test_split_column_names_each_track(gtzan):
    split = Split(("blues.00000",), ("blues.00000", "jazz.00000"), ("rock.00001",))
    column = splits.split_column(gtzan, split).set_axis(gtzan.track_id)
    assert column["blues.00000"] == "training" and column["jazz.00000"] == "validation"
    assert column["rock.00001"] == "test" and column.isna().sum() == len(gtzan) - 3


def test_growth_steps_grow_most_distinct_first():
    order = list("jihgfedcba")
    steps = growth.growth_steps(order)
    assert [len(s) for s in steps] == [2, 4, 8, 10]
    assert steps[0] == ["i", "j"] and steps[1] == sorted("jihg")
    assert [len(s) for s in growth.growth_steps(list("abc"))] == [2, 3]


def test_confused_pairs_and_prediction_table():
    metrics = {"class_names": ["a", "b", "c"], "confusion_matrix": [[5, 2, 0], [0, 4, 3], [1, 0, 6]]}
    assert growth.confused_pairs(metrics, top=2) == [("b", "c", 3), ("a", "b", 2)]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    table = growth.prediction_table(["t1", "t2"], np.array([0, 1]), probs, ["a", "b", "c"])
    assert list(table.predicted) == ["a", "c"] and list(table.correct) == [True, False]
    assert table.p_true.tolist() == [0.7, 0.3] and table.probability.tolist() == [0.7, 0.6]


def test_summarize_and_compare_runs():
    rows = pd.DataFrame({"balancing": ["none", "none", "oversample"], "accuracy": [0.5, 0.7, 0.6],
                         "balanced_accuracy": [0.5, 0.7, 0.6], "macro_f1": [0.4, 0.6, 0.5],
                         "log_loss": [0.9, 0.7, 0.8]})
    summary = splits.summarize(rows, "balancing", growth.METRICS)
    assert summary.loc["none", "accuracy_mean"] == pytest.approx(0.6)
    assert summary.loc["none", "accuracy_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary.runs.to_dict() == {"none": 2, "oversample": 1}
    fig = growth.plot_comparison(rows, "balancing", "t")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["none", "oversample"]


def test_baselines_on_the_holdout_use_its_training_tracks_only(gtzan, tmp_path):
    tracks = gtzan[gtzan.label.isin(["classical", "metal"])]
    csv = tmp_path / "features.csv"
    features = growth.track_features(tracks[["track_id", "path"]], csv)
    assert sorted(features.index) == sorted(tracks.track_id) and csv.exists()
    stamp = csv.stat().st_mtime_ns
    again = growth.track_features(tracks[["track_id", "path"]], csv)
    pd.testing.assert_frame_equal(again, features, rtol=1e-9)  # stored as %.10e
    assert csv.stat().st_mtime_ns == stamp  # nothing left to compute, nothing rewritten
    split = Split(("classical.00000", "metal.00000"), ("classical.00000", "metal.00000"),
                  ("classical.00001", "metal.00001"))
    rows, full = growth.holdout_baselines(features, gtzan.set_index("track_id").label, split,
                                          ["classical", "metal"])
    assert list(rows.model) == ["logreg", "knn", "svm", "mlp"]
    assert (rows.n_train == 2).all() and (rows.n_test == 2).all()
    assert full["svm"]["log_loss"] is None and full["logreg"]["log_loss"] is not None
    assert all(full[m]["n_samples"] == 2 for m in full)
