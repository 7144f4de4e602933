"""Genre classification by transfer from musicnn: a small head on its embeddings,
the composed window model, full fine-tuning, and a zero-shot tag mapping.

The head is trained on per-patch embeddings (:class:`utils.models.musicnn.MusicnnEmbedder`,
cached as NumPy) in seconds on a CPU. An embedding is named by its layer
(``"penultimate"``: the MSD backbone's) or by backbone and layer
(``"mtt/mean_pool"``, see :data:`utils.models.musicnn.BACKBONES`), so a head may
read both backbones. :func:`genre_model` then joins the
pretrained network(s) and the head into one Keras model from
:data:`utils.audio.frontend.MUSICNN` windows ``(batch, 187, 96)`` to genre
probabilities, so it is served like any other window model: per-window
probabilities averaged per track (:mod:`utils.models.predict`), saved with a card
(:mod:`utils.models.card`).

Fine-tuning (:func:`fine_tune`) unfreezes the whole composed model at a low
learning rate, for a GPU and many labelled windows (FMA). Batch
normalisation stays frozen in inference mode, as keras-io's transfer-learning
guide advises: its statistics come from the Million Song Dataset, and small
or single-genre batches would wreck them.

Zero-shot (:func:`zero_shot`) needs no training: a genre's score is the
highest track-level probability among the MSD tags that name it
(:data:`GTZAN_TAGS`, :data:`FMA_TAGS`). Genres no tag names can never be
predicted (:data:`GTZAN_UNMAPPED`, :data:`FMA_UNMAPPED`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from utils.models import backend
from utils.audio.frontend import MUSICNN, FrontEnd
from utils.models.musicnn import BACKBONES, EMBEDDING_LAYERS, MSD_TAGS, check_frontend

# Each genre -> the MSD tags that name it (all of them, or a sub-genre). Tags that
# are moods, eras or instrumentation are left out. GTZAN's disco -> "dance" is a loose
# fit (disco is dance music; the MSD has no disco tag).
GTZAN_TAGS: dict[str, tuple[str, ...]] = {
    "blues": ("blues",),
    "country": ("country",),
    "disco": ("dance",),
    "hiphop": ("Hip-Hop",),
    "jazz": ("jazz",),
    "metal": ("metal", "heavy metal"),
    "pop": ("pop", "indie pop"),
    "rock": ("rock", "classic rock", "hard rock", "alternative rock", "indie rock", "Progressive rock"),
}
GTZAN_UNMAPPED = ("classical", "reggae")

# FMA's 16 top-level genres, following FMA's own taxonomy (genres.csv): metal and punk
# are Rock, funk is Soul-RnB, ambient is Instrumental, dance and House are Electronic.
# "oldies" (1950s-60s pop) for Old-Time / Historic (pre-1950s recordings) is loose.
FMA_TAGS: dict[str, tuple[str, ...]] = {
    "Blues": ("blues",),
    "Country": ("country",),
    "Easy Listening": ("easy listening",),
    "Electronic": ("electronic", "electronica", "electro", "dance", "House", "chillout"),
    "Experimental": ("experimental",),
    "Folk": ("folk",),
    "Hip-Hop": ("Hip-Hop",),
    "Instrumental": ("instrumental", "ambient"),
    "Jazz": ("jazz",),
    "Old-Time / Historic": ("oldies",),
    "Pop": ("pop", "indie pop"),
    "Rock": ("rock", "alternative", "indie", "alternative rock", "classic rock", "indie rock", "punk",
             "hard rock", "metal", "heavy metal", "Progressive rock"),
    "Soul-RnB": ("soul", "rnb", "funk"),
}
FMA_UNMAPPED = ("Classical", "International", "Spoken")


@dataclass(frozen=True)
class HeadConfig:
    """A genre head on musicnn embeddings and how it is trained.

    Attributes
    ----------
    layers : embeddings concatenated as the head's input: layer names of ``EMBEDDING_LAYERS``,
        each optionally behind its backbone (``"mtt/mean_pool"``; no backbone: ``"msd"``)
    hidden : units of one hidden ReLU layer; 0 for none (multinomial logistic regression)
    dropout : dropout rate on the input (and the hidden layer)
    l2 : L2 penalty on the dense kernels
    learning_rate : Adam's learning rate
    epochs : passes over the training patches
    batch_size : patches per step
    seed : initialisation, dropout and shuffling
    """

    layers: tuple[str, ...] = ("penultimate", "max_pool")
    hidden: int = 0
    dropout: float = 0.5
    l2: float = 1e-3
    learning_rate: float = 1e-3
    epochs: int = 40
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name in self.layers:
            embedding_name(name)
        if not self.layers:
            raise ValueError("a head needs at least one embedding layer")

    @property
    def dim(self) -> int:
        """Width of the head's input."""
        return sum(EMBEDDING_LAYERS[embedding_name(n)[1]] for n in self.layers)


