"""The spectrogram cache on real sample audio: values, failures, resuming, refusal, reading."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from utils import audio

from utils.data import batches

from utils.data import cache

from conftest import SAMPLE_TRACKS
from utils.apps import cli
from utils.data.catalog import load_dataset
from utils.audio.frontend import MUSICNN, FrontEnd, LogMel, windows

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
FE = FrontEnd()


def table(rows: list[tuple[str, Path, str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["track_id", "path", "label", "split"])


def fma_clips(n: int) -> pd.DataFrame:
    """The first ``n`` bundled FMA clips, labelled with their genres, unsplit."""
    tracks = load_dataset("fma", SAMPLE / "fma" / "audio", SAMPLE_TRACKS, subset="small")[0].head(n)
    return table([(t.track_id, Path(t.path), t.label, None) for t in tracks.itertuples()])


@pytest.fixture(scope="module")
def built(tmp_path_factory, fma_wavs):
    """A cache of two real FMA mp3s and two FMA clips as wavs, in two shards."""
    wav = {p.stem: p for p in fma_wavs}
    tracks = table([
        ("000002", SAMPLE / "fma/audio/000/000002.mp3", "Hip-Hop", "training"),
        ("001039", SAMPLE / "fma/audio/001/001039.mp3", "Rock", "test"),
        ("001066", wav["001066"], "Experimental", None),
        ("000140", wav["000140"], "Folk", "validation"),
    ])
    out = tmp_path_factory.mktemp("cache")
    summary = cache.extract(tracks, out, FE, shard_size=3, progress=False)
    return tracks, out, summary


def test_extracted_windows_equal_logmel_in_float16(built):
    tracks, out, summary = built
    assert (summary.n_ok, summary.failures, summary.skipped_shards) == (4, (), 0)
    assert np.load(out / "shards" / "00000.npy").dtype == np.float16
    c = cache.Cache(out, FE)
    w = c.windows()
    lm = LogMel(FE)
    for t in tracks.itertuples():
        S = lm(audio.load(t.path, FE.sample_rate))
        expected = windows(S, FE)
        row = c.tracks.set_index("track_id").loc[t.track_id]
        assert (row.status, row.n_frames, row.n_windows) == ("ok", len(S), len(expected))
        assert row.label == t.label
        assert pd.isna(row.split) if pd.isna(t.split) else row.split == t.split
        got = c.read(w, np.flatnonzero(w.track_id == t.track_id))
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected.astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(got, expected, atol=0.032, rtol=0)  # float16 rounding, dB
    assert summary.n_windows == len(w) == c.tracks.n_windows.sum()


def test_a_short_track_reads_as_frontend_windows_fill_it_whatever_fill_the_cache_holds(tmp_path):
    """A 2 s excerpt of a real clip (under one 3 s window): the cache gives the window frontend.windows
    gives, and so does a cache whose filler frames are silence (as caches were written before)."""
    y = audio.load(SAMPLE / "fma/audio/001/001039.mp3", FE.sample_rate, offset=10.0, duration=2.0)
    sf.write(tmp_path / "short.wav", y, FE.sample_rate)
    cache.extract(table([("short", tmp_path / "short.wav", "Rock", None)]), tmp_path / "c", FE, progress=False)
    expected = windows(LogMel(FE)(audio.load(tmp_path / "short.wav", FE.sample_rate)), FE)
    c = cache.Cache(tmp_path / "c", FE)
    n = int(c.tracks.n_frames.iloc[0])
    assert n < FE.window_frames and expected.shape[0] == 1
    np.testing.assert_array_equal(c.read(c.windows(), np.arange(1)), expected.astype(np.float16).astype(np.float32))
    shard = tmp_path / "c" / "shards" / "00000.npy"
    old = np.load(shard)
    old[n:] = FE.floor
    np.save(shard, old)
    c = cache.Cache(tmp_path / "c", FE)
    np.testing.assert_array_equal(c.read(c.windows(), np.arange(1)), expected.astype(np.float16).astype(np.float32))


def test_windows_selected_by_split_and_labels(built):
    _, out, _ = built
    c = cache.Cache(out)
    assert set(c.windows(split="training").track_id) == {"000002"}
    assert set(c.windows(split=["training", "test"]).track_id) == {"000002", "001039"}
    w = c.windows(labels={"Rock", "Experimental"})
    assert set(w.track_id) == {"001039", "001066"}
    assert set(zip(w.track_id, w.label)) == {("001039", "Rock"), ("001066", "Experimental")}
    random_order = np.random.default_rng(0).permutation(len(w))
    batch = c.read(w, random_order[:64])
    for i, k in enumerate(random_order[:64]):  # each window, read alone, is the same
        np.testing.assert_array_equal(batch[i], c.read(w, [k])[0])


def test_undecodable_and_too_short_tracks_are_recorded_and_skipped(tmp_path):
    (tmp_path / "notes.mp3").write_text("not audio, a text file renamed .mp3\n")
    tone = np.sin(2 * np.pi * 440 * np.arange(int(0.5 * FE.sample_rate)) / FE.sample_rate)
    sf.write(tmp_path / "short.wav", 0.5 * tone, FE.sample_rate)  # 0.5 s < min_frames (1.49 s)
    tracks = table([("bad", tmp_path / "notes.mp3", "x", None),
                    ("000002", SAMPLE / "fma/audio/000/000002.mp3", "Hip-Hop", None),
                    ("short", tmp_path / "short.wav", "x", None)])
    summary = cache.extract(tracks, tmp_path / "cache", FE, progress=False)
    assert summary.n_ok == 1 and [tid for tid, _ in summary.failures] == ["bad", "short"]
    c = cache.Cache(tmp_path / "cache")
    idx = c.tracks.set_index("track_id")
    assert idx.loc["bad", "status"] == "failed"
    assert idx.loc["bad", "error"].startswith(f"NotAudioError: {tmp_path / 'notes.mp3'}: ")
    assert idx.loc["short", "error"].startswith(f"TooShortError: {tmp_path / 'short.wav'}: too short: 0.5")
    assert (idx.loc["short", "n_frames"], idx.loc["short", "n_windows"]) == (FE.n_frames(len(tone)), 0)
    assert idx.loc["000002", "status"] == "ok" and pd.isna(idx.loc["000002", "error"])
    assert set(c.windows().track_id) == {"000002"}
    assert "2 failed" in str(summary) and "1 NotAudioError, 1 TooShortError" in str(summary)



def test_a_resumed_run_counts_the_failures_of_the_shards_it_skips(tmp_path, capsys):
    """Item 10: after a resumed extract the summary said "0 failed" although the skipped shards held failures."""
    (tmp_path / "notes.mp3").write_text("not audio\n")
    (tmp_path / "empty.wav").write_bytes(b"")
    tracks = table([("bad", tmp_path / "notes.mp3", "x", None), ("empty", tmp_path / "empty.wav", "x", None),
                    ("000002", SAMPLE / "fma/audio/000/000002.mp3", "Hip-Hop", None)])
    first = cache.extract(tracks, tmp_path / "cache", FE, shard_size=2, progress=False)
    assert [tid for tid, _ in first.failures] == ["bad", "empty"] and first.skipped_failures == ()
    again = cache.extract(tracks, tmp_path / "cache", FE, shard_size=2, progress=False)
    assert again.failures == () and again.skipped_failures == first.failures
    text = str(again)
    assert "0 failed, 3 skipped as done before (2 shards, 2 of them failed)" in text
    assert "2 failed in all (recorded in the index with their error): 1 NotAudioError, 1 EmptyFileError" in text
    assert f"  bad: NotAudioError: {tmp_path / 'notes.mp3'}: " in text

KILLED_RUN = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from utils.data import batches
    from utils.data import cache
    from utils.data.cache import write

    real = write.logmel_files
    def stalling(paths, lm, prefetch, **options):  # hangs after the first track of the third shard
        for item in real(paths, lm, prefetch, **options):
            yield item
            if item[0].name == "001066.mp3":
                print("mid-shard", flush=True)
                time.sleep(600)
    write.logmel_files = stalling
    cache.extract(pd.read_csv(sys.argv[1], dtype=str), sys.argv[2], shard_size=2, progress=False,
                  on_shard=lambda r: print("shard", r.number, flush=True))
""")


