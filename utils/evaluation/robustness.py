"""The robustness report: per-condition summary on artist-grouped folds, the targets, the learning curve,
the windows-analysed trade, and the Markdown table and figures, all from the results
``scripts/robustness_experiment.py`` writes to ``reports/robustness.json`` (:func:`write_reports`;
``--render-only`` redraws them from that file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.atomic import write_text
from utils.evaluation.nested import BUDGETS, CHOSEN, OLD, PLACEMENTS


def summarize(rows: list[dict]) -> list[dict]:
    """Mean, std and count of the accuracy per method and condition over the test folds of ``rows``."""
    import pandas as pd

    df = pd.DataFrame(rows)
    g = df.groupby(["method", "condition"], sort=False).accuracy
    return [{"method": m, "condition": c, "accuracy_mean": float(s.mean()), "accuracy_std": float(s.std(ddof=1)),
             "n_folds": int(s.size)} for (m, c), s in g]


def accuracy(summary: list[dict], method: str) -> dict[str, float]:
    """``{condition: mean accuracy}`` of one method."""
    return {r["condition"]: r["accuracy_mean"] for r in summary if r["method"] == method}


def checks(summary: list[dict], held_out: list[str]) -> dict:
    """The done-when figures of the artist issue for the nested-chosen model, each with its bound."""
    acc, old = accuracy(summary, CHOSEN), accuracy(summary, OLD)
    per_held = [acc[c] for c in held_out]
    out = {
        "beats_old_recipe": {"value": acc["clean"] - old["clean"], "at_least": 0.05,
                             "chosen": acc["clean"], "old": old["clean"]},
        "aim_clean_accuracy": {"value": acc["clean"], "at_least": 0.80},
        "held_out_overall_gap": {"value": acc["clean"] - float(np.mean(per_held)), "at_most": 0.05},
        "held_out_worst_gap": {"value": acc["clean"] - min(per_held), "at_most": 0.05,
                               "worst": held_out[int(np.argmin(per_held))]},
        "minus_20dB_gap": {"value": acc["clean"] - acc["sox_gain_-20dB"], "at_most": 0.03},
        "plus_6dB_clipped_gap": {"value": acc["clean"] - acc["sox_gain_+6dB_clipped"], "at_most": 0.03},
    }
    for c in out.values():
        c["ok"] = bool(c["value"] >= c["at_least"] - 1e-9 if "at_least" in c else c["value"] <= c["at_most"] + 1e-9)
    return out


def budget_summary(summary: list[dict], held_out: list[str]) -> dict:
    """The chosen model analysing fewer windows of each clip (every other one, or a budget of n placed
    spread or in the middle) against every window: clean, held-out overall and worst, and whether each
    stays within 1 point."""
    methods = {"every window": CHOSEN, "every 2 windows": f"{CHOSEN}, every 2 windows"}
    methods |= {f"{n} windows, {p}": f"{CHOSEN}, {n} windows, {p}" for n in BUDGETS for p in PLACEMENTS}
    out = {}
    for name, method in methods.items():
        acc = accuracy(summary, method)
        out[name] = {"clean": acc["clean"], "held_out_overall": float(np.mean([acc[c] for c in held_out])),
                     "held_out_worst": min(acc[c] for c in held_out)}
    exact = out["every window"]
    for s in list(out.values())[1:]:
        s["within_1_point"] = all(s[m] >= exact[m] - 0.01 for m in ("clean", "held_out_overall", "held_out_worst"))
    return out


def curve_summary(rows: list[dict]) -> list[dict]:
    """Mean accuracy per training-artist count of :func:`utils.evaluation.nested.learning_curve` rows."""
    import pandas as pd

    df = pd.DataFrame(rows).astype({"artists_per_genre": str})
    out = []
    for n, g in df.groupby("artists_per_genre", sort=False):
        out.append({"artists_per_genre": n, "mean_artists_per_genre": float(g.mean_artists_per_genre.mean()),
                    "n_train_clips": float(g.n_train_clips.mean()), "accuracy_mean": float(g.accuracy.mean()),
                    "accuracy_std": float(g.accuracy.std(ddof=1)), "n_folds": int(len(g))})
    return out


def pct(mean: float, std: float | None = None) -> str:
    return f"{100 * mean:.1f}" + ("" if std is None or np.isnan(std) else f" ± {100 * std:.1f}")


# method -> column heading of the report's table; the figure draws the first three
COLUMNS = {CHOSEN: "shipped recipe (nested choice)",
           OLD: "old recipe (MSD penultimate+max_pool, dense head)",
           "plain musicnn track mean+max + logreg, clean training": "plain musicnn + logreg",
           "hand-crafted features + logreg, clean training": "hand-crafted + logreg"}


def figures(results: dict, folder: Path) -> None:
    """``robustness.png`` (the table's first three columns as bars, per condition) and ``robustness_curve.png``
    (accuracy against training artists per genre) under ``folder``."""
    from utils.evaluation.plots import plot_condition_accuracy, plot_learning_curve, save_figure

    acc = {label: accuracy(results["summary"], m) for m, label in list(COLUMNS.items())[:3]}
    trained = [c for c, (_, in_training) in results["condition_kinds"].items() if in_training != "no"]
    save_figure(plot_condition_accuracy(acc, trained, f"Accuracy per condition: {results['n_clips']} GTZAN clips, "
                                                      f"artist-grouped, {len(results['choices'])} test folds"),
                folder / "robustness.png")
    save_figure(plot_learning_curve(results["learning_curve"], results["shipped_variant"]),
                folder / "robustness_curve.png")


def markdown(results: dict) -> str:
    by = {(r["method"], r["condition"]): r for r in results["summary"]}
    chosen = "; ".join(f"{v} in {n}" for v, n in results["choice_counts"].items())
    lines = ["## Accuracy per condition", "",
             f"Accuracy (%) on {results['n_clips']} GTZAN clips ({results['artists']['n_groups']} artist groups), "
             f"{results['split']}: no artist is on both sides of a fold. Mean ± std over the test folds. The "
             f"recipe is chosen inside each training fold by nested validation (folds grouped by artist too) among "
             f"{results['n_variants_tried']} variants ({chosen}; of {len(results['choices'])} folds). The old "
             "recipe (shipped before, chosen on folds that shared artists) is scored on the same folds.", "",
             "| condition | made by | in training? | " + " | ".join(COLUMNS.values()) + " |",
             "|---|---|---|" + "---|" * len(COLUMNS)]
    for c, (maker, trained) in results["condition_kinds"].items():
        cells = [pct(by[m, c]["accuracy_mean"], by[m, c]["accuracy_std"]) if (m, c) in by else "not measured"
                 for m in COLUMNS]
        lines.append(f"| {c} | {maker} | {trained} | " + " | ".join(cells) + " |")
    lines += ["", "## Random folds (optimistic)", "",
              "The same recipes on random folds, whose test clips share artists with the training clips (how the "
              "project measured before): the gap is the artist effect.", "",
              "| recipe | random folds (%) | artist-grouped (%) |", "|---|---|---|"]
    for v, r in results["random_folds"].items():
        grouped = by.get((f"{v} (reference)", "clean"))
        lines.append(f"| {v} | {pct(r['accuracy_mean'], r['accuracy_std'])} | "
                     f"{pct(grouped['accuracy_mean'], grouped['accuracy_std']) if grouped else '-'} |")
    cue, sr = results.get("source_cue"), results.get("sample_rate")
    if cue:
        lines += ["", "## One rate for two sources", "",
                  f"The clips come from two folders, one at GTZAN's 22,050 Hz and one a 16 kHz copy; everything "
                  f"here works at {sr:,} Hz. How well features tell the two folders apart (logistic regression, "
                  f"artist-grouped 5-fold; always the larger folder: {pct(cue['majority'])} %):", "",
                  "| features computed at | folder told apart (%) |", "|---|---|",
                  f"| 22,050 Hz (an empty band above 8 kHz on one folder) | {pct(cue['accuracy_at_22050_hz'])} |",
                  f"| {sr:,} Hz (this experiment) | {pct(cue[f'accuracy_at_{sr}_hz'])} |"]
        if "accuracy_musicnn_embeddings" in cue:
            lines += [f"| the embeddings the heads read (MSD musicnn, {sr:,} Hz) | "
                      f"{pct(cue['accuracy_musicnn_embeddings'])} |"]
    lines += ["", "## Training artists", "",
              f"The shipped recipe ({results['shipped_variant']}) trained on the clips of n artists per genre "
              "(drawn at random per fold; fewer where a genre has fewer in training), tested on the same "
              "artist-grouped folds, clean:", "",
              "| artists per genre | mean artists per genre | training clips | accuracy (%) |", "|---|---|---|---|"]
    lines += [f"| {r['artists_per_genre']} | {r['mean_artists_per_genre']:.1f} | {r['n_train_clips']:.0f} | "
              f"{pct(r['accuracy_mean'], r['accuracy_std'])} |" for r in results["learning_curve"]]
    lines += ["", "## Leave-one-family-out", "", "Trained without the family, tested on it (%):", "",
              "| held-out family | accuracy (%) |", "|---|---|"]
    lines += [f"| {r['family']} | {pct(r['accuracy_mean'], r['accuracy_std'])} |" for r in results["lofo_summary"]]
    lines += ["", "## Fewer windows per clip", "",
              "The chosen model analysing fewer of each 30 s clip's 11 windows (the predictor's budget places "
              "them `spread` over the track or in its `middle`):", "",
              "| windows analysed | clean (%) | never-trained conditions, overall (%) | worst (%) | within 1 point |",
              "|---|---|---|---|---|"]
    for name, s in results["windows_analysed"].items():
        lines.append(f"| {name} | {pct(s['clean'])} | {pct(s['held_out_overall'])} | {pct(s['held_out_worst'])} | "
                     f"{'-' if 'within_1_point' not in s else ('yes' if s['within_1_point'] else 'no')} |")
    lines += ["", "## Targets", "", "| target | value | bound | met |", "|---|---|---|---|"]
    for name, ch in results["checks"].items():
        bound = f"≥ {pct(ch['at_least'])}" if "at_least" in ch else f"≤ {pct(ch['at_most'])} points"
        lines.append(f"| {name} | {pct(ch['value'])} | {bound} | {'yes' if ch['ok'] else 'no'} |")
    return "\n".join(lines) + "\n"


def write_reports(reports: Path, results: dict) -> None:
    """``robustness.json``, ``robustness.md`` (also printed) and the figures under ``reports``."""
    from utils.evaluation.reports import write_json

    write_json(reports / "robustness.json", results)
    write_text(reports / "robustness.md", text := markdown(results))
    write_text(reports / "robustness_headline.md", headline_markdown(results))
    figures(results, reports / "figures")
    print(text)


def rerender(results: dict) -> dict:
    """``results`` with its derived fields (checks, windows_analysed) recomputed from its stored summary."""
    held_out = list(results["held_out_conditions"])
    return results | {"checks": checks(results["summary"], held_out),
                      "windows_analysed": budget_summary(results["summary"], held_out)}


def headline_markdown(results: dict) -> str:
    """The README's short table: the shipped recipe on artists it never heard, beside the old recipe on the
    same folds and on random folds (optimistic), and under the conditions training never saw."""
    by = {(r["method"], r["condition"]): r for r in results["summary"]}
    chosen, old = (lambda c, m=m: by[m, c] for m in (CHOSEN, OLD))
    held = [chosen(c)["accuracy_mean"] for c in results["held_out_conditions"]]
    optimistic = results["random_folds"].get(results["shipped_variant"])
    rows = [(f"Genre accuracy on artists the model never heard ({results['n_clips']} GTZAN clips, "
             f"{results['artists']['n_groups']} artists; folds grouped by artist)",
             pct(chosen("clean")["accuracy_mean"], chosen("clean")["accuracy_std"]) + " %"),
            ("The recipe shipped before, on the same folds",
             pct(old("clean")["accuracy_mean"], old("clean")["accuracy_std"]) + " %"),
            ("The same clips on random folds, test artists also in training (optimistic)",
             pct(optimistic["accuracy_mean"], optimistic["accuracy_std"]) + " %" if optimistic else "-"),
            (f"Under {len(held)} conditions made by SoX and FFmpeg that training never saw (mean; worst)",
             f"{pct(float(np.mean(held)))} %; {pct(min(held))} %"),
            ("20 dB quieter; 6 dB louder and clipped",
             f"{pct(chosen('sox_gain_-20dB')['accuracy_mean'])} %; "
             f"{pct(chosen('sox_gain_+6dB_clipped')['accuracy_mean'])} %")]
    lines = ["| measured here | accuracy |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines) + "\n\n" + (f"<small>`reports/robustness.json`: {results['split']}, mean ± std over "
                                        f"{len(results['choices'])} test folds; recipe chosen by nested "
                                        f"validation among {results['n_variants_tried']} variants.</small>\n")
