"""The ONNX runtime: equal to the Keras model (TensorFlow and JAX), kept current with the .keras,
Keras as the fallback, and prediction that loads no training framework and prints no TF noise."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from utils import audio
from utils.audio.frontend import LogMel, windows
from utils.models import runtime
from utils.models.card import ModelCardError, card_path, load_card
from utils.models.predict import DEFAULT_MODEL, load_predictor

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def sample_windows(fma_mp3s, fma_wavs) -> np.ndarray:
    """Windows of real music, as the shipped model's front end cuts them: 2 mp3s and 2 wavs."""
    fe = load_card(DEFAULT_MODEL).frontend
    lm = LogMel(fe)
    return np.concatenate([windows(lm(audio.load(p, fe.sample_rate)), fe)
                           for p in fma_mp3s[:2] + fma_wavs[-2:]])


def test_the_shipped_onnx_graph_was_exported_from_the_shipped_keras_model():
    # fails when models/default.keras changes without `fma-genre export`
    assert runtime.OnnxRunner(runtime.onnx_path(DEFAULT_MODEL)).source == runtime.source_hash(DEFAULT_MODEL)


def test_onnx_equals_keras_on_the_sample(sample_windows):
    onnx, card = runtime.load(DEFAULT_MODEL, "onnx")
    keras_runner, _ = runtime.load(DEFAULT_MODEL, "keras")
    ours, theirs = onnx(sample_windows), keras_runner(sample_windows)
    assert ours.shape == (len(sample_windows), len(card.labels)) and len(sample_windows) >= 40
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    assert (ours.argmax(1) == theirs.argmax(1)).all()


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax" or importlib.util.find_spec("jax") is None,
                    reason="already running under JAX, or JAX not installed")
def test_onnx_equals_keras_under_jax():
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                          "-k", "test_onnx_equals_keras_on_the_sample"],
                         env={**ENV, "KERAS_BACKEND": "jax"}, cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]


def test_pooling_before_the_norm_changes_no_output_bit(sample_windows):
    import onnx
    import onnxruntime as ort

    model = onnx.load(runtime.onnx_path(DEFAULT_MODEL))
    exported_rewritten = {p.key: p.value for p in model.metadata_props}.get(runtime.REWRITE_KEY)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    made = runtime.pool_before_scale(model)
    # musicnn: 2 timbral and 3 temporal branches; none left in a graph exported with the rewrite
    assert made == (0 if exported_rewritten else 5) and runtime.pool_before_scale(model) == 0
    onnx.checker.check_model(model)
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = before.get_inputs()[0].name
    few = sample_windows[::4]  # bit for bit on a dozen windows of real music
    np.testing.assert_array_equal(after.run(None, {name: few})[0], before.run(None, {name: few})[0])
    served = runtime.OnnxRunner(runtime.onnx_path(DEFAULT_MODEL), threads=1)  # rewritten as it loads
    np.testing.assert_array_equal(served(few), runtime.as_probabilities(after.run(None, {name: few})[0]))


def test_track_predictions_equal_across_runtimes(fma_mp3s):
    onnx = load_predictor(runtime="onnx").predict_file(fma_mp3s[0])
    keras_ = load_predictor(runtime="keras").predict_file(fma_mp3s[0])
    np.testing.assert_allclose(onnx.window_probabilities, keras_.window_probabilities, rtol=0, atol=1e-5)
    np.testing.assert_allclose(onnx.probabilities, keras_.probabilities, rtol=0, atol=1e-5)


@pytest.fixture
def model_copy(tiny_model, tmp_path) -> Path:
    path = tmp_path / "m.keras"
    shutil.copy(tiny_model, path)
    shutil.copy(card_path(tiny_model), card_path(path))
    return path


