"""Whole-process runs for the benchmarks: wall time, peak memory and CPU of a command, and the commands
they compare (``fma-genre predict``, and the model-free librosa script that is the baseline)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
MODES = {"budget": [], "every_window": ["--every-window"]}  # the default (a window budget) and the whole track

BASELINE = """
import sys
import librosa
sr, n_fft, hop, n_mels = map(int, sys.argv[1:5])
for path in sys.argv[5:]:
    y, _ = librosa.load(path, sr=sr)
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels))
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
