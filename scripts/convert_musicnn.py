"""Convert a musicnn TensorFlow 1 checkpoint (MSD_musicnn or MTT_musicnn) to our Keras weight file.

    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn_wheel
    python scripts/convert_musicnn.py /tmp/musicnn_wheel/musicnn-0.1.0-py3-none-any.whl [--model MTT_musicnn]

writes ``models/musicnn/msd_musicnn.npz`` (``mtt_musicnn.npz``; the 64 model variables, keyed by our
Keras variable paths; Adam slots dropped) and ``models/musicnn/LICENSE`` (the
wheel's ISC licence). The .npz is byte-for-byte reproducible (fixed zip
timestamps, sorted names); ``--check`` compares instead of writing. Needs
TensorFlow only to read the checkpoint (the musicnn package itself is never
installed or imported).
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

import numpy as np

from utils.models.musicnn import BACKBONES, build_musicnn, load_weights

# the wheel's checkpoint folder of each backbone; both are the same network (musicnn's model 17)
CHECKPOINTS = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}
LICENSE = "musicnn-0.1.0.dist-info/LICENSE.md"

# TF1 layer scope -> our layer name. tf.compat.v1.layers numbers layers in
# creation order: input BN, timbral 7x38 then 7x67, temporal 128, 64, 32,
# mid-end 1-3, then the back end (shapes are checked, so a wrong entry fails).
LAYERS = {
    "batch_normalization": "input_bn",
    "conv2d": "timbral_74_conv", "batch_normalization_1": "timbral_74_bn",
    "conv2d_1": "timbral_77_conv", "batch_normalization_2": "timbral_77_bn",
    "conv2d_2": "temporal_128_conv", "batch_normalization_3": "temporal_128_bn",
    "conv2d_3": "temporal_64_conv", "batch_normalization_4": "temporal_64_bn",
    "conv2d_4": "temporal_32_conv", "batch_normalization_5": "temporal_32_bn",
    "conv2d_5": "midend_1_conv", "batch_normalization_6": "midend_1_bn",
    "conv2d_6": "midend_2_conv", "batch_normalization_7": "midend_2_bn",
    "conv2d_7": "midend_3_conv", "batch_normalization_8": "midend_3_bn",
    "batch_normalization_9": "pool_bn",
    "dense": "penultimate_dense", "batch_normalization_10": "penultimate",
    "dense_1": "logits",
}
# The mid-end convolutions are 2-D convs spanning all features: kernel
# (7, C, 1, 64) is our Conv1D kernel (7, C, 64).
CONV1D = {"midend_1_conv", "midend_2_conv", "midend_3_conv"}


def read_checkpoint(wheel: Path, model: str = "MSD_musicnn") -> dict[str, np.ndarray]:
    """The model variables of checkpoint ``model`` in the wheel, by TF name (optimizer slots dropped)."""
    import tensorflow as tf  # only to read the TF1 checkpoint format

    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        for suffix in (".index", ".data-00000-of-00001"):
            Path(tmp, "model" + suffix).write_bytes(zf.read(f"musicnn/{model}/{suffix}"))
        reader = tf.compat.v1.train.NewCheckpointReader(str(Path(tmp, "model")))
        names = reader.get_variable_to_shape_map()
        return {n: reader.get_tensor(n) for n in names
                if not n.endswith(("/Adam", "/Adam_1")) and n not in ("beta1_power", "beta2_power")}


def convert(tf_vars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """TF variables -> our variable paths, every variable mapped exactly once."""
    out = {}
    for name, value in tf_vars.items():
        scope, weight = name.rsplit("/", 1)
        if scope not in LAYERS:
            raise SystemExit(f"checkpoint variable {name!r} has no counterpart in the port")
        layer = LAYERS[scope]
        out[f"{layer}/{weight}"] = value[:, :, 0, :] if layer in CONV1D and weight == "kernel" else value
    return out


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (what ``np.savez_compressed`` writes) with fixed timestamps and sorted names."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[name], np.float32), allow_pickle=False)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep the file from other users
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl (from pip download)")
    parser.add_argument("--backbone", choices=CHECKPOINTS, default="msd",
                        help="msd: MSD_musicnn (Million Song Dataset tags), mtt: MTT_musicnn (MagnaTagATune); "
                             "default msd")
    parser.add_argument("--out", type=Path, help="weight file to write (default: the backbone's in models/musicnn/)")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    args.out = args.out or BACKBONES[args.backbone]
    model = CHECKPOINTS[args.backbone]
    if not zipfile.is_zipfile(args.wheel):
        print(f"{args.wheel}: not a wheel (zip) file", file=sys.stderr)
        return 2

    tf_vars = read_checkpoint(args.wheel, model)
    arrays = convert(tf_vars)
    load_weights(build_musicnn(), io.BytesIO(npz_bytes(arrays)))  # raises unless complete and well-shaped
    data = npz_bytes(arrays)
    print(f"wheel sha256 {hashlib.sha256(args.wheel.read_bytes()).hexdigest()}")
    print(f"{model}: {len(tf_vars)} model variables, {sum(a.size for a in arrays.values()):,} parameters")
    print(f"weights sha256 {hashlib.sha256(data).hexdigest()} ({len(data):,} bytes)")
    if args.check:
        same = args.out.is_file() and args.out.read_bytes() == data
        print(f"{args.out}: {'identical' if same else 'DIFFERS'}")
        return 0 if same else 1
    write_atomic(args.out, data)
    with zipfile.ZipFile(args.wheel) as zf:
        write_atomic(args.out.parent / "LICENSE", zf.read(LICENSE))
    print(f"wrote {args.out} and {args.out.parent / 'LICENSE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
