"""Genre classifiers on log-Mel windows: one Keras 3 builder per architecture.

Every builder maps a batch of windows ``(batch, frames, mels)`` in dB to class
probabilities. The first layer standardises each Mel band with a mean and
standard deviation measured on the training windows
(:func:`utils.models.training.band_stats`), because the inputs are dB values
(-100 to about +40) and the statistics must travel inside the saved model.
Two classes give one sigmoid unit, P(class 1); more give a softmax. Only
Keras layers and ``keras.ops`` are used, so every model runs on TensorFlow
and on JAX.

Sizes are kept small (tens to hundreds of thousands of weights) so that a
model trains on a laptop CPU in seconds to minutes on a few dozen clips;
widths are arguments for bigger data on a GPU.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import layers
from utils.models.pooling import mean_per_track
from utils.models.registry import CNN_MODELS, check_model


def _batch_norm() -> layers.Layer:
    # momentum 0.9, not Keras' 0.99: with a few hundred clips an epoch is tens of steps, and at 0.99
    # the moving statistics stay far from the data for ~15 epochs, so validation sees a model near
    # chance and early stopping keeps epoch 1 (measured: GTZAN 10 genres, batch 32, 21 % accuracy)
    return layers.BatchNormalization(momentum=0.9)


def _normalised_input(input_shape: tuple[int, int], mean: np.ndarray, std: np.ndarray):
    """The ``(frames, mels)`` input and its per-band standardised copy."""
    inputs = keras.Input(shape=tuple(input_shape), name="logmel_db")
    std = np.asarray(std, np.float32)
    x = layers.Normalization(mean=np.asarray(mean, np.float32), variance=std * std,
                             name="band_standardise")(inputs)
    return inputs, x


def _conv_block(x, filters: int, pool: tuple[int, int]):
    """3x3 convolution, batch norm, ReLU, max-pool over (time, frequency)."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = _batch_norm()(x)
    x = layers.ReLU()(x)
    return layers.MaxPooling2D(pool)(x)


