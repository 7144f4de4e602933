"""Training on windows of real GTZAN clips: every model, reproducibility, resume,
early stopping, balancing, augmentation, PyDataset input, and the second backend."""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from utils.models.registry import CNN_MODELS
from utils.models import backend

from utils.models import architectures as models
from utils.audio.frontend import FrontEnd, LogMel, logmel_file, windows
from utils.models.card import ModelCard, save_model
from utils.models.training import (Augment, Batches, RunError, TrainConfig, balanced_class_weight, band_stats,
                            mixup, spec_augment, train)

ROOT = Path(__file__).resolve().parents[1]
FE = FrontEnd()


def load(gtzan: Path, genres: list[str], index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows, labels (position in ``genres``) and track ids of GTZAN clip ``index`` of each genre."""
    lm = LogMel(FE)
    xs, ys, ids = [], [], []
    for label, genre in enumerate(genres):
        path = gtzan / genre / f"{genre}.{index:05d}.wav"
        w = windows(logmel_file(path, lm), FE)
        xs.append(w)
        ys += [label] * len(w)
        ids += [path.stem] * len(w)
    return np.concatenate(xs), np.array(ys), np.array(ids)


@pytest.fixture(scope="module")
def binary(gtzan_sample):
    """Classical (0) vs metal (1): clip 0 of each to train, clip 1 to validate (20 windows each)."""
    return load(gtzan_sample, ["classical", "metal"], 0), load(gtzan_sample, ["classical", "metal"], 1)


@pytest.fixture(scope="module")
def multiclass(gtzan_sample):
    genres = ["blues", "classical", "hiphop", "metal"]
    return load(gtzan_sample, genres, 0), load(gtzan_sample, genres, 1)


def small(data, step: int = 4):
    x, y, _ = data
    return x[::step], y[::step]


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", list(CNN_MODELS))
def test_every_model_trains_binary_and_multiclass(name, binary, multiclass, tmp_path):
    # every architecture ends in the same output layer (architectures.build_model): the binary form once
    tasks = (("binary", binary, 2), ("multi", multiclass, 4)) if name == CNN_MODELS[0] else (("multi", multiclass, 4),)
    for kind, (tr, va), n in tasks:
        result = train(TrainConfig(model=name, epochs=1, batch_size=10), small(tr), small(va), n,
                       tmp_path / kind)
        assert len(result.history) == 1 and np.isfinite(result.history[0]["val_loss"])
        assert sorted(p.name for p in (tmp_path / kind).iterdir()) == [
            "best.keras", "epoch-0001.keras", "log.csv", "state.json"]
        p = models.predict_proba(result.model, va[0][:8])
        assert p.shape == (8, n)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_cnn_learns_classical_vs_metal_on_held_out_clips(binary, tmp_path):
    (xt, yt, _), (xv, yv, ids) = binary
    result = train(TrainConfig(epochs=4, batch_size=16), (xt, yt), (xv, yv), 2, tmp_path)
    val_loss = [h["val_loss"] for h in result.history]
    assert val_loss[-1] < val_loss[0]
    p = models.predict_proba(result.model, xv)
    assert (p.argmax(axis=1) == yv).mean() >= 0.9
    tracks, track_p = models.track_probabilities(p, ids)
    assert tracks.tolist() == ["classical.00001", "metal.00001"]
    assert track_p.argmax(axis=1).tolist() == [0, 1]


AUGMENTED = TrainConfig(epochs=2, batch_size=8, augment=Augment(time_masks=2, freq_masks=2, mixup_alpha=0.4))


def weights(run: Path, epoch: int) -> list[np.ndarray]:
    return keras.saving.load_model(run / f"epoch-{epoch:04d}.keras").get_weights()


def test_same_seed_gives_the_same_run(binary, tmp_path):
    tr, va = small(binary[0], 2), small(binary[1], 2)
    configs = {"a": AUGMENTED, "b": AUGMENTED, "seed1": dataclasses.replace(AUGMENTED, seed=1)}
    runs = {tag: train(config, tr, va, 2, tmp_path / tag) for tag, config in configs.items()}
    assert runs["a"].history == runs["b"].history
    for wa, wb in zip(weights(tmp_path / "a", 2), weights(tmp_path / "b", 2)):
        np.testing.assert_array_equal(wa, wb)
    assert runs["a"].history != runs["seed1"].history


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_same_epoch_count(binary, tmp_path):
    tr, va = small(binary[0], 2), small(binary[1], 2)
    config = dataclasses.replace(AUGMENTED, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, tr, va, 2, tmp_path, callbacks=(Interrupt(),))
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["epoch"], state["done"], state["checkpoint"]) == (2, False, "epoch-0002.keras")
    before = read_csv(tmp_path / "log.csv")
    assert [r["epoch"] for r in before] == ["0", "1"]

    result = train(config, tr, va, 2, tmp_path)
    after = read_csv(tmp_path / "log.csv")
    assert [r["epoch"] for r in after] == ["0", "1", "2"] and after[:2] == before
    assert result.epochs == 3 and len(result.history) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.keras", "epoch-0003.keras", "log.csv", "state.json"]
    # the optimizer state came back: Adam's step counter counts all 3 epochs' batches
    steps = keras.saving.load_model(tmp_path / "epoch-0003.keras").optimizer.iterations
    assert int(keras.ops.convert_to_numpy(steps)) == 3 * int(np.ceil(len(tr[0]) / config.batch_size))
    # a finished run is returned as it is
    assert train(config, tr, va, 2, tmp_path).history == result.history
    with pytest.raises(RunError, match="another configuration"):
        train(dataclasses.replace(config, learning_rate=0.01), tr, va, 2, tmp_path)
    with pytest.raises(RunError, match="was started with class weights None"):
        train(config, tr, va, 2, tmp_path, class_weight={0: 1.0, 1: 2.0})


def test_run_refuses_a_folder_with_foreign_files(binary, tmp_path):
    (tmp_path / "log.csv").write_text("mine\n")
    with pytest.raises(RunError, match="holds log.csv but no state.json"):
        train(TrainConfig(epochs=1), small(binary[0]), small(binary[1]), 2, tmp_path)
    assert (tmp_path / "log.csv").read_text() == "mine\n"


def test_early_stopping_keeps_the_best_model(binary, tmp_path):
    """Validation labels swapped: the better the model learns, the worse the
    validation loss, so the first epoch is the best and training stops."""
    (xt, yt, _), (xv, yv, _) = binary
    result = train(TrainConfig(epochs=10, batch_size=16, patience=2), (xt, yt), (xv, 1 - yv), 2, tmp_path)
    val_loss = [h["val_loss"] for h in result.history]
    assert result.stopped_early and result.epochs == 3 and result.best_epoch == 0
    assert val_loss[0] < val_loss[1] < val_loss[2]
    p = models.predict_proba(result.model, xv)[np.arange(len(yv)), 1 - yv]
    assert -np.log(p).mean() == pytest.approx(val_loss[0], rel=1e-4)


def test_balanced_class_weight():
    assert balanced_class_weight(np.array([0, 0, 0, 1]), 2) == {0: 4 / 6, 1: 2.0}
    with pytest.raises(ValueError, match=r"classes \[2\] have no training examples"):
        balanced_class_weight(np.array([0, 1]), 3)


def test_batches_turn_labels_into_targets_and_weights(multiclass):
    x, y = multiclass[0][0][:6], np.array([0, 1, 2, 3, 3, 3])
    w = np.array([1, 1, 1, 1, 2, 0.5])
    bx, t, bw = Batches((x, y, w), 4, 6, seed=0, class_weight={0: 1, 1: 2, 2: 3, 3: 4})[0]
    np.testing.assert_array_equal(bx, x)
    np.testing.assert_array_equal(t, np.eye(4)[y])
    np.testing.assert_allclose(bw, [1, 2, 3, 4, 8, 2])
    _, t2, _ = Batches((x, y % 2), 2, 6, seed=0)[0]
    assert t2.shape == (6, 1) and t2.dtype == np.float32
    with pytest.raises(ValueError, match=r"labels must be integers in 0..2"):
        Batches((x, y), 3, 6, seed=0)


def test_balance_options_are_checked(binary, tmp_path):
    tr, va = small(binary[0]), small(binary[1])
    with pytest.raises(ValueError, match="balance is 'none'"):
        train(TrainConfig(), tr, va, 2, tmp_path, class_weight={0: 1.0, 1: 1.0})
    with pytest.raises(ValueError, match="pass class_weight"):
        train(TrainConfig(balance="class_weight"), WindowBatches(*tr), va, 2, tmp_path)


def test_spec_augment_masks_spans_with_the_band_mean(binary):
    x = binary[0][0][:8]
    fill, _ = band_stats(x)
    aug = Augment(time_masks=2, time_mask_frames=16, freq_masks=1, freq_mask_bands=10)
    out = spec_augment(x, np.random.default_rng(0), fill, aug)
    masked = out != x
    assert masked.any()
    np.testing.assert_array_equal(out[masked], np.broadcast_to(fill, x.shape)[masked])
    for window in masked:
        frames = window.all(axis=1).sum()
        bands = window.all(axis=0).sum()
        assert frames <= 2 * 16 and bands <= 10
    np.testing.assert_array_equal(spec_augment(x, np.random.default_rng(0), fill, Augment()), x)


def test_mixup_blends_inputs_targets_and_weights(multiclass):
    x, y = multiclass[0][0][::10], multiclass[0][1][::10]
    t, w = np.eye(4, dtype=np.float32)[y], np.ones(len(y), np.float32)
    mx, mt, mw = mixup(x, t, w, np.random.default_rng(1), alpha=0.4)
    rng = np.random.default_rng(1)
    lam, perm = rng.beta(0.4, 0.4), rng.permutation(len(x))
    np.testing.assert_allclose(mx, lam * x + (1 - lam) * x[perm], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(mt.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(mw, 1.0)


class WindowBatches(keras.utils.PyDataset):
    """What a window cache hands to training: (x, y) or (x, y, sample_weight) batches."""

    def __init__(self, x, y, w=None, batch_size: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.w, self.batch_size = x, y, w, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return (self.x[s], self.y[s]) if self.w is None else (self.x[s], self.y[s], self.w[s])


def test_training_from_a_pydataset_with_sample_weights(multiclass, tmp_path):
    (xt, yt), (xv, yv) = small(multiclass[0], 2), small(multiclass[1], 2)
    data = WindowBatches(xt, yt, np.where(yt == 0, 2.0, 1.0))
    np.testing.assert_allclose(np.stack(band_stats(data)), np.stack(band_stats(xt)), rtol=1e-5)
    config = TrainConfig(epochs=1, balance="class_weight", augment=Augment(time_masks=1, mixup_alpha=0.2))
    result = train(config, data, WindowBatches(xv, yv, workers=2), 4, tmp_path,
                   class_weight=balanced_class_weight(yt, 4))
    assert np.isfinite(result.history[0]["loss"])
    np.testing.assert_allclose(models.predict_proba(result.model, WindowBatches(xv, yv)),
                               models.predict_proba(result.model, xv), atol=1e-6)
    assert result.summary()["class_weight"] == {"0": 1.0, "1": 1.0, "2": 1.0, "3": 1.0}


def test_backend_is_fixed_per_process():
    active = backend.name()
    assert backend.use(active) == active
    other = "jax" if active == "tensorflow" else "tensorflow"
    with pytest.raises(RuntimeError, match=f"already running on '{active}'.*KERAS_BACKEND={other}"):
        backend.use(other)
    with pytest.raises(ValueError, match="unsupported Keras backend 'torch'"):
        backend.use("torch")
    assert backend.versions()["backend"] == active


OTHER = "jax" if backend.name() == "tensorflow" else "tensorflow"
SCRIPT = """
import json, sys
import numpy as np
from pathlib import Path
from utils.models import backend
from utils.models import architectures as models
from utils.models.card import load_model
from utils.models.training import TrainConfig, train
data = np.load(sys.argv[1])
x, y = data["x"], data["y"]
result = train(TrainConfig(epochs=1, batch_size=8), (x, y), (x, y), 2, Path(sys.argv[2]) / "run")
model, card = load_model(Path(sys.argv[2]) / "m.keras")
print(json.dumps({"backend": backend.name(), "loss": result.history[0]["loss"],
                  "trained": models.predict_proba(result.model, x).tolist(),
                  "loaded": models.predict_proba(model, x).tolist()}))
"""


@pytest.mark.skipif(importlib.util.find_spec(OTHER) is None, reason=f"{OTHER} is not installed")
def test_the_other_backend_trains_and_loads_our_models(binary, tmp_path):
    """The backend is fixed per process, so the second one runs in a subprocess: it
    trains the cnn and reproduces this backend's predictions from the saved file."""
    x, y = binary[0][0][::5], binary[0][1][::5]
    model = models.build_model("cnn", x.shape[1:], 2, *band_stats(x))
    save_model(model, tmp_path / "m.keras", ModelCard(("classical", "metal"), FE, "cnn"))
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    env = {**os.environ, "KERAS_BACKEND": OTHER, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "xy.npz"), str(tmp_path)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == OTHER and np.isfinite(out["loss"])
    np.testing.assert_allclose(np.sum(out["trained"], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["loaded"], models.predict_proba(model, x), atol=1e-5)