def test_killed_run_resumes_without_recomputing(tmp_path):
    tracks = fma_clips(8)  # 4 shards of 2
    tracks.to_csv(tmp_path / "tracks.csv", index=False)
    out = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path / "tracks.csv"), str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.wait()
    assert lines == ["shard 0", "shard 1", "mid-shard"]
    committed = sorted(p.name for p in (out / "shards").iterdir())
    assert committed == ["00000.csv", "00000.npy", "00001.csv", "00001.npy"]
    with pytest.raises(cache.CacheError, match="unfinished: 2 of 4 shards missing"):
        cache.Cache(out)
    partial = cache.Cache(out, allow_partial=True)  # what is visible is whole
    assert set(partial.windows().track_id) == set(tracks.track_id[:4])
    stamps = {p: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}

    computed = []
    summary = cache.extract(tracks, out, FE, progress=False, on_shard=lambda r: computed.append(r.number))
    assert computed == [2, 3] and (summary.skipped_shards, summary.skipped_tracks, summary.n_ok) == (2, 4, 4)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert "4 skipped as done before (2 shards)" in str(summary)

    ref = tmp_path / "ref"
    cache.extract(tracks, ref, FE, shard_size=2, progress=False)
    for n in range(4):
        np.testing.assert_array_equal(np.load(out / f"shards/{n:05d}.npy"), np.load(ref / f"shards/{n:05d}.npy"))
        assert (out / f"shards/{n:05d}.csv").read_text() == (ref / f"shards/{n:05d}.csv").read_text()


