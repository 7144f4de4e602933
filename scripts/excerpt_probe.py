"""Excerpt probe: a model on GTZAN excerpts shorter and a little longer than its 3 s window.

A track shorter than one window is repeated to fill it (:func:`utils.audio.frontend.fix_frames`,
as musicnn was trained). To see what that changes, each excerpt is also scored followed by digital
silence up to one window, which is what the front end did before: padding the spectrogram with
silence. Excerpts start ``--start`` seconds into the first ``--per-genre`` clips of each genre of
``--gtzan`` and are cut by ``sox``. The shipped model was trained on those clips, so this compares
the two fills, it does not estimate accuracy. Writes ``reports/excerpt_probe.json`` and ``.md``.

    python scripts/excerpt_probe.py --gtzan ../shared/data/gtzan_mini --model models/default.keras
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.evaluation.probes import first_clips, genres_of  # noqa: E402
from utils.evaluation.provenance import finish, provenance, write_report  # noqa: E402

SECONDS = (1.6, 2.0, 2.5, 2.9, 3.5, 5.0)  # excerpt lengths: from just over the shortest accepted to past a window
FILLS = {"as it is": False, "followed by silence to one window": True}


def excerpts(clips: list[Path], folder: Path, start: float, window_s: float) -> dict[str, dict[float, list[Path]]]:
    """fill -> length -> the clips' excerpts as WAV files under ``folder`` (clip order)."""
    out: dict[str, dict[float, list[Path]]] = {}
    for f, (fill, silence) in enumerate(FILLS.items()):
        out[fill] = {}
        for s in SECONDS:
            out[fill][s] = []
            for clip in clips:
                dst = folder / f"{f}_{s}_{clip.name}"
                pad = ("pad", "0", f"{window_s - s:.3f}") if silence and s < window_s else ()
                subprocess.run(["sox", "-q", "-R", "-V1", str(clip), str(dst), "trim", f"{start}", f"{s}", *pad],
                               check=True)
                out[fill][s].append(dst)
    return out


def markdown(report: dict) -> str:
    fills = list(report["fills"])
    lines = ["| excerpt | " + " | ".join(f"{f}: right of {report['clips']}" for f in fills) + " |",
             "|---|" + "---|" * len(fills)]
    for s in SECONDS:
        lines.append(f"| {s:g} s | " + " | ".join(str(report["fills"][f][f"{s:g}"]) for f in fills) + " |")
    lines += ["", f"<small>Excerpts from {report['start']:g} s into the first {report['per_genre']} clips of each genre of "
              f"`{report['data']}`, which the model (`{report['model']}`) was trained on: a comparison of the two ways "
              f"to fill a {report['window_seconds']:.1f} s window, not an accuracy estimate; "
              "`python scripts/excerpt_probe.py`, `reports/excerpt_probe.json`.</small>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gtzan", type=Path, default=ROOT / "data" / "sample" / "gtzan", help="GTZAN folder (genre/*.wav)")
    ap.add_argument("--per-genre", type=int, default=7, help="clips of each genre (default 7)")
    ap.add_argument("--start", type=float, default=10.0, help="where the excerpts start, in seconds (default 10)")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default.keras")
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "excerpt_probe.json")
    args = ap.parse_args(argv)
    from utils.models.predict import load_predictor
    from utils.models.runtime import source_hash

    block = provenance()
    predictor = load_predictor(args.model)
    clips = first_clips(args.gtzan, args.per_genre)
    truth = [c.parent.name for c in clips]
    window_s = predictor.frontend.window_seconds
    with tempfile.TemporaryDirectory(prefix="excerpt_probe_") as tmp:
        files = excerpts(clips, Path(tmp), args.start, window_s)
        right = {fill: {f"{s:g}": sum(g == t for g, t in zip(genres_of(predictor, paths), truth))
                        for s, paths in by_length.items()} for fill, by_length in files.items()}
    report = {"data": args.gtzan.name, "clips": len(clips), "per_genre": args.per_genre, "start": args.start,
              "model": args.model.name, "model_sha256": source_hash(args.model), "window_seconds": window_s, "fills": right}
    write_report(args.json, report, finish(block), markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
