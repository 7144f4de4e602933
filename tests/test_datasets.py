"""Track tables for GTZAN and any folder, splits, class balance and resampling, on the real sample data."""
from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from matplotlib.figure import Figure

from conftest import shared_data
from utils import audio

from utils.data import datasets, splits

from utils.data import fma
from utils.data.datasets import TRACK_COLUMNS, DatasetError
from utils.data.splits import SPLITS

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
EXPORT = SAMPLE / "fma" / "metadata" / "fma-rock-vs-hiphop.csv.gz"
MP3 = SAMPLE / "fma" / "audio" / "000" / "000002.mp3"


@pytest.fixture(scope="module")
def gtzan(gtzan_sample) -> pd.DataFrame:
    return datasets.gtzan(gtzan_sample)


@pytest.fixture(scope="module")
def rock_hiphop() -> pd.DataFrame:
    """The real Rock / Hip-Hop export, known-bad clips excluded."""
    return fma.load_export(EXPORT)[0]


def test_gtzan_layout(gtzan):
    assert list(gtzan.columns) == [*TRACK_COLUMNS, "recording"]
    assert len(gtzan) == 20 and gtzan.label.value_counts().eq(2).all() and gtzan.label.nunique() == 10
    assert gtzan.track_id[0] == "blues.00000" and gtzan.track_id.is_unique
    assert all(Path(p).is_file() and Path(p).parent.name == label for p, label in zip(gtzan.path, gtzan.label))
    assert gtzan.split.isna().all()


def test_gtzan_artists_come_from_sturms_index(gtzan):
    who = gtzan.set_index("track_id")
    assert who.artist["blues.00000"] == "John Lee Hooker" and who.artist["reggae.00001"] == "Bob Marley"
    assert who.recording["blues.00000"] == "One Bourbon, One Scotch And One Beer"
    index = datasets.gtzan_index()
    assert index["blues.00004"] == ("John Lee Hooker", None)  # the index leaves its title empty
    assert len(index) == 1000 and index["classical.00000"] == ("JS Bach", "Concert for oboe, BWV 1053")
    assert index["metal.00006"] == (None, None)  # unidentified


def test_the_artist_index_travels_with_the_repository(fma_wavs, tmp_path):
    assert datasets.GTZAN_ARTISTS.is_relative_to(ROOT) and datasets.GTZAN_ARTISTS.is_file()
    (tmp_path / "hiphop").mkdir()
    shutil.copy(fma_wavs[0], tmp_path / "hiphop" / "hiphop.00000.wav")  # a real clip in GTZAN's layout
    with pytest.raises(DatasetError, match="no GTZAN artist index"):
        datasets.gtzan(tmp_path, index=ROOT / "no-such-index.txt")


def test_split_groups_join_artists_and_repeated_recordings():
    t = pd.DataFrame({"artist": ["Bach", "bach ", None, None, "Mozart", None],
                      "recording": ["BWV 1053", "BWV 156", "BWV 156", None, None, None]})
    g = splits.split_groups(t)
    assert g[0] == g[1] == g[2]  # one artist, and a repeat of one of his recordings
    assert len({g[0], g[3], g[4], g[5]}) == 4  # unidentified clips stand alone


def test_no_two_folds_share_an_artist_on_the_99_clips():
    tracks = pd.concat([datasets.gtzan(shared_data("gtzan_mini")), datasets.gtzan(shared_data("gtzan_more"))],
                       ignore_index=True)
    groups = splits.split_groups(tracks)
    y = tracks.label.to_numpy()
    folds = splits.cv_folds(y, 5, 3, 0, groups=groups)
    for r in range(3):
        fold_of_group = pd.Series(folds[r]).groupby(groups).nunique()
        assert (fold_of_group == 1).all()  # every artist (and repeated recording) in one fold only
        assert sorted(np.unique(folds[r])) == [0, 1, 2, 3, 4]
    artists = tracks.artist.str.casefold()
    for r in range(3):  # and by name, not only by group number
        assert (pd.Series(folds[r]).groupby(artists.to_numpy()).nunique() == 1).all()
    assert not np.array_equal(folds[0], folds[1])
    plan = splits.plan_splits(tracks, 5, 3)
    assert "grouped by artist" in plan.how
    for split in plan.splits():
        sides = [set(groups[tracks.track_id.isin(getattr(split, s))]) for s in SPLITS]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_a_genre_of_one_artist_gives_a_plan_that_says_it_is_optimistic(gtzan):
    plan = splits.plan_splits(gtzan)  # the sample's blues is John Lee Hooker alone
    assert "NOT grouped by artist" in plan.how and "optimistic" in plan.how and "'blues' has 1 artist" in plan.how


def test_group_weights_balance_genres_and_artists():
    y, groups = np.array([0, 0, 0, 0, 1, 1]), np.array([1, 1, 1, 2, 3, 4])
    w = splits.group_weights(y, groups)
    assert np.isclose(w.mean(), 1) and np.isclose(w[y == 0].sum(), w[y == 1].sum())
    assert np.isclose(w[:3].sum(), w[3])  # the prolific artist weighs as much as the other


