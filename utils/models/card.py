"""Saving, loading and using a trained model: ``<name>.keras`` plus its JSON card ``<name>.card.json``.

The card says what the model's outputs mean (labels, in output order), how
its inputs were made (the :class:`~utils.audio.frontend.FrontEnd` parameters), what
it was trained and judged on, and with which library versions. Loading checks
the card against the model; prediction then takes labels and front end from
the card (``Predictor(model, card.labels, card.frontend)`` in
:mod:`utils.models.predict`), never from separate constants. Every file is written
atomically (temporary file in the same folder, then ``os.replace``).

Keras is imported inside the functions that need it, so that reading a card
or starting the command line does not load it.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from utils.models import backend
from utils.atomic import write_text
from utils.audio.frontend import FrontEnd
from utils.errors import FmaGenreError
from utils.models.registry import n_outputs

if TYPE_CHECKING:
    import keras

CARD_FORMAT = 1  # bump when a field changes meaning; loading refuses other formats


class ModelCardError(FmaGenreError):
    """A model or card that cannot be used. ``str(err)`` is ``"<path>: <problem>"``."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModelCard:
    """What a saved model is. ``versions`` and ``created`` (UTC, ISO 8601) fill themselves.

    Attributes
    ----------
    labels : class names in output order (two labels: the sigmoid gives P(labels[1]))
    frontend : the front end that made the training windows; prediction uses it
    architecture : model name, e.g. a key of :data:`utils.models.registry.MODELS`
    training : training configuration and outcome (see ``TrainResult.summary``)
    data : training data and split, as the dataset layer describes them
    metrics : evaluation results, e.g. ``{"test": {"accuracy": ...}}``
    temperature : calibration temperature for the track probabilities, fitted on
        validation data (:mod:`utils.models.calibration`); 1 means uncalibrated
    """

    labels: tuple[str, ...]
    frontend: FrontEnd
    architecture: str
    training: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    temperature: float = 1.0
    versions: dict = field(default_factory=backend.versions)
    created: str = field(default_factory=_now)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(format=CARD_FORMAT, labels=list(self.labels), frontend=self.frontend.to_dict())
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str | os.PathLike = "model card") -> "ModelCard":
        """Validate and build a card; problems raise :class:`ModelCardError` naming ``source``."""
        if not isinstance(d, dict):
            raise ModelCardError(source, f"expected a JSON object, got {type(d).__name__}")
        if d.get("format") != CARD_FORMAT:
            raise ModelCardError(source, f"card format {d.get('format')!r} is not {CARD_FORMAT}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - set(d))
        unknown = sorted(set(d) - names - {"format"})
        if missing or unknown:
            raise ModelCardError(source, f"missing fields {missing}, unknown fields {unknown}")
        labels = d["labels"]
        if (not isinstance(labels, list) or len(labels) < 2 or len(set(labels)) != len(labels)
                or not all(isinstance(x, str) and x for x in labels)):
            raise ModelCardError(source, f"labels must be 2 or more distinct names, got {labels!r}")
        t = d["temperature"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < math.inf:
            raise ModelCardError(source, f"temperature must be a positive number, got {t!r}")
        try:
            frontend = FrontEnd.from_dict(d["frontend"])
        except (TypeError, ValueError) as err:
            raise ModelCardError(source, f"front end: {err}") from None
        fields = {k: v for k, v in d.items() if k != "format"}
        return cls(**{**fields, "labels": tuple(labels), "frontend": frontend})


def card_path(model_path: str | os.PathLike) -> Path:
    """``models/x.keras`` -> ``models/x.card.json``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".card.json")


def save_keras_atomic(model, path: str | os.PathLike) -> None:
    """``model.save(path)`` through a temporary ``.keras`` file in the same folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")  # Keras insists on the suffix
    model.save(tmp)
    os.replace(tmp, path)


def check_card(model, card: ModelCard, source: str | os.PathLike) -> None:
    """Raise :class:`ModelCardError` unless ``card`` describes ``model``'s input and output shapes."""
    check_shapes(tuple(model.input_shape[1:]), model.output_shape[-1], card, source)


def check_shapes(input_shape: tuple, output_units: int, card: ModelCard, source: str | os.PathLike) -> None:
    """Raise :class:`ModelCardError` unless a model taking ``(frames, Mels)`` windows
    ``input_shape`` with ``output_units`` outputs fits ``card`` (any runtime's model)."""
    if output_units != n_outputs(len(card.labels)):
        raise ModelCardError(source, f"the card lists {len(card.labels)} labels but the model "
                                     f"has {output_units} output unit(s)")
    expected = (card.frontend.window_frames, card.frontend.n_mels)
    if tuple(input_shape) != expected:
        raise ModelCardError(source, f"the model takes {tuple(input_shape)} "
                                     f"(frames, Mels) windows but the card's front end makes {expected}")


def save_model(model, path: str | os.PathLike, card: ModelCard) -> Path:
    """Save ``model`` as ``path`` (``.keras``) and ``card`` beside it; returns the card's path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: a model file must end in .keras")
    check_card(model, card, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_keras_atomic(model, path)
    write_text(card_path(path), json.dumps(card.to_dict(), indent=2) + "\n")
    return card_path(path)


def load_card(path: str | os.PathLike) -> ModelCard:
    """The card of the model saved at ``path`` (``.keras``), without loading Keras.

    Raises :class:`ModelCardError` for a missing model file, a missing or
    unreadable card, or an invalid card.
    """
    path = Path(path)
    cpath = card_path(path)
    if not path.is_file():
        raise ModelCardError(path, "no such model file")
    if not cpath.is_file():
        raise ModelCardError(cpath, f"missing model card for {path.name}")
    try:
        return ModelCard.from_dict(json.loads(cpath.read_text()), cpath)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelCardError(cpath, f"not valid JSON: {err}") from None


def load_model(path: str | os.PathLike) -> tuple[keras.Model, ModelCard]:
    """Load ``(model, card)`` saved by :func:`save_model`, after checking that they agree.

    Raises :class:`ModelCardError` for a missing or unreadable model or card,
    an invalid card, or a card whose labels or front end do not fit the model.
    """
    import keras

    card = load_card(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many types for a damaged or foreign file
        raise ModelCardError(path, f"cannot load the Keras model: {err}") from None
    check_card(model, card, card_path(path))
    return model, card
