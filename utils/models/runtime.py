"""Inference runtimes for a saved model: its exported ONNX graph on ONNX Runtime, or Keras.

A model is trained and saved with Keras (``x.keras`` + ``x.card.json``);
:func:`export` writes ``x.onnx`` beside them with Keras 3's own exporter
(``model.export(format="onnx")``, tf2onnx underneath), the head's
Normalization constants folded into the graph, and the SHA-256 of the
``.keras`` file stamped into its metadata. :func:`load` serves the ONNX
graph when that stamp matches the ``.keras`` (re-exporting a stale or
missing one when it can), else falls back to Keras.

Why ONNX Runtime by default (``reports/benchmarks_predict.json``, section
``runtimes``): per window it is as fast as Keras on TensorFlow and faster
than Keras on JAX, and it starts in a fraction of the time and memory,
because a process that serves it imports no TensorFlow, Keras or JAX.
Outputs equal the Keras model's within 1e-5 (tests/test_runtime.py).
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from utils.models.card import ModelCard, ModelCardError, check_shapes, load_card

RUNTIMES = ("auto", "onnx", "keras")
SOURCE_KEY = "fma_genre_source_sha256"  # ONNX metadata: hash of the .keras the graph came from
REWRITE_KEY = "fma_genre_rewrites"  # ONNX metadata: the rewrites of :func:`pool_before_scale` are applied
REWRITES = "pool_before_scale"
Runner = Callable[[np.ndarray], np.ndarray]  # windows (B, frames, mels) -> probabilities (B, n_classes)


def onnx_path(model_path: str | os.PathLike) -> Path:
    """``models/x.keras`` -> ``models/x.onnx``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".onnx")


