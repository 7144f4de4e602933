"""A track's excerpt as one picture: the front end's picture configuration (``FrontEnd.columns``).

fma_small's pictures (:data:`utils.audio.frontend.FMA_SMALL`) were drawn from
each clip by ``librosa.display.specshow`` of ``power_to_db(S, ref=np.max,
top_db=80)``: a mesh of every STFT frame rasterised into 128 pixel columns,
each frame's dB turned into one of viridis' 256 colours. :func:`picture_levels`
computes the same pixels without drawing anything: the excerpt's Mel power
(the project's own STFT and filterbank, :class:`~utils.audio.frontend.LogMel`),
its peak and floor over every frame, then only the frames the columns show,
quantised as a colour map indexes (tested pixel for pixel against the shared
pictures). The result is the model's one window, ``(columns, n_mels)`` levels,
Mels rising; :func:`utils.data.pictures.window_to_picture` turns it back into
the PNG's orientation.

Examples
--------
>>> column_frames(2582, 128)[:4]
array([10, 30, 50, 70])
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soxr

from utils.audio import decoder, seek
from utils.audio.budget import middle_excerpt
from utils.audio.frontend import FrontEnd, LogMel, prefetched

_LIBSNDFILE_FORMATS = ("mp3", "wav", "flac", "ogg", "aiff")
# Level i as the shared pictures hold it: viridis' colour i rounded to 8 bits, read back as the nearest colour of
# viridis truncated to 8 bits; one character a level, "+" / "-" one level up / down ("." stays). Derived from
# matplotlib's viridis in tests/test_picture.py.
_VIRIDIS8_MOVES = (".....+....+...+..+......+...++...........+....+....+.+.-.-+++.....-.-.+.+.+++.+.+.++.+.++++.+.+..-."
                   "-..-.-+.++.++.---..-..-+..+.++.--...-..-++.++.+.-....+..++......+...+........................."
                   "...............................................................")
VIRIDIS8 = np.arange(256, dtype=np.float32) + np.array([{"+": 1, "-": -1, ".": 0}[c] for c in _VIRIDIS8_MOVES],
                                                       np.float32)


def column_frames(n_frames: int, columns: int) -> np.ndarray:
    """The frame each of ``columns`` pixel columns shows when ``n_frames`` frames are drawn as a mesh of
    unit cells centred on 0 .. n-1 (pixel ``i``'s centre falls in cell ``floor((i + 0.5) n / columns)``)."""
    return ((np.arange(columns) + 0.5) * n_frames / columns).astype(np.int64)


def excerpt_span(seconds: float, fe: FrontEnd) -> tuple[float, float]:
    """``(offset, duration)`` in seconds of the excerpt a picture shows of a track ``seconds`` long: the
    first ``fe.excerpt_seconds`` of a clip that long or shorter, FMA's middle excerpt of a longer track.

    Examples
    --------
    >>> from utils.audio.frontend import FMA_SMALL
    >>> excerpt_span(29.98, FMA_SMALL), excerpt_span(241.3, FMA_SMALL)
    ((0.0, 30.0), (105.0, 30.0))
    """
    offset, span = middle_excerpt(seconds, fe.excerpt_seconds)
    return offset, fe.excerpt_seconds if span is None else span


def decode_excerpt(path: str | os.PathLike, fe: FrontEnd) -> tuple[float, np.ndarray]:
    """The excerpt of ``path`` a picture shows (:func:`excerpt_span`): its start in seconds, and its
    samples, mono float32 at ``fe.sample_rate`` (another rate resampled by soxr HQ, as ``librosa.load``).

    With ``fe.decoder == "libsndfile"`` a file libsndfile reads is decoded as ``librosa.load`` does
    (channels averaged; a middle excerpt reached by libsndfile's seek), anything else by
    :func:`utils.audio.decoder.load` (its length from :func:`utils.audio.seek.length`). The checks of
    :func:`utils.audio.decoder.decode` come first, so a bad file gets the same one-line
    :class:`utils.audio.decoder.AudioError`.
    """
    fmt = decoder.sniff(path)
    problem = decoder.truncation(path, fmt)
    if problem:
        raise decoder.TruncatedAudioError(path, problem)
    read = _libsndfile(path, fe) if fe.decoder == "libsndfile" and fmt in _LIBSNDFILE_FORMATS else None
    if read is None:
        n, native = seek.length(path)
        offset, duration = excerpt_span(n / native, fe)
        return offset, decoder.load(path, fe.sample_rate, offset, duration)
    offset, samples, native = read
    if samples.size == 0:
        raise decoder.AudioDecodeError(path, "no audio samples")
    decoder.check_samples(path, samples)
    return offset, (samples if native == fe.sample_rate else
                    soxr.resample(samples, native, fe.sample_rate, quality="HQ"))


def _libsndfile(path, fe: FrontEnd) -> tuple[float, np.ndarray, int] | None:
    """The excerpt's offset, and ``librosa.load(path, sr=None, offset, duration, mono=True)``'s samples
    and rate; None where libsndfile cannot read the file (the project's decoder then reads it or says why)."""
    import soundfile

    try:
        with soundfile.SoundFile(os.fspath(path)) as f:
            native = f.samplerate
            offset, duration = excerpt_span(f.frames / native, fe)
            f.seek(int(np.round(native * offset)))
            y = f.read(frames=int(np.round(native * duration)), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    mono = y[:, 0].copy()  # librosa's to_mono, np.mean over channels: added in order, then divided
    for c in range(1, y.shape[1]):
        mono += y[:, c]
    return offset, mono / np.float32(y.shape[1]) if y.shape[1] > 1 else mono, native


def picture_levels(y: np.ndarray, fe: FrontEnd, logmel: LogMel | None = None,
                   source: str = "input") -> np.ndarray:
    """The picture of samples ``y`` (mono, ``fe.sample_rate`` Hz): float32 ``(columns, n_mels)`` levels.

    The dB of every frame re the loudest Mel cell, clipped ``fe.peak_range_db`` below it, are
    spread from their lowest (level 0) to their highest (level ``fe.levels - 1``) as a colour
    map's index is taken (``floor(x * levels)`` of the normalised value, in float32); the
    ``fe.columns`` frames :func:`column_frames` picks are kept. Raises
    :class:`utils.audio.decoder.TooShortError` below ``fe.min_frames`` frames.
    """
    if not fe.is_picture:
        raise ValueError("this front end draws no picture (columns = 0)")
    logmel = logmel or LogMel(fe)
    db = logmel(y)  # 10 log10(max(S, AMIN)), every frame: the peak and the floor need them all
    if len(db) < fe.min_frames:
        raise decoder.TooShortError(source, f"too short: {len(y) / fe.sample_rate:.2f} s of audio, at least "
                                            f"{fe.min_frames * fe.hop_length / fe.sample_rate:.2f} s needed")
    peak = db.max()  # power_to_db(ref=np.max): 10 log10(max(AMIN, max S)), the same float32 value
    floor = np.float32(-fe.peak_range_db)
    shown = np.maximum(db[column_frames(len(db), fe.columns)] - peak, floor)
    if not fe.levels:
        return shown
    bottom = max(db.min() - peak, floor)  # the colour scale spans the lowest value drawn, over every frame
    if bottom == 0:
        return np.zeros_like(shown)
    scaled = (shown - bottom) / -bottom * np.float32(fe.levels)
    levels = np.minimum(np.floor(scaled), fe.levels - 1).astype(np.float32)
    return VIRIDIS8[levels.astype(np.int64)] if fe.colours == "viridis8" else levels


def picture_file(path: str | os.PathLike, fe: FrontEnd, logmel: LogMel | None = None) -> tuple[float, np.ndarray]:
    """The start (seconds) of a file's excerpt (:func:`decode_excerpt`) and its picture
    (:func:`picture_levels`). Raises :class:`utils.audio.decoder.AudioError` naming the file when it
    cannot be used."""
    offset, y = decode_excerpt(path, fe)
    return offset, picture_levels(y, fe, logmel, source=str(path))


def picture_files(paths: Iterable[str | os.PathLike], fe: FrontEnd, prefetch: int = 2
                  ) -> Iterator[tuple[Path, tuple[float, np.ndarray] | decoder.AudioError]]:
    """:func:`picture_file` of many files, in order: yields ``(path, (offset, picture))`` or ``(path, error)``.

    A thread decodes up to ``prefetch`` files ahead while the caller's thread computes the pictures
    (libsndfile, soxr and the FFTs release the GIL): on two cores decoding hides most of the rest.
    """
    logmel = LogMel(fe)

    def decode(path: Path):
        try:
            return decode_excerpt(path, fe)
        except decoder.AudioError as err:
            return err

    def result(path: Path, decoded):
        if isinstance(decoded, decoder.AudioError):
            return path, decoded
        try:
            return path, (decoded[0], picture_levels(decoded[1], fe, logmel, source=str(path)))
        except decoder.AudioError as err:
            return path, err

    for path, decoded in prefetched(paths, decode, prefetch):
        yield result(path, decoded)


def window_to_pixels(window: np.ndarray) -> np.ndarray:
    """The model's ``(columns, n_mels)`` levels -> uint8 pixels ``(n_mels, columns)`` as a picture is
    drawn: the highest Mel band on the top row, time left to right."""
    return np.ascontiguousarray(np.asarray(window).T[::-1]).round().clip(0, 255).astype(np.uint8)


def pixels_to_window(pixels: np.ndarray) -> np.ndarray:
    """The inverse of :func:`window_to_pixels`: a picture's pixels -> the model's float32 window."""
    return np.ascontiguousarray(np.asarray(pixels)[::-1].T, dtype=np.float32)


def save_png(window: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a picture's levels ``(columns, n_mels)`` as an 8-bit greyscale PNG laid out as the shared
    pictures are (:func:`window_to_pixels`), atomically."""
    from PIL import Image

    from utils.atomic import write_atomic

    pixels = window_to_pixels(window)
    return write_atomic(Path(path), lambda tmp: Image.fromarray(pixels, mode="L").save(tmp, format="PNG"))