def test_folder_artists_from_a_list_or_from_tags(tmp_path):
    import mutagen.easyid3

    (tmp_path / "rock").mkdir()
    shutil.copy(MP3, tmp_path / "rock" / "a.mp3")
    shutil.copy(MP3, tmp_path / "rock" / "b.mp3")
    tags = mutagen.easyid3.EasyID3()
    tags["artist"] = "Real Band"
    tags.save(tmp_path / "rock" / "a.mp3")
    tagged = datasets.folder(tmp_path).set_index("track_id").artist
    assert tagged["rock/a"] == "Real Band" and tagged["rock/b"] == datasets.tagged_artist(MP3) == "AWOL"
    pd.DataFrame({"path": ["rock/b.mp3"], "artist": ["Listed"]}).to_csv(tmp_path / "artists.csv", index=False)
    listed = datasets.folder(tmp_path).set_index("track_id").artist
    assert listed["rock/b"] == "Listed" and pd.isna(listed["rock/a"])  # the list, when there, is the one source
    (tmp_path / "artists.csv").write_text("file,who\nrock/b.mp3,x\n")
    with pytest.raises(DatasetError, match="artists.csv: an artist list needs columns path, artist"):
        datasets.folder(tmp_path)


def test_gtzan_accepts_other_audio_formats(fma_wavs, tmp_path):
    (tmp_path / "hiphop").mkdir()
    y, sr = audio.decode(fma_wavs[0], duration=2.0)  # a real Hip-Hop clip in GTZAN's layout
    sf.write(tmp_path / "hiphop" / "hiphop.00000.flac", y, sr)
    tracks = datasets.gtzan(tmp_path)
    assert tracks.track_id.tolist() == ["hiphop.00000"] and tracks.label.tolist() == ["hiphop"]
    assert audio.sniff(tracks.path[0]) == "flac"
    (tmp_path / "hiphop" / "intro.wav").write_bytes(fma_wavs[1].read_bytes())
    with pytest.raises(DatasetError, match=r"hiphop/intro.wav: not in the GTZAN layout"):
        datasets.gtzan(tmp_path)


def test_labelled_folder_and_flat_library(fma_labelled, tmp_path):
    tracks = datasets.folder(fma_labelled)
    assert tracks.track_id[0] == "Experimental/001066" and tracks.label.nunique() == 6
    shutil.copy(MP3, tmp_path / "loose.mp3")  # a flat file: no label
    (tmp_path / "rock" / "live").mkdir(parents=True)
    shutil.copy(MP3, tmp_path / "rock" / "live" / "song.mp3")  # label = first folder below the root
    (tmp_path / "rock" / "._song.mp3").write_bytes(b"\0" * 4096)  # macOS resource fork: not audio
    (tmp_path / "notes.txt").write_text("not audio")
    tracks = datasets.folder(tmp_path).set_index("track_id")
    assert tracks.index.tolist() == ["loose", "rock/live/song"]
    assert pd.isna(tracks.label["loose"]) and tracks.label["rock/live/song"] == "rock"


def test_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: no such folder"):
        datasets.folder(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="000002.mp3: not a folder"):
        datasets.folder(MP3)
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(DatasetError, match=r"no audio files \(.mp3, .wav, .flac"):
        datasets.folder(tmp_path)


def test_track_table_checks_the_schema(gtzan):
    with pytest.raises(DatasetError, match=r"src: track table lacks columns \['artist'\]"):
        datasets.track_table(gtzan.drop(columns="artist"), "src")
    with pytest.raises(DatasetError, match="track ids are not unique"):
        datasets.track_table(pd.concat([gtzan, gtzan.head(1)]), "src")


def test_splits_are_stratified_deterministic_and_exact(rock_hiphop):
    split = splits.make_splits(rock_hiphop, seed=0)
    assert split.equals(splits.make_splits(rock_hiphop, seed=0))
    assert not split.equals(splits.make_splits(rock_hiphop, seed=1))
    share = split.value_counts(normalize=True)
    assert np.allclose(share[list(SPLITS)], [0.8, 0.1, 0.1], atol=0.001)
    hiphop = (rock_hiphop.label == "Hip-Hop").groupby(split).mean()
    assert np.allclose(hiphop, (rock_hiphop.label == "Hip-Hop").mean(), atol=0.001)
    other = splits.make_splits(rock_hiphop, (0.7, 0.15, 0.15), seed=0).value_counts(normalize=True)
    assert np.allclose(other[list(SPLITS)], [0.7, 0.15, 0.15], atol=0.001)


def test_splits_keep_groups_together(rock_hiphop):
    # The export has no artist; tracks uploaded in the same minute (real
    # date_created values, 4,061 groups) stand in for artists here.
    created = pd.read_csv(EXPORT, usecols=["track_id", "date_created"]).set_index("track_id").date_created
    tracks = rock_hiphop.assign(artist=created.reindex(rock_hiphop.track_id.astype(int)).to_numpy())
    tracks.loc[:99, "artist"] = None  # tracks without an artist are groups of one
    split = splits.make_splits(tracks, seed=0)
    assert split.groupby(tracks.artist).nunique().max() == 1
    assert np.allclose(split.value_counts(normalize=True)[list(SPLITS)], [0.8, 0.1, 0.1], atol=0.01)


