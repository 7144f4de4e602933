"""Prediction speed and memory: ours against a naive librosa + Keras pipeline, measured in one run.

Prints, on the real sample with one model (default: the shipped one):
1. seconds per 30 s clip end to end, ours (streamed decode -> spectrogram ->
   windows -> model) vs naive (librosa.load + melspectrogram + power_to_db,
   windows, ``model.predict``), and their ratio;
2. tracks/s over the sample folder with 1 and 2 jobs;
3. peak memory (RSS) while classifying a one-hour file, ours vs naive, each
   in a fresh process with the model loaded and warmed up (5 min of the file) first;
4. web API requests/s with 4 concurrent clients uploading a sample mp3.

    python benchmarks/predict.py [--model models/default.keras] [--rounds 3]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

# Run in a fresh process: load the model and warm it up, reset the peak-RSS mark
# (Linux: /proc/self/clear_refs), classify the file, print RSS before and peak during, in MiB.
MEMORY = """
import sys
import numpy as np
from utils.models.predict import load_predictor

def status(key):
    line = next(l for l in open("/proc/self/status") if l.startswith(key))
    return int(line.split()[1]) / 1024

def run(duration=None):
    if sys.argv[2] == "ours":
        return p.predict_file(sys.argv[3], duration=duration)
    import librosa
    from utils.audio.frontend import windows
    fe = p.frontend
    y, _ = librosa.load(sys.argv[3], sr=fe.sample_rate, duration=duration)
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=fe.sample_rate, n_fft=fe.n_fft,
        hop_length=fe.hop_length, n_mels=fe.n_mels), ref=1.0, amin=1e-10, top_db=None).T
    return p.model.predict(windows(S.astype(np.float32), fe), verbose=0)

p = load_predictor(sys.argv[1])
run(duration=300.0)  # warm up with full batches, so both measure classifying, not compiling
before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")
run()
print(before, status("VmHWM:"))
"""


def naive_clip(path: Path, predictor) -> np.ndarray:
    import librosa

    from utils.audio.frontend import windows

    fe = predictor.frontend
    y, _ = librosa.load(path, sr=fe.sample_rate)
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=fe.sample_rate, n_fft=fe.n_fft,
                                                           hop_length=fe.hop_length, n_mels=fe.n_mels),
                            ref=1.0, amin=1e-10, top_db=None).T
    return predictor.model.predict(windows(S.astype(np.float32), fe), verbose=0).mean(axis=0)


def best_seconds(fn, items, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - t0) / len(items))
    return best


def peak_rss(model: Path, mode: str, audio: Path) -> tuple[float, float]:
    """(RSS with the model loaded, peak RSS while classifying ``audio``) in MiB, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEMORY, str(model), mode, str(audio)], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    before, peak = map(float, out.stdout.split()[-2:])
    return before, peak


def main() -> None:
    from utils.models.predict import DEFAULT_MODEL, load_predictor
    from utils.apps.web import create_app, running

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    predictor = load_predictor(args.model)
    mp3s = sorted((SAMPLE / "fma" / "audio").rglob("*.mp3"))
    everything = mp3s + sorted((SAMPLE / "gtzan").rglob("*.wav"))
    predictor.predict_file(mp3s[0])
    naive_clip(mp3s[0], predictor)

    ours = best_seconds(predictor.predict_file, mp3s, args.rounds)
    naive = best_seconds(lambda p: naive_clip(p, predictor), mp3s, args.rounds)
    print(f"model {args.model.name}: {predictor.frontend.window_frames}-frame windows, {len(predictor.labels)} genres")
    print(f"30 s mp3 end to end: naive {naive:.3f} s, ours {ours:.3f} s per clip, ratio {naive / ours:.2f}")

    for jobs in (1, 2):
        t0 = time.perf_counter()
        n = sum(1 for _ in predictor.predict_files(everything, jobs=jobs))
        print(f"sample folder ({n} tracks), {jobs} job(s): {n / (time.perf_counter() - t0):.1f} tracks/s")

    with tempfile.TemporaryDirectory() as tmp:
        clip, sr = sf.read(next((SAMPLE / "gtzan").rglob("*.wav")), dtype="int16")
        hour = Path(tmp) / "one_hour.wav"
        sf.write(hour, np.tile(clip, 120), sr, subtype="PCM_16")  # 60 min of real music, 159 MB
        (b1, mine), (b2, theirs) = peak_rss(args.model, "ours", hour), peak_rss(args.model, "naive", hour)
        print(f"one-hour file, peak RSS while classifying: naive {theirs:.0f} MiB (+{theirs - b2:.0f} over the "
              f"loaded model), ours {mine:.0f} MiB (+{mine - b1:.0f}); ratio of the extra "
              f"{(theirs - b2) / max(mine - b1, 1):.1f}")

    body = mp3s[0].read_bytes()
    with running(create_app(predictor)) as url:
        import httpx

        def upload(_):
            r = httpx.post(f"{url}/api/predict", files={"file": (mp3s[0].name, body)}, timeout=300)
            r.raise_for_status()

        upload(0)
        n = 24
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, range(n)))
        print(f"web API, 4 concurrent clients: {n / (time.perf_counter() - t0):.2f} requests/s "
              f"({n} uploads of a 30 s mp3)")


if __name__ == "__main__":
    main()
