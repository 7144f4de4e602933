"""fma_small's report: the shipped model on the official validation split, beside the baselines and anchors.

Reads (never the sealed test pictures):

- ``models/fma_small.keras``, scored on ``validation`` exactly as ``fma-genre evaluate --model fma-small
  ../shared/data/fma_small_mel/validation`` scores it (:func:`utils.evaluation.labelled.evaluate_folder`);
- ``reports/fma_small_selection.json`` (scripts/train_fma_small.py): every recipe tried and the ensemble;
- the baselines fitted on training and judged on validation here: the majority genre, the shared VGGish
  embeddings + logistic regression, hand-crafted statistics of the pictures + logistic regression
  (:mod:`utils.evaluation.picture_study`);
- the accuracy against the number of genres (2, 4, 8) from the notebooks' full run
  (``--growth``: its ``reports/genre_growth.json``), when there.

Writes ``reports/fma_small.json``, ``reports/fma_small.md`` (docs) and ``reports/fma_small_headline.md``
(README)::

    python scripts/fma_small_report.py [--growth runs/executed/reports/genre_growth.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.data.pictures import GENRES, SHARED, load_pictures, pictures  # noqa: E402

# the figures a reader weighs the model against, as issue 32 and the shared README give them (test accuracy
# on fma_small's official split unless said otherwise)
ANCHORS = {"CNN + RNN on log-Mel (the article the project started from)": {"test": 0.444, "validation": 0.525},
           "SVM on FMA's MFCC statistics (FMA paper)": {"test": 0.464},
           "VGGish embeddings + logistic regression (AudioSet-pretrained)": {"test": 0.558, "validation": 0.611},
           "Dasheng, 600M parameters, frozen, linear head": {"test": 0.643}}
KEYS = ("accuracy", "macro_f1", "log_loss", "ece")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--model", default="fma-small")
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    p.add_argument("--growth", type=Path, default=ROOT / "runs" / "executed" / "reports" / "genre_growth.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from utils.atomic import write_json, write_text
    from utils.audio.frontend import FMA_SMALL
    from utils.data.vggish import VGGISH, vggish
    from utils.evaluation import picture_study as study
    from utils.evaluation.labelled import evaluate_folder
    from utils.evaluation.provenance import finish, provenance
    from utils.models.predict import load_predictor, model_path

    block = provenance()
    shipped, _ = evaluate_folder(load_predictor(args.model), args.data / "validation")
    tracks = pictures(args.data, splits=("training", "validation"))
    train, val = tracks[tracks.split == "training"], tracks[tracks.split == "validation"]
    labels = (list(train.label), list(val.label))
    x, xv = load_pictures(train.path), load_pictures(val.path)
    baselines = {
        "majority genre of training": study.majority(labels, GENRES),
        "VGGish embeddings + logistic regression": study.baseline(
            (vggish(train.track_id, args.data / VGGISH), vggish(val.track_id, args.data / VGGISH)), labels, GENRES),
        "picture statistics + logistic regression": study.baseline(
            (study.picture_statistics(x), study.picture_statistics(xv)), labels, GENRES)}
    selection = json.loads((args.reports / "fma_small_selection.json").read_text())
    frames = FMA_SMALL.n_frames(round(FMA_SMALL.excerpt_seconds * FMA_SMALL.sample_rate))
    report = {
        "model": {"name": args.model, "file": str(model_path(args.model).relative_to(ROOT)),
                  "validation": shipped, "selection": selection["selection"],
                  "members": selection["ensemble"]["members"],
                  "variants_tried": {n: v["validation"] for n, v in selection["variants"].items()},
                  "ensemble_candidates": selection["ensemble"]["candidates"]},
        "baselines": {name: {k: m[k] for k in KEYS} for name, m in baselines.items()},
        "anchors": ANCHORS,
        "genre_growth": _growth(args.growth),
        "data": {"training": len(train), "validation": len(val), "test": "sealed: 800 pictures, not read",
                 "split": "FMA's official, artist-filtered", "artists": int(tracks.artist.nunique())},
        "pictures_keep": {"stft_frames_of_30_s": frames, "columns": FMA_SMALL.columns,
                          "frames_per_column": frames / FMA_SMALL.columns, "levels": FMA_SMALL.levels,
                          "db_range": FMA_SMALL.peak_range_db},
    }
    report["provenance"] = finish(block)
    write_json(args.reports / "fma_small.json", report)
    write_text(args.reports / "fma_small.md", markdown(report))
    write_text(args.reports / "fma_small_headline.md", headline(report))
    print(headline(report))
    return 0


def _growth(path: Path) -> dict | None:
    """Accuracy and macro-F1 by number of genres from the notebooks' run, with where it came from."""
    if not path.is_file():
        return None
    found = json.loads(path.read_text())
    return {"source": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path), **found}


def pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def headline(report: dict) -> str:
    """The README's table: the shipped model on validation beside the baselines and the anchors."""
    m = report["model"]["validation"]
    base = report["baselines"]
    vgg = report["anchors"]["VGGish embeddings + logistic regression (AudioSet-pretrained)"]
    lines = ["| fma_small's 8 genres, official validation split (800 tracks, artists never heard) | accuracy "
             "| macro-F1 |", "|---|---|---|",
             f"| **fma-small**: a CNN on the pictures alone ({len(report['model']['members'])} networks averaged) "
             f"| **{pct(m['accuracy'])}** | {m['macro_f1']:.3f} |"]
    lines += [f"| {name} | {pct(b['accuracy'])} | {b['macro_f1']:.3f} |" for name, b in base.items()]
    return "\n".join([*lines, "", f"<small>`reports/fma_small.json`: recipe and members chosen on validation "
                      f"({len(report['model']['variants_tried'])} recipes tried); the 800 test pictures are sealed "
                      f"and were not read. Published, on test: VGGish + logistic regression {pct(vgg['test'])} "
                      f"({pct(vgg['validation'])} on validation).</small>", ""])


def markdown(report: dict) -> str:
    """docs/results.md's section: model, recipes tried, baselines, growth, what the pictures lose."""
    m = report["model"]
    rows = ["| | accuracy | macro-F1 | log loss | ECE |", "|---|---|---|---|---|",
            f"| **shipped fma-small** ({', '.join(m['members'])}) | **{pct(m['validation']['accuracy'])}** | "
            f"{m['validation']['macro_f1']:.3f} | {m['validation']['log_loss']:.3f} | {m['validation']['ece']:.3f} |"]
    rows += [f"| candidate {name} | {pct(v['accuracy'])} | {v['macro_f1']:.3f} | {v['log_loss']:.3f} | "
             f"{v['ece']:.3f} |" for name, v in m["ensemble_candidates"].items()]
    rows += [f"| baseline: {name} | {pct(v['accuracy'])} | {v['macro_f1']:.3f} | {v['log_loss']:.3f} | "
             f"{v['ece']:.3f} |" for name, v in report["baselines"].items()]
    per = m["validation"]["per_class"]
    genres = ["| genre | precision | recall | F1 |", "|---|---|---|---|"] + [
        f"| {g} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} |" for g, v in per.items()]
    anchors = ["| published on fma_small's official split | test | validation |", "|---|---|---|"] + [
        f"| {name} | {pct(a['test'])} | {pct(a['validation']) if 'validation' in a else ''} |"
        for name, a in report["anchors"].items()]
    growth = report["genre_growth"]
    if growth is None:
        grown = ["The accuracy against the number of genres comes from the notebooks' full run "
                 "(`make notebooks`), which was not found when this report was written."]
    else:
        grown = [f"Accuracy against the number of genres ({growth['model']}, most distinct first, on the same "
                 f"split; notebook 04's run, `{growth['source']}`, with the notebooks' shorter training):", "",
                 "| genres | added | training tracks | accuracy | macro-F1 | chance |", "|---|---|---|---|---|---|"] + [
            f"| {s['n_genres']} | {s['added']} | {s['n_training']:,} | {pct(s['accuracy'])} | {s['macro_f1']:.3f} "
            f"| {pct(s['chance'])} |" for s in growth["steps"]]
    keep = report["pictures_keep"]
    return "\n".join([
        *rows, "", f"<small>{m['selection']}</small>", "", *genres, "", *grown, "", *anchors, "",
        f"What the pictures lose: a 30 s clip has {keep['stft_frames_of_30_s']:,} STFT frames and a picture "
        f"draws {keep['columns']} of them, one in {keep['frames_per_column']:.0f}; its levels are "
        f"{keep['levels']} steps over the {keep['db_range']:.0f} dB below the clip's peak. "
        f"The test split is sealed: {report['data']['test']}.", ""])


if __name__ == "__main__":
    sys.exit(main())
