"""The spectrogram front end: mono samples -> log-Mel spectrogram -> fixed-length windows.

There is one implementation; a :class:`FrontEnd` value selects its
parameters and travels with every cache and every model card, so training
and inference cannot disagree. Spectrograms are time-major, shape
``(n_frames, n_mels)``: a window of consecutive frames is then a contiguous
block, and the layout is Keras' ``(time, features)``. ``librosa`` returns the
transpose.

The result equals ``librosa.power_to_db(librosa.feature.melspectrogram(y,
sr, n_fft, hop_length, n_mels, fmin, fmax), ref=1.0, amin=1e-10,
top_db=None).T`` (tested); the speed comes from float32 arithmetic in
cache-sized blocks and from applying the Mel filters as the sparse matrix
they are (about 2,000 non-zero weights of 131,200 for 128 Mels), not from
computing something else. What each window's level and band profile are brought
to (``FrontEnd.level``, ``band_level``) is :mod:`utils.audio.levels`.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from utils import audio
from utils.audio import seek
from utils.audio.budget import middle_excerpt
from utils.audio.levels import AMIN, normalize_level
from utils.audio.mel import mel_filterbank, mel_power, sparse_bands

@dataclass(frozen=True)
class FrontEnd:
    """Parameters of the log-Mel front end (all units stated).

    The defaults follow the FMA / WWW 2018 challenge winners and most CNN
    genre work: 22,050 Hz keeps the band up to 11 kHz where genre cues live
    at half the cost of 44.1 kHz; ``n_fft`` 2048 (92.9 ms) resolves bass
    notes about 10.8 Hz apart; ``hop_length`` 512 (23.2 ms, 43 frames/s);
    128 Mel bands, the usual CNN input height. Power in dB against a fixed
    reference (1.0) with no ``top_db`` clipping, so a frame's value depends
    on that frame alone: windows cut from a whole track equal windows
    computed on their own, and a long file can be processed in blocks.
    Windows of 128 frames (2.97 s) with 50 % overlap feed the models;
    Won et al. (2020) found ~3 s chunks best for short-chunk CNNs, and a
    track's prediction averages its windows. musicnn's front end is
    :data:`MUSICNN`.

    Attributes
    ----------
    sample_rate : Hz
    n_fft : FFT size in samples (periodic Hann window of the same length)
    hop_length : samples between frames
    n_mels : number of Mel bands (Slaney scale and area normalisation, librosa's default)
    fmin, fmax : band edges in Hz; ``fmax=None`` means ``sample_rate / 2``
    log : ``"db"`` for ``10 log10(max(S, 1e-10))`` (floor -100 dB), or
        ``"log10_1p"`` for musicnn's ``log10(1 + 10000 S)`` (floor 0)
    window_frames : frames per model input window
    window_hop : frames between window starts
    min_frames : a track shorter than one window but at least this many
        frames is repeated to fill one window (:func:`fix_frames`); a shorter one is refused
    level : ``"none"``, or ``"window"`` to bring every window to the same
        level before the model (:func:`utils.audio.levels.normalize_level`): a file's playback
        level, mastering loudness or downmix gain then cannot change its genre
    level_db : with ``level="window"``, a window's mean Mel power after
        normalisation, in dB (power of samples in [-1, 1] through the Mel
        filterbank; -5 dB is the median 3 s window of GTZAN at 16 kHz)
    level_floor_db : windows quieter than this (mean Mel power, dB) are
        raised as if they were at it, so at most ``level_db - level_floor_db``
        dB: silence stays silent
    band_level : ``"none"``, or ``"window"`` (needs ``level="window"``) to set
        each Mel band's mean over an audible window to ``band_reference``
        (:func:`utils.audio.levels.normalize_bands`): the channel normalisation speech recognisers
        use, so an equaliser, a telephone line or a small speaker moves the
        window far less
    band_reference : with ``band_level="window"``, the long-term Mel profile
        (``n_mels`` values in the ``log`` units) that windows are brought to;
        only its shape counts, its level is set to ``level_db``
    band_tolerance : with ``band_level="window"``, how far (dB) a band's mean
        may stay from the reference: a band within it keeps its mean, a band
        further away is brought to that distance. 0 sets every band to the
        reference; a larger value keeps more of a track's own spectral shape,
        a genre cue, and still removes most of a filter's deep cuts or boosts
    band_mean : with ``band_level="window"``, how a band's mean over a window is
        taken: ``"db"``, the mean of its cells in dB, or ``"power"``, its mean
        power in dB. A fixed filter moves both by its gain; a low-bitrate codec's
        spectral holes (cells it zeroed) drag the dB mean far down and the power
        mean hardly at all, so with ``"db"`` such a band was boosted
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    log: str = "db"
    window_frames: int = 128
    window_hop: int = 64
    min_frames: int = 64
    level: str = "none"
    level_db: float = -5.0
    level_floor_db: float = -60.0
    band_level: str = "none"
    band_reference: tuple[float, ...] = ()
    band_tolerance: float = 0.0
    band_mean: str = "db"
    excerpt_seconds: float | None = None
    peak_range_db: float | None = None
    columns: int = 0
    levels: int = 0
    colours: str = "none"
    decoder: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "band_reference", tuple(float(v) for v in self.band_reference))  # JSON gives a list
        if self.level not in ("none", "window"):
            raise ValueError(f"level must be 'none' or 'window', got {self.level!r}")
        if self.band_level not in ("none", "window"):
            raise ValueError(f"band_level must be 'none' or 'window', got {self.band_level!r}")
        if self.band_level == "window" and (self.level != "window" or len(self.band_reference) != self.n_mels):
            raise ValueError(f"band_level='window' needs level='window' and {self.n_mels} band_reference values, "
                             f"got level={self.level!r} and {len(self.band_reference)}")
        if self.band_mean not in ("db", "power"):
            raise ValueError(f"band_mean must be 'db' or 'power', got {self.band_mean!r}")
        if not 0 <= self.band_tolerance < np.inf:
            raise ValueError(f"band_tolerance must be finite and >= 0, got {self.band_tolerance}")
        if not self.level_floor_db < self.level_db:
            raise ValueError(f"need level_floor_db < level_db, got {self.level_floor_db}, {self.level_db}")
        if self.log not in ("db", "log10_1p"):
            raise ValueError(f"log must be 'db' or 'log10_1p', got {self.log!r}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"need 0 < hop_length <= n_fft, got {self.hop_length}, {self.n_fft}")
        if not 0 < self.min_frames <= self.window_frames or self.window_hop <= 0:
            raise ValueError("need 0 < min_frames <= window_frames and window_hop > 0")
        if not 0 <= self.fmin < (self.fmax or self.sample_rate / 2) <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}")
        if self.columns and (self.columns != self.window_frames or self.excerpt_seconds is None):
            raise ValueError(f"a picture of {self.columns} columns needs window_frames == columns and an "
                             f"excerpt_seconds, got {self.window_frames}, {self.excerpt_seconds}")
        if self.levels and (self.levels < 2 or self.peak_range_db is None or not self.columns):
            raise ValueError("levels needs 2 or more steps, a peak_range_db and columns")
        if self.peak_range_db is not None and not (0 < self.peak_range_db < np.inf and self.log == "db"):
            raise ValueError(f"peak_range_db must be a positive number of dB with log='db', got {self.peak_range_db}")
        if self.colours not in ("none", "viridis8") or (self.colours != "none" and self.levels != 256):
            raise ValueError(f"colours must be 'none', or 'viridis8' with 256 levels, got {self.colours!r}")
        if self.decoder not in ("default", "libsndfile"):
            raise ValueError(f"decoder must be 'default' or 'libsndfile', got {self.decoder!r}")

    @property
    def is_picture(self) -> bool:
        """True when a track is one picture of its excerpt (:mod:`utils.audio.picture`), not a run of windows."""
        return self.columns > 0

    @property
    def floor(self) -> float:
        """Log value of silence, used to pad: -100 dB (as float32 computes it) or 0 (log10_1p)."""
        return float(np.float32(10) * np.log10(np.float32(AMIN))) if self.log == "db" else 0.0

    @property
    def window_seconds(self) -> float:
        """Length of one model window in seconds (frame span, without the FFT's overhang); a picture's
        window is its whole excerpt."""
        if self.is_picture:
            return float(self.excerpt_seconds)
        return self.window_frames * self.hop_length / self.sample_rate

    def n_frames(self, n_samples: int) -> int:
        """Frames of a centred STFT of ``n_samples`` samples: ``1 + n_samples // hop_length``."""
        return 1 + n_samples // self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FrontEnd":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown front-end parameters: {sorted(unknown)}")
        return cls(**d)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> "FrontEnd":
        return cls.from_dict(json.loads(Path(path).read_text()))


