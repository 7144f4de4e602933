"""The web app: upload a song, see its genre probabilities, its Mel spectrogram and its genre over time.

``create_app(predictor)`` returns a FastAPI app with one HTML page (no
external CDN: the page is self-contained) and a JSON API, ``POST
/api/predict``, documented at ``/docs``. The model is loaded once, when the
app is made; predictions run in worker threads, at most ``max_concurrent`` at
a time, so the server keeps answering while it classifies. Uploads are
limited in size and checked by content, not by name.
"""
from __future__ import annotations

import asyncio
import base64
import io
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, UploadFile
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from utils import audio
from utils.audio.frontend import LogMel
from utils.models.predict import Predictor

PAGE = Path(__file__).with_name("static") / "index.html"
ACCEPTED = {"mp3", "wav", "flac", "ogg", "mp4", "aiff", "aac"}  # containers, as audio.sniff names them


@dataclass(frozen=True)
class WebConfig:
    """Limits of the web app: upload size in MiB, predictions at once, spectrogram excerpt in seconds."""

    max_upload_mib: float = 50.0
    max_concurrent: int = 2
    spectrogram_seconds: float = 30.0


def create_app(predictor: Predictor, config: WebConfig = WebConfig(), model_name: str = "model") -> FastAPI:
    app = FastAPI(title="fma-genre", version="1", description=__doc__.split("\n\n")[0])
    slots = asyncio.Semaphore(config.max_concurrent)
    limit = int(config.max_upload_mib * 1024 * 1024)
    logmel = LogMel(predictor.frontend)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text()

    @app.get("/api/health")
    def health() -> dict:
        """The model's name and genres."""
        return {"status": "ok", "model": model_name, "genres": list(predictor.labels),
                "max_upload_mib": config.max_upload_mib}

    @app.post("/api/predict")
    async def predict(file: UploadFile) -> dict:
        """Classify an uploaded audio file (MP3, WAV, FLAC, Ogg, M4A, AIFF).

        Returns the track's genre probabilities, the top 3, the genre over time
        (one entry per run of windows with the same top genre) and a PNG of the
        log-Mel spectrogram of its first ``spectrogram_seconds`` seconds.
        Errors: 413 too large, 415 not an accepted audio format, 422 an audio
        file that cannot be decoded or used (message says why).
        """
        name = Path(file.filename or "upload").name
        suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in audio.AUDIO_EXTENSIONS else ""
        fd, tmp = tempfile.mkstemp(prefix="fma-genre-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as out:
                size = 0
                while chunk := await file.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(413, f"{name}: file too large (over {config.max_upload_mib:g} MiB)")
                    out.write(chunk)
            async with slots:
                return await run_in_threadpool(_classify, predictor, logmel, tmp, name, config)
        finally:
            os.unlink(tmp)

    return app


def _classify(predictor: Predictor, logmel: LogMel, path: str, name: str, config: WebConfig) -> dict:
    try:
        kind = audio.sniff(path)
        if kind not in ACCEPTED:
            with open(path, "rb") as f:
                head = f.read(8)
            raise HTTPException(415, f"{name}: not an accepted audio file (starts with {head!r}); "
                                     "send MP3, WAV, FLAC, Ogg, M4A or AIFF")
        result = predictor.predict_file(path)
        y = audio.load(path, predictor.frontend.sample_rate, duration=config.spectrogram_seconds)
    except audio.EmptyFileError:
        raise HTTPException(422, f"{name}: empty file (0 bytes)") from None
    except audio.AudioError as err:
        raise HTTPException(422, f"{name}: {err.problem}") from None
    body = result.to_dict(k=3)
    body["path"] = name
    body["segments"] = [{"start": s, "end": e, "genre": g, "probability": p} for s, e, g, p in result.segments()]
    body["duration"] = float(result.window_times[-1] + result.window_seconds)
    body["spectrogram_png"] = spectrogram_png(logmel(y))
    body["spectrogram_seconds"] = y.size / predictor.frontend.sample_rate
    return body


def spectrogram_png(S: np.ndarray, max_columns: int = 1200) -> str:
    """A log-Mel spectrogram (frames, mels) as a base64 PNG: time left to right,
    low frequencies at the bottom, magma colours from the 5th percentile to the maximum."""
    from matplotlib import colormaps
    from PIL import Image

    if S.shape[0] > max_columns:  # keep the loudest frame of each group
        k = -(-S.shape[0] // max_columns)
        S = np.pad(S, ((0, -S.shape[0] % k), (0, 0)), constant_values=S.min()).reshape(-1, k, S.shape[1]).max(axis=1)
    low, top = np.percentile(S, 5), S.max()
    level = np.clip((S - low) / max(top - low, 1e-6), 0, 1)
    rgb = (colormaps["magma"](level.T[::-1])[..., :3] * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields its base URL and stops it on exit.

    ``port=0`` takes a free port. For tests and scripts; ``fma-genre serve`` runs uvicorn itself.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server did not start on {host}:{port}")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
