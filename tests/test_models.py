"""Model builders, prediction helpers and model cards, on windows of real FMA sample clips."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from utils.models.registry import CNN_MODELS, n_outputs
from utils.models import architectures as models
from utils.audio.frontend import MUSICNN, FrontEnd, LogMel, logmel_file, windows
from utils.models.card import ModelCard, ModelCardError, card_path, load_model, save_model
from utils.models.training import band_stats

AUDIO = Path(__file__).resolve().parents[1] / "data" / "sample" / "fma" / "audio"
CLIPS = {"Hip-Hop": AUDIO / "000" / "000002.mp3", "Pop": AUDIO / "000" / "000010.mp3",
         "Rock": AUDIO / "001" / "001039.mp3"}  # three labelled sample clips


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    """Windows (n, 128 frames, 128 Mels) of one Hip-Hop and one Rock clip."""
    fe = FrontEnd()
    lm = LogMel(fe)
    return np.concatenate([windows(logmel_file(CLIPS[g], lm), fe) for g in ("Hip-Hop", "Rock")])


def build(name: str, x: np.ndarray, n_classes: int) -> keras.Model:
    return models.build_model(name, x.shape[1:], n_classes, *band_stats(x))


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("name", list(CNN_MODELS))
def test_builders_output_probabilities(name, n_classes, x):
    model = build(name, x, n_classes)
    assert model.input_shape == (None, 128, 128)
    # seconds-to-minutes training on a CPU; cnn1d has more weights but about 2 % of a 2D CNN's arithmetic
    assert model.count_params() < (500_000 if name == "cnn1d" else 200_000)
    out = model.layers[-1]
    assert out.units == n_outputs(n_classes)
    assert out.activation is (keras.activations.sigmoid if n_classes == 2 else keras.activations.softmax)
    p = models.predict_proba(model, x)
    assert p.shape == (len(x), n_classes)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", list(CNN_MODELS))
def test_builders_take_input_shape_from_the_front_end(name):
    lm = LogMel(MUSICNN)
    x = windows(logmel_file(CLIPS["Pop"], lm), MUSICNN)
    assert x.shape[1:] == (187, 96)
    p = models.predict_proba(build(name, x, 10), x)
    assert p.shape == (len(x), 10)


def test_build_model_rejects_unknown_names_and_single_class(x):
    with pytest.raises(ValueError, match="unknown model 'vgg'.*cnn, crnn, parallel, short_res"):
        models.build_model("vgg", (128, 128), 10, np.zeros(128), np.ones(128))
    with pytest.raises(ValueError, match="at least 2 classes"):
        build("cnn", x, 1)


def test_input_layer_standardises_each_band(x):
    model = build("cnn", x, 2)
    z = np.asarray(model.get_layer("band_standardise")(x))
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=(0, 1)), 1.0, atol=1e-2)


def test_track_probabilities_average_windows_per_track():
    probs = np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1], [0.7, 0.3], [0.5, 0.5]])
    ids, track = models.track_probabilities(probs, ["b", "b", "a", "b", "a"])
    assert ids.tolist() == ["a", "b"]
    np.testing.assert_allclose(track, [[0.7, 0.3], [13 / 30, 17 / 30]])
    with pytest.raises(ValueError, match="n_windows track ids"):
        models.track_probabilities(probs, ["a", "b"])


# --- model cards ---------------------------------------------------------------

def card_for(labels, fe=FrontEnd(), architecture="cnn") -> ModelCard:
    return ModelCard(labels=tuple(labels), frontend=fe, architecture=architecture,
                     data={"dataset": "FMA sample", "split": "clip 0 train"},
                     metrics={"val": {"accuracy": 0.5}})


@pytest.mark.parametrize("fe", [FrontEnd(), MUSICNN], ids=["default", "musicnn"])
def test_card_round_trip_and_same_predictions(tmp_path, fe):
    """The loaded card's front end makes the windows the loaded model was built for."""
    x = windows(logmel_file(CLIPS["Rock"], LogMel(fe)), fe)
    model = build("cnn", x, 3)
    card = dataclasses.replace(card_for(["blues", "jazz", "rock"], fe=fe), temperature=1.5)
    assert save_model(model, tmp_path / "m.keras", card) == tmp_path / "m.card.json"
    loaded, loaded_card = load_model(tmp_path / "m.keras")
    assert loaded_card == card and loaded_card.frontend == fe
    assert loaded.input_shape[1:] == (loaded_card.frontend.window_frames, loaded_card.frontend.n_mels)
    assert set(loaded_card.versions) >= {"keras", "numpy", "backend", loaded_card.versions["backend"]}
    np.testing.assert_allclose(models.predict_proba(loaded, x), models.predict_proba(model, x), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.card.json", "m.keras"]  # no temp files left


def edit_card(path: Path, change) -> None:
    d = json.loads(card_path(path).read_text())
    change(d)
    card_path(path).write_text(json.dumps(d))


@pytest.mark.parametrize("change, message", [
    (lambda d: d["frontend"].update(hop=256), r"front end: unknown front-end parameters: \['hop'\]"),
    (lambda d: d["frontend"].update(log="ln"), "front end: log must be"),
    (lambda d: d.update(labels=["a", "b", "c"]), "lists 3 labels but the model has 1 output"),
    (lambda d: d.update(labels=["a", "a"]), "labels must be 2 or more distinct names"),
    (lambda d: d.pop("metrics"), r"missing fields \['metrics'\]"),
    (lambda d: d.update(format=99), "card format 99 is not 1"),
    (lambda d: d.update(temperature=0), "temperature must be a positive number, got 0"),
    (lambda d: d.update(frontend=MUSICNN.to_dict()), r"takes \(128, 128\) .* makes \(187, 96\)"),
])
def test_load_model_rejects_a_card_that_does_not_fit(tmp_path, x, change, message):
    save_model(build("cnn", x, 2), tmp_path / "m.keras", card_for(["classical", "metal"]))
    edit_card(tmp_path / "m.keras", change)
    with pytest.raises(ModelCardError, match=message) as err:
        load_model(tmp_path / "m.keras")
    assert str(err.value).startswith(str(tmp_path / "m.card.json") + ": ")


def test_load_model_reports_missing_and_damaged_files(tmp_path, x):
    with pytest.raises(ModelCardError, match="no such model file"):
        load_model(tmp_path / "none.keras")
    save_model(build("cnn", x, 2), tmp_path / "m.keras", card_for(["classical", "metal"]))
    card_path(tmp_path / "m.keras").write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        load_model(tmp_path / "m.keras")
    card_path(tmp_path / "m.keras").unlink()
    with pytest.raises(ModelCardError, match="missing model card for m.keras"):
        load_model(tmp_path / "m.keras")
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 truncated")
    save_card = card_for(["classical", "metal"]).to_dict()
    card_path(tmp_path / "bad.keras").write_text(json.dumps(save_card))
    with pytest.raises(ModelCardError, match="bad.keras: cannot load the Keras model"):
        load_model(tmp_path / "bad.keras")


def test_save_model_refuses_a_mismatched_card(tmp_path, x):
    model = build("cnn", x, 2)
    with pytest.raises(ModelCardError, match="lists 10 labels"):
        save_model(model, tmp_path / "m.keras", card_for([f"g{i}" for i in range(10)]))
    with pytest.raises(ValueError, match="must end in .keras"):
        save_model(model, tmp_path / "m.h5", card_for(["classical", "metal"]))
    assert list(tmp_path.iterdir()) == []
