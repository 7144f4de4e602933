"""Full-length songs and a one-hour file: what the window budget buys, against the same run's baselines."""
from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.processes import MODES, ROOT, baseline_cmd, predict_cmd, whole_process
from utils import audio
from utils.audio import seek

SHARED = ROOT.parent / "shared" / "data"  # the shared data folder beside the checkout
ROBUSTNESS = ROOT / "reports" / "robustness.json"


def song_set(tmp: Path, per_genre: int = 4, seed: int = 0) -> tuple[list[Path], str]:
    """Full-length songs: ``per_genre`` per GTZAN genre, each 6 to 10 of the genre's clips (gtzan_mini and
    gtzan_more; ``data/sample``'s two where ``../shared/data`` is absent) drawn at random and joined, 3 to 5
    minutes, encoded as a music library holds them: LAME mp3, 192 kbit/s, 44.1 kHz stereo."""
    roots = [SHARED / "gtzan_mini", SHARED / "gtzan_more"]
    roots = [r for r in roots if r.is_dir()] or [ROOT / "data" / "sample" / "gtzan"]
    clips = [p for r in roots for p in audio.find_audio([r])]
    rng = np.random.default_rng(seed)
    songs, folder = [], tmp / "songs"
    folder.mkdir(exist_ok=True)
    for genre in sorted({p.parent.name for p in clips}):
        mine = [p for p in clips if p.parent.name == genre]
        for k in range(per_genre):
            n = int(rng.integers(min(6, len(mine)), min(10, len(mine)) + 1))
            joined = np.concatenate([audio.load(p, 44100) for p in rng.permutation(mine)[:n]])
            wav, mp3 = folder / f"{genre}_{k}.wav", folder / f"{genre}_{k}.mp3"
            sf.write(wav, np.stack([joined, joined], axis=1), 44100, subtype="PCM_16")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-codec:a", "libmp3lame", "-b:a", "192k",
                            str(mp3)], check=True)
            wav.unlink()
            songs.append(mp3)
    minutes = [seek.length(p)[0] / 44100 / 60 for p in songs]
    return songs, (f"{len(songs)} songs of {min(minutes):.1f}-{max(minutes):.1f} min ({per_genre} per genre, "
                   f"6-10 clips of one genre of {' + '.join(r.name for r in roots)} joined; mp3 192 kbit/s)")


BUDGETS = (2, 4, 6, 8, 12, 16)
SPEED_BUDGETS = (4, 8)  # timed too (``--windows N``), beside the default: what a smaller budget buys in speed


