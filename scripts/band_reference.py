"""The Mel profile that band normalisation (``FrontEnd.band_level="window"``) brings musicnn's windows to.

    python scripts/band_reference.py [--audio data/sample/fma/audio]

The mean, over the audible windows of the bundled FMA sample (10 mp3s, none of them a GTZAN clip
the robustness evaluation scores), of each Mel band's mean in musicnn's front end after per-window
level normalisation. Only the profile's shape counts (its level is set by ``level_db``). Also the
quartiles of how far (dB) those windows' band mean powers lie from the profile (``band_mean="power"``):
the scale of a track's own spectral shape, from which ``scripts/robustness_experiment.py`` takes the band tolerances it compares.
Writes ``models/musicnn/band_reference.json``, which :func:`utils.models.musicnn.band_reference` reads.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    from utils import audio
    from utils.atomic import write_text
    from utils.audio.frontend import MUSICNN, LogMel, windows
    from utils.audio.levels import audible, band_offsets
    from utils.models.musicnn import BAND_REFERENCE

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio", type=Path, default=ROOT / "data" / "sample" / "fma" / "audio")
    p.add_argument("--out", type=Path, default=BAND_REFERENCE)
    args = p.parse_args(argv)
    fe = dataclasses.replace(MUSICNN, level="window")
    paths = sorted(args.audio.rglob("*.mp3"))
    if not paths:
        print(f"{args.audio}: no mp3 files", file=sys.stderr)
        return 1
    lm, heard = LogMel(fe), []
    for path in paths:
        w = windows(lm(audio.load(path, fe.sample_rate)), fe, str(path))
        heard.append(w[audible(w, fe)])
    profile = np.concatenate([w.mean(axis=1) for w in heard]).mean(axis=0)
    banded = dataclasses.replace(fe, band_level="window", band_reference=tuple(profile), band_mean="power")
    spread = np.abs(np.concatenate([band_offsets(w, banded) for w in heard]))
    write_text(args.out, json.dumps({
        "what": "mean Mel profile of level-normalised musicnn windows (log10(1 + 10000 S)), one value per band",
        "sources": [str(q.relative_to(ROOT)) if q.is_relative_to(ROOT) else str(q) for q in paths],
        "n_windows": int(sum(len(w) for w in heard)), "frontend": fe.to_dict(), "command": "python scripts/band_reference.py",
        "profile": [round(float(v), 5) for v in profile],
        "offset_quartiles": {"what": "quartiles of |profile - a window's band mean power| in dB over these windows and bands",
                             **{q: round(float(np.quantile(spread, float(q))), 3) for q in ("0.25", "0.5", "0.75")}}}, indent=1) + "\n")
    print(f"wrote {args.out} from {len(paths)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
