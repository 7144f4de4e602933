"""How far the Keras 3 musicnn port is from the original TF1 graph, per Keras backend: reports/musicnn_port.json.

Feeds the patches our front end computes for the five clips of
``tests/fixtures/musicnn_reference.npz`` (written by
``scripts/musicnn_reference.py`` from musicnn 0.1.0's own graph and
checkpoint) through our port, under each backend in a fresh process, and
records per clip the largest absolute gap in the 50 tag probabilities and
the largest relative gap of the penultimate / max_pool / mean_pool features.
``tests/test_musicnn.py`` holds the port to 1e-4 and checks this report.

    python scripts/musicnn_port.py [--backends tensorflow jax] [--out reports/musicnn_port.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "tests" / "fixtures" / "musicnn_reference.npz"
OUTPUTS = ("tags", "penultimate", "max_pool", "mean_pool")
TOLERANCE = 1e-4  # tests/test_musicnn.py: tag probabilities


def gaps(reference: Path = REFERENCE) -> dict:
    """Per clip of the fixture: largest tag gap and largest feature gap of our port, this process's backend."""
    import keras
    import numpy as np

    from utils import audio
    from utils.audio.frontend import MUSICNN, LogMel, windows
    from utils.models.musicnn import embed_patches, embedding_model, load_musicnn

    with np.load(reference) as npz:
        ref = {k: npz[k] for k in npz.files}
    extractor = embedding_model(load_musicnn(), OUTPUTS)
    lm = LogMel(MUSICNN)
    clips = {}
    for i, clip in enumerate(ref["clips"]):
        patches = windows(lm(audio.load(ROOT / str(clip), MUSICNN.sample_rate)), MUSICNN, str(clip))
        ours = embed_patches(extractor, patches)
        features = max(float(np.max(np.abs(ours[k] - ref[f"{i}/{k}"]) / (1 + np.abs(ref[f"{i}/{k}"]))))
                       for k in OUTPUTS[1:])
        clips[str(clip)] = {"patches": len(patches),
                            "tag_gap": float(np.abs(ours["tags"] - ref[f"{i}/tags"]).max()),
                            "feature_gap_relative": features}
    return {"backend": keras.config.backend(), "clips": clips,
            "max_tag_gap": max(c["tag_gap"] for c in clips.values()),
            "min_tag_gap": min(c["tag_gap"] for c in clips.values())}


def markdown(report: dict) -> str:
    """The README block: the largest tag-probability gap per backend."""
    from utils.evaluation.provenance import describe

    lines = ["| Keras backend | clips | largest gap in a tag probability, per clip (min - max) |",
             "|---|---|---|"]
    for b in report["backends"]:
        lines.append(f"| {b['backend']} | {len(b['clips'])} ({sum(c['patches'] for c in b['clips'].values())} "
                     f"patches) | {b['min_tag_gap']:.1e} - {b['max_tag_gap']:.1e} |")
    return "\n".join([*lines, "",
                      f"<small>Port vs musicnn 0.1.0's TF1 graph (`tests/fixtures/musicnn_reference.npz`); "
                      f"`reports/musicnn_port.json`, {describe(report['provenance'])}.</small>", ""])


def main(argv: list[str] | None = None) -> int:
    from utils.evaluation.provenance import finish, provenance, write_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["tensorflow", "jax"], choices=("tensorflow", "jax"))
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "musicnn_port.json")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child: this backend, JSON out
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(gaps()))
        return 0
    block = provenance(["scripts/musicnn_port.py", *(sys.argv[1:] if argv is None else argv)])
    results = []
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        run = subprocess.run([sys.executable, __file__, "--one"], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=False)
        if run.returncode:
            print(f"musicnn_port: {backend}: {run.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(f"{backend}: largest tag gap {results[-1]['max_tag_gap']:.2e}")
    report = {"tolerance": TOLERANCE, "backends": results}
    block = finish(block)
    write_report(args.out, report, block, markdown({"provenance": block, **report}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