def test_crash_while_writing_a_shard_leaves_no_partial_shard(tmp_path, monkeypatch):
    tracks = fma_clips(4)
    out = tmp_path / "cache"
    real_save = np.save
    calls = []

    def crash_in_second_shard(f, array):
        calls.append(1)
        if len(calls) == 2:  # write half the bytes of shard 1's data, then die
            f.write(b"\x93NUMPY" + bytes(1000))
            raise KeyboardInterrupt
        real_save(f, array)

    monkeypatch.setattr(np, "save", crash_in_second_shard)
    with pytest.raises(KeyboardInterrupt):
        cache.extract(tracks, out, FE, shard_size=2, progress=False)
    monkeypatch.setattr(np, "save", real_save)
    names = sorted(p.name for p in (out / "shards").iterdir())
    assert names == ["00000.csv", "00000.npy"]  # the half-written temporary file was removed
    assert set(cache.Cache(out, allow_partial=True).windows().track_id) == set(tracks.track_id[:2])

    summary = cache.extract(tracks, out, FE, progress=False)
    assert (summary.skipped_shards, summary.n_ok) == (1, 2)
    assert not list((out / "shards").glob("*.tmp"))
    whole = cache.Cache(out)
    assert set(whole.windows().track_id) == set(tracks.track_id) and (whole.tracks.status == "ok").all()


def test_other_front_end_or_tracks_are_refused(built, tmp_path):
    tracks, out, _ = built
    with pytest.raises(cache.CacheError, match=r"other front-end parameters \(n_mels: cache 128, asked 64\)"):
        cache.Cache(out, FrontEnd(n_mels=64))
    with pytest.raises(cache.CacheError) as err:
        cache.extract(tracks, out, MUSICNN, progress=False)
    assert "sample_rate: cache 22050, asked 16000" in str(err.value)
    assert "log: cache 'db', asked 'log10_1p'" in str(err.value)
    with pytest.raises(cache.CacheError, match=r"other tracks: 0 added \[\], 1 removed \['000002'\]"):
        cache.extract(tracks[1:], out, FE, progress=False)
    (tmp_path / "mine.txt").write_text("a user's file")
    with pytest.raises(cache.CacheError, match="not empty and has no frontend.json"):
        cache.extract(tracks, tmp_path, FE, progress=False)


