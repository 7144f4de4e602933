"""Issue 13, measured: the robust genre model's front end and head chosen by nested validation, and its robustness
on conditions training never saw (held-out augmentation families; SoX / FFmpeg conditions).

    python scripts/robustness_experiment.py --gtzan /work/shared/data/gtzan_mini \
        [--copies 8] [--save-default models/default.keras]

Every GTZAN clip is decoded at 22,050 Hz and copied under each condition,
seeded per clip:

- ``clean``;
- ``augment_k`` (k < ``--copies``): a :class:`utils.audio.augment.RandomChain`
  of one to three pedalboard effect families with random parameters, used
  only when the clip is in the training folds;
- ``family_F``: the clip through family F alone (other seeds), the test of
  leave-one-family-out, where the head is trained on the clean clips and the
  augmented copies whose chain does not contain F;
- each of :data:`utils.evaluation.conditions.CONDITIONS`, made by ``sox`` or
  ``ffmpeg`` (never by the training code).

Each copy goes through each of :data:`FRONT_ENDS` (per-window level
normalisation, with or without band normalisation) and musicnn (per-patch
``penultimate`` + ``max_pool``), and through the hand-crafted features; all
are cached under ``--cache``, one ``.npz`` per front end and condition (resumable).

Outer loop: stratified 5-fold x 3 repeats. Inside each outer training set, an
inner stratified 3-fold chooses the front end and head among :data:`VARIANTS` by the
worst-case accuracy over the inner validation clips, clean and under each
augmentation family (the SoX / FFmpeg conditions and the outer test clips play no
part); the choice is then trained on the whole outer training set and scored
once on the outer test clips, under every condition. The temperature is
fitted on the inner validation probabilities and scored on the outer test
clips. Writes ``reports/robustness.{json,md}`` and ``reports/figures/robustness.png``.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from utils.atomic import write_atomic
from utils.audio import decoder as audio
from utils.audio.augment import FAMILIES, RandomChain, family_copy
from utils.evaluation import conditions as sox_ffmpeg
from utils.evaluation.features import feature_vector
from utils.evaluation.robustness import (CHOSEN, WINDOW_STRIDES, checks, rerender, stride_summary, summarize,
                                         write_reports)
from utils.models.musicnn import WEIGHTS, MusicnnEmbedder, band_offset_quartiles
from utils.models.transfer_train import FRONTEND, HEADS, LAYERS, ensemble

ROOT = Path(__file__).resolve().parents[1]
SR = 22050  # GTZAN's rate: conditions and hand-crafted features work here
# Front ends compared by nested validation: band normalisation (utils.models.transfer_train.FRONTEND, which
# `fma-genre train` uses, has the shipped model's tolerance) with no tolerance and with the first quartile and
# the median of the reference windows' own band offsets (a label-free scale from the FMA sample, written by
# scripts/band_reference.py), and the same front end without band normalisation.
TOLERANCES = {"": 0.0, **{f", tolerance {q}": t for q, t in zip(("q1", "median"), band_offset_quartiles().values())}}
FRONT_ENDS = {**{f"band-normalised{k}": dataclasses.replace(FRONTEND, band_tolerance=t) for k, t in TOLERANCES.items()},
              "level only": dataclasses.replace(FRONTEND, band_level="none", band_reference=(), band_tolerance=0.0)}
# Variants compared by nested validation: a front end and the heads whose window probabilities are
# averaged (an ensemble has two). A track's probabilities are the mean of its windows', as
# utils.models.predict serves them; the geometric mean of window probabilities is scored for reference only.
# (HEADS and the shipped model's LAYERS: utils.models.transfer_train.)
HEAD_SETS = {"linear head": ("linear",), "dense head": ("dense",), "ensemble of both": ("linear", "dense")}
VARIANTS = {f"{h}, {f}": (f, heads) for f in FRONT_ENDS for h, heads in HEAD_SETS.items()}
PLAIN = "level only"  # the front end of the plain musicnn + logistic regression baseline


def conditions(n_copies: int) -> list[str]:
    return ["clean", *(f"augment_{k}" for k in range(n_copies)), *(f"family_{f}" for f in FAMILIES),
            *sox_ffmpeg.CONDITIONS]


def copy_of(y: np.ndarray, condition: str, clip: int) -> tuple[str, np.ndarray]:
    """``(what was applied, samples at SR)`` of clip number ``clip`` under ``condition``.
    Seeds: augmentation copy k of clip i uses 1,000,000 + 100 i + k; family copies 2,000,000 + i."""
    if condition == "clean":
        return "clean", y
    if condition.startswith("augment_"):
        seed = 1_000_000 + 100 * clip + int(condition.removeprefix("augment_"))
        return "+".join(RandomChain().families(seed)), RandomChain()(y, SR, seed)
    if condition.startswith("family_"):
        family = condition.removeprefix("family_")
        return family, family_copy(family, y, SR, 2_000_000 + clip)
    return condition, sox_ffmpeg.apply(condition, y, SR)


def cache_key(paths: list[Path], fe) -> str:
    """Digest of what the cached arrays depend on (clips, weights, front end, effects, seeds)."""
    h = hashlib.sha1()
    for p in paths:
        h.update(f"{p.name}:{p.stat().st_size};".encode())
    h.update(hashlib.sha1(WEIGHTS.read_bytes()).digest())
    for module in ("augment.py", "frontend.py"):
        h.update((ROOT / "utils" / "audio" / module).read_bytes())
    h.update((ROOT / "utils" / "evaluation" / "conditions.py").read_bytes())
    h.update(f"{fe!r}|{SR}|{LAYERS}".encode())
    return h.hexdigest()[:12]


def compute_condition(paths, clean, condition: str, embedder: MusicnnEmbedder, features: bool) -> dict:
    fe = embedder.fe
    xs, track, feats, applied = [], [], [], []
    for i, y in enumerate(tqdm(clean, desc=condition, unit="clip", file=sys.stderr)):
        name, z = copy_of(y, condition, i)
        emb = embedder.samples(soxr.resample(z, SR, fe.sample_rate, quality="HQ"), str(paths[i]))
        xs.append(np.concatenate([emb[n] for n in LAYERS], axis=1))
        track.append(np.full(len(xs[-1]), i))
        if features:
            feats.append(feature_vector(z).to_numpy())
        applied.append(name)
    out = {"x": np.concatenate(xs), "track": np.concatenate(track), "applied": np.array(applied)}
    if features:
        out["features"] = np.stack(feats)
    return out


def embed_all(paths: list[Path], cache_dir: Path, n_copies: int) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{front end: {condition: arrays}}`` for every one of :data:`FRONT_ENDS`, from the cache or computed."""
    clean = functools.cache(lambda: [audio.load(p, SR) for p in paths])  # decoded once, if any copy is computed
    return {name: embed_front_end(paths, cache_dir, n_copies, name, clean) for name in FRONT_ENDS}


