"""The one place that knows which Keras backend runs (TensorFlow by default, or JAX).

Keras fixes its backend when it is first imported, from the ``KERAS_BACKEND``
environment variable (else ``~/.keras/keras.json``). :func:`use` sets that
variable and refuses a switch once Keras is loaded, :func:`seed` makes a run
repeatable on either backend and :func:`versions` names the libraries a model
was trained with. Everything else in the project uses ``keras`` and
``keras.ops`` only.
"""
from __future__ import annotations

import os
import platform
import sys

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


def versions() -> dict[str, str]:
    """Versions that decide whether a saved model reproduces: Python, NumPy, Keras and its backend."""
    import keras
    import numpy

    backend = keras.config.backend()
    module = __import__("tensorflow" if backend == "tensorflow" else "jax")
    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "keras": keras.__version__, "backend": backend, backend: module.__version__}
