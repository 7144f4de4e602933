"""`fma-genre train --model musicnn`: the transfer model from a labelled folder, GTZAN, FMA with its metadata
or a cache's audio files, frozen or fine-tuned, through the real command line (in this process, as
`fma-genre` runs it; one test in a process of its own), then served by the prediction path with its card;
bad input is one line."""
import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    """``fma-genre ARGS`` through its entry point in this process (no second TensorFlow start-up), from the
    repository's root, with what it printed."""
    from utils.apps.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["fma-genre", *args], rc, out.getvalue(), err.getvalue())


def shell(*args: str) -> subprocess.CompletedProcess:
    """``fma-genre ARGS`` as a user's shell runs it: a process of its own."""
    return subprocess.run([sys.executable, "-m", "utils.apps.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, gtzan_sample) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("folder")
    for genre in ("classical", "metal"):
        shutil.copytree(gtzan_sample / genre, root / genre)
    out = tmp_path_factory.mktemp("run") / "run"
    done = cli("train", "--model", "musicnn", "--dataset", "folder", "--root", str(root), "--copies", "1",
               "--head", "linear", "--out", str(out))
    return root, out, done


def test_train_writes_a_model_that_predict_serves(trained):
    from utils.models.predict import load_predictor

    root, out, done = trained
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model:" in done.stdout and "no test figures" in done.stdout  # 2 clips per genre: nothing held out
    card = json.loads((out / "model.card.json").read_text())
    assert card["labels"] == ["classical", "metal"]
    assert card["frontend"]["level"] == card["frontend"]["band_level"] == "window"  # the shipped model's front end
    assert len(list((out / "embeddings").glob("*.npy"))) == 4 * 2  # each clip, clean and one copy
    predictor = load_predictor(out / "model.keras")
    for genre in ("classical", "metal"):
        for path in sorted((root / genre).glob("*.wav")):
            assert predictor.predict_file(path).genre == genre


def test_train_resumes_from_cached_embeddings(trained):
    root, out, _ = trained
    before = {p: p.stat().st_mtime_ns for p in (out / "embeddings").glob("*.npy")}
    done = cli("train", "--model", "musicnn", "--dataset", "folder", "--root", str(root), "--copies", "1",
               "--head", "linear", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in (out / "embeddings").glob("*.npy")} == before


def test_train_refuses_a_folder_without_genres_in_one_line(tmp_path, sample):
    shutil.copy(sample / "fma" / "audio" / "001" / "001039.mp3", tmp_path / "song.mp3")
    done = cli("train", "--model", "musicnn", "--dataset", "folder", "--root", str(tmp_path),
               "--out", str(tmp_path / "run"))
    assert done.returncode == 1 and "Traceback" not in done.stderr  # TensorFlow's start-up log may precede it
    assert done.stderr.strip().splitlines()[-1].startswith("fma-genre: error: ")
    assert "two sub-folders" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "model.keras").exists()


def test_train_says_what_a_cnn_needs(tmp_path):
    done = cli("train", "--out", str(tmp_path / "run"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--cache is needed" in done.stderr.strip().splitlines()[-1]


def _last_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("fma-genre: error: ")
    return line


def test_train_from_the_gtzan_loader(tmp_path, gtzan_sample):
    out = tmp_path / "run"
    done = cli("train", "--model", "musicnn", "--dataset", "gtzan", "--root", str(gtzan_sample),
               "--classes", "blues", "jazz", "--copies", "0", "--head", "linear", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((out / "model.card.json").read_text())
    assert card["labels"] == ["blues", "jazz"] and card["data"]["source"] == str(gtzan_sample)
    assert card["data"]["per_label"] == {"blues": 2, "jazz": 2} and card["data"]["split"] == "all training"
    assert card["training"]["base"] == "MSD_musicnn, frozen" and "fine_tune" not in card["training"]
    assert len(list((out / "embeddings").glob("*.npy"))) == 4  # no augmented copies


def test_train_from_fma_with_its_metadata(tmp_path, sample):
    out = tmp_path / "run"
    done = cli("train", "--model", "musicnn", "--dataset", "fma", "--root", str(sample / "fma" / "audio"),
               "--metadata", str(sample / "fma" / "metadata" / "fma-rock-vs-hiphop.csv.gz"), "--copies", "0",
               "--head", "linear", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((out / "model.card.json").read_text())
    assert card["labels"] == ["Hip-Hop", "Rock"] and card["data"]["n_tracks"] == 2  # the labelled clips only


def test_train_from_a_cache_uses_its_audio_files(tmp_path, gtzan_sample):
    root = tmp_path / "folder"
    for genre in ("country", "reggae"):
        shutil.copytree(gtzan_sample / genre, root / genre)
    done = cli("extract", "--dataset", "folder", "--root", str(root), "--out", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "run"
    done = cli("train", "--model", "musicnn", "--dataset", "cache", "--cache", str(tmp_path / "cache"),
               "--copies", "0", "--head", "linear", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((out / "model.card.json").read_text())
    assert card["labels"] == ["country", "reggae"] and card["data"]["source"] == str(tmp_path / "cache")
    assert card["frontend"]["n_mels"] == 96  # musicnn's own front end, not the cache's spectrograms

    shutil.rmtree(root)  # the cache stays, its audio is gone: one line, no model
    done = cli("train", "--model", "musicnn", "--dataset", "cache", "--cache", str(tmp_path / "cache"),
               "--out", str(tmp_path / "run2"))
    assert "none of its 4 labelled audio files exists" in _last_line(done)
    assert not (tmp_path / "run2" / "model.keras").exists()


def test_fine_tuning_writes_a_model_that_predict_takes(tmp_path, gtzan_sample):
    root = tmp_path / "folder"
    for genre in ("classical", "metal"):
        shutil.copytree(gtzan_sample / genre, root / genre)
    out = tmp_path / "run"
    done = cli("train", "--model", "musicnn", "--dataset", "folder", "--root", str(root), "--copies", "0",
               "--head", "linear", "--fine-tune", "1", "--batch-size", "16", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((out / "model.card.json").read_text())
    tuned = card["training"]["fine_tune"]
    assert (tuned["epochs"], tuned["learning_rate"], tuned["batch_size"]) == (1, 1e-5, 16)
    assert len(tuned["history"]["loss"]) == 1 and "fine-tuned" in card["training"]["base"]
    assert len(list((out / "windows").glob("*.npy"))) == 4  # the windows it tuned on: the clean clips
    done = cli("predict", "--model", str(out / "model.keras"), "--format", "json", str(root))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)
    assert sorted(Path(r["path"]).parent.name == r["genre"] for r in rows) == [True] * 4


@pytest.mark.parametrize("args, says", [
    (("--dataset", "fma", "--root", "data/sample/fma/audio"), "--dataset fma needs --metadata"),
    (("--dataset", "gtzan"), "--dataset gtzan needs --root DIR"),
    (("--dataset", "folder", "--root", "data/sample/fma/audio", "--model", "cnn"), "trains the transfer model"),
    (("--dataset", "cache"), "--dataset cache needs --cache DIR"),
    (("--dataset", "fma", "--root", "data/sample/fma/audio", "--metadata", "data/sample/fma/metadata/tracks.csv",
      "--classes", "Rock"), "at least two labels"),
    (("--dataset", "folder", "--root", "data/sample/fma/audio", "--fine-tune", "-1"), "fine_tune >= 0"),
])
def test_bad_input_is_one_line(tmp_path, args, says, capsys, monkeypatch):
    from utils.apps.cli import main

    monkeypatch.chdir(ROOT)
    model = () if "--model" in args else ("--model", "musicnn")
    assert main(["train", *model, *args, "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fma-genre: error: ") and says in err[0], err
    assert not (tmp_path / "run" / "model.keras").exists()


def test_bad_input_is_one_line_from_the_shell_too(tmp_path):
    """The same, as a user's shell runs it: a process of its own, no traceback, exit status 1."""
    done = shell("train", "--model", "musicnn", "--dataset", "gtzan", "--out", str(tmp_path / "run"))
    assert "--dataset gtzan needs --root DIR" in _last_line(done)


def test_a_table_keeps_its_own_split_else_a_stratified_one():
    import pandas as pd

    from utils.models.transfer_train import split_tracks

    ids = [f"{n:03d}" for n in range(40)]
    table = pd.DataFrame({"track_id": ids, "path": ids, "label": ["a", "b"] * 20,
                          "split": ["training"] * 30 + ["validation"] * 5 + ["test"] * 5})
    split, how = split_tracks(table)
    assert how == "the table's split" and split.test == tuple(ids[35:])
    split, how = split_tracks(table.assign(split=pd.NA, artist=[f"artist {n // 2}" for n in range(40)]))
    assert how.startswith("stratified 80/10/10") and "grouped by artist" in how
    assert (len(split.training), len(split.validation), len(split.test)) == (32, 4, 4)
    assert not {int(t) // 2 for t in split.training} & {int(t) // 2 for t in split.test}  # no artist in both
    split, how = split_tracks(table.iloc[:10].assign(split=pd.NA))
    assert how == "all training" and len(split.training) == 10 and not split.test


def test_file_windows_are_streamed_once_per_epoch(tmp_path):
    import numpy as np

    from utils.data.batches import FileWindowDataset

    files = []
    for n, count in enumerate((3, 5)):
        files.append(tmp_path / f"{n}.npy")
        np.save(files[-1], np.full((count, 4, 2), n, np.float16))
    data = FileWindowDataset(files, [7, 9], batch_size=3, seed=0)
    batches = [data[i] for i in range(len(data))]
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert len(data) == 3 and x.dtype == np.float32 and x.shape == (8, 4, 2)
    assert sorted(y.tolist()) == [7] * 3 + [9] * 5 and (x[:, 0, 0] == np.where(y == 7, 0, 1)).all()


def test_train_uses_the_shipped_models_front_end():
    """A retrained default model with another front end must move `fma-genre train` with it (or say why)."""
    from utils.audio.frontend import FrontEnd
    from utils.models.transfer_train import FRONTEND
    card = json.loads((ROOT / "models" / "default.card.json").read_text())
    assert FrontEnd.from_dict(card["frontend"]) == FRONTEND


def test_train_defaults_to_the_shipped_models_recipe():
    """The robustness experiment chose the shipped recipe; `fma-genre train` and TransferConfig default to it:
    its head, its embeddings and its weighting of artists."""
    from utils.apps.cli import build_parser
    from utils.models.transfer_train import HEAD_CHOICES, HEADS, LAYERS, TransferConfig
    training = json.loads((ROOT / "models" / "default.card.json").read_text())["training"]
    card = training["heads"]
    default = TransferConfig()
    assert HEAD_CHOICES[default.head] == tuple(card) and tuple(training["embeddings"]) == LAYERS
    assert json.loads(json.dumps({h: dataclasses.asdict(HEADS[h]) | {"seed": 0} for h in card})) == card
    assert default.by_artist == (training["weighting"] != "none")
    args = build_parser().parse_args(["train", "--model", "musicnn", "--out", "x"])
    assert args.head == default.head and (args.weighting == "artist") == default.by_artist
