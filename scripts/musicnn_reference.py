"""One-off: run the ORIGINAL musicnn graph on real clips; write the fixture our port is tested against.

musicnn 0.1.0's own model code (``musicnn/models.py`` from the wheel, never
installed) is built under ``tf.compat.v1`` and restored from the wheel's
MSD_musicnn checkpoint, failing loudly if the restore fails. It is fed the
patches of our front end (``LogMel(MUSICNN)`` + ``windows``); the fixture keeps
its outputs per patch (``tags``, ``penultimate``, ``max_pool``, ``mean_pool``),
a summary of the input patches (so the test can check it feeds the same ones),
and prints how far musicnn's own librosa front end (``extractor.batch_data``) differs.

``tf.compat.v1.layers`` needs Keras 2, so this runs in a separate environment
with ``tf-keras`` (matching the installed TensorFlow) added, e.g.::

    python -m venv --without-pip /tmp/venv-musicnn
    pip install --no-deps --target /tmp/venv-musicnn/lib/python3.11/site-packages tf-keras==2.21.0
    echo "import site; site.addsitedir('/tmp/venv/lib/python3.11/site-packages')" \\
        > /tmp/venv-musicnn/lib/python3.11/site-packages/zz_base_venv.pth
    /tmp/venv-musicnn/bin/python scripts/musicnn_reference.py /tmp/musicnn_wheel/musicnn-0.1.0-py3-none-any.whl
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers -> tf_keras

import numpy as np

from utils import audio
from utils.audio.frontend import MUSICNN, LogMel, windows

ROOT = Path(__file__).resolve().parents[1]
# paths from the repository: GTZAN clips are read from the shared data folder beside it, never bundled
CLIPS = ("../shared/data/gtzan_mini/classical/classical.00000.wav", "../shared/data/gtzan_mini/hiphop/hiphop.00000.wav",
         "../shared/data/gtzan_mini/metal/metal.00000.wav", "data/sample/fma/audio/000/000002.mp3",
         "data/sample/fma/audio/001/001039.mp3")
OUT = ROOT / "tests" / "fixtures" / "musicnn_reference.npz"
OUTPUTS = ("tags", "penultimate", "max_pool", "mean_pool")


def original_graph(package: Path):
    """musicnn's MSD_musicnn graph as its extractor builds it, restored from the wheel's checkpoint.

    Returns ``(session, run)`` where ``run(patches)`` gives the :data:`OUTPUTS` in inference mode.
    """
    import tensorflow as tf

    sys.path.insert(0, str(package))
    from musicnn import configuration, models  # the wheel's own code

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, MUSICNN.window_frames, configuration.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
            x, is_training, "MSD_musicnn", len(configuration.MSD_LABELS))
        tags = tf.nn.sigmoid(y)
    sess = tf.compat.v1.Session()
    prefix = str(package / "musicnn" / "MSD_musicnn") + "/"
    tf.compat.v1.train.Saver().restore(sess, prefix)  # no try/except: a failed restore must stop us
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    for var in tf.compat.v1.global_variables():  # and prove every variable came from the checkpoint
        if not np.array_equal(sess.run(var), reader.get_tensor(var.op.name)):
            raise SystemExit(f"{var.op.name} was not restored")
    outputs = dict(zip(OUTPUTS, (tags, penultimate, max_pool, mean_pool)))
    return sess, lambda patches: sess.run(outputs, {x: patches, is_training: False})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl (from pip download)")
    parser.add_argument("--out", type=Path, default=OUT, help="fixture to write (default: %(default)s)")
    args = parser.parse_args(argv)
    import tensorflow as tf

    lm = LogMel(MUSICNN)
    fixture: dict[str, np.ndarray] = {"clips": np.array(CLIPS)}
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(args.wheel).extractall(tmp)
        sess, run = original_graph(Path(tmp))
        from musicnn import configuration, extractor  # musicnn's own front end, for comparison only
        fixture["tag_names"] = np.array(configuration.MSD_LABELS)
        for i, clip in enumerate(CLIPS):
            S = lm(audio.load(ROOT / clip, MUSICNN.sample_rate))
            patches = windows(S, MUSICNN, clip)
            result = run(patches)
            for name in OUTPUTS:
                fixture[f"{i}/{name}"] = result[name].astype(np.float32)
            fixture[f"{i}/input_mean"] = patches.mean(axis=(1, 2))
            fixture[f"{i}/input_max"] = patches.max(axis=(1, 2))

            # for the record, not the fixture: musicnn's own front end (librosa as
            # installed, then its float16 cast, which overflows to inf above 6.55)
            with np.errstate(over="ignore"):
                theirs, rep = extractor.batch_data(str(ROOT / clip), MUSICNN.window_frames, MUSICNN.window_frames)
            n = min(len(theirs), len(patches))
            finite = np.isfinite(rep[: len(S)])
            clean = np.isfinite(theirs[:n]).all(axis=(1, 2))
            gap = np.abs(run(theirs[:n].astype(np.float32))["tags"] - result["tags"][:n]).max(axis=1)
            print(f"{clip}: {len(patches)} patches (musicnn's extractor: {len(theirs)}); its front end: "
                  f"{(~finite).sum()} inf bins in {(~clean).sum()} patches, log-Mel gap on finite bins "
                  f"{np.abs(rep[: len(S)][finite] - S[finite]).max():.4f}, tag gap {gap.max():.4f} "
                  f"(patches free of inf: {gap[clean].max() if clean.any() else float('nan'):.2e})")
        sess.close()
    fixture["wheel_sha256"] = np.array(hashlib.sha256(args.wheel.read_bytes()).hexdigest())
    fixture["tensorflow"] = np.array(tf.__version__)
    buf = io.BytesIO()
    np.savez_compressed(buf, **fixture)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_bytes(buf.getvalue())
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
