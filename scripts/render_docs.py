"""Refresh every generated block of the documentation from the reports that measured its figures.

A document embeds a generated file between two lines::

    <!-- BEGIN reports/NAME.md -->
    ...exactly the content of reports/NAME.md...
    <!-- END reports/NAME.md -->

Each ``reports/NAME.md`` is written, with its JSON, by the script that
measured the figures; for the reports listed in :data:`RENDERERS` this script
first re-renders the Markdown from the JSON with that script's own function,
so a hand edit of either shows up. Then every block of :data:`DOCS` is
replaced by its file. Another report joins by one line in :data:`RENDERERS`
(or, without a renderer, just by its block).

    python scripts/render_docs.py           # rewrite the blocks (and the rendered reports)
    python scripts/render_docs.py --check   # change nothing; exit 1 and list what is stale

``--check`` also lists figures typed into the documents outside any block
(:func:`unsourced_figures`): a percentage, a ratio such as ``2.2x`` or a rate
per second is a measurement, and measurements live in reports.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python scripts/render_docs.py` from a checkout without installing

from utils.atomic import write_text  # noqa: E402
from utils.models.backend import quiet  # noqa: E402

DOCS = ("README.md", "docs/usage.md", "docs/results.md", "docs/model.md", "docs/design.md", "docs/benchmarks.md",
        "docs/runbook.md", "models/musicnn/README.md")
# reports/NAME.md -> (the script that writes it, its function JSON -> Markdown, the JSON's NAME)
RENDERERS = {
    "benchmarks_frontend": ("benchmarks/frontend.py", "markdown", "benchmarks_frontend"),
    "benchmarks_cache": ("benchmarks/cache.py", "markdown", "benchmarks_cache"),
    "benchmarks_train": ("benchmarks/train.py", "markdown", "benchmarks_train"),
    "benchmarks_scale": ("benchmarks/scale.py", "markdown", "benchmarks_scale"),
    "musicnn_port": ("scripts/musicnn_port.py", "markdown", "musicnn_port"),
    "cv_gtzan": ("scripts/cv_experiment.py", "markdown", "cv_gtzan"),
    "cv_gtzan_summary": ("scripts/cv_experiment.py", "summary_markdown", "cv_gtzan"),
    "cv_gtzan_grouped": ("scripts/cv_experiment.py", "markdown", "cv_gtzan_grouped"),
    "cv_gtzan_grouped_summary": ("scripts/cv_experiment.py", "summary_markdown", "cv_gtzan_grouped"),
    "transfer_results": ("scripts/transfer_report.py", "markdown", "transfer_results"),
    "transfer_results_clean": ("scripts/transfer_report.py", "clean_markdown", "transfer_results"),
    "robustness": ("utils/evaluation/robustness.py", "markdown", "robustness"),
    "robustness_headline": ("utils/evaluation/robustness.py", "headline_markdown", "robustness"),
    "benchmarks_predict": ("benchmarks/predict.py", "markdown", "benchmarks_predict"),
    "benchmarks_predict_headline": ("benchmarks/predict.py", "headline", "benchmarks_predict"),
    "hardening": ("scripts/hardening_probe.py", "markdown", "hardening"),
    "band_probe": ("scripts/band_probe.py", "markdown", "band_probe"),
    "excerpt_probe": ("scripts/excerpt_probe.py", "markdown", "excerpt_probe"),
    "stress_probe": ("scripts/stress_probe.py", "markdown", "stress_probe"),
    "fma_small": ("scripts/fma_small_report.py", "markdown", "fma_small"),
    "fma_small_headline": ("scripts/fma_small_report.py", "headline", "fma_small"),
    "benchmarks_picture": ("benchmarks/picture.py", "markdown", "benchmarks_picture"),
}
BLOCK = re.compile(r"^<!-- BEGIN (reports/[\w./-]+\.md) -->\n(.*?)^<!-- END \1 -->$", re.M | re.S)
# A measured figure: a number (or mean ± spread) followed by a percent sign, a times sign or a unit
# per second; or a decimal number in a Markdown table row.
_NUMBER = r"\d[\d,]*(?:\.\d+)?(?:e-?\d+)?"
FIGURE = re.compile(rf"(?<![\w.]){_NUMBER}(?:\s?±\s?{_NUMBER})?\s?(?:%|x\b|×|[A-Za-z]*/s\b)")
TABLE_FIGURE = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
# Numbers of that form that are not measurements of this project: settings, targets, published figures.
NOT_MEASURED = (
    "with 50 % overlap",            # front-end setting
    "FMA paper's 63.4 %",           # published, utils.evaluation.reports.PUBLISHED
    "63.4 % on fma_medium",         # the same, in the deck
    "~53 % on fma_small",           # published
    "mp3 32 kbit/s",                # degradation settings
    "reverb 0.5 s",
    "32 kbit/s mp3",
    "MP3 at 16 kbit/s",             # the stress probe's settings
    "codecs at 32 kbit/s",
    "MP3 at 32 kbit/s",
    "~80 % of tracks in training",  # the share FMA's official split trains on
    "fma_medium ≈ 4.7x",            # ratio of the subsets' sizes (25,000 vs 8,000 x 20 windows)
    "fma_small ≥ 65 %, fma_medium ≥ 66 %",  # the targets
    "residual 3×3 CNN",             # kernel size
    "assumed 5,000–15,000 windows/s",  # an assumed GPU rate, said so
    "128 x 128",                    # the fma_small pictures' size in pixels
    "target is at most 0.7x",       # issue 32's bound on the picture's cost
    "chance 12.5 %",                # one in 8 genres, by definition
)
# Figures still typed by hand whose report has no README block yet (lines starting so): listed by
# ``--check``, not failed. Delete an entry when its block lands.
PENDING = {
}


@cache
def _module(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem + "_renderer", ROOT / script)
    module = importlib.util.module_from_spec(spec)
    with quiet():  # some renderers' scripts import Keras, whose start-up logs are not ours to show
        spec.loader.exec_module(module)
    return module


def rendered(name: str, reports: Path) -> str:
    """``reports/<name>.md`` as its script renders it from its JSON in ``reports``."""
    script, function, source = RENDERERS[name]
    report = json.loads((reports / f"{source}.json").read_text())
    return getattr(_module(script), function)(report)


def blocks(text: str) -> Iterator[tuple[str, str]]:
    """``(file, content)`` of every generated block of ``text``, ``file`` relative to the repository."""
    for m in BLOCK.finditer(text):
        yield m.group(1), m.group(2)


def refresh(text: str, read: Callable[[str], str]) -> str:
    """``text`` with each block's content replaced by ``read(file)`` (which ends with a newline)."""
    def sub(m: re.Match) -> str:
        content = read(m.group(1))
        content += "" if content.endswith("\n") else "\n"
        return f"<!-- BEGIN {m.group(1)} -->\n{content}<!-- END {m.group(1)} -->"
    return BLOCK.sub(sub, text)


