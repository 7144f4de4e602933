"""Prediction speed and memory, each against a baseline measured in the same run.

Writes ``reports/benchmarks_predict.json`` and the table ``reports/benchmarks_predict.md``.
The baseline for time is a model-free script: start Python, import librosa,
load the same file(s) and compute the log-Mel spectrogram (:data:`BASELINE`).

1. runtimes: ms per window (batch of 10) of the shipped model on ONNX Runtime
   (the default; also without its memory arena, and int8-quantised), Keras on
   TensorFlow and Keras on JAX, each in its own process, with its start-up
   (import + load) and the largest difference from Keras-TensorFlow;
2. cold start: ``fma-genre predict`` on one 30 s mp3, whole process, vs the
   script on that file (medians of interleaved rounds);
3. per clip: seconds per 30 s mp3 in a warm process, vs librosa load + Mel;
4. batch: CPU ms per window of the ONNX graph in one thread by batch size (why
   batching windows across tracks is for overlap, not for cheaper windows);
5. folder: ``fma-genre predict`` over ~150 real clips (:func:`folder_set`: GTZAN
   mini's 70 wav, the same 70 transcoded to mp3 by ffmpeg, fma_sample's 10 mp3;
   ``data/sample`` where ``../shared/data`` is absent), tracks/s with 1 job and with
   every core, the default window budget and ``--every-window``, whole process, vs
   the script over the same files;
6. songs: full-length songs (:func:`song_set`: 3-5 minutes of one genre's GTZAN
   clips joined, LAME mp3 at 192 kbit/s, 44.1 kHz stereo), whole process, the
   default budget and ``--every-window`` vs the script, and the trade: how often a
   budget of n windows, spread or in the middle, gives the whole-track answer, with
   the cross-validated accuracy of a budget on 30 s clips quoted from
   ``reports/robustness.json`` (key ``windows_analysed``);
7. one hour: whole-process wall time and peak RSS classifying a one-hour mp3, vs the script on it;
8. web: requests/s with 4 clients uploading a 30 s mp3 to ``fma-genre serve``,
   ONNX Runtime (its default budget, and every window) vs the Keras runtime, and /api/health latency meanwhile.

    python benchmarks/predict.py [--model models/default.keras] [--data DIR ...] [--rounds 3]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import audio  # noqa: E402
from utils.atomic import write_text  # noqa: E402
from utils.evaluation.provenance import finish, provenance  # noqa: E402
from utils.models.card import load_card  # noqa: E402
from utils.models.runtime import cpu_count, source_hash  # noqa: E402
from benchmarks.full_length import one_hour, song_set, songs  # noqa: E402
from benchmarks.processes import ENV, MODES, baseline_cmd, predict_cmd, whole_process  # noqa: E402
from benchmarks.web import web  # noqa: E402

REPORT = ROOT / "reports" / "benchmarks_predict"
SHARED = ROOT.parent / "shared" / "data"  # the shared data folder beside the checkout

# One runtime in a fresh process: start-up (import + load), ms per window for 10-window batches, probabilities
RUNTIME = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from utils.models import runtime
model, kind, out = sys.argv[1], sys.argv[2], sys.argv[3]
if kind in ("onnx", "keras"):
    run, card = runtime.load(model, kind)
else:  # an ONNX variant: no memory arena, or int8
    path = runtime.onnx_path(model)
    if kind == "onnx_int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(str(path), out + ".int8.onnx", weight_type=QuantType.QInt8)
        path = out + ".int8.onnx"
    run = runtime.OnnxRunner(path, arena=kind != "onnx_no_arena")
start = time.perf_counter() - t0
x = np.load(out + ".windows.npy")
run(x[:10])
best = cpu = float("inf")
for _ in range(int(sys.argv[4])):
    t, c = time.perf_counter(), time.process_time()
    for s in range(0, len(x), 10):
        p = run(x[s:s + 10])
    best = min(best, (time.perf_counter() - t) / len(x))
    cpu = min(cpu, (time.process_time() - c) / len(x))
np.save(out + f".{kind}.npy", np.concatenate([run(x[s:s + 10]) for s in range(0, len(x), 10)]))
print(json.dumps({"startup_s": start, "ms_per_window": best * 1000, "cpu_ms_per_window": cpu * 1000}))
"""


