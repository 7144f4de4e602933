"""Stress probe: a model under SoX / FFmpeg conditions that neither its training nor the robustness experiment uses.

The robustness experiment (``scripts/robustness_experiment.py``) reports accuracy
on eleven held-out conditions; the model is chosen without them but they are
fixed and known. This probe tries the model on others
(:data:`utils.evaluation.conditions.PROBE_CONDITIONS`: wrong speed or pitch, AM
radio, heavy filters, heavy compression, loud noise, low-bitrate codecs, a 6 kHz
rate, clicks), on two sets of clips:

- the FMA sample (``--fma``), which the shipped model never trained on and whose
  genres mostly lie outside GTZAN's ten: a clip counts when the model gives
  the copy the genre it gives the clean clip (agreement, no labels needed);
- the first ``--per-genre`` clips of each genre of ``--gtzan``, which it did
  train on: a clip counts when its copy gets the clip's genre.

Each clip is decoded once at 22,050 Hz, mono, goes through each condition as a
16-bit WAV (:func:`utils.evaluation.conditions.apply`), and is classified from
that file through :func:`utils.models.predict.load_predictor`, as a user's
file would be. Writes ``reports/stress_probe.json`` and ``.md``.

    python scripts/stress_probe.py [--gtzan ../shared/data/gtzan_mini] [--fma data/sample/fma/audio] \
        [--model models/default.keras]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.data.datasets import SHARED_DATA  # noqa: E402
from utils.evaluation import conditions  # noqa: E402
from utils.evaluation.probes import answers_of, first_clips  # noqa: E402
from utils.evaluation.provenance import finish, provenance, write_report  # noqa: E402

SR = 22050  # clips are decoded, changed and written at GTZAN's rate
MADE_BY = {"sox": "SoX", "sox_noise": "SoX", "ffmpeg": "FFmpeg"}


def copies(clips: list[Path], folder: Path) -> dict[str, list[Path]]:
    """Every clip, clean and through every probe condition, as 16-bit WAV files under ``folder``:
    condition -> files (clip order)."""
    from utils.audio import decoder

    out: dict[str, list[Path]] = {"clean": [], **{c: [] for c in conditions.PROBE_CONDITIONS}}
    for i, clip in enumerate(tqdm(clips, desc="conditions", unit="clip", file=sys.stderr)):
        y = decoder.load(clip, SR)
        for k, name in enumerate(out):
            z = y if name == "clean" else conditions.apply(name, y, SR)
            out[name].append(folder / f"{i}_{k}.wav")
            sf.write(out[name][-1], np.clip(z, -1, 1), SR, subtype="PCM_16")
    return out


def tally(answers: list[tuple[str, float]], reference: list[str], sure: float) -> dict:
    """How many ``answers`` (genre, probability) give the ``reference`` genre, of how many; the genres given
    instead (most frequent first); and how many of those at probability ``sure`` or more, which
    ``fma-genre organize --min-probability sure`` would still file under the other genre."""
    wrong = [(g, p) for (g, p), r in zip(answers, reference) if g != r]
    return {"same": len(answers) - len(wrong), "of": len(reference),
            "instead": dict(Counter(g for g, _ in wrong).most_common()), "instead_sure": sum(p >= sure for _, p in wrong)}


def markdown(report: dict) -> str:
    g, f = report["gtzan"], report["fma"]
    lines = [f"| condition | made by | {f['name']}, never trained on: same genre as clean, of {f['clips']} | "
             f"{f['name']}: another genre at p ≥ {report['sure']:g} | {g['name']}, trained on: right, of {g['clips']} |",
             "|---|---|---|---|---|"]
    for name, r in report["results"].items():
        program = report["conditions"][name][0] if name != "clean" else None
        top = ", ".join(f"{genre} {n}" for genre, n in list(r["gtzan"]["instead"].items())[:2])
        lines.append(f"| {name} | {MADE_BY.get(program, '-')} | {r['fma']['same']} | {r['fma']['instead_sure']} | "
                     f"{r['gtzan']['same']}" + (f" (instead: {top})" if top else "") + " |")
    lines += ["", f"<small>Conditions in neither the training chains nor the robustness experiment "
              f"(`utils.evaluation.conditions.PROBE_CONDITIONS`), on `{report['model']}`. The FMA clips' genres are "
              "mostly not among the model's ten, so the first count is agreement with the clean clip's answer, and the "
              "second how many copies got another genre with a probability that `organize --min-probability "
              f"{report['sure']:g}` would still file; the "
              f"GTZAN clips are the first {g['per_genre']} of each genre, training clips, so the third is no accuracy "
              "estimate. `python scripts/stress_probe.py`, `reports/stress_probe.json`.</small>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gtzan", type=Path, default=SHARED_DATA / "gtzan_mini", help="GTZAN folder (genre/*.wav)")
    ap.add_argument("--per-genre", type=int, default=2, help="GTZAN clips of each genre (default 2)")
    ap.add_argument("--fma", type=Path, default=ROOT / "data" / "sample" / "fma" / "audio",
                    help="folder of FMA clips (*/*.mp3), none of them in training")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default.keras")
    ap.add_argument("--sure", type=float, default=0.5,
                    help="probability at which a changed answer counts as a sure one (default 0.5)")
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "stress_probe.json")
    args = ap.parse_args(argv)
    if not conditions.available():
        print("sox and ffmpeg are needed: apt-get install -y sox ffmpeg", file=sys.stderr)
        return 2
    from utils.models.predict import load_predictor
    from utils.models.runtime import source_hash

    block = provenance()
    predictor = load_predictor(args.model)
    gtzan, fma = first_clips(args.gtzan, args.per_genre), sorted(args.fma.glob("*/*.mp3"))
    if not gtzan or not fma:
        print(f"no clips: {len(gtzan)} GTZAN clips in {args.gtzan}, {len(fma)} FMA clips in {args.fma}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="stress_probe_") as tmp:
        files = copies([*gtzan, *fma], Path(tmp))
        answers = {name: answers_of(predictor, paths) for name, paths in tqdm(
            files.items(), desc="classifying", unit="condition", file=sys.stderr)}
    truth, clean_fma = [c.parent.name for c in gtzan], [g for g, _ in answers["clean"][len(gtzan):]]
    results = {name: {"gtzan": tally(a[:len(gtzan)], truth, args.sure),
                      "fma": tally(a[len(gtzan):], clean_fma, args.sure)} for name, a in answers.items()}
    report = {"model": args.model.name, "model_sha256": source_hash(args.model), "sample_rate": SR, "sure": args.sure,
              "gtzan": {"name": args.gtzan.name, "clips": len(gtzan), "per_genre": args.per_genre},
              "fma": {"name": args.fma.parent.name, "clips": len(fma), "files": [f.name for f in fma],
                      "clean_genres": clean_fma},
              "conditions": {c: [program, *a] for c, (program, a) in conditions.PROBE_CONDITIONS.items()},
              "results": results}
    write_report(args.json, report, finish(block), markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