def test_window_dataset_batches(built):
    _, out, _ = built
    c = cache.Cache(out)
    w = c.windows(labels=["Hip-Hop", "Rock"])
    classes = ["Hip-Hop", "Rock"]
    seen = []
    ds = batches.WindowDataset(c, w, classes, batch_size=16, seed=1)
    assert len(ds) == -(-len(w) // 16)
    for epoch in range(2):
        order = []
        for i in range(len(ds)):
            x, y = ds[i]
            idx = ds._order[i * 16:(i + 1) * 16]
            assert x.shape == (len(idx), FE.window_frames, FE.n_mels) and x.dtype == np.float32
            np.testing.assert_array_equal(x, c.read(w, idx))
            assert [classes[k] for k in y] == list(w.label[idx])
            order += list(idx)
        assert sorted(order) == list(range(len(w)))
        seen.append(order)
        ds.on_epoch_end()
    assert seen[0] != seen[1]  # reshuffled
    predict = batches.WindowDataset(c, w, None, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(predict[0], c.read(w, np.arange(16)))
    with pytest.raises(cache.CacheError, match=r"labels not in classes: \['Rock'\]"):
        batches.WindowDataset(c, w, ["Hip-Hop"])


FIT = textwrap.dedent("""
    import sys, keras, numpy as np
    from utils.data import batches
    from utils.data import cache
    c = cache.Cache(sys.argv[1])
    w = c.windows(labels=["Hip-Hop", "Rock"])
    ds = batches.WindowDataset(c, w, ["Hip-Hop", "Rock"], batch_size=8)
    model = keras.Sequential([keras.Input(ds[0][0].shape[1:]), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    h = model.fit(ds, epochs=1, verbose=0)
    p = model.predict(batches.WindowDataset(c, w, None, shuffle=False), verbose=0)
    print(keras.backend.backend(), len(h.history["loss"]), np.isfinite(h.history["loss"][0]), p.shape)
""")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_window_dataset_trains_a_keras_model(built, backend):
    pytest.importorskip(backend)
    _, out, _ = built
    n = len(cache.Cache(out).windows(labels=["Hip-Hop", "Rock"]))
    run = subprocess.run([sys.executable, "-c", FIT, str(out)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "KERAS_BACKEND": backend}, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [backend, "1", "True", f"({n},", "2)"]


def test_cli_extract(gtzan_sample, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["extract", "--help"])
    assert stop.value.code == 0 and "--shard-size" in capsys.readouterr().out
    argv = ["extract", "--dataset", "gtzan", "--root", str(gtzan_sample), "--out", str(tmp_path / "c")]
    assert cli.main(argv) == 0
    c = cache.Cache(tmp_path / "c")
    assert f"20 tracks: 20 extracted ({len(c.windows())} windows), 0 failed" in capsys.readouterr().out
    assert sorted(set(c.tracks.label)) == sorted(p.name for p in gtzan_sample.iterdir())
    assert c.tracks.track_id.iloc[0] == "blues.00000"
    assert cli.main(argv) == 0
    assert "20 skipped as done before (1 shards)" in capsys.readouterr().out
    assert cli.main(argv + ["--frontend", "musicnn"]) == 1
    assert "other front-end parameters" in capsys.readouterr().err


def test_cli_extract_fma_with_its_metadata(tmp_path, capsys):
    argv = ["extract", "--dataset", "fma", "--root", str(SAMPLE / "fma" / "audio"),
            "--metadata", str(SAMPLE / "fma" / "metadata" / "fma-rock-vs-hiphop.csv.gz"), "--out", str(tmp_path / "c")]
    assert cli.main(argv) == 0
    tracks = cache.Cache(tmp_path / "c").tracks.set_index("track_id")
    assert len(tracks) == 10 and tracks.label["000002"] == "Hip-Hop" and tracks.label["001039"] == "Rock"
    assert tracks.label.isna().sum() == 8


def test_a_levelled_front_end_reads_levelled_windows(tmp_path):
    """Cache.read applies FrontEnd.level as frontend.windows does (the cache stores spectrograms)."""
    import dataclasses

    fe = dataclasses.replace(MUSICNN, level="window")
    tracks = fma_clips(2)
    cache.extract(tracks, tmp_path / "c", fe, progress=False)
    c = cache.Cache(tmp_path / "c", fe)
    w = c.windows()
    for t in tracks.itertuples():
        raw = windows(LogMel(MUSICNN)(audio.load(t.path, fe.sample_rate)), MUSICNN).astype(np.float16)
        got = c.read(w, np.flatnonzero(w.track_id == t.track_id))
        levelled = np.stack([windows(x, fe)[0] for x in raw.astype(np.float32)])  # each stored window, levelled
        np.testing.assert_allclose(got, levelled, atol=1e-4)
        power = np.expm1(got.astype(np.float64) * np.log(10.0)) / 1e4
        np.testing.assert_allclose(10 * np.log10(power.mean(axis=(1, 2))), fe.level_db, atol=1e-2)


def test_silent_windows_are_left_out_of_a_tracks_mean_as_in_prediction(fma_wavs, tmp_path):
    """Cache.audible marks the windows of a silent lead-in, and track_probabilities with it averages
    the audible ones only, as Predictor does."""
    import dataclasses

    from utils.models.architectures import track_probabilities

    clip = fma_wavs[2]  # 000140, Folk
    y, sr = sf.read(clip, dtype="int16")
    padded = tmp_path / "lead_in.wav"
    sf.write(padded, np.concatenate([np.zeros(10 * sr, np.int16), y]), sr, subtype="PCM_16")
    for fe in (FE, dataclasses.replace(MUSICNN, level="window")):
        out = tmp_path / f"c_{fe.level}"
        cache.extract(table([("plain", clip, "Folk", None), ("lead_in", padded, "Folk", None)]), out, fe,
                      progress=False)
        c = cache.Cache(out, fe)
        w = c.windows()
        heard = c.audible(w)
        starts = w.start - w.tracks.offset.to_numpy()[w.track]  # frame of each window within its track
        lead_in = (w.track_id == "lead_in") & (starts + fe.window_frames <= 10 * fe.sample_rate // fe.hop_length)
        assert heard[w.track_id == "plain"].all() and lead_in.any() and not heard[lead_in].any()
        assert heard[(w.track_id == "lead_in") & ~lead_in].all()
        probs = np.where(heard[:, None], [0.2, 0.8], [0.9, 0.1])  # silence votes otherwise
        ids, p = track_probabilities(probs, w.track_id, heard)
        np.testing.assert_allclose(p, [[0.2, 0.8], [0.2, 0.8]])
        assert track_probabilities(probs, w.track_id)[1][list(ids).index("lead_in"), 0] > 0.2


def test_artists_travel_with_the_cache(gtzan_sample, tmp_path):
    from utils.data.datasets import gtzan as gtzan_table
    from utils.data.splits import make_splits

    tracks = gtzan_table(gtzan_sample)[lambda t: t.label.isin(["blues", "metal"])]
    out = tmp_path / "cache"
    cache.extract(tracks, out, FE, progress=False)
    sources = cache.Cache(out).sources().set_index("track_id")
    assert sources.artist["blues.00000"] == "John Lee Hooker" and sources.artist["metal.00001"] == "Gamma Ray"
    assert sources.recording["blues.00001"] == "I'm In The Mood For Love"
    # a split made from the cache keeps an artist on one side, as one made from the dataset does
    split = make_splits(sources.reset_index(), (0.5, 0.5, 0.0))
    assert split.groupby(sources.artist.to_numpy()).nunique().max() == 1
    old = tmp_path / "old"  # a cache written before artists were recorded reads them as unknown
    cache.extract(table([("x", gtzan_sample / "blues/blues.00000.wav", "blues", None)]), old, FE, progress=False)
    plan = pd.read_csv(old / "tracks.csv").drop(columns=["artist", "recording"])
    plan.to_csv(old / "tracks.csv", index=False)
    assert cache.Cache(old).sources().artist.isna().all()


def test_an_excerpt_cache_holds_the_middle_of_each_track_as_fma_cut_it(gtzan_sample, tmp_path):
    """fma_full's untrimmed tracks: FMA's own middle 30 s (here 10 s of a 30 s clip), stated in the record."""
    from utils.audio.budget import middle_excerpt

    tracks = table([("blues.00000", gtzan_sample / "blues/blues.00000.wav", "blues", None)])
    out = tmp_path / "excerpt"
    cache.extract(tracks, out, FE, excerpt=10.0, progress=False)
    assert cache.excerpt_seconds(out) == 10.0
    built = cache.Cache(out)
    offset, seconds = middle_excerpt(30.0, 10.0)
    expected = LogMel(FE)(audio.load(tracks.path[0], FE.sample_rate, offset, seconds)).astype(np.float16)
    frames = np.load(out / "shards" / "00000.npy")
    np.testing.assert_allclose(frames.astype(np.float32), expected.astype(np.float32), atol=0.05)
    assert built.tracks.n_frames[0] == len(expected)
    with pytest.raises(cache.CacheError, match="was made from 10 s excerpts, not whole tracks"):
        cache.extract(tracks, out, FE, progress=False)
    whole = tmp_path / "whole"
    cache.extract(tracks, whole, FE, progress=False)
    assert cache.excerpt_seconds(whole) is None and cache.Cache(whole).tracks.n_frames[0] > 2 * len(expected)