def runtimes(model: Path, windows: np.ndarray, rounds: int, tmp: Path) -> dict:
    np.save(tmp / "rt.windows.npy", windows)
    out = {}
    kinds = [("onnx", {}), ("onnx_no_arena", {}), ("onnx_int8", {}), ("keras", {"KERAS_BACKEND": "tensorflow"}),
             ("keras", {"KERAS_BACKEND": "jax"})]
    for kind, env in kinds:
        name = kind if kind != "keras" else f"keras_{env['KERAS_BACKEND']}"
        run = subprocess.run([sys.executable, "-c", RUNTIME, str(model), kind, str(tmp / "rt"), str(rounds)],
                             cwd=ROOT, env={**ENV, **env}, capture_output=True, text=True)
        if run.returncode:
            out[name] = {"error": run.stderr.strip().splitlines()[-1][:300]}
            continue
        out[name] = json.loads(run.stdout.strip().splitlines()[-1])
        os.replace(tmp / f"rt.{kind}.npy", tmp / f"rt.{name}.npy")
    reference = np.load(tmp / "rt.keras_tensorflow.npy")
    for name, row in out.items():
        if "error" not in row:
            p = np.load(tmp / f"rt.{name}.npy")
            row["max_abs_difference_vs_keras_tensorflow"] = float(np.abs(p - reference).max())
            row["same_top_genre"] = float((p.argmax(1) == reference.argmax(1)).mean())
    return {"windows": len(windows), "batch": 10, "threads": cpu_count(), "results": out}


def cold_start(model: Path, fe, mp3: Path, rounds: int) -> dict:
    ours, base = [], []
    for _ in range(rounds):  # interleaved, so both see the same machine
        ours.append(whole_process(predict_cmd(model, [mp3])))
        base.append(whole_process(baseline_cmd(fe, [mp3])))
    o, b = statistics.median(r[0] for r in ours), statistics.median(r[0] for r in base)
    oc, bc = statistics.median(r[2] for r in ours), statistics.median(r[2] for r in base)
    return {"file": mp3.relative_to(ROOT).as_posix() if mp3.is_relative_to(ROOT) else mp3.name,
            "ours_s": o, "baseline_s": b, "ratio": o / b, "ours_cpu_s": oc, "baseline_cpu_s": bc,
            "cpu_ratio": oc / bc, "ours_peak_rss_mib": max(r[1] for r in ours),
            "baseline_peak_rss_mib": max(r[1] for r in base), "rounds": rounds, "target_ratio": 1.5}


def per_clip(model: Path, fe, mp3s: list[Path], rounds: int) -> dict:
    import librosa

    from utils.models.predict import load_predictor

    predictor = load_predictor(model, jobs=1)

    def naive(path):
        y, _ = librosa.load(path, sr=fe.sample_rate)
        librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=fe.sample_rate, n_fft=fe.n_fft,
                                                           hop_length=fe.hop_length, n_mels=fe.n_mels))

    def best(fn) -> float:
        fn(mp3s[0])
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for p in mp3s:
                fn(p)
            times.append((time.perf_counter() - t0) / len(mp3s))
        return min(times)

    o, b = best(predictor.predict_file), best(naive)
    return {"clips": len(mp3s), "ours_s": o, "baseline_s": b, "ratio": o / b, "rounds": rounds,
            "note": "warm process, every core for the model; baseline: librosa.load + melspectrogram, no model"}


def folder_set(tmp: Path, data: list[Path] | None) -> tuple[list[Path], str]:
    """The clips of the folder test and what they are.

    ``data`` if given; else, with ``../shared/data``, GTZAN mini's 70 wav (30 s),
    the same 70 transcoded to mp3 (128 kbit/s, ffmpeg) into ``tmp``, and
    fma_sample's 10 mp3: 150 clips, half of them mp3 as a music library is; else
    the 30 clips of ``data/sample``.
    """
    if data:
        files = audio.find_audio(data)
        return files, f"{len(files)} clips under {', '.join(map(str, data))}"
    gtzan, fma = SHARED / "gtzan_mini", SHARED / "fma_sample"
    if not (gtzan.is_dir() and fma.is_dir()):
        files = audio.find_audio([ROOT / "data" / "sample"])
        return files, f"data/sample: {len(files)} clips (../shared/data absent)"
    wavs = audio.find_audio([gtzan])

    def mp3(wav: Path) -> Path:
        out = tmp / "gtzan_mp3" / wav.with_suffix(".mp3").name
        out.parent.mkdir(exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-codec:a", "libmp3lame", "-b:a", "128k",
                        str(out)], check=True)
        return out

    with concurrent.futures.ThreadPoolExecutor(cpu_count()) as pool:
        mp3s = list(pool.map(mp3, wavs))
    fmas = audio.find_audio([fma])
    return [*wavs, *mp3s, *fmas], (f"{len(wavs)} GTZAN mini wav + the same {len(mp3s)} as mp3 (ffmpeg, 128 kbit/s) "
                                   f"+ {len(fmas)} fma_sample mp3 = {len(wavs) + len(mp3s) + len(fmas)} clips")




