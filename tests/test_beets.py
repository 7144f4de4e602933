"""The beets plugin against the real thing: a library made by beets' own `beet import` of the sample
MP3s in a temporary folder, `beet fmagenre` run through beets' CLI, then the SQLite library and the
files' tags read back."""
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import pytest
from mutagen.id3 import ID3

from utils.apps import tags
from utils.models.predict import DEFAULT_MODEL, load_predictor

BEET = Path(sys.executable).with_name("beet")
WINDOWS = 2  # a small budget keeps each run to seconds; the interrupted run takes the default, to be slower
FIELDS = ("fmagenre", "fmagenre_probability", "fmagenre_model", "fmagenre_taxonomy")


class Library:
    """A beets library in a temporary folder: its config, database and music, and `beet` run on it."""

    def __init__(self, root: Path, plugin_config: str = "") -> None:
        self.root, self.db, self.music = root, root / "library.db", root / "library"
        config = root / "beets"
        config.mkdir()
        (config / "config.yaml").write_text(
            f"directory: {self.music}\nlibrary: {self.db}\nplugins: fmagenre\nui:\n  color: no\n"
            f"fmagenre:\n  windows: {WINDOWS}\n{plugin_config}")
        self.env = {**os.environ, "BEETSDIR": str(config)}

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(BEET), *args], env=self.env, cwd=self.root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def beet(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        run = subprocess.run([str(BEET), *args], env=self.env, cwd=self.root, text=True, capture_output=True,
                             timeout=300)
        assert "Traceback" not in run.stderr
        if check:
            assert run.returncode == 0, run.stderr
        return run

    def items(self) -> dict[str, dict]:
        """Every item by its path in the library: its genres, mtime and flexible fields, from the SQLite file."""
        with sqlite3.connect(self.db) as db:
            items = {id_: {"path": self.music / os.fsdecode(path), "genres": genres, "mtime": mtime}
                     for id_, path, genres, mtime in db.execute("SELECT id, path, genres, mtime FROM items")}
            for id_, key, value in db.execute("SELECT entity_id, key, value FROM item_attributes"):
                items[id_][key] = value
        return {str(item["path"]): item for item in items.values()}

    def digests(self) -> dict[str, str]:
        """SHA-1 of the database and of every file in the library."""
        files = [self.db, *sorted(p for p in self.music.rglob("*") if p.is_file())]
        return {str(p): hashlib.sha1(p.read_bytes()).hexdigest() for p in files}


def file_tags(path: Path) -> dict[str, str]:
    """The genre tag and fma-genre's namespaced tags of an MP3, as a player reads them."""
    id3 = ID3(path)
    found = {"genre": str(id3["TCON"]) if "TCON" in id3 else ""}
    found.update({frame.desc: str(frame) for frame in id3.getall("TXXX") if frame.desc.startswith("FMA_GENRE")})
    return found


@pytest.fixture
def library(tmp_path, sample) -> Library:
    """The 10 FMA sample MP3s imported by beets as they are (`-A`); the three of 000/ lose their genre tag,
    so that --write-genre has genres to fill as well as genres to keep."""
    music = tmp_path / "incoming"
    shutil.copytree(sample / "fma" / "audio", music)
    for path in (music / "000").glob("*.mp3"):
        id3 = ID3(path)
        id3.delall("TCON")
        id3.save()
    lib = Library(tmp_path)
    lib.beet("import", "-A", str(music))
    assert len(lib.items()) == 10
    return lib


def complete(item: dict) -> bool:
    """Whether an item carries the plugin's four fields, and its file the same values in its tags."""
    if not all(f in item for f in FIELDS):
        return False
    found = file_tags(item["path"])
    return (found.get(tags.PREDICTION) == item["fmagenre"] and found.get(tags.MODEL) == item["fmagenre_model"]
            and found.get(tags.PROBABILITY) == f"{float(item['fmagenre_probability']):.4f}")


def test_pretend_shows_changes_and_changes_nothing(library):
    before = library.digests()
    run = library.beet("fmagenre", "-p", "-w", "--write-genre", "--force")
    assert library.digests() == before  # the database and every file, byte for byte
    assert run.stdout.count("  fmagenre: ") == 10 and run.stdout.count("  fmagenre_probability: ") == 10
    assert "would classify 10 of 10 items with gtzan" in run.stdout


def test_write_stores_fields_fills_empty_genres_and_tags_files(library):
    before = library.items()
    run = library.beet("fmagenre", "--write-genre", "-w")
    assert "classified 10 of 10 items with gtzan" in run.stdout
    after = library.items()
    predictor = load_predictor(max_windows=WINDOWS)  # the plugin's answer is the Predictor's, budget and all
    direct = {str(path): result for path, result in predictor.predict_files([Path(p) for p in after])}
    filled = 0
    for path, item in after.items():
        was = before[path]
        probability = float(item["fmagenre_probability"])
        assert item["fmagenre"] == direct[path].genre
        assert probability == pytest.approx(float(direct[path].probabilities.max()), abs=1e-4)
        assert item["fmagenre_model"] == "gtzan" and item["fmagenre_taxonomy"] == "gtzan"
        assert complete(item)
        if was["genres"]:  # a genre of the user's is kept (no --force)
            assert item["genres"] == was["genres"] and file_tags(item["path"])["genre"] == was["genres"]
        elif probability >= 0.5:
            assert item["genres"] == item["fmagenre"] == file_tags(item["path"])["genre"]
            filled += 1
        else:
            assert item["genres"] == "" and file_tags(item["path"])["genre"] == ""
        assert int(item["mtime"]) == int(item["path"].stat().st_mtime)  # beets sees no outside change
    assert filled >= 1
    listed = library.beet("ls", "-f", "$title|$genres|$fmagenre|$fmagenre_probability").stdout.splitlines()
    assert len(listed) == 10 and all(len(line.split("|")[3]) == 4 for line in listed)  # e.g. 0.97


def test_skips_items_done_by_the_same_model(library, tmp_path):
    library.beet("fmagenre")
    before = library.digests()
    again = library.beet("fmagenre")
    assert "classified 0 of 10 items" in again.stdout and "10 done by this model before" in again.stdout
    assert library.digests() == before
    forced = library.beet("fmagenre", "--force")
    assert "classified 10 of 10 items" in forced.stdout
    other = tmp_path / "models" / "other.keras"  # the shipped model under another name: another model
    other.parent.mkdir()
    for suffix in (".keras", ".card.json", ".onnx"):
        shutil.copy(DEFAULT_MODEL.with_suffix(suffix), other.with_suffix(suffix))
    library.beet("fmagenre", "-m", str(other), "--names", "fma")
    items = library.items().values()
    assert {item["fmagenre_model"] for item in items} == {str(other)}
    assert {item["fmagenre_taxonomy"] for item in items} == {"fma"}
    assert {item["fmagenre"] for item in items} <= set(tags.GTZAN_TO_FMA.values())


def test_unreadable_file_is_reported_and_left_alone(library):
    broken = sorted(library.items())[0]
    Path(broken).write_bytes(b"not an mp3 at all" * 100)
    before = library.digests()
    run = library.beet("fmagenre", "--write-genre", "-w", check=False)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert [line for line in lines if broken in line and "not an audio file" in line] and len(lines) == 2
    items = library.items()
    assert not any(f in items[broken] for f in FIELDS) and library.digests()[broken] == before[broken]
    assert all(complete(item) for path, item in items.items() if path != broken)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_each_item_untouched_or_complete(library, signum):
    before, digests = library.items(), library.digests()
    proc = library.popen("fmagenre", "--write-genre", "-w", "--windows", "12")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # stop it once the first item is stored
        if any("fmagenre" in item for item in library.items().values()):
            break
        time.sleep(0.02)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr and proc.returncode != 0
    after = library.items()
    done = [path for path, item in after.items() if "fmagenre" in item]
    assert 1 <= len(done) < 10, "the run should be stopped midway"
    for path, item in after.items():
        if path in done:
            assert complete(item)
        else:  # untouched: its row and its file as they were
            assert item == before[path] and library.digests()[path] == digests[path]
    rest = library.beet("fmagenre", "--write-genre", "-w")
    assert f"classified {10 - len(done)} of 10" in rest.stdout
    assert all(complete(item) for item in library.items().values())


def test_auto_classifies_on_import_with_names_of_ones_own(tmp_path, sample):
    names = "".join(f"    {genre}: {genre.upper()}\n" for genre in tags.GTZAN)  # a mapping in config.yaml
    lib = Library(tmp_path, f"  auto: yes\n  names:\n{names}")
    lib.beet("import", "-A", str(sample / "fma" / "audio"))
    items = lib.items()
    assert len(items) == 10 and all(complete(item) for item in items.values())  # the import writes tags
    assert {item["fmagenre_taxonomy"] for item in items.values()} == {"custom"}
    assert {item["fmagenre"] for item in items.values()} <= {genre.upper() for genre in tags.GTZAN}


def test_bad_options_are_one_line(library):
    before = library.digests()
    for args, says in [(("--names", "klingon"), "names must be one of model, fma, gtzan"),
                       (("--min-probability", "2"), "min_probability must be between 0 and 1"),
                       (("-m", "nowhere/model.keras"), "nowhere/model.keras")]:
        run = library.beet("fmagenre", *args, check=False)
        assert run.returncode == 1 and len(run.stderr.splitlines()) == 1 and says in run.stderr
    assert library.digests() == before