def embedding_name(name: str) -> tuple[str, str]:
    """``(backbone, layer)`` of an embedding name: ``"mtt/tags"`` -> ``("mtt", "tags")``,
    ``"penultimate"`` -> ``("msd", "penultimate")``. ValueError for an unknown one."""
    backbone, _, layer = name.rpartition("/")
    backbone = backbone or "msd"
    if backbone not in BACKBONES or layer not in EMBEDDING_LAYERS:
        raise ValueError(f"embedding layers must be among {sorted(EMBEDDING_LAYERS)}, optionally behind a "
                         f"backbone of {sorted(BACKBONES)} and '/', got {name!r}")
    return backbone, layer


def backbones_of(names: Sequence[str]) -> tuple[str, ...]:
    """The backbones the embeddings ``names`` come from, in order of first use."""
    return tuple(dict.fromkeys(embedding_name(n)[0] for n in names))


def patch_features(per_patch: Mapping[str, np.ndarray], layers: Sequence[str]) -> np.ndarray:
    """The head's input ``(n_patches, dim)``: per-patch embeddings of ``layers``, concatenated in order."""
    return np.concatenate([np.asarray(per_patch[n], np.float32) for n in layers], axis=1)


def pooled_embedding(per_patch: Mapping[str, np.ndarray], layers: Sequence[str]) -> np.ndarray:
    """One vector per track: mean then max over patches of each layer's embedding, ``(2 dim,)``."""
    x = patch_features(per_patch, layers)
    return np.concatenate([x.mean(axis=0), x.max(axis=0)])


def build_head(n_classes: int, mean: np.ndarray, variance: np.ndarray,
               config: HeadConfig = HeadConfig()) -> keras.Model:
    """Embeddings ``(batch, config.dim)`` -> genre probabilities ``(batch, n_classes)``.

    Standardised by ``mean`` / ``variance`` (per feature, from the training
    patches), then dropout, an optional hidden ReLU layer and a softmax layer.
    """
    x_in = keras.Input((config.dim,), name="embedding")
    x = layers.Normalization(mean=mean, variance=variance, name="standardize")(x_in)
    x = layers.Dropout(config.dropout, seed=config.seed, name="head_dropout")(x)
    if config.hidden:
        x = layers.Dense(config.hidden, activation="relu", kernel_regularizer=keras.regularizers.L2(config.l2),
                         name="head_hidden")(x)
        x = layers.Dropout(config.dropout, seed=config.seed + 1, name="head_hidden_dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", kernel_regularizer=keras.regularizers.L2(config.l2),
                       name="genre")(x)
    return keras.Model(x_in, out, name="genre_head")


def train_head(x: np.ndarray, y: np.ndarray, n_classes: int, config: HeadConfig = HeadConfig(),
               sample_weight: np.ndarray | None = None) -> keras.Model:
    """Fit a :func:`build_head` on patches ``x (n, config.dim)`` labelled ``y (n,)`` (ints < n_classes).

    Standardisation comes from ``x``; a feature (near-)constant in training gets
    variance floor 1e-3 so that new audio cannot blow it up. ``sample_weight``
    (``(n,)``, e.g. :func:`utils.data.splits.group_weights`) weighs each patch's
    loss. Seeded: repeatable on CPU. Returned uncompiled, without the optimizer's
    state, so a saved model holds weights only.
    """
    x, y = np.asarray(x, np.float32), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != config.dim or len(x) != len(y) or not len(y):
        raise ValueError(f"expected x (n, {config.dim}) and y (n,), got {x.shape} and {y.shape}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be in 0 .. {n_classes - 1}")
    if sample_weight is not None and np.shape(sample_weight) != y.shape:
        raise ValueError(f"expected sample_weight of shape {y.shape}, got {np.shape(sample_weight)}")
    backend.seed(config.seed)
    mean, variance = x.mean(axis=0), x.var(axis=0) + 1e-3
    head = build_head(n_classes, mean, variance, config)
    head.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    weights = None if sample_weight is None else np.asarray(sample_weight, np.float32)
    head.fit(x, y, sample_weight=weights, batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
             verbose=0)
    trained = build_head(n_classes, mean, variance, config)
    trained.set_weights(head.get_weights())
    return trained