def _residual_block(x, filters: int):
    """Two 3x3 conv + BN with an identity (or 1x1 projection) shortcut (He et al. 2016)."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = _batch_norm()(layers.Conv2D(filters, 1, use_bias=False)(x))
    x = layers.ReLU()(_batch_norm()(
        layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)))
    x = _batch_norm()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(x))
    return layers.ReLU()(layers.Add()([x, shortcut]))


def _classifier(x, n_classes: int, dropout: float):
    """Dropout then the output: one sigmoid unit for two classes, else a softmax."""
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {n_classes}")
    x = layers.Dropout(dropout)(x)
    if n_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="probability")(x)
    return layers.Dense(n_classes, activation="softmax", name="probabilities")(x)


def _as_image(x):
    """(frames, mels) -> (frames, mels, 1): the spectrogram as a one-channel image."""
    return layers.Reshape((*x.shape[1:], 1))(x)


def cnn(input_shape: tuple[int, int], n_classes: int, mean: np.ndarray, std: np.ndarray, *,
        filters: Sequence[int] = (16, 32, 64, 128), dense: int = 64, dropout: float = 0.3
        ) -> keras.Model:
    """Plain 2D CNN, the baseline: conv blocks (3x3, BN, ReLU, 2x2 max-pool),
    global average pooling over time and frequency, a dense layer, dropout."""
    inputs, x = _normalised_input(input_shape, mean, std)
    x = _as_image(x)
    for f in filters:
        x = _conv_block(x, f, (2, 2))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(dense, activation="relu")(x)
    return keras.Model(inputs, _classifier(x, n_classes, dropout), name="cnn")


def crnn(input_shape: tuple[int, int], n_classes: int, mean: np.ndarray, std: np.ndarray, *,
         filters: Sequence[int] = (16, 32, 64, 64), units: int = 64, dropout: float = 0.3
         ) -> keras.Model:
    """Convolutional-recurrent network in series (Choi et al. 2017): conv blocks
    pool frequency harder than time (128 Mels -> 2, 128 frames -> 16 steps),
    then two GRU layers summarise the sequence of local features."""
    pools = [(2, 2), (2, 4), (2, 4), (1, 2)][: len(filters)]
    inputs, x = _normalised_input(input_shape, mean, std)
    x = _as_image(x)
    for f, pool in zip(filters, pools):
        x = _conv_block(x, f, pool)
    _, steps, bands, channels = x.shape
    x = layers.Reshape((steps, bands * channels))(x)
    x = layers.GRU(units, return_sequences=True)(x)
    x = layers.GRU(units)(x)
    return keras.Model(inputs, _classifier(x, n_classes, dropout), name="crnn")


def parallel(input_shape: tuple[int, int], n_classes: int, mean: np.ndarray, std: np.ndarray, *,
             filters: Sequence[int] = (16, 32, 64, 64), units: int = 32, dropout: float = 0.3
             ) -> keras.Model:
    """CNN and RNN side by side, outputs concatenated: a conv branch (as :func:`cnn`)
    for timbre and a bidirectional GRU on the frequency-pooled spectrogram for
    how it evolves over time."""
    inputs, x = _normalised_input(input_shape, mean, std)
    image = _as_image(x)
    conv = image
    for f in filters:
        conv = _conv_block(conv, f, (2, 2))
    conv = layers.GlobalAveragePooling2D()(conv)
    # 2 frames x 4 bands per step: 64 steps of 32 bands for a 128 x 128 window
    seq = layers.MaxPooling2D((2, 4))(image)
    _, steps, bands, _ = seq.shape
    seq = layers.Reshape((steps, bands))(seq)
    seq = layers.Bidirectional(layers.GRU(units))(seq)
    x = layers.Concatenate()([conv, seq])
    return keras.Model(inputs, _classifier(x, n_classes, dropout), name="parallel")


def short_res(input_shape: tuple[int, int], n_classes: int, mean: np.ndarray, std: np.ndarray, *,
              filters: Sequence[int] = (16, 16, 32, 32, 64), dropout: float = 0.5
              ) -> keras.Model:
    """Short-chunk ResNet (Won et al. 2020) for ~3 s windows: residual 3x3 blocks
    each followed by 2x2 max-pooling, global max pooling, dense + BN + ReLU, dropout."""
    inputs, x = _normalised_input(input_shape, mean, std)
    x = _as_image(x)
    for f in filters:
        x = layers.MaxPooling2D(2)(_residual_block(x, f))
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.ReLU()(_batch_norm()(layers.Dense(filters[-1], use_bias=False)(x)))
    return keras.Model(inputs, _classifier(x, n_classes, dropout), name="short_res")


def cnn1d(input_shape: tuple[int, int], n_classes: int, mean: np.ndarray, std: np.ndarray, *,
          filters: Sequence[int] = (256, 256, 256), kernels: Sequence[int] = (1, 1, 3), dense: int = 256,
          dropout: float = 0.4, embedding: int = 0) -> keras.Model:
    """1D CNN over time with the Mel bands as channels, for pictures whose columns are snapshots.

    An fma_small picture (:data:`utils.audio.frontend.FMA_SMALL`) keeps one STFT frame in twenty,
    a 46 ms spectrum every 0.23 s: neighbouring columns share no audio, so what a picture says of a
    genre is mostly the spread of its spectra. Each column's 128 bands go through convolutions
    (1 column wide, then 3), the result is pooled over time (mean and max), then a dense layer.
    About 2 % of a 2D CNN's arithmetic on the same input (a 5-block 2D CNN: 2.5 min an epoch of
    fma_small on 2 cores). ``embedding > 0`` adds a second, linear head of that many units,
    concatenated after the probabilities, which learns a teacher's embedding of the track
    (:class:`utils.models.training.TrainConfig` ``embedding_weight``); :func:`classifier_only`
    drops it once trained.
    """
    inputs, x = _normalised_input(input_shape, mean, std)
    for f, k in zip(filters, kernels, strict=True):
        x = layers.Conv1D(f, k, padding="same", use_bias=False)(x)
        x = layers.ReLU()(_batch_norm()(x))
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dense(dense, activation="relu")(x)
    probs = _classifier(x, n_classes, dropout)
    if embedding:
        probs = layers.Concatenate(name=WITH_EMBEDDING)([probs, layers.Dense(embedding, name="embedding")(x)])
    return keras.Model(inputs, probs, name="cnn1d")


WITH_EMBEDDING = "probabilities_and_embedding"  # the output layer of a model with a teacher-embedding head


def classifier_only(model: keras.Model) -> keras.Model:
    """``model`` without its teacher-embedding head (:func:`cnn1d` ``embedding``): probabilities only."""
    if WITH_EMBEDDING not in {layer.name for layer in model.layers}:
        return model
    head = model.get_layer(WITH_EMBEDDING).input[0]
    return keras.Model(model.inputs, head, name=model.name)


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "cnn": cnn, "crnn": crnn, "parallel": parallel, "short_res": short_res,
    "cnn1d": cnn1d}  # keys: registry.CNN_MODELS


def build_model(name: str, input_shape: tuple[int, int], n_classes: int,
                mean: np.ndarray, std: np.ndarray, **kwargs) -> keras.Model:
    """Build the architecture registered as ``name`` (one of :data:`utils.models.registry.CNN_MODELS`)."""
    return BUILDERS[check_model(name, CNN_MODELS)](input_shape, n_classes, mean, std, **kwargs)


def predict_proba(model: keras.Model, x, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` whose rows sum to 1, for windows ``x``
    (array or ``keras.utils.PyDataset``). A sigmoid output p becomes ``[1 - p, p]``."""
    if isinstance(x, keras.utils.PyDataset):
        p = model.predict(x, verbose=0)
    elif len(x) == 0:
        raise ValueError("no windows to predict")
    else:  # predict() sets up a data pipeline per call, which costs more than a clip's 20 windows
        p = np.concatenate([model.predict_on_batch(x[s:s + batch_size])
                            for s in range(0, len(x), batch_size)])
    p = np.asarray(p, np.float32)
    return np.concatenate([1 - p, p], axis=1) if p.shape[1] == 1 else p


def track_probabilities(window_probs: np.ndarray, track_ids: Sequence,
                        heard: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Average window probabilities per track: returns ``(ids, probs)`` with the
    distinct track ids in sorted order and their mean probabilities ``(n_tracks, n_classes)``;
    ``heard`` leaves silent windows out (:func:`utils.models.pooling.mean_per_track`)."""
    window_probs = np.asarray(window_probs)
    ids, inverse = np.unique(np.asarray(track_ids), return_inverse=True)
    if window_probs.ndim != 2 or len(inverse) != len(window_probs):
        raise ValueError(f"need probabilities (n_windows, n_classes) and n_windows track ids, "
                         f"got {window_probs.shape} and {len(inverse)}")
    return ids, mean_per_track(window_probs, inverse, len(ids), heard)
