"""Organising a real music folder by genre: copies, links, playlists, tags, resume, and never touching originals."""
import hashlib
import shutil

import mutagen
import pytest

from utils.apps.cli import main
from utils.apps.organize import OrganizeConfig, organize
from utils.models.predict import load_predictor


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return load_predictor(tiny_model)


@pytest.fixture
def library(tmp_path, sample):
    """A user's library: two genres of real clips in nested folders, plus one broken file."""
    lib = tmp_path / "music"
    for genre in ("classical", "metal"):
        shutil.copytree(sample / "gtzan" / genre, lib / "albums" / genre)
    shutil.copy(sample / "fma" / "audio" / "000" / "000002.mp3", lib / "single.mp3")
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
    for genre in ("classical", "metal"):  # the model was trained on these very clips
        assert (dest / genre / "albums" / genre / f"{genre}.00000.wav").is_file()
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
    real = predictor.predict_file
    predictor.predict_file = lambda path, *a, **k: calls.append(path) or real(path, *a, **k)
    try:
        again = list(organize(predictor, [library], dest))
        assert calls == [] and len(again) == 6
        shutil.copy(library / "albums" / "metal" / "metal.00001.wav", library / "new.wav")
        list(organize(predictor, [library], dest))
        assert [p.name for p in calls] == ["new.wav"]
    finally:
        predictor.predict_file = real


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
    placed = {p.source.name: p for p in organize(predictor, [library], dest, OrganizeConfig(write_tags=True))}
    copy = dest / placed["single.mp3"].destination
    assert mutagen.File(copy, easy=True)["genre"] == [placed["single.mp3"].genre]
    assert mutagen.File(original, easy=True).tags == tags_before
    with pytest.raises(ValueError, match="a link would change your original"):
        OrganizeConfig(mode="hardlink", write_tags=True)


def test_uncertain_tracks_and_destination_checks(predictor, library, tmp_path):
    placed = list(organize(predictor, [library], tmp_path / "sure", OrganizeConfig(min_probability=1.01)))
    assert all(p.destination.startswith("_uncertain/") for p in placed if p.destination)
    with pytest.raises(ValueError, match="must not be inside"):
        list(organize(predictor, [library], library / "sorted"))


def test_organize_command(tiny_model, library, tmp_path, capsys):
    rc = main(["organize", str(library), str(tmp_path / "cli"), "--model", str(tiny_model), "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 1  # the broken file
    assert "would place 5 of 6 files" in out and "would copy" in out
    assert "failed:" in err and "broken.mp3: not an audio file" in err and "Traceback" not in err
    assert not (tmp_path / "cli").exists()
