"""``fma-genre evaluate``: a model scored on a labelled folder of pictures or of audio, one line and JSON."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SAMPLE, SAMPLE_TRACKS, shared_data
from utils.data.datasets import DatasetError
from utils.data.pictures import GENRES, pictures
from utils.evaluation.labelled import evaluate_folder, label_indices
from utils.models.predict import SHIPPED, load_predictor, model_path


@pytest.fixture(scope="module")
def picture_model(tmp_path_factory):
    """An untrained cnn1d on the fma_small picture front end, saved with its card and ONNX graph."""
    from utils.audio.frontend import FMA_SMALL
    from utils.models.architectures import build_model
    from utils.models.card import ModelCard, save_model
    from utils.models.runtime import export

    path = tmp_path_factory.mktemp("model") / "pictures.keras"
    model = build_model("cnn1d", (128, 128), len(GENRES), np.full(128, 100.0), np.full(128, 60.0))
    save_model(model, path, ModelCard(labels=GENRES, frontend=FMA_SMALL, architecture="cnn1d",
                                      training={"selection": "untrained, for the tests"}))
    export(path)
    return path


@pytest.fixture(scope="module")
def picture_folder(tmp_path_factory):
    """Three validation pictures of each genre, laid out <split>/<Genre>/<track_id>.png."""
    tracks = pictures(shared_data("fma_small_mel"), splits=("validation",)).groupby("label").head(3)
    root = tmp_path_factory.mktemp("pictures")
    for path, label in zip(tracks.path, tracks.label):
        (root / "validation" / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / "validation" / label / path.rsplit("/", 1)[1])
    return root


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    """The labelled sample clips laid out <genre>/<file> (genre names as GTZAN would write them)."""
    import pandas as pd

    labels = pd.read_csv(SAMPLE_TRACKS, index_col=0, header=[0, 1])[("track", "genre_top")]
    root = tmp_path_factory.mktemp("audio")
    for mp3 in sorted((SAMPLE / "fma" / "audio").rglob("*.mp3")):
        genre = labels[int(mp3.stem)].lower()
        (root / genre).mkdir(exist_ok=True)
        shutil.copyfile(mp3, root / genre / mp3.name)
    return root


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utils.apps.cli", "evaluate", *args],
                          capture_output=True, text=True, timeout=600)


def test_evaluate_pictures_prints_one_line_and_writes_json(picture_model, picture_folder, tmp_path):
    out = cli(str(picture_folder), "--model", str(picture_model), "--output", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line and "accuracy" in line and "of 24 pictures (8 genres)" in line
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["n_tracks"] == 24 and result["kind"] == "pictures"
    assert set(result["per_class"]) == set(GENRES) and np.asarray(result["confusion_matrix"]).sum() == 24
    assert {"accuracy", "macro_f1", "log_loss", "ece"} <= set(result)
    assert result["how_chosen"] == "untrained, for the tests"
    assert f"{100 * result['accuracy']:.1f} %" in line


def test_evaluate_a_split_folder_or_its_genre_level_alike(picture_model, picture_folder):
    predictor = load_predictor(picture_model)
    whole, _ = evaluate_folder(predictor, picture_folder)
    inner, _ = evaluate_folder(predictor, picture_folder / "validation")
    assert whole["accuracy"] == inner["accuracy"] and whole["n_tracks"] == inner["n_tracks"] == 24


def test_evaluate_audio_goes_through_the_model_front_end(picture_model, audio_folder, tmp_path):
    """Audio laid out <genre>/<file>: the picture model makes each file's picture; genre names match
    the model's labels without regard to case or punctuation (hip-hop is Hip-Hop)."""
    (audio_folder / "rock" / "broken.mp3").write_bytes(b"PK\x03\x04" + bytes(64))
    out = cli(str(audio_folder), "--model", str(picture_model), "--output", str(tmp_path / "r.json"))
    assert out.returncode == 1 and "Traceback" not in out.stderr  # one file failed, the rest were scored
    assert "of 10 tracks" in out.stdout and "1 file(s) failed" in out.stdout
    assert "broken.mp3: not an audio file" in out.stderr
    assert json.loads((tmp_path / "r.json").read_text())["genres"]["Experimental"] == 5
    (audio_folder / "rock" / "broken.mp3").unlink()


def test_unknown_genres_and_pictures_for_an_audio_model_are_one_line(picture_model, picture_folder, tmp_path):
    with pytest.raises(DatasetError, match=r"genre folder\(s\) \['Polka'\] are not among"):
        label_indices(["Rock", "Polka"], GENRES, tmp_path)
    out = cli(str(picture_folder), "--model", "gtzan")
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "holds pictures, but this model takes audio" in out.stderr
    out = cli(str(tmp_path / "nowhere"), "--model", str(picture_model))
    assert out.returncode == 1 and "nowhere: no such folder" in out.stderr and "Traceback" not in out.stderr


def test_shipped_models_have_names():
    assert model_path("fma-small") == SHIPPED["fma-small"] and model_path(None) == SHIPPED["gtzan"]
    assert model_path("runs/x.keras").name == "x.keras"