def feature_extractor(base: keras.Model | Mapping[str, keras.Model], names: Sequence[str],
                      input_shape: tuple[int | None, int] = (None, 96)) -> keras.Model:
    """musicnn from its log-Mel input to the named embeddings concatenated, in order (shares weights).

    ``base`` is one musicnn (every name's backbone) or ``{backbone: musicnn}`` for
    names of several backbones (:func:`embedding_name`).
    """
    bases = dict(base) if isinstance(base, Mapping) else {b: base for b in backbones_of(names)}
    if len(bases) == 1 and len(backbones_of(names)) == 1:  # one network: read its layers directly
        net = next(iter(bases.values()))
        outputs = [net.get_layer(embedding_name(n)[1]).output for n in names]
        out = outputs[0] if len(outputs) == 1 else layers.Concatenate(name="embedding")(outputs)
        return keras.Model(net.input, out, name="musicnn_features")
    x = keras.Input(input_shape, name="logmel")
    parts = {}
    for b in backbones_of(names):
        mine = [embedding_name(n)[1] for n in names if embedding_name(n)[0] == b]
        sub = keras.Model(bases[b].input, [bases[b].get_layer(n).output for n in mine], name=f"musicnn_{b}")
        parts |= {f"{b}/{n}": o for n, o in zip(mine, sub(x))}
    out = layers.Concatenate(name="embedding")([parts["/".join(embedding_name(n))] for n in names])
    return keras.Model(x, out, name="musicnn_features")


def genre_model(base: keras.Model | Mapping[str, keras.Model], head: keras.Model, names: Sequence[str],
                fe: FrontEnd = MUSICNN) -> keras.Model:
    """One model: ``fe`` windows ``(batch, fe.window_frames, fe.n_mels)`` -> genre probabilities.

    ``base`` is the musicnn tagger (:func:`utils.models.musicnn.load_musicnn`), or
    ``{backbone: tagger}`` when ``names`` come from several; ``head`` a trained
    :func:`build_head` on the embeddings ``names``. In inference mode its output
    equals ``head(embeddings)`` of the same windows.
    """
    check_frontend(fe)
    windows = keras.Input((fe.window_frames, fe.n_mels), name="logmel")
    extractor = feature_extractor(base, names, (fe.window_frames, fe.n_mels))
    return keras.Model(windows, head(extractor(windows)), name="musicnn_genre")


@dataclass(frozen=True)
class FineTuneConfig:
    """Fine-tuning the whole composed model (a GPU job for FMA-sized data).

    A learning rate 100 times below the head's keeps the pretrained filters
    close to where they were; a few epochs usually suffice.
    """

    learning_rate: float = 1e-5
    epochs: int = 3
    batch_size: int = 32
    seed: int = 0


def unfreeze(model: keras.Model) -> keras.Model:
    """Make every layer trainable except batch normalisation, which stays frozen
    (and so in inference mode, with its pretrained statistics). Returns ``model``."""
    model.trainable = True
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return model


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found += _all_layers(layer)
    return found


def fine_tune(model: keras.Model, x, y: np.ndarray | None = None, config: FineTuneConfig = FineTuneConfig(),
              validation_data=None, callbacks: Sequence[keras.callbacks.Callback] = ()
              ) -> keras.callbacks.History:
    """Fine-tune a :func:`genre_model` end to end (see :func:`unfreeze`), in place.

    ``x`` is an array of windows with integer labels ``y``, or a
    ``keras.utils.PyDataset`` yielding ``(windows, labels)`` batches (for
    FMA: :class:`utils.data.batches.WindowDataset` over a cache made with the
    :data:`MUSICNN` front end; ``y`` None). Adam at ``config.learning_rate``,
    sparse categorical cross-entropy; ``model`` keeps the tuned weights.
    """
    backend.seed(config.seed)
    unfreeze(model)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batch = None if isinstance(x, keras.utils.PyDataset) else config.batch_size
    return model.fit(x, y, batch_size=batch, epochs=config.epochs, validation_data=validation_data,
                     callbacks=list(callbacks), verbose=0)


def zero_shot(tag_probs: np.ndarray, genres: Sequence[str], mapping: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Genre probabilities ``(n, len(genres))`` from musicnn's track-level tag probabilities ``(n, 50)``.

    A genre's score is the highest probability among its tags in ``mapping``
    (``genre -> MSD tags``); a genre absent from ``mapping`` scores 0. Scores
    are normalised to sum to 1 per track: a ranking, not calibrated probabilities.
    """
    p = np.asarray(tag_probs, np.float64)
    if p.ndim != 2 or p.shape[1] != len(MSD_TAGS):
        raise ValueError(f"expected tag probabilities (n, {len(MSD_TAGS)}), got {p.shape}")
    unknown = sorted({t for tags in mapping.values() for t in tags} - set(MSD_TAGS))
    if unknown or not any(g in mapping for g in genres):
        raise ValueError(f"mapping must name MSD tags for at least one of {list(genres)}; unknown tags {unknown}")
    column = {t: i for i, t in enumerate(MSD_TAGS)}
    scores = np.stack([p[:, [column[t] for t in mapping[g]]].max(axis=1) if g in mapping else np.zeros(len(p))
                       for g in genres], axis=1)
    return scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
