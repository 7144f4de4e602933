"""`fma-genre train --model musicnn --dataset folder --root DIR`: the transfer model from a labelled folder,
through the real command line, then served by the prediction path with its card."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utils.apps.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("folder")
    for genre in ("classical", "metal"):
        shutil.copytree(sample / "gtzan" / genre, root / genre)
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
    assert card["labels"] == ["classical", "metal"] and card["frontend"]["level"] == "window"
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
    shutil.copy(next((sample / "gtzan" / "metal").glob("*.wav")), tmp_path / "song.wav")
    done = cli("train", "--model", "musicnn", "--dataset", "folder", "--root", str(tmp_path),
               "--out", str(tmp_path / "run"))
    assert done.returncode == 1 and "Traceback" not in done.stderr  # TensorFlow's start-up log may precede it
    assert done.stderr.strip().splitlines()[-1].startswith("fma-genre: error: ")
    assert "at least two sub-folders" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "model.keras").exists()


def test_train_says_what_a_cnn_needs(tmp_path):
    done = cli("train", "--out", str(tmp_path / "run"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--cache is needed" in done.stderr.strip().splitlines()[-1]
