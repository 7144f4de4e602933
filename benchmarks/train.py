"""Model speed and memory on CPU: training and inference windows/s, peak memory, one clip end to end.

Each model runs in a fresh process (so its peak resident memory is its own)
on real GTZAN clips (default: ../shared/data/gtzan_mini, never bundled): all clips' 128 x 128
windows, 10 genres. Training
speed is the best of the epochs after the first (which includes tracing and
compilation), measured through :func:`utils.models.training.train`, per-epoch
checkpoint commits included. Inference is ``predict_proba`` over the same
windows, best of 3 after a warm-up. End to end is one 30 s clip: decode ->
log-Mel -> windows -> model -> mean probabilities, best of 5, split by stage.
Ratios are against the cnn and against the front end (decode + spectrogram),
both measured in the same run. Writes the figures with their provenance to
``reports/benchmarks_train.json`` and the README's table to
``reports/benchmarks_train.md``.

    python benchmarks/train.py [--data ../shared/data/gtzan_mini] [--epochs 3] [--models cnn crnn ...]
    KERAS_BACKEND=jax python benchmarks/train.py
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from utils.data.datasets import SHARED_DATA
from utils.evaluation.provenance import describe, finish, provenance, write_report
from utils.models.registry import CNN_MODELS

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, data: Path, epochs: int, batch_size: int) -> dict:
    import keras
    import numpy as np

    from utils import audio

    from utils.models import backend

    from utils.models import architectures as models

    from utils.models import training
    from utils.audio.frontend import FrontEnd, LogMel, logmel_file, windows

    fe = FrontEnd()
    lm = LogMel(fe)
    clips = sorted(data.rglob("*.wav"))
    genres = sorted({p.parent.name for p in clips})
    xs = [windows(logmel_file(p, lm), fe) for p in clips]
    x = np.concatenate(xs)
    y = np.concatenate([[genres.index(p.parent.name)] * len(w) for p, w in zip(clips, xs)])
    base_rss = rss_mib()

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimes()
    with tempfile.TemporaryDirectory() as run:
        config = training.TrainConfig(model=name, epochs=epochs, batch_size=batch_size, patience=epochs)
        result = training.train(config, (x, y), (x[::4], y[::4]), len(genres), run, callbacks=(timer,))
    model = result.model
    models.predict_proba(model, x)  # warm-up: builds the predict function
    infer = min(_seconds(lambda: models.predict_proba(model, x)) for _ in range(3))

    clip = clips[0]
    stages = {"decode": [], "spectrogram": [], "windows": [], "model": []}
    for _ in range(6):  # the first round warms up and is dropped below
        t0 = time.perf_counter()
        samples = audio.load(clip, fe.sample_rate)
        t1 = time.perf_counter()
        S = lm(samples)
        t2 = time.perf_counter()
        w = windows(S, fe)
        t3 = time.perf_counter()
        models.predict_proba(model, w).mean(axis=0)
        t4 = time.perf_counter()
        for k, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[k].append(dt)
    return {"name": name, "backend": backend.name(), "params": model.count_params(),
            "windows": len(x), "train_wps": len(x) / min(timer.times[1:]),
            "first_epoch_s": timer.times[0], "infer_wps": len(x) / infer,
            "clip_windows": len(w), "clip": {k: min(v[1:]) for k, v in stages.items()},
            "peak_rss": rss_mib(), "base_rss": base_rss}


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED_DATA / "gtzan_mini", help="GTZAN folder <genre>/*.wav")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs per model (>= 2)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--models", nargs="+", default=list(CNN_MODELS))
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "benchmarks_train.json",
                    help="figures with their provenance (and the Markdown table beside it, .md)")
    args = ap.parse_args()
    block = provenance()
    if args.epochs < 2:
        ap.error("--epochs must be at least 2: the first epoch includes compilation")
    load = os.getloadavg()[0]  # other work on the machine skews every number below
    results = []
    for name in args.models:  # one process per model: its own peak memory, no shared caches
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(measure, name, args.data, args.epochs, args.batch_size).result())
    r0 = results[0]
    print(f"backend {r0['backend']}, {r0['windows']} windows of 128 frames x 128 Mels "
          f"({args.data}), batch {args.batch_size}, {args.epochs} epochs; "
          f"load average before the run {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'model':<10} {'params':>7} {'train w/s':>10} {'1st epoch s':>11} {'infer w/s':>10} "
          f"{'peak MiB':>9} {'+MiB':>6} {'train vs cnn':>12} {'infer vs cnn':>12}")
    cnn = next((r for r in results if r["name"] == "cnn"), r0)
    for r in results:
        print(f"{r['name']:<10} {r['params']:>7} {r['train_wps']:>10.1f} {r['first_epoch_s']:>11.1f} "
              f"{r['infer_wps']:>10.1f} {r['peak_rss']:>9.0f} {r['peak_rss'] - r['base_rss']:>6.0f} "
              f"{r['train_wps'] / cnn['train_wps']:>12.2f} {r['infer_wps'] / cnn['infer_wps']:>12.2f}")
    print(f"\none 30 s clip end to end ({r0['clip_windows']} windows), ms, best of 5:")
    print(f"{'model':<10} {'decode':>7} {'spectro':>8} {'windows':>8} {'model':>7} {'total':>7} "
          f"{'model / front end':>18}")
    for r in results:
        c = {k: v * 1e3 for k, v in r["clip"].items()}
        front = c["decode"] + c["spectrogram"]
        print(f"{r['name']:<10} {c['decode']:>7.1f} {c['spectrogram']:>8.1f} {c['windows']:>8.2f} "
              f"{c['model']:>7.1f} {sum(c.values()):>7.1f} {c['model'] / front:>18.2f}")
    report = {"data": str(args.data), "epochs": args.epochs, "batch_size": args.batch_size,
              "baseline": cnn["name"], "models": results}
    block = finish(block)
    write_report(args.json, report, block, markdown({"provenance": block, **report}))
    print(f"wrote {args.json}")


def markdown(report: dict) -> str:
    """The README's table of ``report`` (what :func:`main` writes)."""
    base = next(r for r in report["models"] if r["name"] == report["baseline"])
    lines = [f"| model | parameters | training windows/s | vs {base['name']} | inference windows/s "
             "| one 30 s clip end to end |", "|---|---|---|---|---|---|"]
    for r in report["models"]:
        lines.append(f"| {r['name']} | {r['params']:,} | {r['train_wps']:.0f} "
                     f"| {r['train_wps'] / base['train_wps']:.2f}x | {r['infer_wps']:.0f} "
                     f"| {sum(r['clip'].values()) * 1e3:.0f} ms |")
    return "\n".join([*lines, "", f"<small>{base['backend']} backend, {base['windows']} windows of the "
                       f"GTZAN clips of `{report['data']}`, batch {report['batch_size']}, best of epochs 2-{report['epochs']}; "
                       f"`reports/benchmarks_train.json`: {describe(report['provenance'])}.</small>", ""])


if __name__ == "__main__":
    main()
