"""``fma-genre export``: a trained model's ONNX graph beside its .keras, for fast, light prediction."""
from __future__ import annotations

import argparse
from pathlib import Path

from utils.apps.cli.predict import MODEL_HELP


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX for predict, organize and serve",
                       description="Write MODEL.onnx beside MODEL.keras (Keras' ONNX export, the head's "
                                   "normalisation folded into the graph, stamped with the .keras file's "
                                   "SHA-256) and check that it gives the Keras model's probabilities.")
    p.add_argument("--model", help=MODEL_HELP)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.models.predict import model_path
    from utils.models.runtime import export, max_difference

    model = model_path(args.model)
    out = export(model)
    print(f"{out}: exported from {model}; largest difference from the Keras model on random windows "
          f"{max_difference(model):.1e}")
    return 0
