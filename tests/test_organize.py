"""Organising a real music folder by genre: copies, links, playlists, tags, resume, and never touching originals."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import pytest

from conftest import TINY_MODEL_CLIPS
from utils.apps.cli import main
from utils.apps.organize import JOURNAL, OrganizeConfig, OrganizeError, organize
from utils.models.predict import load_predictor


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return load_predictor(tiny_model)


@pytest.fixture
def library(tmp_path, sample, fma_wavs):
    """A user's library: real clips as WAV in nested genre folders (the tiny model's two genres and
    one it does not know), an MP3, plus one broken file."""
    lib = tmp_path / "music"
    wavs = {p.stem: p for p in fma_wavs}
    for genre, track in (("Hip-Hop", "000002"), ("Rock", "001039"), ("Experimental", "001066"),
                         ("Experimental", "001069")):
        (lib / "albums" / genre).mkdir(parents=True, exist_ok=True)
        shutil.copy(wavs[track], lib / "albums" / genre / f"{track}.wav")
    shutil.copy(sample / "fma" / "audio" / "000" / "000010.mp3", lib / "single.mp3")
    (lib / "broken.mp3").write_text("not an mp3")
    return lib


def digests(folder):
    return {p: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_copies_by_genre_with_playlists_and_log(predictor, library, tmp_path):
    before = digests(library)
    dest = tmp_path / "by_genre"
    placed = list(organize(predictor, [library], dest))
    assert digests(library) == before  # originals untouched
    assert len(placed) == 6 and [p.source.name for p in placed if p.error] == ["broken.mp3"]
    for p in placed:
        if not p.error:
            target = dest / p.destination
            assert target.is_file() and target.read_bytes() == p.source.read_bytes()
            assert p.destination.startswith(p.genre + "/")
    for genre, clip in TINY_MODEL_CLIPS.items():  # the model was trained on these very clips
        assert (dest / genre / "albums" / genre / f"{clip.stem}.wav").is_file()
    playlists = {p.stem: p.read_text().splitlines() for p in dest.glob("*.m3u")}
    assert all(lines[0] == "#EXTM3U" and all((dest / e).is_file() for e in lines[1:]) for lines in playlists.values())
    assert sum(len(lines) - 1 for lines in playlists.values()) == 5
    log = (dest / "predictions.csv").read_text()
    assert "broken.mp3" in log and "not an audio file" in log
    assert not list(dest.rglob("*.part")) and not list(dest.glob(".*.tmp"))


def test_rerun_classifies_only_what_changed(predictor, library, tmp_path):
    dest = tmp_path / "out"
    list(organize(predictor, [library], dest))
    calls = []
    real = predictor.windows  # every file classified is decoded through it
    predictor.windows = lambda path, *a, **k: calls.append(path) or real(path, *a, **k)
    try:
        again = list(organize(predictor, [library], dest))
        assert calls == [] and len(again) == 6
        shutil.copy(library / "albums" / "Rock" / "001039.wav", library / "new.wav")
        list(organize(predictor, [library], dest))
        assert [p.name for p in calls] == ["new.wav"]
    finally:
        predictor.windows = real


def test_dry_run_writes_nothing(predictor, library, tmp_path):
    dest = tmp_path / "planned"
    placed = list(organize(predictor, [library], dest, OrganizeConfig(dry_run=True)))
    assert sum(bool(p.destination) for p in placed) == 5 and not dest.exists()


def test_symlinks_point_at_the_originals(predictor, library, tmp_path):
    dest = tmp_path / "links"
    for p in organize(predictor, [library], dest, OrganizeConfig(mode="symlink")):
        if p.destination:
            assert (dest / p.destination).is_symlink() and (dest / p.destination).resolve() == p.source.resolve()


def test_genre_tags_go_into_the_copies_only(predictor, library, tmp_path):
    original = library / "single.mp3"
    tags_before = mutagen.File(original, easy=True).tags
    dest = tmp_path / "tagged"
    config = OrganizeConfig(write_tags=True, model="tiny")
    placed = {p.source.name: p for p in organize(predictor, [library], dest, config)}
    copy = dest / placed["single.mp3"].destination
    assert mutagen.File(copy, easy=True)["genre"] == [placed["single.mp3"].genre]
    namespaced = {f.desc: f.text for f in mutagen.File(copy).tags.getall("TXXX")}  # utils.apps.tags, as beets'
    assert namespaced["FMA_GENRE_PROBABILITY"] == [f"{placed['single.mp3'].probability:.4f}"]
    assert namespaced["FMA_GENRE_MODEL"] == ["tiny"]
    assert mutagen.File(original, easy=True).tags == tags_before
    with pytest.raises(ValueError, match="a link would change your original"):
        OrganizeConfig(mode="hardlink", write_tags=True)


def test_uncertain_tracks_and_destination_checks(predictor, library, tmp_path):
    placed = list(organize(predictor, [library], tmp_path / "sure", OrganizeConfig(min_probability=1.01)))
    assert all(p.destination.startswith("_uncertain/") for p in placed if p.destination)
    with pytest.raises(OrganizeError, match="must not be inside"):
        list(organize(predictor, [library], library / "sorted"))


def test_organize_command(tiny_model, library, tmp_path, capsys):
    rc = main(["organize", str(library), str(tmp_path / "cli"), "--model", str(tiny_model), "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 1  # the broken file
    assert "would place 5 of 6 files" in out and "would copy" in out
    assert "failed:" in err and "broken.mp3: not an audio file" in err and "Traceback" not in err
    assert not (tmp_path / "cli").exists()


def playlist_entries(dest):
    return {p.stem: p.read_text(encoding="utf-8").splitlines()[1:] for p in dest.glob("*.m3u")}


def test_two_sources_with_one_name_are_both_kept(predictor, fma_wavs, tmp_path):
    """Item 1: two folders each holding a different 01.wav of the same genre (a Rock clip whole and
    its first 20 s)."""
    import soundfile as sf

    a, b = tmp_path / "colA", tmp_path / "colB"
    a.mkdir(), b.mkdir()
    rock = next(p for p in fma_wavs if p.stem == TINY_MODEL_CLIPS["Rock"].stem)
    shutil.copy(rock, a / "01.wav")
    y, sr = sf.read(rock, dtype="int16")
    sf.write(b / "01.wav", y[:20 * sr], sr)
    dest = tmp_path / "dest"
    placed = list(organize(predictor, [a, b], dest))
    assert [p.genre for p in placed] == ["Rock", "Rock"] and not any(p.error for p in placed)
    tag = hashlib.sha1(str((b / "01.wav").resolve()).encode()).hexdigest()[:8]
    assert [p.destination for p in placed] == ["Rock/01.wav", f"Rock/01~{tag}.wav"]
    for p in placed:  # each copy is its own source's bytes
        assert (dest / p.destination).read_bytes() == p.source.read_bytes()
    assert playlist_entries(dest) == {"Rock": ["Rock/01.wav", f"Rock/01~{tag}.wav"]}
    log = (dest / "predictions.csv").read_text()
    assert f"Rock/01~{tag}.wav" in log
    again = list(organize(predictor, [a, b], dest))  # a rerun finds both where it put them
    assert [p.destination for p in again] == [p.destination for p in placed] and all(p.resumed for p in again)
    assert len(list(dest.rglob("*.wav"))) == 2


def test_a_control_character_in_a_name_does_not_split_the_playlist(predictor, tmp_path):
    """Item 11: a file name with a newline becomes one playlist entry (the copy is named with _)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(TINY_MODEL_CLIPS["Rock"], lib / "two\nlines.mp3")
    dest = tmp_path / "dest"
    [placed] = organize(predictor, [lib], dest)
    assert placed.destination == "Rock/two_lines.mp3" and (dest / placed.destination).is_file()
    assert playlist_entries(dest) == {"Rock": ["Rock/two_lines.mp3"]}