# musicnn (Pons & Serra 2019): 16 kHz, 512-point FFT, hop 256, 96 Mels,
# log10(1 + 10000 S), 187-frame (3 s) patches.
MUSICNN = FrontEnd(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96,
                   log="log10_1p", window_frames=187, window_hop=187, min_frames=93)

# fma_small's pictures (../shared/data/fma_small_mel/README.md): librosa.load at the file's rate (44.1 kHz for
# FMA; other rates are resampled to it), the first 30 s, 128 Mels of a 2048-point STFT hopped by 512, dB re the
# clip's peak over 80 dB, drawn by librosa.display.specshow into 128 x 128 pixels of 256 colours.
# min_frames: a clip of at least 1 s.
FMA_SMALL = FrontEnd(sample_rate=44100, n_fft=2048, hop_length=512, n_mels=128, window_frames=128,
                     window_hop=128, min_frames=86, excerpt_seconds=30.0, peak_range_db=80.0, columns=128,
                     levels=256, colours="viridis8", decoder="libsndfile")


class LogMel:
    """Log-Mel spectrogram computer for one :class:`FrontEnd`.

    Holds what every call shares: the Hann window and the Mel filterbank,
    read-only, so one instance serves many threads. ``LogMel(fe)(y)`` maps samples at ``fe.sample_rate`` Hz to a
    float32 array ``(1 + len(y) // hop_length, n_mels)``.
    """

    def __init__(self, fe: FrontEnd = FrontEnd(), block_frames: int = 64) -> None:
        self.fe = fe
        # periodic Hann, as scipy.signal.get_window('hann', n_fft) and librosa use
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fe.n_fft) / fe.n_fft)).astype(np.float32)
        self.filterbank = mel_filterbank(fe.sample_rate, fe.n_fft, fe.n_mels, fe.fmin, fe.fmax)
        self._band = sparse_bands(self.filterbank)
        self.block_frames = block_frames  # 64 frames x n_fft floats: 512 KiB, stays in L2

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Log-Mel spectrogram of mono samples ``y`` (centred frames, zero padding)."""
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"expected mono samples of shape (n,), got {y.shape}")
        pad = self.fe.n_fft // 2
        return self._frames_to_logmel(np.pad(y, pad))

    def stream(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Log-Mel frames of a signal given as consecutive blocks, in bounded memory.

        Concatenating the output equals ``self(np.concatenate(blocks))``.
        """
        n_fft, hop = self.fe.n_fft, self.fe.hop_length
        buf = np.zeros(n_fft // 2, np.float32)  # the centring pad
        total = emitted = 0
        for block in blocks:
            total += block.size
            buf = np.concatenate([buf, np.asarray(block, np.float32)])
            if buf.size >= n_fft:
                k = 1 + (buf.size - n_fft) // hop
                yield self._frames_to_logmel(buf[: (k - 1) * hop + n_fft])
                emitted += k
                buf = buf[k * hop:]
        # the last frames reach into the closing pad
        buf = np.concatenate([buf, np.zeros(n_fft // 2, np.float32)])
        k = self.fe.n_frames(total) - emitted
        if k > 0:
            yield self._frames_to_logmel(buf[: (k - 1) * hop + n_fft])

    def frames(self, padded: np.ndarray) -> np.ndarray:
        """Log-Mel frames of samples already padded as a track's are: frame ``t`` covers
        ``padded[t * hop_length : t * hop_length + n_fft]`` (an excerpt of a track decoded on its
        own, :func:`utils.audio.seek.excerpts`, from ``hop_length * s - n_fft // 2`` on gives frames
        ``s, s + 1, ...`` of the whole track)."""
        return self._frames_to_logmel(np.asarray(padded, np.float32))

    def _frames_to_logmel(self, padded: np.ndarray) -> np.ndarray:
        fe = self.fe
        frames = sliding_window_view(padded, fe.n_fft)[:: fe.hop_length]
        n = frames.shape[0]
        out = np.empty((n, fe.n_mels), np.float32)
        block = np.empty((self.block_frames, fe.n_fft), np.float32)
        for s in range(0, n, self.block_frames):
            k = min(self.block_frames, n - s)
            np.multiply(frames[s:s + k], self.window, out=block[:k])
            mel_power(scipy.fft.rfft(block[:k], axis=1), *self._band, out[s:s + k])
        if fe.log == "db":
            np.maximum(out, AMIN, out=out)
            np.log10(out, out=out)
            out *= 10.0
        else:
            out *= 10000.0
            np.log1p(out, out=out)
            out /= np.log(10.0)
        return out


def fix_frames(S: np.ndarray, n_frames: int) -> np.ndarray:
    """Crop a spectrogram to ``n_frames`` frames or, if shorter, repeat it from its start until it has
    that many. Repeating, not padding with silence, is how musicnn was trained on short clips
    (``"pad_short": "repeat-pad"``); padded with silence, most excerpts under 3 s got a wrong genre.

    Examples
    --------
    >>> fix_frames(np.arange(3.0)[:, None], 7)[:, 0]
    array([0., 1., 2., 0., 1., 2., 0.])
    """
    if S.shape[0] >= n_frames:
        return S[:n_frames]
    return np.resize(S, (n_frames,) + S.shape[1:]).astype(S.dtype, copy=False)


def window_starts(n_frames: int, fe: FrontEnd) -> np.ndarray:
    """First frame of each window over a track of ``n_frames`` frames (filled to one window
    if shorter). Every ``window_hop`` frames, plus a last window flush with the track's end
    so that no tail is dropped."""
    last = max(n_frames, fe.window_frames) - fe.window_frames
    starts = np.arange(0, last + 1, fe.window_hop)
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def windows(S: np.ndarray, fe: FrontEnd, source: str = "input") -> np.ndarray:
    """Overlapping windows of a spectrogram: shape ``(n_windows, window_frames, n_mels)``.

    A track shorter than one window is repeated to fill it (:func:`fix_frames`) if
    it has at least ``fe.min_frames`` frames, else :class:`audio.TooShortError`
    is raised, naming ``source``.
    """
    n = S.shape[0]
    if n < fe.min_frames:
        raise audio.TooShortError(
            source, f"too short: {n * fe.hop_length / fe.sample_rate:.2f} s of audio, "
            f"at least {fe.min_frames * fe.hop_length / fe.sample_rate:.2f} s needed")
    S = fix_frames(S, max(n, fe.window_frames))
    view = sliding_window_view(S, fe.window_frames, axis=0)  # (n - W + 1, n_mels, W)
    return normalize_level(view[window_starts(n, fe)].transpose(0, 2, 1), fe)


def logmel_file(path: str | Path, lm: LogMel, offset: float = 0.0,
                duration: float | None = None) -> np.ndarray:
    """Decode ``path`` (see :func:`audio.load`) and return its log-Mel spectrogram."""
    return lm(audio.load(path, lm.fe.sample_rate, offset, duration))


def logmel_files(paths: Iterable[str | Path], lm: LogMel, prefetch: int = 2,
                 duration: float | None = None, middle: float | None = None
                 ) -> Iterator[tuple[Path, np.ndarray | audio.AudioError]]:
    """Spectrograms of many files, in order: yields ``(path, S)`` or ``(path, error)``.

    A background thread decodes up to ``prefetch`` files ahead while the
    caller's thread computes spectrograms (decoders and FFTs release the
    GIL), so on two cores decoding hides the spectrogram work. ``prefetch=0``
    runs everything in the calling thread. Bad files yield their
    :class:`audio.AudioError` instead of raising, so a batch goes on.
    ``duration``: only each file's first seconds; ``middle``: only the middle
    ``middle`` seconds of each file, as FMA cut its clips
    (:func:`utils.audio.budget.middle_excerpt`; decoded by seeking).
    """
    sr = lm.fe.sample_rate

    def result(path: Path, decoded: np.ndarray | audio.AudioError):
        return path, decoded if isinstance(decoded, audio.AudioError) else lm(decoded)

    def decode(path: Path) -> np.ndarray | audio.AudioError:
        try:
            if middle is None:
                return audio.load(path, sr, duration=duration)
            n, native = seek.length(path)
            offset, span = middle_excerpt(n / native, middle)
            return audio.load(path, sr, offset, span)
        except audio.AudioError as err:
            return err

    for path, decoded in prefetched(paths, decode, prefetch):
        yield result(path, decoded)


def prefetched(paths: Iterable[str | Path], decode: Callable[[Path], object], prefetch: int = 2
               ) -> Iterator[tuple[Path, object]]:
    """``(path, decode(path))`` for each path, in order, ``decode`` running in one background thread
    up to ``prefetch`` files ahead of the caller (``prefetch <= 0``: in the calling thread)."""
    paths = (Path(p) for p in paths)
    if prefetch <= 0:
        for path in paths:
            yield path, decode(path)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        queue: list[tuple[Path, Future]] = []
        for path in paths:
            queue.append((path, pool.submit(decode, path)))
            if len(queue) > prefetch:
                done, fut = queue.pop(0)
                yield done, fut.result()
        for done, fut in queue:
            yield done, fut.result()


def stream_windows(frame_blocks: Iterable[np.ndarray], fe: FrontEnd,
                   source: str = "input") -> Iterator[tuple[int, np.ndarray]]:
    """Windows of a spectrogram that arrives in blocks of frames, in bounded memory.

    Yields ``(start_frame, window)`` pairs, the same windows :func:`windows`
    cuts from the whole spectrogram (and the same padding / refusal of short
    tracks, the same level normalisation), holding at most one block plus one
    window of frames at a time.
    """
    W, hop = fe.window_frames, fe.window_hop
    buf = np.zeros((0, fe.n_mels), np.float32)
    first = 0  # absolute frame index of buf[0]
    start = 0  # next window start
    last_yielded = -1
    for block in frame_blocks:
        buf = np.concatenate([buf, block])
        while start + W <= first + len(buf):
            yield start, normalize_level(buf[start - first: start - first + W], fe)
            last_yielded, start = start, start + hop
        keep_from = min(start, first + len(buf) - W)  # the final flush window may need the last W
        if keep_from > first:
            buf, first = buf[keep_from - first:], keep_from
    n = first + len(buf)
    if n < W:
        yield 0, windows(buf, fe, source)[0]
    elif last_yielded != n - W:
        yield n - W, normalize_level(buf[n - W - first:], fe)
