"""The notebooks' study of fma_small's pictures (utils.evaluation.picture_study, utils.data.vggish): slices,
splits, imbalance, parity and the baselines, on small made-up tables; the shared embeddings where present."""
import numpy as np
import pandas as pd
import pytest

from conftest import shared_data
from utils.data.datasets import DatasetError
from utils.data.vggish import VGGISH, vggish
from utils.evaluation import picture_study as study


def _tracks(per_cell: int = 5) -> pd.DataFrame:
    rows = [{"track_id": f"{s}{g}{i:04d}", "path": f"/p/{s}/{g}/{i}.png", "label": g, "split": s,
             "artist": f"{s}-{g}-{i % 2}"}
            for s in ("training", "validation") for g in ("Folk", "Rock", "Pop") for i in range(per_cell)]
    return pd.DataFrame(rows)


def test_a_slice_keeps_so_many_tracks_per_genre_and_split_and_is_reproducible():
    tracks = _tracks()
    cut = study.take_per_genre(tracks, 2, ("Folk", "Rock"), seed=1)
    assert cut.groupby(["split", "label"]).size().tolist() == [2, 2, 2, 2]
    assert cut.equals(study.take_per_genre(tracks, 2, ("Folk", "Rock"), seed=1))
    assert len(study.take_per_genre(tracks, None)) == len(tracks)


def test_the_split_report_counts_artists_and_those_in_two_splits():
    tracks = _tracks()
    report = study.split_report(tracks, "/data", None)
    assert report["tracks"] == {"training": 15, "validation": 15} and report["artists_in_two_splits"] == 0
    assert report["tracks_per_genre"]["validation"] == {"Folk": 5, "Pop": 5, "Rock": 5}
    tracks.loc[0, "artist"] = tracks.artist.iloc[-1]  # one artist on both sides
    assert study.split_report(tracks, "/data", None)["artists_in_two_splits"] == 1


def test_imbalanced_keeps_a_fraction_of_one_genre_only():
    labels = np.array(["A"] * 10 + ["B"] * 10)
    keep = study.imbalanced(labels, "B", 0.2, seed=0)
    assert (labels[keep] == "A").sum() == 10 and (labels[keep] == "B").sum() == 2
    assert np.all(np.diff(keep) > 0)


def test_parity_counts_equal_and_near_pixels():
    a = np.zeros((128, 128))
    b = a.copy()
    b[0, :2] = (1, 3)
    same = study.parity(a, b)
    assert same["equal"] == 1 - 2 / a.size and same["within_one_level"] == 1 - 1 / a.size
    assert same["max_levels_off"] == 3


def test_baselines_beat_the_majority_on_separable_pictures():
    rng = np.random.default_rng(0)
    classes = ("Folk", "Rock")
    labels = np.array(["Folk", "Rock"] * 20)
    x = rng.integers(0, 60, (40, 128, 128)).astype(np.uint8)
    x[labels == "Rock", :, :64] += 150  # Rock louder in the low bands
    feats = study.picture_statistics(x)
    assert feats.shape == (40, 5 * 128)
    both = (labels[:20], labels[20:])
    assert study.baseline((feats[:20], feats[20:]), both, classes)["accuracy"] == 1.0
    majority = study.majority(both, classes)
    assert majority["accuracy"] == 0.5 and majority["per_class"]["Rock"]["recall"] == 0.0


def test_mean_pictures_are_per_genre_in_db():
    x = np.full((4, 128, 128), 255, np.uint8)
    x[2:] = 0
    means = study.mean_pictures(x, ["A", "A", "B", "B"])
    assert list(means) == ["A", "B"] and (means["A"] == 0).all() and (means["B"] == -80).all()


def test_vggish_embeddings_in_the_order_asked_and_one_line_errors(tmp_path):
    path = tmp_path / VGGISH
    np.savez(path, X=np.arange(6, dtype=np.float32).reshape(3, 2), track_id=np.array(["000002", "000005", "000010"]))
    assert vggish(["000010", "000002"], path).tolist() == [[4, 5], [0, 1]]
    with pytest.raises(DatasetError, match=r"no embedding for 1 track\(s\), e.g. 000003"):
        vggish(["000003"], path)
    with pytest.raises(DatasetError, match="no such file"):
        vggish(["000002"], tmp_path / "absent.npz")


def test_the_shared_embeddings_cover_the_pictures():
    root = shared_data("fma_small_mel")
    x = vggish(["000002", "000005"], root / VGGISH)
    assert x.shape == (2, 128) and x.dtype == np.float32
