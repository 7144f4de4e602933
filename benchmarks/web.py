"""The web API under load: requests/s with concurrent clients uploading to ``fma-genre serve``, by runtime."""
from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.processes import ENV, ROOT

WEB_TARGET = 3 * 2.95  # requests/s: 3x what issue 15 measured with 4 clients (Keras runtime, every window)


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
