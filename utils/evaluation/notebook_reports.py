"""The JSON reports the pipeline's notebooks write, built from what each notebook computed.

One function per report file of ``<run>/reports/`` (the names of
:data:`utils.apps.pipeline.REPORTS`), so that a notebook's last cell is one
call and the reports' fields have one home; the slides and the tests read
these fields.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from utils.audio.frontend import FrontEnd
from utils.data import datasets
from utils.data.cache import Cache
from utils.data.splits import SplitPlan
from utils.evaluation.growth import transfer_row
from utils.models.transfer_train import TransferOutcome


def eda_report(dataset: str, data_root: str | os.PathLike, tracks: pd.DataFrame, labelled: pd.DataFrame,
               excluded: pd.DataFrame, plan: SplitPlan, clips: pd.DataFrame, meta: pd.DataFrame,
               meta_source: str | os.PathLike, hierarchy: pd.DataFrame, genre_tree: pd.DataFrame) -> dict:
    """``eda.json`` (01): the dataset's files, its labelled tracks (with their ``split``) per genre and split,
    clip lengths (``clips.seconds``, in s), and the FMA metadata's balance, median track duration (s) and
    bit-rate shares (kbit/s)."""
    balance = datasets.class_balance(labelled)
    fma_balance = datasets.class_balance(meta)
    return {
        "dataset": dataset, "data_root": str(data_root), "n_files": len(tracks), "n_labelled": len(labelled),
        "n_genres": int(labelled.label.nunique()), "n_excluded": len(excluded),
        "excluded": excluded[["track_id", "reason"]].to_dict("records"),
        "split": plan.how, "class_balance": balance.to_dict("index"),
        "imbalance_ratio": float(balance.total.max() / balance.total.min()),
        "clip_seconds": clips.seconds.describe().to_dict(),
        "fma_metadata": {"source": str(meta_source), "n_tracks": len(meta),
                         "class_balance": fma_balance.to_dict("index"),
                         "imbalance_ratio": float(fma_balance.total.max() / fma_balance.total.min()),
                         "median_duration_s": meta.groupby("label").duration.median().to_dict(),
                         "bit_rate_kbps_share": (meta.bit_rate // 1000).value_counts(normalize=True).head(8)
                                                .rename(index=str).to_dict()},
        "fma_genre_tree": {"top_level": len(hierarchy), "genres": len(genre_tree)},
    }


def genre_order_report(order: Sequence[str], distances: pd.DataFrame, train_windows: pd.DataFrame,
                       max_windows: int) -> dict:
    """``genre_order.json`` (02): the most-distinct-first order, the distances (dB) and the windows averaged."""
    return {
        "order": list(order), "distances_db": distances.round(3).to_dict("index"),
        "definition": "greedy max-min over the Euclidean distance (dB) between per-genre mean spectra "
                      "(mean log-Mel per band) of the training windows",
        "windows_per_genre": {g: int(min((train_windows.label == g).sum(), max_windows)) for g in distances.index}}


def cache_report(cache: Cache, frontend: FrontEnd, excluded: pd.DataFrame, extract_seconds: float) -> dict:
    """``spectrograms.json`` (02): the front end, what the cache holds and what it skipped, with the reason."""
    ok = cache.tracks[cache.tracks.status == "ok"]
    skipped = cache.tracks.loc[cache.tracks.status == "failed", ["track_id", "label", "error"]]
    return {
        "frontend": frontend.to_dict(), "cache": str(cache.path.resolve()), "n_tracks": len(cache.tracks),
        "n_ok": len(ok), "n_windows": int(ok.n_windows.sum()), "n_skipped": len(skipped),
        "skipped": skipped.to_dict("records"), "known_bad": excluded[["track_id", "reason"]].to_dict("records"),
        "extract_seconds": extract_seconds}


def balancing_report(pair: Sequence[str], config, plan: SplitPlan, tracks: pd.DataFrame, rows: pd.DataFrame,
                     summary: pd.DataFrame) -> dict:
    """``binary_balancing.json`` (03): every run of the imbalance comparison and its summary per method;
    ``config`` is the :class:`~utils.models.training.TrainConfig`, ``tracks`` the cached tracks of the pair."""
    training = tracks[tracks.track_id.isin(plan.holdout.training)]
    return {"genres": list(pair), "model": config.model, "split": plan.how, "config": dataclasses.asdict(config),
            "training_tracks": training.label.value_counts().to_dict(),
            "runs": rows.to_dict("records"), "summary": summary.reset_index().to_dict("records")}


def models_report(classes: Sequence[str], plan: SplitPlan, epochs: int, batch_size: int, rows: pd.DataFrame,
                  best: str, best_path: str | os.PathLike, transfer: TransferOutcome | None = None) -> dict:
    """``multiclass_models.json`` (04): each architecture's test row and the one kept (lowest validation loss);
    ``transfer``: the musicnn transfer model's row on the same split (None when it was not trained)."""
    return {"classes": list(classes), "split": plan.how, "epochs": epochs, "batch_size": batch_size,
            "runs": rows.to_dict("records"), "best": best, "selected_by": "lowest validation loss",
            "best_model": str(Path(best_path).resolve()),
            "transfer": None if transfer is None else {**transfer_row(transfer),
                                                      "model_path": str(transfer.model_path.resolve())}}


def growth_report(model: str, order: Sequence[str], plan: SplitPlan, steps: pd.DataFrame) -> dict:
    """``genre_growth.json`` (04): accuracy and macro-F1 per genre-set size, most distinct first."""
    return {"model": model, "order": list(order), "split": plan.how, "steps": steps.to_dict("records"),
            "most_distinct": "greedy max-min Euclidean distance (dB) between per-genre mean spectra, training tracks"}


def results_rows(chosen: Mapping, baselines: pd.DataFrame, data_name: str, split_name: str) -> list[dict]:
    """Our rows of ``results.json`` / ``results.md`` (05): the CNNs of ``multiclass_models.json`` (``chosen``;
    their log loss is after temperature scaling, fitted on validation) and the hand-crafted baselines."""
    rows = [{"model": r["model"] + (" (chosen by validation loss)" if r["model"] == chosen["best"] else ""),
             "dataset": data_name, "split": split_name, "accuracy": r["accuracy"], "macro_f1": r["macro_f1"],
             "log_loss": r["log_loss"]} for r in chosen["runs"]]
    return rows + [{"model": f"{r.model} (hand-crafted features)", "dataset": data_name, "split": split_name,
                    "accuracy": r.accuracy, "macro_f1": r.macro_f1,
                    "log_loss": None if pd.isna(r.log_loss) else r.log_loss} for r in baselines.itertuples()]


def predictions_report(card, labels: Sequence[str], plan: SplitPlan, pairs: Sequence[tuple[str, str, int]],
                       examples: pd.DataFrame, predictions: pd.DataFrame) -> dict:
    """``test_predictions.json`` (05): every test prediction, the most confused pairs and the examples shown;
    ``card`` is the chosen model's :class:`~utils.models.card.ModelCard`."""
    return {"model": card.architecture, "labels": list(labels), "temperature": card.temperature, "split": plan.how,
            "confused_pairs": [{"true": t, "predicted": p, "tracks": n} for t, p, n in pairs],
            "examples": examples.to_dict("records"), "predictions": predictions.to_dict("records")}