def embed_front_end(paths, cache_dir: Path, n_copies: int, name: str,
                    clean: Callable[[], list[np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """One front end's copies; ``clean()`` gives the decoded clips."""
    fe = FRONT_ENDS[name]
    folder = cache_dir / cache_key(paths, fe)
    data, todo = {}, []
    for c in conditions(n_copies):
        path = folder / f"{c}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                data[c] = {k: z[k] for k in z.files}
        else:
            todo.append(c)
    if todo:
        print(f"computing {len(todo)} of {len(conditions(n_copies))} conditions into {folder}", file=sys.stderr)
        embedder = MusicnnEmbedder(LAYERS, fe=fe, batch_size=64)
        for c in todo:
            data[c] = compute_condition(paths, clean(), c, embedder,
                                        features=name == PLAIN and (c == "clean" or c in sox_ffmpeg.CONDITIONS))

            def save(tmp, d=data[c]):
                with open(tmp, "wb") as f:
                    np.savez(f, **d)
            write_atomic(folder / f"{c}.npz", save)
    return data


# --- heads, pooling, nested selection ----------------------------------------------------------

def training_patches(data, y: np.ndarray, clips: np.ndarray, n_copies: int, exclude: str | None = None):
    """Patches and labels of ``clips``: clean, and every augmented copy whose chain lacks ``exclude``."""
    xs, ys = [], []
    for c in ["clean", *(f"augment_{k}" for k in range(n_copies))]:
        d = data[c]
        keep = clips
        if exclude is not None and c != "clean":
            keep = np.array([i for i in clips if exclude not in str(d["applied"][i]).split("+")], int)
        m = np.isin(d["track"], keep)
        xs.append(d["x"][m])
        ys.append(y[d["track"][m]])
    return np.concatenate(xs), np.concatenate(ys)


def train_heads(data, y, clips, n_copies, names, exclude=None, seed: int = 0) -> dict:
    """``{(front end, head): model}`` for the ``(front end, head)`` pairs ``names``."""
    from utils.models.transfer import train_head

    out = {}
    for f in dict.fromkeys(f for f, _ in names):
        x, labels = training_patches(data[f], y, clips, n_copies, exclude)
        out |= {(f, h): train_head(x, labels, int(y.max()) + 1, dataclasses.replace(HEADS[h], seed=seed))
                for g, h in names if g == f}
    return out


def head_pairs(variants) -> list[tuple[str, str]]:
    """The ``(front end, head)`` pairs the variants need, each once."""
    return list(dict.fromkeys((f, h) for v in variants for f, heads in [VARIANTS[v]] for h in heads))


def window_probs(heads: dict, data: dict, condition: str, clips: np.ndarray, stride: int = 1
                 ) -> tuple[dict[tuple[str, str], np.ndarray], np.ndarray]:
    """Each head's window probabilities for the patches of ``clips`` under ``condition``, and their clip;
    with ``stride`` k, only every k-th window of each clip (its first always). The front ends cut the
    same windows, so one clip index serves them all."""
    probs, track = {}, None
    for (f, h), model in heads.items():
        d = data[f][condition]
        m = np.isin(d["track"], clips) & (window_index(d["track"]) % stride == 0)
        probs[f, h], track = np.asarray(model(d["x"][m], training=False)), d["track"][m]
    return probs, track


def window_index(track: np.ndarray) -> np.ndarray:
    """Position of each patch within its clip (patches are stored clip by clip, in time order)."""
    starts = np.r_[0, np.flatnonzero(np.diff(track)) + 1]
    return np.arange(track.size) - np.repeat(starts, np.diff(np.r_[starts, track.size]))


def pool(p: np.ndarray, track: np.ndarray, clips: np.ndarray, how: str) -> np.ndarray:
    """Track probabilities ``(len(clips), C)`` from window probabilities: mean, or normalised geometric mean."""
    out = []
    for i in clips:
        w = p[track == i]
        if how == "mean":
            out.append(w.mean(axis=0))
        else:
            z = np.log(np.maximum(w, 1e-12)).mean(axis=0)
            out.append(np.exp(z - z.max()) / np.exp(z - z.max()).sum())
    return np.array(out)


def variant_probs(probs: dict, track, clips, variant: str, pooling: str = "mean") -> np.ndarray:
    f, heads = VARIANTS[variant]
    return pool(np.mean([probs[f, h] for h in heads], axis=0), track, clips, pooling)


def select_variant(data, y, train, n_copies, seed: int) -> tuple[str, dict, float]:
    """Nested choice inside ``train``: ``(variant, inner validation accuracies, temperature)``."""
    from utils.data.splits import cv_folds
    from utils.models.calibration import fit_temperature, log_probs

    inner = cv_folds(y[train], 3, 1, seed)[0]
    val_conditions = ["clean", *(f"family_{f}" for f in FAMILIES)]
    correct = {v: {c: 0 for c in val_conditions} for v in VARIANTS}
    clean_probs = {v: [] for v in VARIANTS}
    clean_labels = []
    for j in np.unique(inner):
        fit, val = train[inner != j], train[inner == j]
        heads = train_heads(data, y, fit, n_copies, head_pairs(VARIANTS), seed=seed)
        for c in val_conditions:
            probs, track = window_probs(heads, data, c, val)
            for v in VARIANTS:
                p = variant_probs(probs, track, val, v)
                correct[v][c] += int((p.argmax(axis=1) == y[val]).sum())
                if c == "clean":
                    clean_probs[v].append(p)
        clean_labels.append(y[val])
    acc = {v: {c: n / len(train) for c, n in cs.items()} for v, cs in correct.items()}
    best = max(VARIANTS, key=lambda v: (min(acc[v].values()), np.mean(list(acc[v].values()))))
    temperature = fit_temperature(log_probs(np.concatenate(clean_probs[best])), np.concatenate(clean_labels))
    return best, acc, temperature


def sklearn_fit(x_train, y_train, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)).fit(x_train, y_train)


def track_embeddings(d: dict, n_clips: int) -> np.ndarray:
    """Mean and max over each clip's patches: the plain musicnn + logistic regression input."""
    return np.stack([np.concatenate([d["x"][d["track"] == i].mean(axis=0), d["x"][d["track"] == i].max(axis=0)])
                     for i in range(n_clips)])


def cross_validate(data, y, folds, n_copies, test_on, lofo_repeats: int, log=print):
    """Every outer fold: nested choice, test scores of every method, leave-one-family-out."""
    from utils.models.calibration import apply_temperature, log_probs

    n_clips = len(y)
    pooled = {c: track_embeddings(data[PLAIN][c], n_clips) for c in test_on}
    rows, choices, lofo = [], [], []
    for r, assignment in enumerate(folds):
        for k in np.unique(assignment):
            t0 = time.perf_counter()
            train, test = np.flatnonzero(assignment != k), np.flatnonzero(assignment == k)
            seed = 1000 * (r + 1) + int(k)
            chosen, inner_acc, temperature = select_variant(data, y, train, n_copies, seed)
            heads = train_heads(data, y, train, n_copies, head_pairs(VARIANTS), seed=seed)
            plain = sklearn_fit(pooled["clean"][train], y[train], seed)
            crafted = sklearn_fit(data[PLAIN]["clean"]["features"][train], y[train], seed)
            for c in test_on:
                probs, track = window_probs(heads, data, c, test)
                methods = {CHOSEN: variant_probs(probs, track, test, chosen)}
                methods |= {f"{v} (reference)": variant_probs(probs, track, test, v) for v in VARIANTS}
                methods["chosen head, geometric pooling (reference)"] = variant_probs(probs, track, test, chosen,
                                                                                      "geometric")
                methods["plain musicnn track mean+max + logreg, clean training"] = \
                    plain.predict_proba(pooled[c][test])
                if "features" in data[PLAIN][c]:  # clean and the SoX / FFmpeg conditions
                    methods["hand-crafted features + logreg, clean training"] = \
                        crafted.predict_proba(data[PLAIN][c]["features"][test])
                for stride in WINDOW_STRIDES[1:]:
                    sparse, sparse_track = window_probs(heads, data, c, test, stride)
                    methods[f"{CHOSEN}, every {stride} windows"] = variant_probs(
                        sparse, sparse_track, test, chosen)
                for name, p in methods.items():
                    row = {"method": name, "condition": c, "repeat": r, "fold": int(k),
                           "accuracy": float((p.argmax(axis=1) == y[test]).mean())}
                    if name == CHOSEN and c == "clean":
                        q = apply_temperature(log_probs(p), temperature)
                        row["log_loss_calibrated"] = float(-np.log(np.maximum(q[np.arange(len(test)), y[test]],
                                                                               1e-12)).mean())
                    rows.append(row)
            choices.append({"repeat": r, "fold": int(k), "chosen": chosen, "temperature": temperature,
                            "inner_validation_accuracy": inner_acc})
            if r < lofo_repeats:
                for f in FAMILIES:
                    held = train_heads(data, y, train, n_copies, head_pairs([chosen]), exclude=f, seed=seed)
                    probs, track = window_probs(held, data, f"family_{f}", test)
                    p = variant_probs(probs, track, test, chosen)
                    lofo.append({"family": f, "repeat": r, "fold": int(k), "chosen": chosen,
                                 "accuracy": float((p.argmax(axis=1) == y[test]).mean())})
            log(f"repeat {r} fold {k}: chose {chosen}, {time.perf_counter() - t0:.0f} s")
    return rows, choices, lofo


# --- the shipped model ---------------------------------------------------------------------------

def shipped_model(data, y, n_copies: int, variant: str, seed: int):
    """The variant's heads trained on every clip and copy, averaged, composed with musicnn: one
    Keras window model ``(batch, 187, 96)`` -> genre probabilities, the form ``utils.models.predict`` serves."""
    from utils.models.musicnn import load_musicnn
    from utils.models.transfer import genre_model

    heads = train_heads(data, y, np.arange(len(y)), n_copies, head_pairs([variant]), seed=seed)
    return genre_model(load_musicnn(), ensemble({h: m for (_, h), m in heads.items()}), LAYERS,
                       FRONT_ENDS[VARIANTS[variant][0]])


def save_default(path: Path, model, classes, results: dict, paths: list[Path], temperature: float) -> None:
    from utils.models.card import ModelCard, save_model

    variant = results["shipped_variant"]
    fe_name, head_names = VARIANTS[variant]
    fe = FRONT_ENDS[fe_name]
    figures = {r["condition"]: {"accuracy": r["accuracy_mean"], "accuracy_std": r["accuracy_std"]}
               for r in results["summary"] if r["method"] == CHOSEN}
    card = ModelCard(
        labels=tuple(classes), frontend=fe, architecture="musicnn_transfer", temperature=temperature,
        training={
            "base": "MSD_musicnn (models/musicnn/msd_musicnn.npz, ISC licence), frozen",
            "heads": {h: dataclasses.asdict(HEADS[h]) for h in head_names},
            "variant": variant,
            "why": results["why_shipped"],
            "level": "per-window level normalisation in the front end (FrontEnd.level='window'), chosen by "
                     "measurement over BS.1770 integrated loudness and none (reports/level_choice.json)",
            "bands": (f"per-window band normalisation (FrontEnd.band_level='window', each Mel band's mean brought to "
                      f"within band_tolerance={fe.band_tolerance:g} dB of models/musicnn/band_reference.json; "
                      f"band_mean={fe.band_mean!r})"
                      if fe.band_level == "window" else "none")
                     + f"; front end chosen by nested validation among {list(FRONT_ENDS)} (reports/robustness.json)",
            "augmentation": f"the clean clips plus {n_copies_of(results)} copies of each through "
                            "utils.audio.augment.RandomChain (pedalboard: 1-3 of the families "
                            f"{list(FAMILIES)} with random parameters, then a random gain)",
            "training_conditions": ["clean", *(f"augmentation family {f}" for f in FAMILIES)],
            "held_out_conditions": {c: " ".join([prog, *a]) for c, (prog, a) in sox_ffmpeg.CONDITIONS.items()},
            "temperature_fitted_on": "clean inner-validation track probabilities: the median of the temperatures "
                                     "fitted in the outer folds that chose this variant",
        },
        data={"dataset": "GTZAN", "n_clips": len(paths), "clips": [p.stem for p in paths],
              "caveats": CAVEATS},
        metrics={"cross_validation": {"split": results["split"], "report": "reports/robustness.json",
                                      "per_condition": figures,
                                      "held_out_conditions": list(sox_ffmpeg.CONDITIONS),
                                      "leave_one_family_out": {r["family"]: r["accuracy_mean"]
                                                               for r in results["lofo_summary"]},
                                      "checks": results["checks"]}})
    print(f"saved {path} and {save_model(model, path, card)}", file=sys.stderr)


def n_copies_of(results: dict) -> int:
    return int(results["augmented_copies_per_clip"])


CAVEATS = [
    "70 GTZAN clips only (7 per genre): every figure has a wide interval; GTZAN has repeated clips and "
    "artist overlap between clips (Sturm 2013), which fold splits by clip do not prevent",
    "musicnn was trained on the Million Song Dataset; GTZAN recordings may overlap its training audio",
    "trained and judged on 30 s excerpts of Western popular genres from the 2000s and before",
]


def machine() -> dict:
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()),
            "shared": "yes: 2 cores shared with other sessions"}


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gtzan", type=Path, default=ROOT / "data" / "sample" / "gtzan",
                   help="GTZAN-layout folder <genre>/<genre>.NNNNN.wav (default: data/sample/gtzan)")
    p.add_argument("--copies", type=int, default=3, help="augmented copies per training clip (default 3)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lofo-repeats", type=int, default=1, help="repeats that also run leave-one-family-out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=ROOT / "cache" / "robustness", help="embedding cache folder")
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    p.add_argument("--save-default", type=Path, metavar="MODEL.keras")
    p.add_argument("--render-only", action="store_true",
                   help="no new run: recompute the derived fields (checks, window_stride) of robustness.json from "
                        "its summary and rewrite robustness.md")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from collections import Counter

    import pandas as pd

    from utils.data.splits import cv_folds
    from utils.evaluation.provenance import finish, provenance

    args = parse_args(argv)
    if args.render_only:  # and, with --save-default, the shipped model again from the cache and the JSON
        import json

        results = rerender(json.loads((args.reports / "robustness.json").read_text()))
        write_reports(args.reports, results)
        if args.save_default:
            ship(args, results)
        return 0
    if not sox_ffmpeg.available():
        print("sox and ffmpeg are needed: apt-get install -y sox ffmpeg", file=sys.stderr)
        return 2
    started = time.time()
    paths = sorted(args.gtzan.glob("*/*.wav"))
    labels = [p.parent.name for p in paths]
    classes = sorted(set(labels))
    y = np.array([classes.index(g) for g in labels])
    n_splits = min(args.folds, int(np.bincount(y).min()))
    folds = cv_folds(y, n_splits, args.repeats, args.seed)
    split = f"stratified {n_splits}-fold x {args.repeats} repeats (utils.data.splits.cv_folds, seed {args.seed})"
    data = embed_all(paths, args.cache, args.copies)
    test_on = ["clean", *(f"family_{f}" for f in FAMILIES), *sox_ffmpeg.CONDITIONS]
    log = lambda s: print(s, file=sys.stderr, flush=True)
    rows, choices, lofo = cross_validate(data, y, folds, args.copies, test_on, args.lofo_repeats, log)
    summary = summarize(rows)
    lofo_summary = [{"family": f, "accuracy_mean": float(g.accuracy.mean()), "accuracy_std": float(g.accuracy.std()),
                     "n_folds": int(len(g))} for f, g in pd.DataFrame(lofo).groupby("family", sort=False)]
    counts = Counter(c["chosen"] for c in choices)
    shipped = counts.most_common(1)[0][0]
    kinds = {"clean": ("-", "yes")}
    kinds |= {f"family_{f}": ("pedalboard (training code)", "yes, in random chains") for f in FAMILIES}
    kinds |= {c: (prog.split("_")[0], "no") for c, (prog, _) in sox_ffmpeg.CONDITIONS.items()}
    results = {
        "provenance": finish(provenance(["scripts/robustness_experiment.py", *(argv or sys.argv[1:])])),
        "issue": 13, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": git_commit(),
        "machine": machine(), "command": "python scripts/robustness_experiment.py " + " ".join(argv or sys.argv[1:]),
        "seconds": round(time.time() - started), "dataset": "GTZAN", "root": str(args.gtzan), "n_clips": len(y),
        "classes": classes, "split": split, "folds": folds.tolist(), "front_ends": {f: fe.to_dict() for f, fe in FRONT_ENDS.items()},
        "augmented_copies_per_clip": args.copies, "families": list(FAMILIES),
        "held_out_conditions": {c: [prog, *a] for c, (prog, a) in sox_ffmpeg.CONDITIONS.items()},
        "condition_kinds": kinds,
        "variants": {v: {"front_end": f, "heads": list(h)} for v, (f, h) in VARIANTS.items()},
        "n_variants_tried": len(VARIANTS),
        "selection": "per outer fold, inner stratified 3-fold on the outer training clips; criterion: worst-case "
                     "inner-validation accuracy over clean and each augmentation family (pedalboard), then the "
                     "mean; the SoX/FFmpeg conditions and the outer test clips play no part. Reference rows score "
                     "every variant on the outer test folds for comparison only.",
        "exploration_before_this_run": "before this run, 16 settings of a logistic-regression proxy on the "
                                       "cached embeddings (penalty, augmented copies, embedding layers, scaling) "
                                       "and a steeper EQ band limit in the augmentation were scored by "
                                       "leave-one-family-out on the pedalboard families only (5 folds, 15 s per "
                                       "clip); the SoX/FFmpeg conditions were not looked at. It led to the steeper "
                                       "EQ filters (utils.audio.augment._steep); the proxies are not candidates. "
                                       "After the previous run, the model it shipped, tried on 30 of its training "
                                       "clips through SoX brick-wall filters and other effects (reports/"
                                       "band_probe.json, model 'before'), missed many in a telephone band and "
                                       "with the bass cut. That led to the EQ family's "
                                       "highpass alone, lowpass alone and both (utils.audio.augment._eq, slopes "
                                       "up to 48 dB/oct) and to the telephone band and the 800 Hz highpass "
                                       "joining the held-out conditions; no other held-out condition was looked "
                                       "at for it. Before this run, a label-free probe on 20 clips (2 per genre) "
                                       "asked whether a clip's musicnn track embedding through the SoX telephone "
                                       "band, the 800 Hz highpass, the FFmpeg laptop speaker and the SoX hall "
                                       "reverb lies nearest its own clean embedding, for four window "
                                       "normalisations (none beyond level; each band's mean set to a reference "
                                       "profile; to the window's flat mean; only weak bands raised). The "
                                       "reference profile made it 0.75/0.85/1.00/0.95 against 0.25/0.35/0.75/1.00 "
                                       "for level only; a genre nearest-neighbour check among the 20 clean clips "
                                       "fell from 0.70 to 0.60. That probe looked at held-out conditions on clips "
                                       "this run tests, so it is disclosed here; it chose which normalisation "
                                       "joins the nested selection as a front-end variant, and the selection "
                                       "itself sees no held-out condition. The previous run's test folds showed "
                                       "band normalisation costing clean accuracy against the same head without it, "
                                       "under the issue's clean target: that result led to the band tolerance variants. "
                                       "Their two values are the first quartile and the median of the band offsets "
                                       "of the FMA sample's windows (models/musicnn/band_reference.json), set "
                                       "before this run from no GTZAN clip; no other tolerance was tried. Before this run, "
                                       "band normalisation moved bands in musicnn's log10(1 + 10000 S) units; a "
                                       "label-free check on 6 FMA sample clips through scipy Butterworth filters "
                                       "(800 Hz highpass, 300-3400 Hz band, 2 kHz lowpass, bass shelf; not the "
                                       "held-out implementation) found windows normalised in dB changed about half "
                                       "as much by the filter, so bands are now moved in dB; the log-unit version "
                                       "is not a candidate in this run. After that run (commit 5827074), a label-"
                                       "free check on the 20 data/sample GTZAN clips (which this run tests) and 6 "
                                       "FMA sample clips measured the cosine distance between a clip's musicnn "
                                       "track embedding and its copies' through FFmpeg MP3 at 16 and 32 kbit/s, "
                                       "Opus 12k, SoX telephone band, 800 Hz highpass, 2 kHz lowpass, reverb and "
                                       "white noise: with each band's mean taken as its mean power in dB instead of "
                                       "the mean of its cells in dB, MP3 16k moved 0.034 instead of 0.121, MP3 32k "
                                       "0.008 instead of 0.021, the filters about 10 % more; a look at the shipped "
                                       "model on those clips through MP3 16k (6 of 20 right) had led to it. So "
                                       "band means are now mean powers (FrontEnd.band_mean='power') and the "
                                       "tolerances the quartiles of those offsets; the dB-mean version is not a "
                                       "candidate in this run. Also after that run, three logistic-regression "
                                       "proxies on cached embeddings (MTT_musicnn's embedding alone and next to "
                                       "MSD_musicnn's, windows every 1.5 s, 6 augmented copies) were scored on "
                                       "clean, the pedalboard families and leave-one-family-out (5 folds, one "
                                       "repeat; no SoX/FFmpeg condition); none did clearly better and none is a "
                                       "candidate.",
        "lofo_note": f"repeats < {args.lofo_repeats}; head variant as chosen by the outer fold's nested selection "
                     "(whose criterion included the family's copies of other clips)",
        "choices": choices, "choice_counts": dict(counts), "shipped_variant": shipped,
        "why_shipped": f"chosen in {counts[shipped]} of {len(choices)} outer folds by its worst case over clean "
                       "and the augmentation families on inner validation folds",
        "summary": summary, "lofo_summary": lofo_summary, "per_fold": rows, "lofo_per_fold": lofo,
        "checks": checks(summary, lofo_summary, list(sox_ffmpeg.CONDITIONS)),
        "window_stride": stride_summary(summary, list(sox_ffmpeg.CONDITIONS)),
    }
    write_reports(args.reports, results)
    if args.save_default:
        ship(args, results, data)
    return 0


def ship(args: argparse.Namespace, results: dict, data: dict | None = None) -> None:
    """Train the shipped variant on every clip and copy and save it with its card (``--save-default``)."""
    paths = sorted(args.gtzan.glob("*/*.wav"))
    classes = results["classes"]
    y = np.array([classes.index(p.parent.name) for p in paths])
    copies = results["augmented_copies_per_clip"]
    data = data or embed_all(paths, args.cache, copies)
    shipped = results["shipped_variant"]
    temperature = float(np.median([c["temperature"] for c in results["choices"] if c["chosen"] == shipped]))
    save_default(args.save_default, shipped_model(data, y, copies, shipped, args.seed), classes, results, paths,
                 temperature)


if __name__ == "__main__":
    sys.exit(main())
