"""Probe the promises of issue 16 as a user would meet them, and write reports/hardening.json (+ .md).

- Ctrl-C: ``fma-genre predict --jobs N`` (the shipped model) on three ten-minute files gets SIGINT
  while classifying; seconds until the process is gone.
- download: seconds until ``download`` (default timeout and retries) gives up on a server that
  accepts and never answers, on a refused port and on a name that does not resolve.
- serve (the app on a local uvicorn, 2 MiB limit): seconds until a 300 MB ``Content-Length`` gets
  413 with no byte of body sent, and MiB a client had sent of a 300 MiB chunked upload when stopped.

    python scripts/hardening_probe.py
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.evaluation.provenance import finish, provenance, write_report  # noqa: E402


def interrupt_predict(args: list[str], jobs: int, hold_s: float = 5.0, timeout: float = 120.0
                      ) -> tuple[float, int, str]:
    """Run ``fma-genre predict ARGS --jobs JOBS`` through ``console`` (the program's entry point),
    send SIGINT once decoders have files in flight, and return (seconds until the process was
    gone, its exit status, the rest of its standard error).

    Each file's windows are decoded and classified for real, then its decoder holds it in flight
    for ``hold_s`` s, so the signal lands while the pipeline is busy however fast the runtime is.
    SIGINT is delivered as in a terminal: a runner started in the background (CI, ``cmd &``)
    passes it on ignored, and Python then never raises KeyboardInterrupt.
    """
    script = ("import sys, time; from utils.models.predict import Predictor; real = Predictor.windows\n"
              "def announce(self, path, *a, **k):\n"
              "    print('classifying', path, file=sys.stderr, flush=True); yield from real(self, path, *a, **k)\n"
              f"    time.sleep({hold_s})\n"
              "Predictor.windows = announce\n"
              "from utils.apps.cli import console; console()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, "predict", *args, "--jobs", str(jobs)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = 0
    for line in proc.stderr:
        started += line.startswith("classifying")
        if started >= min(jobs + 1, 3):
            break
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        proc.kill()
    return round(time.monotonic() - sent, 2), rc, proc.stderr.read()


def ctrl_c_seconds(jobs: int, folder: Path) -> float:
    return interrupt_predict([str(folder)], jobs)[0]


def download_seconds(base_url: str, dest: Path) -> float:
    from utils.data import download as dl

    start = time.monotonic()
    try:
        dl.download(dl.Archive("probe", "0" * 40, 1000, "probe"), dest, base_url=base_url, progress=False)
    except dl.DownloadError:
        pass
    return round(time.monotonic() - start, 2)


def serve_figures() -> dict:
    import httpx

    from utils.apps.web import WebConfig, create_app, running
    from utils.models.predict import load_predictor

    with running(create_app(load_predictor(), WebConfig(max_upload_mib=2.0))) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            start = time.monotonic()
            s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      b"Content-Length: 300000000\r\n\r\n")
            answer = s.recv(64)
            took = time.monotonic() - start
        sent = 0

        def body():
            nonlocal sent
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
            for _ in range(300):
                sent += 1 << 20
                yield b"\0" * (1 << 20)
        try:
            status = httpx.post(f"{url}/api/predict", content=body(), timeout=60,
                                headers={"Content-Type": "multipart/form-data; boundary=b"}).status_code
        except httpx.TransportError as err:
            status = type(err).__name__
    return {"content_length_413_seconds": round(took, 3), "content_length_status": answer.split(b" ")[1].decode(),
            "chunked_upload_mib_sent_of_300": sent >> 20, "chunked_upload_answer": status, "limit_mib": 2}


def _accept_forever(server: socket.socket) -> None:
    """Accept connections and never answer them (until the server is closed)."""
    held = []
    while True:
        try:
            held.append(server.accept()[0])
        except OSError:
            return


def markdown(report: dict) -> str:
    c, d, s = report["ctrl_c_exit_seconds"], report["download_gives_up_seconds"], report["serve"]
    return "\n".join([
        "| promise | measured |", "|---|---|",
        *(f"| Ctrl-C, `predict --jobs {j}` | gone in {t} s |" for j, t in c.items()),
        *(f"| download, {k.replace('_', ' ')} | gave up in {t} s |" for k, t in d.items()),
        f"| serve, 300 MB `Content-Length` | {s['content_length_status']} in {s['content_length_413_seconds']} s |",
        f"| serve, 300 MiB chunked upload, {s['limit_mib']} MiB limit | stopped after "
        f"{s['chunked_upload_mib_sent_of_300']} MiB sent |", ""])


def main() -> None:
    import numpy as np
    import soundfile as sf

    from utils import audio

    block = provenance(note="shared 2-core machine: timings include other users' load")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sr = 22050
        y = audio.load(ROOT / "data/sample/fma/audio/001/001039.mp3", sr)  # a real 30 s clip
        (tmp / "long").mkdir()
        for i in range(3):
            sf.write(tmp / "long" / f"long_{i}.wav", np.tile(y, 20), sr)
        ctrl_c = {str(j): ctrl_c_seconds(j, tmp / "long") for j in (1, 2, 4)}
        silent = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=_accept_forever, args=(silent,), daemon=True).start()
        with socket.create_server(("127.0.0.1", 0)) as closed:
            refused_port = closed.getsockname()[1]
        dl = {"silent_server": download_seconds(f"http://127.0.0.1:{silent.getsockname()[1]}/", tmp / "a"),
              "refused_port": download_seconds(f"http://127.0.0.1:{refused_port}/", tmp / "b"),
              "unresolvable_name": download_seconds("http://no-such-host.invalid/", tmp / "c")}
        silent.close()
    report = {"ctrl_c_exit_seconds": ctrl_c, "download_gives_up_seconds": dl, "serve": serve_figures()}
    path = write_report(ROOT / "reports" / "hardening.json", report, finish(block), markdown(report))
    print(path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