def source_hash(model_path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the ``.keras`` file: the exported graph depends on it alone
    (labels, front end and temperature are read from the card at run time)."""
    return hashlib.sha256(Path(model_path).read_bytes()).hexdigest()


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def as_probabilities(p: np.ndarray) -> np.ndarray:
    """float32 ``(B, n_classes)`` rows that sum to 1: one sigmoid unit p becomes ``[1 - p, p]``."""
    p = np.asarray(p, np.float32)
    return np.concatenate([1 - p, p], axis=1) if p.shape[1] == 1 else p


def export(model_path: str | os.PathLike) -> Path:
    """Export the Keras model at ``model_path`` to ONNX beside it; returns the ``.onnx`` path.

    Imports Keras (TensorFlow backend: Keras' ONNX export goes through
    tf2onnx). Normalization layers hold their mean and variance as tensors,
    which the exporter would turn into extra graph inputs; as NumPy arrays
    they become constants of the graph. Written atomically.
    """
    from utils.models import backend

    with backend.quiet():
        import keras

        from utils.models.card import load_model

        if keras.config.backend() != "tensorflow":
            raise ModelCardError(model_path, "exporting to ONNX needs Keras on TensorFlow "
                                             f"(this process runs {keras.config.backend()!r})")
        model, card = load_model(model_path)
        for layer in _layers(model):
            if isinstance(layer, keras.layers.Normalization):
                layer.mean = keras.ops.convert_to_numpy(layer.mean)
                layer.variance = keras.ops.convert_to_numpy(layer.variance)
        fe = card.frontend
        model.predict_on_batch(np.zeros((1, fe.window_frames, fe.n_mels), np.float32))  # export needs a built call
        out = onnx_path(model_path)
        tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.onnx")
        try:
            model.export(str(tmp), format="onnx", verbose=False)
            _stamp(tmp, source_hash(model_path))
            os.replace(tmp, out)
        except (ImportError, OSError):
            raise
        except Exception as err:  # tf2onnx raises many types for a graph it cannot convert
            raise ModelCardError(model_path, f"cannot export to ONNX: {err}") from None
        finally:
            tmp.unlink(missing_ok=True)
    return out


def max_difference(model_path: str | os.PathLike, windows: np.ndarray | None = None) -> float:
    """Largest absolute difference between the probabilities of the exported graph and of the
    Keras model on ``windows`` (default: 16 seeded random windows of the card's shape)."""
    card = load_card(model_path)
    if windows is None:
        fe = card.frontend
        windows = np.random.default_rng(0).normal(2.0, 1.0, (16, fe.window_frames, fe.n_mels)).astype(np.float32)
    onnx_runner, _ = load(model_path, "onnx", threads=1)
    return float(np.abs(onnx_runner(windows) - _keras(Path(model_path))(windows)).max())


def _layers(layer):
    yield layer
    for sub in getattr(layer, "layers", None) or ():
        yield from _layers(sub)


def _stamp(path: Path, digest: str) -> None:
    """Rewrite the exported graph (:func:`pool_before_scale`) and stamp its source hash and the rewrites."""
    import onnx

    graph = onnx.load(str(path))
    pool_before_scale(graph)
    del graph.metadata_props[:]
    graph.metadata_props.add(key=SOURCE_KEY, value=digest)
    graph.metadata_props.add(key=REWRITE_KEY, value=REWRITES)
    onnx.save(graph, str(path))


def pool_before_scale(model) -> int:
    """Max-pool before batch norm where a norm after a ReLU feeds a max-pool; returns the rewrites made.

    musicnn's front end runs ``Conv -> Relu -> Mul(a) -> Add(b) -> MaxPool`` over
    the whole frequency axis, so the two element-wise passes run on the full
    (channels, frames, bins) maps and the pool then keeps one value in 30-96.
    Per channel, ``a * relu(z) + b`` is monotone in ``z``: increasing where
    ``a >= 0``, decreasing where ``a < 0``. So its maximum over the bins is
    ``a * relu(max z) + b`` or ``a * relu(min z) + b``, and ``min z = -max(-z)``:
    the convolution runs with the weights and bias of the ``a < 0`` channels
    negated (``-z`` exactly, negation is exact in floating point), is pooled,
    and only the pooled map is multiplied by the signs, ReLU'd, scaled and
    shifted. Same arithmetic on the same winning value: the outputs equal the
    original graph's bit for bit (tests/test_runtime.py), for about 20 % less
    CPU per window (5 rewrites in the shipped model). ``model`` (an
    ``onnx.ModelProto``) is changed in place; a graph rewritten before has no
    such chain left, so a second call makes no rewrite.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    for out in graph.output:
        readers[out.name] = readers.get(out.name, 0) + 1

    def feeding(node, op: str):
        """The node of type ``op`` whose only reader is ``node``'s first input, or None."""
        up = producer.get(node.input[0]) if node is not None else None
        return up if up is not None and up.op_type == op and readers.get(up.output[0]) == 1 else None

    made = 0
    for pool in [n for n in graph.node if n.op_type == "MaxPool"]:
        add = feeding(pool, "Add")
        mul = feeding(add, "Mul")
        relu = feeding(mul, "Relu")
        conv = feeding(relu, "Conv")
        if conv is None or len(conv.input) < 3 or len(pool.output) > 1 or not all(
                x in consts for x in (conv.input[1], conv.input[2], mul.input[1], add.input[1])):
            continue
        w, bias = (numpy_helper.to_array(consts[x]) for x in conv.input[1:3])
        a, b = numpy_helper.to_array(consts[mul.input[1]]), numpy_helper.to_array(consts[add.input[1]])
        attrs = {x.name: helper.get_attribute_value(x) for x in pool.attribute}
        # per-channel a and b, and a pool over the last axis alone (kernel (1, k), no padding)
        if (a.shape != (1, w.shape[0], 1, 1) or b.shape != a.shape or attrs.get("kernel_shape", [0])[0] != 1
                or any(attrs.get("pads", [])) or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            continue
        sign = np.where(a.reshape(-1) < 0, -1, 1).astype(w.dtype)
        key = f"{conv.name}/pool_before_scale"
        graph.initializer.extend([numpy_helper.from_array(w * sign[:, None, None, None], f"{key}/w"),
                                  numpy_helper.from_array(bias * sign, f"{key}/bias"),
                                  numpy_helper.from_array(sign.reshape(a.shape), f"{key}/sign")])
        for old in conv.input[1:3]:
            if readers[old] == 1:  # read by this convolution alone: drop it
                graph.initializer.remove(consts.pop(old))
        conv.input[1], conv.input[2] = f"{key}/w", f"{key}/bias"
        out = pool.output[0]
        pool.input[0], pool.output[0] = conv.output[0], f"{key}/pooled"
        flip = helper.make_node("Mul", [f"{key}/pooled", f"{key}/sign"], [f"{key}/signed"], name=f"{key}/sign")
        relu.input[0], add.output[0] = f"{key}/signed", out
        for node in (relu, mul, add):  # after the pool, keeping the node list in topological order
            graph.node.remove(node)
        at = list(graph.node).index(pool) + 1
        for k, node in enumerate((flip, relu, mul, add)):
            graph.node.insert(at + k, node)
        made += 1
    return made


class OnnxRunner:
    """An exported model on ONNX Runtime (CPU). Thread-safe: calls may overlap.

    Parameters
    ----------
    path : the ``.onnx`` file
    threads : ONNX Runtime intra-op threads per call (default: every core).
    arena : keep ONNX Runtime's CPU memory arena (default; off only to measure what it saves)

    A graph exported before :func:`pool_before_scale` existed (no ``REWRITE_KEY``
    in its metadata) is rewritten in memory as it loads, which costs importing
    the ``onnx`` package (about a second); a graph exported since carries the
    rewrite and loads as it is.

    Threads do not spin while they wait: on a shared machine spinning cost about
    30 % more CPU per track for no speed. The memory arena stays on: without it
    every call maps fresh pages for its large intermediate tensors, about 1.7x
    the CPU per window (``reports/benchmarks_predict.json``, section
    ``runtimes``); its size follows the largest batch, which
    :class:`~utils.models.predict.Predictor` keeps small.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None, arena: bool = True) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = arena
        options.intra_op_num_threads = threads or cpu_count()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            metadata = self.session.get_modelmeta().custom_metadata_map
            if metadata.get(REWRITE_KEY) != REWRITES:
                self.session = ort.InferenceSession(_rewritten(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ONNX Runtime raises its own types for damaged or foreign files
            raise ModelCardError(path, f"cannot load the ONNX model: {str(err).splitlines()[0]}") from None
        self.path = Path(path)
        self.source = metadata.get(SOURCE_KEY)
        inp, = self.session.get_inputs()
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape[1:])
        self.output_units = self.session.get_outputs()[0].shape[-1]

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        out, = self.session.run(None, {self.input_name: np.ascontiguousarray(windows, np.float32)})
        return as_probabilities(out)


def _rewritten(path: str | os.PathLike) -> bytes:
    """The graph at ``path`` after :func:`pool_before_scale`, serialised."""
    import onnx

    model = onnx.load(str(path))
    pool_before_scale(model)
    return model.SerializeToString()


class KerasRunner:
    """A Keras model as a runner. One call at a time: under JAX, Keras' predict
    step donates the model's state buffers, so two threads calling it at once crash."""

    def __init__(self, model, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        from utils.models.architectures import predict_proba

        with self._lock:
            return predict_proba(self.model, windows, self.batch_size)


def load(model_path: str | os.PathLike, runtime: str = "auto",
         threads: int | None = None) -> tuple[Runner, ModelCard]:
    """``(runner, card)`` for the model saved at ``model_path``.

    ``runtime``: ``"onnx"`` serves the exported graph and fails unless it
    is current (exported from this very ``.keras``); ``"keras"`` loads the
    Keras model; ``"auto"`` (default) serves the ONNX graph, re-exporting it
    first when it is missing or stale, and falls back to Keras (one line on
    stderr says why) when ONNX Runtime or the export is unavailable.
    ``threads``: ONNX Runtime threads per call (see :class:`OnnxRunner`).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    model_path = Path(model_path)
    card = load_card(model_path)
    if runtime == "keras":
        return _keras(model_path), card
    try:
        return _onnx(model_path, card, threads, export_if_stale=runtime == "auto"), card
    except (ModelCardError, ImportError, OSError) as err:
        if runtime == "onnx":
            raise ModelCardError(onnx_path(model_path), str(getattr(err, "problem", err))) from None
        print(f"fma-genre: running the Keras model ({err})", file=sys.stderr)
        return _keras(model_path), card


def _onnx(model_path: Path, card: ModelCard, threads: int | None, export_if_stale: bool) -> OnnxRunner:
    path = onnx_path(model_path)
    try:
        runner = OnnxRunner(path, threads) if path.is_file() else None
        problem = ("missing" if runner is None else None if runner.source == source_hash(model_path)
                   else f"exported from another version of {model_path.name}")
    except ModelCardError as err:  # a damaged file: export again, like a stale one
        problem = err.problem
    if problem:
        if not export_if_stale:
            raise ModelCardError(path, f"{problem}; export it with `fma-genre export --model {model_path}`")
        export(model_path)
        runner = OnnxRunner(path, threads)
    check_shapes(runner.input_shape, runner.output_units, card, path)
    return runner


def _keras(model_path: Path) -> KerasRunner:
    from utils.models import backend

    with backend.quiet():
        from utils.models.card import load_model

        model, _ = load_model(model_path)
    return KerasRunner(model)
