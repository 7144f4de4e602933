"""``fma-genre serve``: the web page and JSON API on localhost."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from utils.apps.cli.arguments import number, port
from utils.apps.cli.predict import RUNTIME_HELP, add_window_options, max_windows
from utils.errors import FmaGenreError

MODEL_HELP = ("a model to serve: a shipped model's name, gtzan (GTZAN's 10 genres) or fma-small (fma_small's 8 FMA "
              "genres), or a .keras model with its .card.json; give it again to serve several, the page lets the "
              "user pick and the first is the default (default: both shipped models)")


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web page and JSON API",
                       description="Serve a page to upload a song, pick a model and see the song's genre "
                                   "probabilities, Mel spectrogram and genre over time, and POST "
                                   "/api/predict?model=NAME (docs at /docs).")
    p.add_argument("--model", action="append", metavar="NAME_OR_PATH", help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="0 to 65535; 0 picks a free one (default: 8000)")
    p.add_argument("--max-upload-mib", type=number(float, 1 / 1024, "at least 1/1024 (1 KiB)"), default=50.0,
                   help="largest upload in MiB (default: 50)")
    p.add_argument("--max-concurrent", type=number(int, 1, "1 or more"), default=2,
                   help="predictions at once (default: 2)")
    p.add_argument("--runtime", choices=("auto", "onnx", "keras"), default="auto", help=RUNTIME_HELP)
    add_window_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from utils.apps.web import ServeError, WebConfig, create_app, listen
    from utils.models.predict import SHIPPED, load_predictor

    given = args.model or list(SHIPPED)
    names = model_names(given)
    config = WebConfig(args.max_upload_mib, args.max_concurrent)
    try:  # before loading the model: a port in use is known at once
        sock = listen(args.host, args.port)
    except ServeError as err:
        print(f"fma-genre serve: error: {err}", file=sys.stderr)
        return 2
    with sock:
        # each loaded once, here: ONNX Runtime by default, so none of them imports TensorFlow
        predictors = {name: load_predictor(m, args.runtime, jobs=args.max_concurrent, max_windows=max_windows(args))
                      for name, m in zip(names, given)}
        app = create_app(predictors, config)
        host, port = sock.getsockname()[:2]
        print(f"fma-genre: serving on http://{host}:{port} (API docs at /docs); Ctrl-C stops", flush=True)
        # requests still running 5 s after Ctrl-C or SIGTERM are cut short (their temp files removed)
        uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)).run(sockets=[sock])
    return 0


def model_names(given: list[str]) -> list[str]:
    """What the page and ``/api/predict?model=`` call each model given: a shipped model's name, else its
    file's stem. Raises :class:`FmaGenreError` when two get the same name.

    Examples
    --------
    >>> model_names(["fma-small", "runs/mine/model.keras"])
    ['fma-small', 'model']
    """
    from utils.models.predict import SHIPPED

    names = [m if m in SHIPPED else Path(m).stem for m in given]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FmaGenreError(f"two models named {', '.join(twice)} (a model's name is its file's stem): "
                            "give each once, or copy one to another name")
    return names
