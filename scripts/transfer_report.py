"""The report half of ``scripts/transfer_experiment.py``: fold results -> summary, figure and
``reports/transfer_results.md`` (rendered from ``transfer_results.json``, so it can be redone
without re-running the experiment: ``transfer_experiment.py --render-only``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def summarize(rows: list[dict]):
    """Mean and std (ddof 1, over all folds of all repeats) per method and condition."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    stats = frame.groupby(["method", "condition"], sort=False)[["accuracy", "macro_f1"]].agg(["mean", "std"])
    stats.columns = [f"{m}_{s}" for m, s in stats.columns]
    return stats.reset_index()


def robustness_figure(summary, conditions_: list[str], title: str):
    import seaborn as sns
    from matplotlib.figure import Figure

    frame = summary[summary.condition.isin(conditions_)]
    fig = Figure(figsize=(13, 5), layout="constrained")
    ax = fig.add_subplot()
    sns.barplot(frame, x="condition", y="accuracy_mean", hue="method", order=conditions_, ax=ax)
    ax.axhline(0.85, color="darkred", ls="--", lw=1, label="target 85 %")
    ax.set(ylim=(0, 1), ylabel="accuracy (mean over folds)", xlabel="", title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def from_scratch_row(path: Path) -> dict | None:
    """Row (a): the best from-scratch CNN of ``scripts/cv_experiment.py`` (10 genres, by mean accuracy).

    Its folds are that script's (``utils.data.splits.repeated_folds``), not this one's: same clips,
    another fold draw, so the row is side by side, not paired fold by fold."""
    if not path.is_file():
        return None
    import json

    cv = json.loads(path.read_text())
    task = cv["tasks"]["multiclass"]
    name, best = max(task["cnn"]["summary"].items(), key=lambda kv: kv[1]["accuracy_mean"])
    k = 1 + max(max(f) for f in task["folds"].values())
    repeats = best["n_folds"] // k  # the CNNs ran the first repeats of the (longer) baseline fold table
    folds = "its own folds, grouped by artist" if "grouped by artist" in cv.get("split", "") else \
        "its own random folds, sharing artists: optimistic"
    return {"model": f"(a) best from-scratch CNN: {name} (scripts/cv_experiment.py, {folds})",
            "dataset": f"GTZAN ({task['n_tracks']} clips, {len(task['classes'])} genres)",
            "split": f"{k}-fold x {repeats}, {path.name}",
            "accuracy": (best["accuracy_mean"], best["accuracy_std"]),
            "macro_f1": (best["macro_f1_mean"], best["macro_f1_std"]),
            "log_loss": (best["log_loss_mean"], best["log_loss_std"])}


def clean_markdown(results: dict) -> str:
    """The clean comparison of the results JSON: rows (a) to (z) with accuracy and macro-F1, as Markdown."""
    import pandas as pd

    from utils.evaluation.reports import results_table, to_markdown

    summary = pd.DataFrame(results["summary"])
    folds = np.asarray(results["folds"])
    split_short = (f"{folds.max() + 1}-fold x {len(folds)}{', by artist' if 'groups' in results else ''}, "
                   f"seed {results['head_config']['seed']}")
    dataset = f"GTZAN ({results['n_clips']} clips, {len(results['classes'])} genres)"
    clean = summary[summary.condition == "clean"]
    scratch_row = results["from_scratch_cnn"]  # (mean, std) pairs come back from JSON as lists
    rows = [{k: tuple(v) if isinstance(v, list) else v for k, v in scratch_row.items()}] if scratch_row else []
    rows += [{"model": r.method, "dataset": dataset, "split": split_short,
              "accuracy": (r.accuracy_mean, r.accuracy_std), "macro_f1": (r.macro_f1_mean, r.macro_f1_std)}
             for r in clean.itertuples()]
    scratch = ("" if scratch_row else
               "(a) the from-scratch CNN is missing: run scripts/cv_experiment.py first (reports/cv_gtzan.json).\n\n")
    return f"{scratch}{to_markdown(results_table(rows, published=()))}"


def markdown(results: dict) -> str:
    """``transfer_results.md`` from the results JSON: clean comparison, robustness table, timing."""
    import pandas as pd

    from utils.evaluation.reports import to_markdown

    summary = pd.DataFrame(results["summary"])
    methods, test_on = list(dict.fromkeys(summary.method)), ["clean", *results["degradations"]]
    mean, std = (summary.pivot(index="method", columns="condition", values=f"accuracy_{s}").loc[methods, test_on]
                 for s in ("mean", "std"))
    robust = pd.DataFrame({c: [f"{m * 100:.1f} ± {s * 100:.1f}" for m, s in zip(mean[c], std[c])] for c in test_on},
                          index=mean.index).reset_index()
    return (f"# Transfer learning (issue 10), measured\n\n"
            f"{results['note'] + '. ' if results['note'] else ''}{results['split']}.\n\n"
            f"## Clean accuracy and macro-F1\n\n{clean_markdown(results)}\n"
            f"## Accuracy (%) per degradation, mean ± std over folds\n\n{to_markdown(robust)}\n"
            "## Time to classify one 30 s clip on CPU (s)\n\n"
            + "".join(f"- {k}: {v:.3f}\n" for k, v in results["timing_s_per_30s_clip"].items()))