def songs(model: Path, fe, files: list[Path], described: str) -> dict:
    """Full-length songs: whole-process wall time of the default budget, every window and the script (runs
    interleaved: script, ours, ours, script), and how often each budget's answer is the whole-track answer."""
    from utils.audio.budget import PLACEMENTS, budget_windows
    from utils.models.predict import DEFAULT_BUDGET, load_predictor

    base = [whole_process(baseline_cmd(fe, files))]
    out = {"set": described, "songs": len(files), "default_budget": DEFAULT_BUDGET}
    for name, options in MODES.items():
        wall, rss, cpu = whole_process(predict_cmd(model, files, "--format", "csv", *options))
        out[name] = {"options": options, "wall_s": wall, "songs_per_s": len(files) / wall, "peak_rss_mib": rss,
                     "cpu_s_per_song": cpu / len(files)}
        print(name, out[name], flush=True)
    out["by_budget"] = {}
    for n in SPEED_BUDGETS:
        wall, rss, cpu = whole_process(predict_cmd(model, files, "--format", "csv", "--windows", str(n)))
        out["by_budget"][str(n)] = {"wall_s": wall, "songs_per_s": len(files) / wall, "cpu_s_per_song": cpu / len(files)}
    base.append(whole_process(baseline_cmd(fe, files)))
    b = statistics.mean(r[0] for r in base)
    out["baseline"] = {"wall_s": b, "runs_s": [r[0] for r in base], "songs_per_s": len(files) / b}
    for row in out["by_budget"].values():
        row.update(ratio_to_baseline=row["wall_s"] / b,
                   speedup_vs_every_window=row["songs_per_s"] / out["every_window"]["songs_per_s"])
    out["ratio_to_baseline"] = out["budget"]["wall_s"] / b
    out["speedup_vs_every_window"] = out["budget"]["songs_per_s"] / out["every_window"]["songs_per_s"]
    out["targets"] = {"ratio_to_baseline_at_most": 0.5, "speedup_vs_every_window_at_least": 8.0,
                      "agreement_at_least": 0.97}
    # the trade, from every window's probabilities (a budget's windows equal the full decode's: tests/test_predict.py)
    every = load_predictor(model, jobs=1, max_windows=None)
    budget = load_predictor(model, jobs=1, max_windows=DEFAULT_BUDGET)
    whole, agree = [], {p: {n: 0 for n in BUDGETS} for p in PLACEMENTS}
    checked = 0
    for path in files:
        r = every.predict_file(path)
        whole.append(r.genre)
        for where in PLACEMENTS:
            for n in BUDGETS:
                keep = budget_windows(len(r.window_times), n, where)
                agree[where][n] += int(r.labels[int(r.window_probabilities[keep].mean(axis=0).argmax())] == r.genre)
        sought = budget.predict_file(path)  # the budget as the predictor runs it, decoded by seeking
        keep = budget_windows(len(r.window_times), DEFAULT_BUDGET, "spread")
        checked += int(np.abs(sought.window_probabilities - r.window_probabilities[keep]).max() <= 1e-3)
    out["agreement"] = {where: {str(n): k / len(files) for n, k in by.items()} for where, by in agree.items()}
    out["default_agreement"] = out["agreement"]["spread"][str(DEFAULT_BUDGET)]
    out["sought_equal_full_decode_songs"] = checked
    out["whole_track_genres"] = dict(zip((p.name for p in files), whole))
    out["cross_validated"] = budget_accuracy()
    out["met"] = {"ratio_to_baseline": out["ratio_to_baseline"] <= 0.5,
                  "speedup_vs_every_window": out["speedup_vs_every_window"] >= 8.0,
                  "agreement": out["default_agreement"] >= 0.97}
    return out


def budget_accuracy(path: Path = ROBUSTNESS) -> dict:
    """The cross-validated accuracy of a window budget on 30 s clips (11 windows), quoted from
    ``reports/robustness.json`` (key ``windows_analysed``, written by ``scripts/robustness_experiment.py``),
    in %, or "not measured"."""
    source = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    rows = json.loads(path.read_text()).get("windows_analysed") if path.exists() else None
    if not rows:
        return {"measured": False, "note": f"not measured: {source} has no windows_analysed"}
    return {"measured": True, "source": source,
            "clean_accuracy": {k: 100 * r["clean"] for k, r in rows.items()},
            "within_1_point": {k: r.get("within_1_point") for k, r in rows.items()}}



def one_hour(model: Path, fe, clip: Path, tmp: Path) -> dict:
    import av

    hour = tmp / "one_hour.mp3"
    y = audio.load(clip, 22050)
    with av.open(str(hour), "w") as out:  # 60 min of real music, mp3 128 kbit/s
        stream = out.add_stream("mp3", rate=22050, layout="mono")
        stream.bit_rate = 128_000
        for _ in range(120):
            frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
            frame.sample_rate = 22050
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    seconds = 120 * y.size / 22050
    ours, every, base = (whole_process(cmd) for cmd in (predict_cmd(model, [hour]),
                                                        predict_cmd(model, [hour], "--every-window"),
                                                        baseline_cmd(fe, [hour])))
    return {"audio_minutes": seconds / 60, "mp3_mib": hour.stat().st_size / 2**20, "ours_s": ours[0],
            "every_window_s": every[0], "baseline_s": base[0], "ours_peak_rss_mib": ours[1],
            "every_window_peak_rss_mib": every[1], "baseline_peak_rss_mib": base[1], "ratio": ours[1] / base[1],
            "target_mib": 800, "target_s": 10}
