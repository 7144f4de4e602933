"""``fma-genre serve``: the web page and JSON API on localhost."""
from __future__ import annotations

import argparse
from pathlib import Path

from utils.apps.cli.predict import MODEL_HELP, RUNTIME_HELP


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web page and JSON API",
                       description="Serve a page to upload a song and see its genre probabilities, Mel "
                                   "spectrogram and genre over time, and POST /api/predict (docs at /docs).")
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="default: 8000")
    p.add_argument("--max-upload-mib", type=float, default=50.0, help="largest upload in MiB (default: 50)")
    p.add_argument("--max-concurrent", type=int, default=2, help="predictions at once (default: 2)")
    p.add_argument("--runtime", choices=("auto", "onnx", "keras"), default="auto", help=RUNTIME_HELP)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from utils.models.predict import load_predictor
    from utils.apps.web import WebConfig, create_app

    predictor = load_predictor(args.model, args.runtime, jobs=args.max_concurrent)
    app = create_app(predictor, WebConfig(args.max_upload_mib, args.max_concurrent),
                     model_name=Path(args.model or "models/default.keras").stem)
    print(f"fma-genre: serving on http://{args.host}:{args.port} (API docs at /docs); Ctrl-C stops")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
