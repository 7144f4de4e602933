"""Data-parallel training on one machine, on CPU with simulated devices: two replicas under each backend.

What ``train()`` itself ran under is read inside its training loop, at every step: the number of
replicas of the distribution in force, and how many devices hold a copy of the model's first weight."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import TINY_MODEL_CLIPS

ROOT = Path(__file__).resolve().parents[1]

TRAIN = textwrap.dedent("""
    import sys
    import numpy as np
    if sys.argv[2] == "tensorflow":  # two logical CPU devices, before TensorFlow starts
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from utils.audio.frontend import FrontEnd, LogMel, windows
    from utils import audio
    from utils.models.training import TrainConfig, train

    class Replicas(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def on_train_batch_end(self, batch, logs=None):
            weight = self.model.trainable_weights[0].value
            if keras.config.backend() == "jax":
                distribution = keras.distribution.distribution()
                n = 1 if distribution is None else int(np.prod(distribution.device_mesh.shape))
                self.seen.add((n, len(weight.sharding.device_set)))
            else:
                import tensorflow as tf
                self.seen.add((tf.distribute.get_strategy().num_replicas_in_sync,
                               len(getattr(weight, "values", [weight]))))

    fe = FrontEnd()
    xs, ys = [], []
    for label, path in enumerate(sys.argv[3:5]):
        w = windows(LogMel(fe)(audio.load(path, fe.sample_rate)), fe)
        xs.append(w); ys.append(np.full(len(w), label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    for distribution in sys.argv[5:]:  # each in a run folder of its own, in this one process
        seen = Replicas()
        r = train(TrainConfig(epochs=2, batch_size=16, distribution=distribution), (x, y), (x[::3], y[::3]), 2,
                  f"{sys.argv[1]}-{distribution}", callbacks=(seen,))
        print(distribution, keras.config.backend(), *sorted(seen.seen), len(r.history),
              bool(np.isfinite(r.best_val_loss)))
""")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_train_runs_on_two_replicas(backend, tmp_path):
    """Every step of train() with ``data_parallel`` ran under a 2-replica distribution with the
    weights copied to both devices; without it, on one (so the check can tell them apart). Both runs
    share one process per backend (the devices are set before the backend starts)."""
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}  # JAX: two CPU devices
    clips = list(TINY_MODEL_CLIPS.values())  # one real clip of each of two genres
    run = subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path / "run"), backend, *map(str, clips),
                          "data_parallel", "none"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [" ".join(line.split()) for line in run.stdout.splitlines() if line.startswith(("data_parallel", "none"))]
    assert lines == [f"data_parallel {backend} (2, 2) 2 True", f"none {backend} (1, 1) 2 True"]
