"""musicnn (Pons & Serra 2019), the MSD-trained Mel-spectrogram CNN, in Keras 3.

A layer-for-layer re-implementation of ``musicnn==0.1.0``'s ``build_musicnn``
(ISC licence, Music Technology Group, Universitat Pompeu Fabra) that loads the
``MSD_musicnn`` weights converted by ``scripts/convert_musicnn.py`` into
``models/musicnn/``. Its input is our front end with the :data:`MUSICNN`
configuration (16 kHz, 96 Mels, ``log10(1 + 10000 S)``), time-major patches of
shape ``(n_frames, 96)``; it was trained on 187-frame (3 s) patches but, being
convolutional with global pooling, accepts any length.

Architecture (``timbral`` and ``temporal`` front end, dense-residual mid-end,
pooled back end)::

    logmel (T, 96) -> batch norm
      timbral:  conv 7x38 and 7x67 (204 filters each, ReLU, BN), max over frequency
      temporal: conv 128x1, 64x1, 32x1 (51 filters each, 'same', ReLU, BN), max over frequency
    frontend (T, 561) -> mid-end: three conv1d k=7 (64 filters, ReLU, BN), the
      2nd and 3rd residual; midend = concat(frontend, cnn1, cnn2, cnn3) (T, 753)
    max_pool, mean_pool over time (753 each) -> interleaved (1506) -> BN -> dropout
      -> dense 200 ReLU -> BN = penultimate -> dropout -> dense 50 -> sigmoid = tags

Batch norm follows the ReLU everywhere, as in the original. Embeddings come
from :data:`EMBEDDING_LAYERS`, per patch and pooled over a track's patches.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

from utils import audio
from utils.audio.frontend import MUSICNN, FrontEnd, LogMel, logmel_files, windows
from utils.errors import FmaGenreError

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "musicnn" / "msd_musicnn.npz"
# The two backbones of musicnn 0.1.0, one network trained on two tag sets (scripts/convert_musicnn.py):
# msd, the Million Song Dataset's 50 Last.fm tags; mtt, MagnaTagATune's 50 tags
BACKBONES = {"msd": WEIGHTS, "mtt": WEIGHTS.with_name("mtt_musicnn.npz")}
BAND_REFERENCE = WEIGHTS.parent / "band_reference.json"  # written by scripts/band_reference.py

# Output order of MSD_musicnn: the 50 most frequent Last.fm tags of the Million
# Song Dataset, copied from musicnn/configuration.py (MSD_LABELS).
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
    "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
    "60s", "rnb", "indie pop", "sad", "House", "happy")

# Layers giving one vector per patch, and their widths; musicnn's extractor
# names the first three alike, "tags" are the 50 sigmoid probabilities.
EMBEDDING_LAYERS = {"mean_pool": 753, "max_pool": 753, "penultimate": 200, "tags": 50}

# The spectral settings the weights were trained with; patch length and hop are free.
_SPECTRAL = ("sample_rate", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "log")


class WeightsError(FmaGenreError):
    """A weight file that does not fit the model. ``str(err)`` is ``"<path>: <problem>"``."""


def _freq_max(x, name: str):
    """Max over the remaining frequency axis: (B, T, F, C) -> (B, T, C)."""
    x = layers.MaxPooling2D((1, x.shape[2]), name=f"{name}_pool")(x)
    return layers.Reshape((-1, x.shape[-1]), name=name)(x)


def _timbral(x, filters: int, height: int, name: str):
    # zero-pad time only, so T frames in give T frames out ('same' in time,
    # 'valid' in frequency, which is then pooled away)
    x = layers.ZeroPadding2D(((3, 3), (0, 0)), name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, (7, height), activation="relu", name=f"{name}_conv")(x)
    return _freq_max(layers.BatchNormalization(name=f"{name}_bn")(x), name)


def _temporal(x, filters: int, length: int, name: str):
    x = layers.Conv2D(filters, (length, 1), padding="same", activation="relu", name=f"{name}_conv")(x)
    return _freq_max(layers.BatchNormalization(name=f"{name}_bn")(x), name)


def _midend(x, filters: int, name: str):
    x = layers.Conv1D(filters, 7, padding="same", activation="relu", name=f"{name}_conv")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def build_musicnn(n_mels: int = 96, n_tags: int = 50, midend_filters: int = 64,
                  backend_units: int = 200) -> keras.Model:
    """The musicnn network (randomly initialised): ``(batch, n_frames, n_mels)`` log-Mel
    patches in, ``(batch, n_tags)`` tag probabilities out (layer ``"tags"``).

    The defaults are ``MSD_musicnn`` (and ``MTT_musicnn``); front-end widths follow
    musicnn: timbral filters ``int(1.6 * 128)`` tall ``int(0.4 n_mels)`` and
    ``int(0.7 n_mels)`` Mel bands, temporal filters ``int(1.6 * 32)`` long 128, 64
    and 32 frames. Dropout (0.5) is active only when training.
    """
    spec = keras.Input((None, n_mels), name="logmel")
    x = layers.BatchNormalization(name="input_bn")(layers.Reshape((-1, n_mels, 1), name="expand")(spec))
    timbral = layers.Concatenate(name="timbral")(
        [_timbral(x, 204, int(r * n_mels), f"timbral_{k}") for k, r in ((74, 0.4), (77, 0.7))])
    temporal = layers.Concatenate(name="temporal")(
        [_temporal(x, 51, n, f"temporal_{n}") for n in (128, 64, 32)])
    frontend = layers.Concatenate(name="frontend")([timbral, temporal])

    cnn1 = _midend(frontend, midend_filters, "midend_1")
    cnn2 = layers.Add(name="cnn2")([_midend(cnn1, midend_filters, "midend_2"), cnn1])
    cnn3 = layers.Add(name="cnn3")([_midend(cnn2, midend_filters, "midend_3"), cnn2])
    midend = layers.Concatenate(name="midend")([frontend, cnn1, cnn2, cnn3])

    max_pool = layers.GlobalMaxPooling1D(name="max_pool")(midend)
    mean_pool = layers.GlobalAveragePooling1D(name="mean_pool")(midend)
    # musicnn flattens stack([max, mean], axis=-1): max_0, mean_0, max_1, mean_1, ...
    pooled = layers.Flatten(name="pool")(layers.Concatenate(name="pool_stack")(
        [layers.Reshape((-1, 1), name=f"{p.name}_col")(p) for p in (max_pool, mean_pool)]))
    x = layers.Dropout(0.5, name="pool_dropout")(layers.BatchNormalization(name="pool_bn")(pooled))
    x = layers.Dense(backend_units, activation="relu", name="penultimate_dense")(x)
    penultimate = layers.BatchNormalization(name="penultimate")(x)
    logits = layers.Dense(n_tags, name="logits")(layers.Dropout(0.5, name="penultimate_dropout")(penultimate))
    tags = layers.Activation("sigmoid", name="tags")(logits)
    return keras.Model(spec, tags, name="musicnn")


def load_weights(model: keras.Model, path: str | os.PathLike = WEIGHTS) -> keras.Model:
    """Set every variable of ``model`` from an ``.npz`` keyed by variable path
    (``"<layer>/<weight>"``, e.g. ``"penultimate_dense/kernel"``).

    All or nothing: the file must hold exactly the model's variables, each with
    the model's shape and finite values, or :class:`WeightsError` names the first
    offending variable and nothing is assigned (musicnn's own loader swallows a
    failed restore and runs with random weights).
    """
    variables = {v.path: v for v in model.weights}
    arrays = _read_npz(path)
    missing, extra = sorted(variables.keys() - arrays), sorted(arrays.keys() - variables)
    if missing:
        raise WeightsError(path, f"no value for model variable {missing[0]!r} ({len(missing)} missing)")
    if extra:
        raise WeightsError(path, f"variable {extra[0]!r} is not in model {model.name!r} ({len(extra)} unknown)")
    for name, var in variables.items():
        value = arrays[name]
        if value.shape != tuple(var.shape):
            raise WeightsError(path, f"variable {name!r} has shape {value.shape}, the model's is {tuple(var.shape)}")
        if not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            raise WeightsError(path, f"variable {name!r} is not finite floating point ({value.dtype})")
    for name, var in variables.items():
        var.assign(arrays[name].astype(var.dtype))
    return model


def _read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, or :class:`WeightsError` saying why not."""
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WeightsError(path, "no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise WeightsError(path, f"not an .npz weight file ({err})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise WeightsError(path, "not an .npz weight file (a single .npy array)")
    try:
        with npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise WeightsError(path, f"not an .npz weight file ({err})") from None


def load_musicnn(path: str | os.PathLike = WEIGHTS) -> keras.Model:
    """The MSD_musicnn tagger with its pretrained weights (see :func:`load_weights`)."""
    return load_weights(build_musicnn(), path)


def embedding_model(model: keras.Model, names: Sequence[str] = ("penultimate",)) -> keras.Model:
    """A model from ``model``'s input to a dict of the named layers' outputs,
    each ``(batch, EMBEDDING_LAYERS[name])``. Shares ``model``'s variables."""
    unknown = [n for n in names if n not in EMBEDDING_LAYERS]
    if unknown or not names:
        raise ValueError(f"embedding layers must be among {sorted(EMBEDDING_LAYERS)}, got {list(names)}")
    return keras.Model(model.input, {n: model.get_layer(n).output for n in names}, name="musicnn_embeddings")


def embed_patches(extractor: keras.Model, patches: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Run an :func:`embedding_model` on ``(n, n_frames, 96)`` patches, inference mode,
    in batches of ``batch_size``: returns ``{layer: (n, dim) float32}``."""
    patches = np.asarray(patches, np.float32)
    if patches.ndim != 3 or patches.shape[0] == 0:
        raise ValueError(f"expected patches of shape (n > 0, n_frames, n_mels), got {patches.shape}")
    parts = [extractor.predict_on_batch(patches[s:s + batch_size]) for s in range(0, len(patches), batch_size)]
    return {k: np.concatenate([np.asarray(p[k], np.float32) for p in parts]) for k in parts[0]}


def pool_patches(per_patch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Track embeddings from per-patch ones: ``{f"{layer}_mean": (dim,), f"{layer}_max": (dim,)}``,
    the mean and the maximum over a track's patches (the mean of ``"tags"`` is musicnn's
    track-level tag likelihood)."""
    pooled = {}
    for name, x in per_patch.items():
        pooled[f"{name}_mean"] = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        pooled[f"{name}_max"] = x.max(axis=0)
    return pooled


def band_reference(path: str | os.PathLike = BAND_REFERENCE) -> tuple[float, ...]:
    """The Mel profile (96 values, musicnn's log units) that ``FrontEnd.band_level="window"``
    brings windows to: the mean of music outside the evaluation sets (``scripts/band_reference.py``)."""
    return tuple(json.loads(Path(path).read_text())["profile"])


def band_offset_quartiles(path: str | os.PathLike = BAND_REFERENCE) -> dict[str, float]:
    """``{"0.25": q1, "0.5": median, "0.75": q3}``: how far the band means of the windows behind
    :func:`band_reference` lie from it, in dB: the scale of a track's own spectral shape."""
    d = json.loads(Path(path).read_text())["offset_quartiles"]
    return {q: float(d[q]) for q in ("0.25", "0.5", "0.75")}


def check_frontend(fe: FrontEnd) -> None:
    """Raise ValueError unless ``fe`` computes the spectrogram musicnn was trained on
    (patch length and hop may differ from :data:`MUSICNN`)."""
    wrong = [f"{k}={getattr(fe, k)!r} (musicnn: {getattr(MUSICNN, k)!r})"
             for k in _SPECTRAL if getattr(fe, k) != getattr(MUSICNN, k)]
    if wrong:
        raise ValueError("front end does not match musicnn's: " + ", ".join(wrong))


class MusicnnEmbedder:
    """Audio -> musicnn embeddings, per patch (``{layer: (n_patches, dim)}``, float32).

    Patches are :func:`frontend.windows` of the log-Mel spectrogram, so a track is
    covered as the rest of the project covers it. Pure NumPy out: cache the
    per-patch arrays and pool them with :func:`pool_patches`. Not thread-safe
    (holds one :class:`LogMel`).
    """

    def __init__(self, names: Sequence[str] = ("penultimate", "max_pool"), weights: str | os.PathLike = WEIGHTS,
                 fe: FrontEnd = MUSICNN, batch_size: int = 32) -> None:
        check_frontend(fe)
        self.fe, self.names, self.batch_size = fe, tuple(names), batch_size
        self.logmel = LogMel(fe)
        self.extractor = embedding_model(load_musicnn(weights), self.names)

    def spectrogram(self, S: np.ndarray, source: str = "input") -> dict[str, np.ndarray]:
        """Embeddings of a ``(n_frames, 96)`` log-Mel spectrogram; :class:`audio.TooShortError`
        (naming ``source``) below ``fe.min_frames`` frames."""
        return embed_patches(self.extractor, windows(S, self.fe, source), self.batch_size)

    def samples(self, y: np.ndarray, source: str = "samples") -> dict[str, np.ndarray]:
        """Embeddings of mono samples at ``fe.sample_rate`` (16,000 Hz)."""
        return self.spectrogram(self.logmel(y), source)

    def file(self, path: str | os.PathLike, offset: float = 0.0,
             duration: float | None = None) -> dict[str, np.ndarray]:
        """Embeddings of an audio file (``offset``/``duration`` in seconds); raises :class:`audio.AudioError`."""
        return self.samples(audio.load(path, self.fe.sample_rate, offset, duration), str(path))

    def files(self, paths: Iterable[str | os.PathLike], prefetch: int = 2, duration: float | None = None
              ) -> Iterator[tuple[Path, dict[str, np.ndarray] | audio.AudioError]]:
        """Embeddings of many files, in order: yields ``(path, embeddings)`` or
        ``(path, AudioError)`` for a bad file, so a batch goes on."""
        for path, S in logmel_files(paths, self.logmel, prefetch, duration):
            if isinstance(S, audio.AudioError):
                yield path, S
                continue
            try:
                yield path, self.spectrogram(S, str(path))
            except audio.TooShortError as err:
                yield path, err