def test_a_missing_or_stale_export_is_rebuilt_and_onnx_alone_refuses_it(model_copy):
    with pytest.raises(ModelCardError, match=r"m\.onnx: missing; export it with `fma-genre export"):
        runtime.load(model_copy, "onnx")
    runner, _ = runtime.load(model_copy)  # auto: exports
    assert isinstance(runner, runtime.OnnxRunner) and runner.source == runtime.source_hash(model_copy)
    metadata = runner.session.get_modelmeta().custom_metadata_map
    assert metadata[runtime.REWRITE_KEY] == runtime.REWRITES  # an export carries its rewrites
    first = runtime.onnx_path(model_copy).stat().st_mtime_ns

    import keras  # the model changes: retrain one weight

    model = keras.saving.load_model(model_copy, compile=False)
    w = model.weights[0]
    w.assign(w.numpy() * 1.5)
    model.save(model_copy)
    with pytest.raises(ModelCardError, match="exported from another version of m.keras"):
        runtime.load(model_copy, "onnx")
    runner, _ = runtime.load(model_copy)
    assert runner.source == runtime.source_hash(model_copy)
    assert runtime.onnx_path(model_copy).stat().st_mtime_ns != first
    x = np.random.default_rng(1).normal(size=(4, 128, 128)).astype(np.float32)
    np.testing.assert_allclose(runner(x), runtime.KerasRunner(model)(x), rtol=0, atol=1e-5)


def test_a_damaged_export_is_rebuilt(model_copy):
    runtime.onnx_path(model_copy).write_bytes(b"not a graph")
    runner, _ = runtime.load(model_copy)
    assert runner.source == runtime.source_hash(model_copy)


def test_an_export_that_does_not_fit_the_card_is_refused(model_copy):
    runtime.export(model_copy)
    shutil.copy(card_path(DEFAULT_MODEL), card_path(model_copy))  # 10 labels, musicnn windows
    with pytest.raises(ModelCardError, match=r"m\.onnx: the card lists 10 labels but the model has 1 output"):
        runtime.load(model_copy, "onnx")


def test_without_onnx_runtime_the_keras_model_serves(model_copy, fma_mp3s):
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from utils.models.predict import load_predictor\n"
            f"p = load_predictor({str(model_copy)!r})\n"
            "print(type(p.model).__name__, p.predict_file(sys.argv[1]).genre)")
    run = subprocess.run([sys.executable, "-c", code, str(fma_mp3s[0])], env=ENV, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[0] == "KerasRunner" and run.stdout.split()[1] in ("Hip-Hop", "Rock")
    assert run.stderr.strip().splitlines() == ["fma-genre: running the Keras model (import of onnxruntime "
                                               "halted; None in sys.modules)"]


def test_unknown_runtime_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown runtime 'tflite'; choose one of auto, onnx, keras"):
        runtime.load(DEFAULT_MODEL, "tflite")


CHECK_MODULES = ("import sys; from utils.apps.cli import main; rc = main(sys.argv[1:]); "
                 "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch', 'librosa', 'sklearn', 'pandas') "
                 "if m in sys.modules)); sys.exit(rc)")


@pytest.mark.parametrize("command", ["predict", "organize"])
def test_predict_and_organize_load_no_training_framework_and_print_no_noise(command, fma_mp3s, tmp_path):
    args = [command, str(fma_mp3s[0])] + ([str(tmp_path / "library")] if command == "organize" else [])
    run = subprocess.run([sys.executable, "-c", CHECK_MODULES, *args], env=ENV, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"
    assert run.stderr == ""


def test_serve_loads_no_training_framework():
    code = ("import sys; from utils.apps.web import create_app; from utils.models.predict import load_predictor\n"
            "create_app(load_predictor())\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr[-3000:]


def test_the_keras_runtime_keeps_tensorflow_log_noise_off_the_terminal(fma_mp3s):
    env = {k: v for k, v in ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "utils.apps.cli", "predict", "--runtime", "keras",
                          str(fma_mp3s[0])], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == "" and "hiphop" in run.stdout.split("\n")[1]
