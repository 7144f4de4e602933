"""Data-parallel training on one machine, on CPU with simulated devices: two replicas under each backend."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TRAIN = textwrap.dedent("""
    import sys
    import numpy as np
    if sys.argv[2] == "tensorflow":  # two logical CPU devices, before TensorFlow starts
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from utils.models import backend
    from utils.audio.frontend import FrontEnd, LogMel, windows
    from utils import audio
    from utils.models.training import TrainConfig, train
    fe = FrontEnd()
    xs, ys = [], []
    for label, path in enumerate(sys.argv[3:5]):
        w = windows(LogMel(fe)(audio.load(path, fe.sample_rate)), fe)
        xs.append(w); ys.append(np.full(len(w), label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    with backend.data_parallel() as replicas:
        pass
    r = train(TrainConfig(epochs=2, batch_size=16, distribution="data_parallel"), (x, y), (x[::3], y[::3]), 2, sys.argv[1])
    print(keras.config.backend(), replicas, len(r.history), bool(np.isfinite(r.best_val_loss)))
""")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_replicas_train(backend, tmp_path, sample):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}  # JAX: two CPU devices
    clips = [sample / "gtzan" / "classical" / "classical.00000.wav", sample / "gtzan" / "metal" / "metal.00000.wav"]
    run = subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path / "run"), backend, *map(str, clips)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-4:] == [backend, "2", "2", "True"]