def outside_blocks(text: str) -> str:
    """``text`` without its generated blocks and without slide-template fields ``{{ ... }}``."""
    return re.sub(r"\{\{.*?\}\}", "", BLOCK.sub("", text))


def unsourced_figures(text: str, pending: bool = False) -> list[str]:
    """Measured figures typed into ``text`` outside its generated blocks, as ``"'<figure>' in: <line>"``.

    Phrases of :data:`NOT_MEASURED` are not figures; lines of :data:`PENDING`
    are left out, or with ``pending`` the only ones returned.
    """
    found = []
    for line in outside_blocks(text).splitlines():
        if pending != line.strip().startswith(tuple(PENDING)):
            continue
        rest = line
        for phrase in NOT_MEASURED:
            rest = rest.replace(phrase, "")
        figures = list(FIGURE.finditer(rest))
        if rest.lstrip().startswith("|"):
            figures += TABLE_FIGURE.finditer(FIGURE.sub("", rest))
        found += [f"{m.group(0)!r} in: {line.strip()}" for m in figures]
    return found


def problems(root: Path = ROOT, fix: bool = False) -> list[str]:
    """What is stale: rendered reports that differ from their JSON, blocks that differ from their
    file, blocks naming a missing file, figures outside blocks. With ``fix``, stale files are rewritten."""
    out = []
    reports = root / "reports"
    for name, (script, _, source) in RENDERERS.items():
        if not (reports / f"{source}.json").exists():
            out.append(f"reports/{source}.json is missing (run {script})")
            continue
        md, text = reports / f"{name}.md", rendered(name, reports)
        if not md.exists() or md.read_text() != text:
            if fix:
                write_text(md, text)
            else:
                out.append(f"reports/{name}.md differs from what {script} renders from its JSON")
    for doc in DOCS:
        path = root / doc
        text = path.read_text()
        for file, content in blocks(text):
            if not (root / file).exists():
                out.append(f"{doc}: block {file}: no such file")
            elif content != (root / file).read_text():
                if not fix:
                    out.append(f"{doc}: block {file} differs from the file (run scripts/render_docs.py)")
        if fix:
            new = refresh(text, lambda f: (root / f).read_text() if (root / f).exists() else "")
            if new != text:
                write_text(path, new)
        out += [f"{doc}: figure outside a generated block: {f}" for f in unsourced_figures(path.read_text())]
    return out


def pending(root: Path = ROOT) -> list[str]:
    """Hand-typed figures of :data:`PENDING`, still waiting for their block."""
    return [f"{doc}: pending ({source}): {f}" for doc in DOCS
            for f in unsourced_figures((root / doc).read_text(), pending=True)
            for prefix, source in PENDING.items() if f.split(" in: ", 1)[1].startswith(prefix)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    args = ap.parse_args(argv)
    found = problems(fix=not args.check)
    for line in [*pending(), *found]:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