def folder(model: Path, fe, files: list[Path], described: str) -> dict:
    """Whole-process ``fma-genre predict`` over ``files``, the default budget and every window, 1 job and
    every core, between two runs of the script over the same files (their mean is the baseline)."""
    cores = cpu_count()
    base = [whole_process(baseline_cmd(fe, files))]
    out = {"set": described, "tracks": len(files), "cores": cores}
    for name, options in MODES.items():
        one = whole_process(predict_cmd(model, files, "--jobs", "1", "--format", "csv", *options))
        every = whole_process(predict_cmd(model, files, "--jobs", str(cores), "--format", "csv", *options))
        out[name] = {"options": options, "1_job_s": one[0], "all_cores_s": every[0],
                     "1_job_tracks_per_s": len(files) / one[0], "all_cores_tracks_per_s": len(files) / every[0],
                     "cpu_s_per_track": every[2] / len(files), "speedup_all_cores_vs_1_job": one[0] / every[0],
                     "peak_rss_mib": every[1]}
        print(name, out[name], flush=True)
    base.append(whole_process(baseline_cmd(fe, files)))
    b, b_cpu = statistics.mean(r[0] for r in base), statistics.mean(r[2] for r in base)
    out.update(baseline_s=b, baseline_runs_s=[r[0] for r in base], baseline_tracks_per_s=len(files) / b,
               baseline_cpu_s_per_track=b_cpu / len(files), target_ratio={"every_window": 3.0})
    for name in MODES:
        r = out[name]
        r.update(ratio_1_job=r["1_job_s"] / b, ratio_all_cores=r["all_cores_s"] / b,
                 cpu_ratio=r["cpu_s_per_track"] / out["baseline_cpu_s_per_track"])
    return out


def batch_sizes(model: Path, windows: np.ndarray, rounds: int) -> dict:
    """CPU ms per window of the ONNX graph in one thread, by windows per call (best of ``rounds``)."""
    from utils.models.runtime import OnnxRunner, onnx_path

    run = OnnxRunner(onnx_path(model), threads=1)
    x = np.concatenate([windows] * 2)[:64]
    out = {}
    for b in (1, 4, 8, 16, 32):
        run(x[:b])
        best = float("inf")
        for _ in range(rounds):
            c = time.process_time()
            for s in range(0, len(x), b):
                run(x[s:s + b])
            best = min(best, (time.process_time() - c) / len(x))
        out[str(b)] = best * 1000
    return {"threads": 1, "windows": len(x), "cpu_ms_per_window": out}


def headline(report: dict) -> str:
    """The README's speed rows: full-length songs with the default budget against the naive script and
    against every window, and how often the budget gives the whole-track genre."""
    g = report["songs"]
    rows = [(f"{g['songs']} full-length songs (mp3), whole process", f"{g['budget']['songs_per_s']:.2f} songs/s",
             f"{g['ratio_to_baseline']:.2f}x the time of a model-free librosa script on the same files"),
            ("against judging every 3 s window (`--every-window`)", f"{g['speedup_vs_every_window']:.1f}x faster",
             f"the same genre on {100 * g['default_agreement']:.0f} % of the songs")]
    return ("| speed, measured here | | |\n|---|---|---|\n" + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
            + f"\n<small>`reports/benchmarks_predict.json`: {g['set']}; {report['machine']['cpus']} cores; "
              f"{report['date'][:10]}.</small>\n")


