"""The web app: upload a song, see its genre probabilities, its Mel spectrogram and its genre over time.

``create_app(predictors)`` returns a FastAPI app with one HTML page (no
external CDN: the page is self-contained) and a JSON API, ``POST
/api/predict``, documented at ``/docs``. It serves one model or several by
name (``fma-genre serve``: GTZAN's 10 genres and FMA's 8); the page lets the
user pick one and ``/api/predict?model=NAME`` asks for it. The models are
loaded once, before the app is made; predictions run in worker threads, at
most ``max_concurrent`` at a time whatever the model, so the server keeps
answering while it classifies. Uploads are
limited in size (refused from their ``Content-Length`` before they are read,
or when a chunked body reaches the limit) and checked by content, not by
name. ``/openapi.json`` declares every status with its body: every error is
``{"detail": "<one line>"}``, validation errors included.
"""
from __future__ import annotations

import asyncio
import base64
import errno
import io
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from utils import audio
from utils.audio import seek
from utils.audio.picture import excerpt_span, window_to_pixels
from utils.errors import FmaGenreError
from utils.models.predict import Predictor

PAGE = Path(__file__).with_name("static") / "index.html"
ACCEPTED = {"mp3", "wav", "flac", "ogg", "mp4", "aiff", "aac"}  # containers, as audio.sniff names them


@dataclass(frozen=True)
class WebConfig:
    """Limits of the web app: upload size in MiB, predictions at once, spectrogram excerpt in seconds."""

    max_upload_mib: float = 50.0
    max_concurrent: int = 2
    spectrogram_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_upload_mib", "spectrogram_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0, got {getattr(self, name)}")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be 1 or more, got {self.max_concurrent}")


class ServeError(FmaGenreError):
    """The server cannot start (an address in use, or one this machine does not have)."""


class Error(BaseModel):
    """Every error the API answers: what went wrong, in one line that names the upload."""

    detail: str


class Model(BaseModel):
    """A model the server serves: its name (``/api/predict?model=``) and genres, in output order.

    ``picture``: it judges a track on one picture of its excerpt (``window_seconds`` long, the
    first 30 s of a clip, a longer track's middle 30 s) rather than on windows of ``window_seconds``.
    ``window_budget``: the most windows a track is judged on, null for every window (or one picture).
    """

    name: str
    genres: list[str]
    picture: bool
    window_seconds: float
    window_budget: int | None


class Health(BaseModel):
    """``model``, ``genres`` and ``window_budget``: the default model's (the first of ``models``)."""

    status: str
    model: str
    genres: list[str]
    max_upload_mib: float
    window_budget: int | None
    models: list[Model]


class GenreProbability(BaseModel):
    genre: str
    probability: float


class Segment(BaseModel):
    """A run of windows with the same top genre; times in seconds."""

    start: float
    end: float
    genre: str
    probability: float


class Prediction(BaseModel):
    """A track's genre probabilities, its genre over time and a PNG (base64) of its log-Mel spectrogram.

    ``model``: the model that judged it. ``windows_analysed``: how many windows the track was
    judged on (3 s each; one picture for a picture model); ``window_budget``: the most it could
    be (the server's ``--windows``, spread over the track), or null when every window was
    (``fma-genre serve --every-window``, or a picture model). ``segments`` cover the analysed
    windows only. The spectrogram shows ``spectrogram_seconds`` from ``spectrogram_start``: a
    window model's, the opening of the file; a picture model's, the picture it judged (its
    128 columns over its excerpt).
    """

    path: str
    model: str
    genre: str
    probability: float
    top: list[GenreProbability]
    probabilities: dict[str, float]
    segments: list[Segment]
    duration: float
    spectrogram_png: str
    spectrogram_start: float
    spectrogram_seconds: float
    windows_analysed: int
    window_budget: int | None


ERRORS = {400: {"model": Error, "description": "a request that is not a multipart form with a file"},
          413: {"model": Error, "description": "an upload over the size limit"},
          415: {"model": Error, "description": "not an accepted audio format (checked by content)"},
          422: {"model": Error, "description": "no file field, an unknown model, or an audio file that cannot "
                                                "be decoded or used"}}
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers allowed on top of the file, in bytes


class UploadLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before it is read.

    A ``Content-Length`` over the limit is answered at once, unread; a body
    sent without one (chunked) is counted as it arrives and stopped at the limit.
    """

    def __init__(self, app, limit: int, message: str) -> None:
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            response = JSONResponse({"detail": self.message}, 413, headers={"Connection": "close"})
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, self.message, headers={"Connection": "close"})
            return message

        await self.app(scope, counted, send)


def create_app(predictors: Predictor | Mapping[str, Predictor], config: WebConfig = WebConfig(),
               model_name: str = "model") -> FastAPI:
    """The app serving ``predictors``: one (named ``model_name``) or several by name, the first the default."""
    models = dict(predictors) if isinstance(predictors, Mapping) else {model_name: predictors}
    if not models:
        raise ValueError("no model to serve")
    default = next(iter(models))
    app = FastAPI(title="fma-genre", version="1", description=__doc__.split("\n\n")[0])
    slots = asyncio.Semaphore(config.max_concurrent)
    limit = int(config.max_upload_mib * 1024 * 1024)
    too_large = f"file too large (over {config.max_upload_mib:g} MiB)"
    app.add_middleware(UploadLimit, limit=limit + _FORM_OVERHEAD, message=f"upload: {too_large}")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        # one line, like every other error (FastAPI's default is a list of objects)
        problems = "; ".join(f"unknown model {e['input']!r}; this server has {', '.join(models)}"
                             if e["loc"] == ("query", "model") else
                             f"{'.'.join(map(str, e['loc'][1:])) or e['loc'][0]}: {e['msg']}" for e in err.errors())
        return JSONResponse({"detail": f"invalid request: {problems}"}, 422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text()

    @app.get("/api/health", response_model=Health)
    def health() -> dict:
        """The models served, each with its name and genres; the first is the default."""
        served = [{"name": name, "genres": list(p.labels), "picture": p.frontend.is_picture,
                   "window_seconds": p.frontend.window_seconds, "window_budget": _budget(p)}
                  for name, p in models.items()]
        return {"status": "ok", "model": default, "genres": served[0]["genres"],
                "max_upload_mib": config.max_upload_mib, "window_budget": served[0]["window_budget"],
                "models": served}

    async def predict(file: Annotated[UploadFile, File(description="the audio file; an empty one is refused",
                                                       json_schema_extra={"minLength": 1})],
                      model: str = default) -> dict:
        """Classify an uploaded audio file (MP3, WAV, FLAC, Ogg, M4A, AIFF) with the model named ``model``.

        Returns the track's genre probabilities, the top 3, the genre over time
        (one entry per run of windows with the same top genre) and a PNG of its
        log-Mel spectrogram: of its first ``spectrogram_seconds`` seconds, or for a
        picture model the picture it judged. ``windows_analysed`` says how many
        windows the model judged the track on: at most the server's ``window_budget``,
        spread over the track, or every window (``window_budget`` null, a server
        started with ``--every-window``, or a picture model's one picture).
        Errors: 413 too large, 415 not an accepted audio format, 422 an unknown
        model or an audio file that cannot be decoded or used (message says why).
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
                        raise HTTPException(413, f"{name}: {too_large}")
                    out.write(chunk)
            async with slots:
                return await run_in_threadpool(_classify, models[model], tmp, name, config, model)
        finally:
            os.unlink(tmp)

    # set here, not in the signature: the served names are known only now, and this module's annotations are
    # strings that FastAPI evaluates among its globals. The schema lists them; another name gets 422.
    predict.__annotations__["model"] = Annotated[Literal[tuple(models)], Query(
        description="the model that judges it, one of /api/health's models (default: the first)")]
    app.post("/api/predict", response_model=Prediction, responses=ERRORS)(predict)
    return app


def _budget(predictor: Predictor) -> int | None:
    """The most windows ``predictor`` judges a track on; None for every window (a picture model's one)."""
    return None if predictor.frontend.is_picture else predictor.max_windows


def _classify(predictor: Predictor, path: str, name: str, config: WebConfig, model: str = "model") -> dict:
    fe = predictor.frontend
    try:
        kind = audio.sniff(path)
        if kind not in ACCEPTED:
            with open(path, "rb") as f:
                head = f.read(8)
            raise HTTPException(415, f"{name}: not an accepted audio file (starts with {head!r}); "
                                     "send MP3, WAV, FLAC, Ogg, M4A or AIFF")
        if fe.is_picture:  # the model's one window is the picture to show: no second decode
            seen: list[np.ndarray] = []
            result = predictor.predict_file(path, on_frames=seen.append)
            track = seek.probe(path)
            n, native = track.n_samples, track.sample_rate
            start, seconds = excerpt_span(n / native, fe)
            spectrogram = picture_png(seen[0])
        else:
            result = predictor.predict_file(path)
            track = seek.probe(path)
            n, native = track.n_samples, track.sample_rate
            shown = min(round(n * fe.sample_rate / native), int(config.spectrogram_seconds * fe.sample_rate))
            opening = next(seek.excerpts(track, fe.sample_rate, [(0, shown)]))  # the first seconds, decoded again
            start, seconds = 0.0, shown / fe.sample_rate
            spectrogram = spectrogram_png(predictor.logmel(opening))
    except audio.EmptyFileError:
        raise HTTPException(422, f"{name}: empty file (0 bytes)") from None
    except audio.AudioError as err:
        raise HTTPException(422, f"{name}: {err.problem}") from None
    body = result.to_dict(k=3)
    body["path"], body["model"], body["window_budget"] = name, model, _budget(predictor)
    body["duration"] = n / native
    # the last window's frames reach up to a hop past the end (centred frames); the timeline stops at the end
    body["segments"] = [{"start": s, "end": min(e, body["duration"]), "genre": g, "probability": p}
                        for s, e, g, p in result.segments()]
    body["spectrogram_png"] = spectrogram
    body["spectrogram_start"] = start
    body["spectrogram_seconds"] = min(seconds, body["duration"] - start)
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
    # zlib level 1: a quarter of the default level's time (about 6 vs 25 ms a request) for ~20 % more bytes
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def picture_png(window: np.ndarray) -> str:
    """A picture model's window, levels 0-255 ``(columns, mels)``, as the base64 PNG of what it saw: one
    pixel a level, time left to right, low frequencies at the bottom, in viridis (the pictures' colours)."""
    from matplotlib import colormaps
    from PIL import Image

    rgb = (colormaps["viridis"](window_to_pixels(window))[..., :3] * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields its base URL and stops it on exit.

    ``port=0`` takes a free port. For tests and scripts; ``fma-genre serve`` runs uvicorn itself.
    """
    import uvicorn

    sock = listen(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: a free port) and listening, for uvicorn to serve on.

    Raises :class:`ServeError` when the port is taken or the address is not one of this machine's.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise ServeError(f"cannot listen on {host}:{port}: {getattr(err, 'strerror', None) or err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart over TIME_WAIT
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        why = ("port already in use (is another server running? choose another with --port)"
               if err.errno == errno.EADDRINUSE else err.strerror or str(err))
        raise ServeError(f"cannot listen on {host}:{port}: {why}") from None
    return sock
