"""Band-limit probe: models on GTZAN clips through SoX brick-wall filters (telephone, no bass, no treble).

A look for learnt shortcuts, not an accuracy estimate: the clips are the
first ``--per-genre`` of each genre of ``--gtzan``, which the shipped models
were trained on, so a model that still misses them under a filter has tied a
genre to a band (before the EQ family drew a highpass alone, "no bass" meant
disco and "telephone band" meant blues). Each clip goes through ``sox``
(a second implementation: the training chains are pedalboard's), and every
``--model NAME=PATH`` classifies every copy through :func:`load_predictor`.
Writes ``reports/band_probe.json`` and ``.md``.

    python scripts/band_probe.py --gtzan ../shared/data/gtzan_mini --model shipped=models/default.keras \
        [--model before=/tmp/before/default.keras] [--carry previous=shipped]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.evaluation.probes import first_clips, genres_of  # noqa: E402
from utils.evaluation.provenance import finish, provenance, write_report  # noqa: E402

# name -> SoX effect arguments (sinc: a steep FIR filter; "LOW-HIGH" a band, "F" a highpass, "-F" a lowpass);
# then, for comparison, changes that keep the whole band
FILTERS = {"clean": (), "telephone band 300-3400 Hz": ("sinc", "300-3400"), "band 200-4000 Hz": ("sinc", "200-4000"),
           "no bass under 500 Hz": ("sinc", "500"), "no bass under 1 kHz": ("sinc", "1000"),
           "no treble over 3 kHz": ("sinc", "-3000"), "bass shelf +12 dB": ("bass", "+12"),
           "treble shelf -12 dB": ("treble", "-12"), "pitch +2 semitones": ("pitch", "200"),
           "tempo -10 %": ("tempo", "0.9")}


def copies(clips: list[Path], folder: Path) -> dict[str, list[Path]]:
    """Every clip through every filter, as WAV files under ``folder``: filter -> files (clip order)."""
    out: dict[str, list[Path]] = {}
    for k, (name, effect) in enumerate(FILTERS.items()):
        out[name] = []
        for clip in clips:
            dst = folder / f"{k}_{clip.name}"
            subprocess.run(["sox", "-q", "-R", "-V1", str(clip), str(dst), *effect], check=True)
            out[name].append(dst)
    return out


def score(model: Path, files: dict[str, list[Path]], truth: list[str]) -> dict[str, dict]:
    """Per filter: clips right, of how many, and the genres given instead (most frequent first)."""
    from utils.models.predict import load_predictor

    predictor = load_predictor(model)
    result = {}
    for name, paths in files.items():
        genres = genres_of(predictor, paths)
        wrong = Counter(g for g, t in zip(genres, truth) if g != t)
        result[name] = {"right": sum(g == t for g, t in zip(genres, truth)), "of": len(truth),
                        "instead": dict(wrong.most_common())}
    return result


def markdown(report: dict) -> str:
    models = list(report["models"])
    lines = ["| filter (SoX) | " + " | ".join(f"{m}: right of {report['clips']}" for m in models) + " |",
             "|---|" + "---|" * len(models)]
    for name in FILTERS:
        cells = []
        for m in models:
            r = report["models"][m]["filters"][name]
            top = ", ".join(f"{g} {n}" for g, n in list(r["instead"].items())[:2])
            cells.append(f"{r['right']}" + (f" (instead: {top})" if top else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for m in models:
        if "measured" in report["models"][m]:
            w = report["models"][m]["measured"]
            lines += ["", f"{m}: measured at commit {w['commit'][:8]} ({w['date'][:10]}) as `{w['as']}`, kept from "
                          "the previous report."]
    lines += ["", f"<small>The first {report['per_genre']} clips of each genre of `{report['data']}`, which every model "
              "here was trained on: a look for genres tied to a band, not an accuracy estimate; "
              "`python scripts/band_probe.py`, `reports/band_probe.json`.</small>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gtzan", type=Path, default=ROOT / "data" / "sample" / "gtzan", help="GTZAN folder (genre/*.wav)")
    ap.add_argument("--per-genre", type=int, default=3, help="clips of each genre")
    ap.add_argument("--model", action="append", metavar="NAME=PATH", required=True, help="a model to probe (repeatable)")
    ap.add_argument("--carry", action="append", default=[], metavar="NAME=OLD",
                    help="model OLD's tallies kept from the existing --json report as NAME, with the commit that "
                         "measured them: a model the current code no longer runs as it was shipped (repeatable)")
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "band_probe.json")
    args = ap.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.model)
    carried = {}
    if args.carry:
        old = json.loads(args.json.read_text())
        for new_name, old_name in (c.split("=", 1) for c in args.carry):
            was = old["models"][old_name]  # carried before: it keeps the run that measured it
            carried[new_name] = {"measured": {k: old["provenance"][k] for k in ("date", "commit", "command")}
                                 | {"as": old_name}} | was
    block = provenance()
    clips = first_clips(args.gtzan, args.per_genre)
    truth = [c.parent.name for c in clips]
    with tempfile.TemporaryDirectory(prefix="band_probe_") as tmp:
        files = copies(clips, Path(tmp))
        report = {"data": args.gtzan.name, "clips": len(clips), "per_genre": args.per_genre,
                  "filters": {k: list(v) for k, v in FILTERS.items()},
                  "models": carried | {name: {"path": path, "filters": score(Path(path), files, truth)}
                                       for name, path in models.items()}}
    block = finish(block)
    write_report(args.json, report, block, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