def markdown(report: dict) -> str:
    c, p, f, g, h, w = (report[k] for k in ("cold_start", "per_clip", "folder", "songs", "one_hour", "web"))
    e, q = f["budget"], f["every_window"]
    n, cv = g["default_budget"], g["cross_validated"]
    trade = ", ".join(f"{k} {v:.1f} %" for k, v in cv["clean_accuracy"].items()) if cv["measured"] else cv["note"]
    agreement = "; ".join(f"{where}: " + ", ".join(f"{k} windows {100 * v:.0f} %" for k, v in by.items())
                          for where, by in g["agreement"].items())
    rows = [
        (f"Songs: {g['songs']} full-length mp3s, default (at most {n} windows), whole process",
         f"{g['budget']['wall_s']:.1f} s ({g['budget']['songs_per_s']:.2f} songs/s)",
         f"{g['baseline']['wall_s']:.1f} s ({g['baseline']['songs_per_s']:.2f} songs/s)",
         f"{g['ratio_to_baseline']:.2f}x", f"≤ {g['targets']['ratio_to_baseline_at_most']}x"),
        ("Songs: the default against every window (`--every-window`)", f"{g['budget']['songs_per_s']:.2f} songs/s",
         f"{g['every_window']['songs_per_s']:.2f} songs/s", f"{g['speedup_vs_every_window']:.1f}x faster",
         f"≥ {g['targets']['speedup_vs_every_window_at_least']:.0f}x"),
        ("Songs: the default's genre is the whole-track genre", f"{100 * g['default_agreement']:.1f} % of songs",
         "", "", f"≥ {100 * g['targets']['agreement_at_least']:.0f} %"),
        ("Cold start, one 30 s mp3 (whole process)", f"{c['ours_s']:.2f} s", f"{c['baseline_s']:.2f} s",
         f"{c['ratio']:.2f}x", f"≤ {c['target_ratio']}x"),
        ("Per 30 s clip, warm process", f"{p['ours_s'] * 1000:.0f} ms", f"{p['baseline_s'] * 1000:.0f} ms",
         f"{p['ratio']:.2f}x", ""),
        (f"Folder of {f['tracks']} clips, default, {f['cores']} jobs", f"{e['all_cores_tracks_per_s']:.2f} tracks/s",
         f"{f['baseline_tracks_per_s']:.2f} tracks/s", f"{e['ratio_all_cores']:.2f}x", ""),
        (f"Folder, every window, {f['cores']} jobs", f"{q['all_cores_tracks_per_s']:.2f} tracks/s",
         f"{f['baseline_tracks_per_s']:.2f} tracks/s", f"{q['ratio_all_cores']:.2f}x",
         f"≤ {f['target_ratio']['every_window']}x"),
        (f"Folder, {f['cores']} jobs vs 1 (default; every window)", f"{e['speedup_all_cores_vs_1_job']:.2f}x; "
         f"{q['speedup_all_cores_vs_1_job']:.2f}x faster", "", "", "> 1"),
        ("One-hour mp3, whole process (default; every window)", f"{h['ours_s']:.1f} s; {h['every_window_s']:.1f} s",
         f"{h['baseline_s']:.1f} s", "", f"≤ {h['target_s']} s"),
        ("One-hour mp3, peak RSS (default; every window)",
         f"{h['ours_peak_rss_mib']:.0f} MiB; {h['every_window_peak_rss_mib']:.0f} MiB",
         f"{h['baseline_peak_rss_mib']:.0f} MiB", f"{h['ratio']:.2f}x", f"≤ {h['target_mib']} MiB"),
        (f"Web API, {w['clients']} clients, default", f"{w['onnx']['requests_per_s']:.2f} req/s",
         f"{w['keras']['requests_per_s']:.2f} req/s (Keras runtime)", f"{w['ratio']:.2f}x faster",
         f"≥ {w['target_requests_per_s']:.2f} req/s"),
        (f"Web API, {w['clients']} clients, `serve --every-window`",
         f"{w['onnx_every_window']['requests_per_s']:.2f} req/s",
         f"{w['keras']['requests_per_s']:.2f} req/s (Keras runtime)", f"{w['ratio_every_window']:.2f}x faster", ""),
        ("Health check under that load (max; default, every window)",
         f"{w['onnx']['health_max_s'] * 1000:.0f} ms, {w['onnx_every_window']['health_max_s'] * 1000:.0f} ms",
         f"{w['keras']['health_max_s'] * 1000:.0f} ms", "", ""),
    ]
    lines = ["| Measure | Ours | Baseline (same run) | Ratio | Target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    speed = "; ".join(f"{k} windows {r['songs_per_s']:.2f} songs/s ({r['ratio_to_baseline']:.2f}x the script, "
                      f"{r['speedup_vs_every_window']:.1f}x every window)" for k, r in g.get("by_budget", {}).items())
    lines += ["", f"Songs: {g['set']}. How often a budget gives the whole-track genre: {agreement}. "
                  + (f"Smaller budgets (`--windows N`), whole process: {speed}. " if speed else "")
                  + f"Cross-validated clean accuracy on 30 s clips ({cv.get('source', 'reports/robustness.json')}, "
                  f"artist-grouped folds): {trade}."]
    rt = report["runtimes"]["results"]
    lines += ["", f"Runtimes ({report['runtimes']['windows']} windows of real music, batches of 10, "
                  f"{report['runtimes']['threads']} threads, each in its own process):", "",
              "| Runtime | Start-up (import + load) | ms per window | CPU ms per window | Max difference vs Keras-TF |",
              "|---|---|---|---|---|"]
    for name, r in rt.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | |")
        else:
            lines.append(f"| {name} | {r['startup_s']:.2f} s | {r['ms_per_window']:.1f} | "
                         f"{r['cpu_ms_per_window']:.1f} | {r['max_abs_difference_vs_keras_tensorflow']:.1e} |")
    b = report["batch"]
    lines += ["", f"ONNX Runtime CPU ms per window by windows per call ({b['threads']} thread, "
                  f"{b['windows']} windows of real music):", "",
              "| " + " | ".join(f"{k} windows" for k in b["cpu_ms_per_window"]) + " |",
              "|" + "---|" * len(b["cpu_ms_per_window"]),
              "| " + " | ".join(f"{v:.1f}" for v in b["cpu_ms_per_window"].values()) + " |"]
    m = report["machine"]
    lines += ["", f"Folder: {f['set']}. Baseline: a model-free script (Python, librosa.load, log-Mel) on the "
                  f"same files. {m['cpus']} cores shared with other work (load average {m['load_before'][0]:.1f} "
                  f"before, {m['load_after'][0]:.1f} after){'; ' + report['note'] if report.get('note') else ''}; "
                  f"{report['date'][:10]}, commit {report['commit'][:8]}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default.keras")
    ap.add_argument("--data", type=Path, nargs="+",
                    help="folders of clips for the folder test (default: folder_set's 150 clips of ../shared/data, "
                         "else data/sample)")
    ap.add_argument("--note", default="", help="a note on the conditions of this run, kept in the report")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--uploads", type=int, default=24)
    ap.add_argument("--songs-per-genre", type=int, default=4, help="full-length songs per genre (default 4)")
    args = ap.parse_args()
    fe = load_card(args.model).frontend
    sample = ROOT / "data" / "sample"
    mp3s = sorted((sample / "fma" / "audio").rglob("*.mp3"))
    wavs = sorted((sample / "gtzan").rglob("*.wav"))
    load_before = os.getloadavg()
    started = time.time()
    from utils.audio.frontend import LogMel, windows

    lm = LogMel(fe)
    win = np.concatenate([windows(lm(audio.load(p, fe.sample_rate)), fe) for p in mp3s[:3] + wavs[:3]])
    with tempfile.TemporaryDirectory() as tmp:
        report = {"runtimes": runtimes(args.model, win, args.rounds, Path(tmp))}
        print(json.dumps(report["runtimes"]["results"]), flush=True)
        report["cold_start"] = cold_start(args.model, fe, mp3s[0], args.rounds)
        print(report["cold_start"], flush=True)
        report["per_clip"] = per_clip(args.model, fe, mp3s, args.rounds)
        print(report["per_clip"], flush=True)
        report["batch"] = batch_sizes(args.model, win, args.rounds)
        print(report["batch"], flush=True)
        files, described = folder_set(Path(tmp), args.data)
        report["folder"] = folder(args.model, fe, files, described)
        print(report["folder"], flush=True)
        songs_, described = song_set(Path(tmp), args.songs_per_genre)
        report["songs"] = songs(args.model, fe, songs_, described)
        print(report["songs"], flush=True)
        report["one_hour"] = one_hour(args.model, fe, wavs[0], Path(tmp))
        print(report["one_hour"], flush=True)
    report["web"] = web(args.model, mp3s[0], args.uploads)
    print(report["web"], flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    report.update(
        provenance=finish(provenance()),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), commit=commit,
        command="python benchmarks/predict.py " + " ".join(sys.argv[1:]), seconds=time.time() - started,
        model=args.model.name, model_sha256=source_hash(args.model), note=args.note,
        machine={"platform": platform.platform(), "python": platform.python_version(), "cpus": cpu_count(),
                 "load_before": load_before, "load_after": os.getloadavg(),
                 "shared": "other jobs ran on this machine meanwhile; ratios are against baselines measured "
                           "in the same run, interleaved where rounds allow"})
    write_text(REPORT.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    write_text(REPORT.with_suffix(".md"), markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
