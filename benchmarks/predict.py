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
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import audio  # noqa: E402
from utils.audio import seek  # noqa: E402
from utils.atomic import write_text  # noqa: E402
from utils.evaluation.provenance import finish, provenance  # noqa: E402
from utils.models.card import load_card  # noqa: E402
from utils.models.runtime import cpu_count, source_hash  # noqa: E402

REPORT = ROOT / "reports" / "benchmarks_predict"
SHARED = ROOT.parent / "shared" / "data"  # the shared data folder beside the checkout
ROBUSTNESS = ROOT / "reports" / "robustness.json"
WEB_TARGET = 3 * 2.95  # requests/s: 3x what the issue measured with 4 clients (Keras runtime, exact)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

BASELINE = """
import sys
import librosa
sr, n_fft, hop, n_mels = map(int, sys.argv[1:5])
for path in sys.argv[5:]:
    y, _ = librosa.load(path, sr=sr)
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels))
"""

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


def whole_process(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds) of a command run to completion; raises on failure.

    The peak is the child's own high-water mark (``VmHWM``, polled every 20 ms):
    Linux carries the parent's high-water mark into an exec'd child's
    ``ru_maxrss``, so a benchmark process that has run a model itself would
    report its own size for every child (it did: 1606 MiB for all of them).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env or ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()))
    reader.start()
    peak_kib = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid))
        time.sleep(0.02)
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])}...: exit {proc.returncode}: {stderr[0][-2000:].decode()}")
    return time.perf_counter() - t0, (peak_kib or usage.ru_maxrss) / 1024, usage.ru_utime + usage.ru_stime


def _vm_hwm_kib(pid: int) -> int:
    """Peak resident memory of process ``pid`` so far in KiB (0 where /proc does not say)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def baseline_cmd(fe, files) -> list[str]:
    return [sys.executable, "-c", BASELINE, str(fe.sample_rate), str(fe.n_fft), str(fe.hop_length),
            str(fe.n_mels), *map(str, files)]


def predict_cmd(model: Path, files, *options: str) -> list[str]:
    return [sys.executable, "-m", "utils.apps.cli", "predict", "--model", str(model), *options, *map(str, files)]


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


MODES = {"budget": [], "every_window": ["--every-window"]}  # the default (a window budget) and the whole track


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
    base.append(whole_process(baseline_cmd(fe, files)))
    b = statistics.mean(r[0] for r in base)
    out["baseline"] = {"wall_s": b, "runs_s": [r[0] for r in base], "songs_per_s": len(files) / b}
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


def web(model: Path, mp3: Path, uploads: int, clients: int = 4) -> dict:
    import httpx

    body = mp3.read_bytes()
    result = {"clients": clients, "uploads": uploads, "file": mp3.name}
    for name, runtime, options in (("keras", "keras", []), ("onnx", "onnx", []),
                                   ("onnx_every_window", "onnx", ["--every-window"])):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "utils.apps.cli", "serve", "--model", str(model),
                                   "--port", str(port), "--runtime", runtime, *options], cwd=ROOT, env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        # one client each for uploads and health checks, as a real client keeps its connections: the
        # load generator shares the 2 cores with the server, and a fresh httpx client per request
        # costs ~28 ms of CPU (its TLS context), ~12 % of what the server spends on a request
        uploads_client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=clients))
        health_client = httpx.Client(timeout=60)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    httpx.get(f"{url}/api/health", timeout=5).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"fma-genre serve --runtime {runtime} did not start")
                    time.sleep(0.2)


            def upload(_=None):
                uploads_client.post(f"{url}/api/predict", files={"file": (mp3.name, body)}).raise_for_status()

            upload()  # warm up
            health: list[float] = []
            done = threading.Event()

            def poll():
                while not done.is_set():
                    t = time.perf_counter()
                    health_client.get(f"{url}/api/health").raise_for_status()
                    health.append(time.perf_counter() - t)
                    time.sleep(0.2)

            poller = threading.Thread(target=poll)
            poller.start()
            from concurrent.futures import ThreadPoolExecutor

            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(upload, range(uploads)))
            took = time.perf_counter() - t0
            done.set()
            poller.join()
            result[name] = {"options": options, "requests_per_s": uploads / took, "health_checks": len(health),
                            "health_median_s": statistics.median(health), "health_max_s": max(health)}
            print(name, result[name], flush=True)
        finally:
            uploads_client.close()
            health_client.close()
            server.terminate()
            server.wait(timeout=60)
    result["ratio"] = result["onnx"]["requests_per_s"] / result["keras"]["requests_per_s"]
    result["ratio_every_window"] = result["onnx_every_window"]["requests_per_s"] / result["keras"]["requests_per_s"]
    result["target_requests_per_s"] = WEB_TARGET
    result["target_note"] = "3x the 2.95 requests/s issue 15 measured (Keras runtime, every window, 4 clients)"
    return result


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
    lines += ["", f"Songs: {g['set']}. How often a budget gives the whole-track genre: {agreement}. "
                  f"Cross-validated clean accuracy on 30 s clips ({cv.get('source', 'reports/robustness.json')}, "
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
