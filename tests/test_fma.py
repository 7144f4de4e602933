"""FMA metadata: the official tables, subsets, the flat export, known-bad clips.

Real data: ``genres.csv``, ``fma-rock-vs-hiphop.csv.gz`` and the 10 MP3s of
``data/sample/fma``. The official ``tracks.csv`` is not in the repository;
``tests/fixtures/fma_tracks.csv`` is written to its format (two-row column
header, then a ``track_id`` row; all 52 columns). Its track columns for ids
2, 3, 1039, 5574 and 108925 are copied from the real export; its subset and
split assignments are chosen to cover every case, not copied.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from utils.data import fma
from utils.data.datasets import TRACK_COLUMNS, DatasetError
from utils.data.fma_bad_tracks import BAD_TRACKS, ISSUE_44

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "fma"
AUDIO = SAMPLE / "audio"
GENRES = SAMPLE / "metadata" / "genres.csv"
EXPORT = SAMPLE / "metadata" / "fma-rock-vs-hiphop.csv.gz"
FIXTURE = ROOT / "tests" / "fixtures" / "fma_tracks.csv"


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    return fma.load_tracks(FIXTURE)


@pytest.fixture(scope="module")
def genres() -> pd.DataFrame:
    return fma.load_genres(GENRES)


@pytest.fixture(scope="module")
def export() -> tuple[pd.DataFrame, pd.DataFrame]:
    return fma.load_export(EXPORT)


def test_audio_path_follows_the_fma_layout():
    assert fma.audio_path("/fma", 2) == Path("/fma/000/000002.mp3")
    assert fma.audio_path("/fma", "1039") == Path("/fma/001/001039.mp3")
    assert fma.audio_path("/fma", 155066) == Path("/fma/155/155066.mp3")
    found = sorted(AUDIO.rglob("*.mp3"))
    assert [fma.audio_path(AUDIO, f.stem) for f in found] == found


def test_load_tracks_reads_the_official_format(tracks):
    assert tracks.shape == (9, 52)
    assert tracks.index.name == "track_id" and tracks.index.dtype == "int64"
    assert isinstance(tracks.columns, pd.MultiIndex)
    assert tracks.loc[1039, ("track", "genres_all")] == [45, 12, 53]
    assert tracks.loc[2, ("artist", "tags")] == ["awol"]
    assert pd.api.types.is_datetime64_any_dtype(tracks["track", "date_created"])
    assert tracks.loc[2, ("track", "date_created")] == pd.Timestamp("2008-11-26 01:48:12")
    subset = tracks["set", "subset"]
    assert subset.cat.ordered and list(subset.cat.categories) == ["small", "medium", "large"]
    assert (subset <= "medium").sum() == 6
    assert tracks["track", "genre_top"].dtype == "category"
    assert pd.isna(tracks.loc[20, ("track", "genre_top")])  # genres under two roots: no top genre


def test_subsets_are_nested_with_official_splits(tracks):
    chosen = {}
    for name in fma.SUBSETS:
        kept, excluded = fma.subset(tracks, name, audio_root=AUDIO)
        assert list(kept.columns[:5]) == list(TRACK_COLUMNS)
        chosen[name] = set(kept.track_id) | set(excluded.track_id)
    assert chosen["small"] == {"000002", "000005", "000134", "108925"}
    assert chosen["small"] < chosen["medium"] < chosen["large"] == chosen["full"]
    kept, _ = fma.subset(tracks, "medium", audio_root=AUDIO)
    row = kept.set_index("track_id").loc["001039"]
    assert (row.label, row.split, row.artist, row.subset) == ("Rock", "validation", "252", "medium")
    assert row.path == str(AUDIO / "001" / "001039.mp3") and Path(row.path).is_file()
    assert kept.track_id.is_unique and kept.index.equals(pd.RangeIndex(len(kept)))


def test_known_bad_clips_come_back_with_a_reason(tracks):
    _, small = fma.subset(tracks, "small")
    assert small.track_id.tolist() == ["108925"]
    assert small.reason[0].startswith("no audio") and ISSUE_44 in small.reason[0]
    _, large = fma.subset(tracks, "large")
    assert sorted(large.track_id) == ["005574", "108925"]
    assert large.reason.str.contains("github.com/mdeff/fma/issues/").all()
    kept, full = fma.subset(tracks, "full")  # fma_full holds the untrimmed, whole tracks
    assert full.empty and {"005574", "108925"} <= set(kept.track_id)


def test_labels_genre_top_or_multi_label(tracks, genres):
    kept, _ = fma.subset(tracks, "large", genres=["Rock"])
    assert set(kept.label) == {"Rock"} and set(kept.track_id) == {"001039", "001070"}
    kept, _ = fma.subset(tracks, "large", label="genres_all", genre_table=genres)
    labels = kept.set_index("track_id").label
    assert labels["001039"] == ("Loud-Rock", "Rock", "Noise-Rock")
    kept, _ = fma.subset(tracks, "large", label="genres_all", genre_table=genres, genres=["Rock", "Hip-Hop"])
    labels = kept.set_index("track_id").label
    assert labels["000020"] == ("Rock", "Hip-Hop") and labels["000002"] == ("Hip-Hop",)
    assert "000005" not in labels  # Pop only


def test_label_errors_are_clear(tracks, genres):
    with pytest.raises(ValueError, match="unknown FMA subset 'tiny'.*small.*medium.*large.*full"):
        fma.subset(tracks, "tiny")
    with pytest.raises(ValueError, match="unknown FMA label"):
        fma.subset(tracks, "small", label="mood")
    with pytest.raises(ValueError, match="genre_table"):
        fma.subset(tracks, "small", label="genres")
    with pytest.raises(ValueError, match=r"no tracks labelled \['Blues'\] in subset small"):
        fma.subset(tracks, "small", genres=["Rock", "Blues"])
    with pytest.raises(ValueError, match=r"unknown FMA genre\(s\) \['HipHop'\]"):
        fma.subset(tracks, "small", label="genres", genre_table=genres, genres=["HipHop"])


def test_genre_tree(genres):
    assert genres.shape == (163, 4) and genres.index.name == "genre_id"
    roots = fma.top_level_genres(genres)
    assert len(roots) == 16 and {"Rock", "Hip-Hop", "Electronic", "Instrumental"} <= set(roots.title)
    for genre_id in genres.index:  # walking up the parents ends at the genre's top_level
        root = genre_id
        while genres.parent[root]:
            root = genres.parent[root]
        assert root == genres.top_level[genre_id] and root in roots.index


def test_flat_export_is_the_real_rock_vs_hiphop_table(export):
    kept, excluded = export
    both = pd.concat([kept, excluded.drop(columns="reason")])
    assert len(both) == 17_734 and both.track_id.is_unique
    assert both.label.value_counts().to_dict() == {"Rock": 14_182, "Hip-Hop": 3_552}
    assert kept.split.isna().all() and kept.artist.isna().all() and kept.path.isna().all()
    assert list(kept.columns[:5]) == list(TRACK_COLUMNS)
    assert kept.genres_all[kept.track_id == "001039"].item() == [45, 12, 53]


def test_bad_list_matches_the_real_metadata(export):
    ids = [b.track_id for b in BAD_TRACKS]
    assert len(ids) == len(set(ids)) == 21
    reported_in_small = {98565, 98567, 98569, 99134, 108925, 133297}  # mdeff/fma issue 8
    assert reported_in_small <= set(ids)
    assert {b.track_id for b in BAD_TRACKS if b.no_audio} == {99134, 108925, 133297}
    _, excluded = export
    assert len(excluded) == 15  # the bad clips whose top genre is Rock or Hip-Hop
    # the durations the maintainer quoted are those of the FMA metadata
    quoted = {f"{b.track_id:06d}": b.metadata_s for b in BAD_TRACKS}
    assert (excluded.duration == excluded.track_id.map(quoted)).all()


def test_sample_audio_table_labels_the_two_known_tracks(export):
    kept, excluded = fma.audio_tracks(AUDIO, export[0])
    assert len(kept) == 10 and excluded.empty
    labels = kept.set_index("track_id").label
    assert labels.dropna().to_dict() == {"000002": "Hip-Hop", "001039": "Rock"}
    assert all(Path(p) == fma.audio_path(AUDIO, t) for t, p in zip(kept.track_id, kept.path))
    unlabelled, _ = fma.audio_tracks(AUDIO)
    assert unlabelled.label.isna().all() and len(unlabelled) == 10


def test_audio_folder_lists_known_bad_files_apart(tmp_path):
    real = AUDIO / "000" / "000002.mp3"
    (tmp_path / "108").mkdir()
    (tmp_path / "108" / "108925.mp3").write_bytes(real.read_bytes())
    kept, excluded = fma.audio_tracks(tmp_path)
    assert kept.empty and excluded.track_id.tolist() == ["108925"]
    kept, excluded = fma.audio_tracks(tmp_path, full_length=True)
    assert kept.track_id.tolist() == ["108925"] and excluded.empty


def test_missing_and_malformed_metadata_raise_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="tracks.csv: no such file"):
        fma.load_tracks(tmp_path / "tracks.csv")
    with pytest.raises(DatasetError, match="genres.csv: no such file"):
        fma.load_genres(tmp_path / "genres.csv")
    with pytest.raises(DatasetError, match=r"not an FMA tracks.csv: no column\(s\) \[\('set', 'split'\)\]"):
        no_split = fma.load_tracks(FIXTURE).drop(columns=[("set", "split")])
        no_split.to_csv(tmp_path / "tracks.csv")
        fma.load_tracks(tmp_path / "tracks.csv")
    with pytest.raises(DatasetError, match="not an FMA tracks.csv"):
        fma.load_tracks(EXPORT)  # a flat file has no two-row header
    with pytest.raises(DatasetError, match=r"not a flat FMA export: no column\(s\) \['track_id'"):
        fma.load_export(FIXTURE)
    (tmp_path / "ids.csv").write_text("track_id,genre_top,genres_all,duration,title\nA2,Rock,[12],30,Song\n")
    with pytest.raises(DatasetError, match="ids.csv: not a flat FMA export: track_id holds values"):
        fma.load_export(tmp_path / "ids.csv")
    with pytest.raises(DatasetError, match="not an FMA genres.csv"):
        fma.load_genres(SAMPLE / "metadata" / "raw_genres.csv")
    text = FIXTURE.read_text()
    (tmp_path / "odd.csv").write_text(text.replace(",training,small,", ",training,tiny,", 1))
    with pytest.raises(DatasetError, match=r"odd.csv: column \('set', 'subset'\): unknown value\(s\) \['tiny'\]"):
        fma.load_tracks(tmp_path / "odd.csv")
    (tmp_path / "lists.csv").write_text(text.replace("[45, 12, 53]", "[45, 12", 1))
    with pytest.raises(DatasetError, match=r"column \('track', 'genres_all'\): '\[45, 12' is not a list"):
        fma.load_tracks(tmp_path / "lists.csv")
    (tmp_path / "dates.csv").write_text(text.replace("2008-11-26 01:48:12", "last Tuesday", 1))
    with pytest.raises(DatasetError, match=r"dates.csv: column \('track', 'date_created'\)"):
        fma.load_tracks(tmp_path / "dates.csv")
    (tmp_path / "000").mkdir()
    (tmp_path / "000" / "song.mp3").write_bytes((AUDIO / "000" / "000002.mp3").read_bytes())
    with pytest.raises(DatasetError, match="song.mp3: not an FMA audio file name"):
        fma.audio_tracks(tmp_path)