def test_split_leaves_unlabelled_tracks_out(gtzan):
    tracks = gtzan.assign(label=gtzan.label.where(gtzan.index >= 4), artist=pd.NA).drop(columns="recording")
    split = splits.make_splits(tracks, (0.5, 0.5, 0.0))
    assert split[:4].isna().all() and split[4:].notna().all()
    assert (split[4:] == "training").sum() == 8 and "test" not in set(split)


def test_split_fraction_errors():
    with pytest.raises(ValueError, match="summing to 1"):
        splits._fold_counts((0.8, 0.1))
    with pytest.raises(ValueError, match="summing to 1"):
        splits._fold_counts((0.8, 0.3, -0.1))
    with pytest.raises(ValueError, match="multiples of 1/n"):
        splits._fold_counts((0.801, 0.1, 0.099))
    assert splits._fold_counts((1 / 3, 1 / 3, 1 / 3)).tolist() == [1, 1, 1]


def test_repeated_folds_on_gtzan(gtzan):
    gtzan = gtzan.assign(artist=pd.NA).drop(columns="recording")  # by clip: the sample has one artist in blues
    folds = splits.repeated_folds(gtzan, n_splits=2, n_repeats=3, seed=0)
    assert folds.shape == (20, 3) and folds.notna().all().all()
    for r in folds.columns:  # two clips per genre: one in each fold
        assert (gtzan.label.groupby(folds[r]).value_counts() == 1).all()
    assert folds.equals(splits.repeated_folds(gtzan, n_splits=2, n_repeats=3, seed=0))
    assert folds[0].ne(folds[1]).any() or folds[0].ne(folds[2]).any()


def test_class_balance_table(rock_hiphop, gtzan):
    tracks = rock_hiphop.assign(split=splits.make_splits(rock_hiphop))
    table = datasets.class_balance(tracks)
    assert list(table.columns) == [*SPLITS, "total"] and list(table.index) == ["Rock", "Hip-Hop"]
    assert table.total.to_dict() == rock_hiphop.label.value_counts().to_dict() == {"Rock": 14_176, "Hip-Hop": 3_543}
    assert (table[list(SPLITS)].sum(axis=1) == table.total).all()
    unsplit = datasets.class_balance(gtzan)
    assert list(unsplit.columns) == ["unsplit", "total"] and (unsplit.total == 2).all()
    multi = gtzan.assign(label=[("rock", "pop")] * 2 + [None] * 18)
    assert datasets.class_balance(multi).total.to_dict() == {"rock": 2, "pop": 2}


def test_class_balance_figure(rock_hiphop, tmp_path):
    tracks = rock_hiphop.assign(split=splits.make_splits(rock_hiphop))
    fig = datasets.plot_class_balance(tracks)
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_title() == f"17,719 tracks, 2 classes, imbalance {14_176 / 3_543:.2f} : 1"
    assert len(fig.axes[0].patches) >= 6  # 2 classes x 3 splits
    out = datasets.save_class_balance(tracks, tmp_path / "figures" / "balance.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["balance.png"]  # no temporary file left


@pytest.mark.parametrize("method", datasets.BALANCE_METHODS)
def test_balance_on_the_real_rock_hiphop_imbalance(method):
    both = pd.concat(fma.load_export(EXPORT))  # all 17,734 tracks of the export
    y = (both.label == "Rock").to_numpy().astype(int)  # 0 = Hip-Hop (3,552), 1 = Rock (14,182)
    result = datasets.balance(y, method, seed=0)
    counts = np.bincount(y[result.indices], minlength=2).tolist()
    expected = {"none": [3_552, 14_182], "undersample": [3_552, 3_552],
                "oversample": [14_182, 14_182], "class_weight": [3_552, 14_182]}
    assert counts == expected[method]
    assert np.all(np.diff(result.indices) >= 0)
    if method == "class_weight":
        assert result.class_weight == pytest.approx({0: 17_734 / (2 * 3_552), 1: 17_734 / (2 * 14_182)})
    else:
        assert result.class_weight is None
    if method == "undersample":
        assert len(np.unique(result.indices)) == len(result.indices)
    if method == "oversample":
        assert set(np.unique(result.indices)) == set(range(len(y)))


def test_balance_is_seeded_and_accepts_string_labels(rock_hiphop):
    labels = rock_hiphop.label.to_numpy()
    a, b = (datasets.balance(labels, "undersample", seed=s) for s in (0, 0))
    assert np.array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, datasets.balance(labels, "undersample", seed=1).indices)
    weights = datasets.balance(labels, "class_weight").class_weight
    assert set(weights) == {"Rock", "Hip-Hop"} and weights["Hip-Hop"] > weights["Rock"]
    with pytest.raises(ValueError, match="balance method must be one of"):
        datasets.balance(labels, "smote")
    with pytest.raises(ValueError, match="drop unlabelled rows"):
        datasets.balance(np.array(["Rock", None], dtype=object), "undersample")
