"""The one place that knows which Keras backend runs (TensorFlow by default, or JAX).

Keras fixes its backend when it is first imported, from the ``KERAS_BACKEND``
environment variable (else ``~/.keras/keras.json``). :func:`use` sets that
variable and refuses a switch once Keras is loaded, :func:`seed` makes a run
repeatable on either backend, :func:`data_parallel` spreads training over
the local devices and :func:`versions` names the libraries a model was
trained with. Everything else in the project uses ``keras`` and
``keras.ops`` only.
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

BACKENDS = ("tensorflow", "jax")


def use(name: str) -> str:
    """Select the Keras backend ``name`` for this process; call before anything imports keras.

    Raises ``ValueError`` for an unsupported name and ``RuntimeError`` if Keras is
    already loaded with another backend (a process has exactly one).
    """
    if name not in BACKENDS:
        raise ValueError(f"unsupported Keras backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        active = sys.modules["keras"].config.backend()
        if active != name:
            raise RuntimeError(f"Keras is already running on {active!r}; start a new process "
                               f"with KERAS_BACKEND={name} to use {name!r}")
        return active
    os.environ["KERAS_BACKEND"] = name
    return name


@contextmanager
def quiet() -> Iterator[None]:
    """Keep TensorFlow's C++ start-up logging (absl, CUDA probing, oneDNN notes) off the terminal.

    Import Keras or load a model inside this context: it sets
    ``TF_CPP_MIN_LOG_LEVEL=3`` unless the user chose a level, and points file
    descriptor 2 at a temporary file meanwhile, since some lines are written
    before that variable is read. If the body raises, what was written there
    is shown (its last 4,000 characters) before the error propagates.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def name() -> str:
    """The active Keras backend (imports keras)."""
    import keras

    return keras.config.backend()


def seed(value: int) -> None:
    """Seed Python, NumPy and the backend (``keras.utils.set_random_seed``).

    On CPU a training run then repeats bit for bit (seen with TensorFlow 2.21
    and JAX 0.10); on a GPU, cuDNN's autotuned kernels may still differ in the
    last bits.
    """
    import keras

    keras.utils.set_random_seed(value)


@contextmanager
def data_parallel(n_devices: int | None = None) -> Iterator[int]:
    """Data-parallel training on one machine: build, compile and fit a model inside this context.

    Each batch is split across the devices (all local GPUs, else the CPU
    devices; ``n_devices`` takes the first n), every device holds a replica
    of the model, gradients are averaged. The batch size given to training is
    the global one. JAX: Keras' ``DataParallel`` distribution over a 1-D
    device mesh. TensorFlow: ``tf.distribute.MirroredStrategy``. Yields the
    number of replicas.
    """
    import keras

    if keras.config.backend() == "jax":
        devices = keras.distribution.list_devices()[:n_devices]
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    else:
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))][:n_devices]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        with strategy.scope():
            yield strategy.num_replicas_in_sync


def versions() -> dict[str, str]:
    """Versions that decide whether a saved model reproduces: Python, NumPy, Keras and its backend."""
    import keras
    import numpy

    backend = keras.config.backend()
    module = __import__("tensorflow" if backend == "tensorflow" else "jax")
    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "keras": keras.__version__, "backend": backend, backend: module.__version__}