def test_genre_tags_in_wav_copies(predictor, library, tmp_path):
    """Item 7: --write-tags on WAV wrote nothing ("'rock' not a Frame instance")."""
    dest = tmp_path / "tagged"
    placed = [p for p in organize(predictor, [library / "albums"], dest, OrganizeConfig(write_tags=True))]
    assert len(placed) == 4 and not any(p.error for p in placed)
    for p in placed:
        assert mutagen.File(dest / p.destination).tags["TCON"].text == [p.genre]
        assert mutagen.File(p.source).tags is None  # the original stays untagged


def test_a_read_only_destination_is_one_line(tiny_model, library, read_only_dir, capsys):
    """Item 3 (EROFS): a destination on a read-only file system."""
    rc = main(["organize", str(library), str(read_only_dir / "sorted"), "--model", str(tiny_model)])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert err.splitlines()[-1] == f"fma-genre: error: {read_only_dir / 'sorted'}: cannot write there " \
                                   "(Read-only file system)"


def test_hardlinks_across_file_systems_are_one_line(tiny_model, library, other_file_system, capsys):
    """Item 3 (EXDEV): --mode hardlink into another file system."""
    dest = other_file_system / "links"
    rc = main(["organize", str(library / "albums"), str(dest), "--model", str(tiny_model), "--mode", "hardlink"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    [line] = [l for l in err.splitlines() if l.startswith("fma-genre: error:")]
    assert line.startswith(f"fma-genre: error: {library / 'albums'}/") and "on another file system" in line
    assert "--mode copy" in line and not list(dest.rglob("*.wav"))


@pytest.mark.timeout(300)
def test_a_killed_run_resumes_without_classifying_again(tiny_model, predictor, library, fma_wavs, tmp_path):
    """Item 6: the CLI killed (SIGKILL) midway; the rerun classifies only what the journal lacks."""
    import numpy as np
    import soundfile as sf

    for i, wav in enumerate(fma_wavs[:6]):
        shutil.copy(wav, library / f"more_{i}.wav")
    y, sr = sf.read(fma_wavs[0], dtype="int16")
    sf.write(library / "zz_long.wav", np.tile(y, 20), sr)  # ten minutes, last: the run is still going
    dest = tmp_path / "dest"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "utils.apps.cli", "organize", str(library), str(dest),
                             "--model", str(tiny_model)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = dest / JOURNAL
    deadline = time.monotonic() + 240
    while not (journal.exists() and len(journal.read_text().splitlines()) >= 3) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {json.loads(line)["source"] for line in journal.read_text().splitlines()}
    assert len(kept) >= 3 and not (dest / "predictions.csv").exists()
    calls = []
    real = predictor.windows  # every file classified is decoded through it
    predictor.windows = lambda path, *a, **k: calls.append(str(path)) or real(path, *a, **k)
    try:
        placed = list(organize(predictor, [library], dest))
    finally:
        predictor.windows = real
    assert len(placed) == 13 and set(calls) == {str(p.source) for p in placed} - kept
    assert {str(p.source) for p in placed if p.resumed} == kept
    assert not journal.exists() and not list(dest.rglob("*~*"))  # no second copy of a file the killed run placed
    assert sum(len(e) for e in playlist_entries(dest).values()) == 12
