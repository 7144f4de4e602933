"""Excerpts of a file decoded without decoding what lies between them.

A track's length comes from its headers (:func:`length`; :func:`probe` reads them once for both), and each excerpt is
decoded from the file position that holds it (:func:`excerpts`), equal to the
same samples of a full decode (:func:`utils.audio.decoder.load`):

- MP3: the frames are found from their headers (:func:`utils.audio.headers.mp3_frames`)
  and each excerpt is decoded from the frames that hold it, from 10 frames earlier
  for the bit reservoir and the filterbank to fill: the same samples as a full
  decode, bit for bit (``tests/test_seek.py``). The index is checked against a
  plain decode of the file's start; a file it fails is decoded by miniaudio's own
  seek, which decodes its way there (exact, slower);
- WAV, FLAC and Ogg Vorbis: miniaudio seeks to the sample (exact);
- everything else (M4A, Opus, ...): one pass of FFmpeg through the file, cut at
  the excerpts, as exact as a full decode but as slow.

Then each excerpt is resampled on its own with soxr HQ from a start on the grid
where the two rates meet (441 samples at 44.1 kHz against 16 kHz) and with 50 ms
of context each side, so it equals the full signal's resampling to float rounding.
"""
from __future__ import annotations

import math
import mmap
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import soxr

from utils.audio import decoder
from utils.audio.headers import Mp3Frames, mp3_frames

PREROLL_FRAMES = 10  # MP3 frames decoded before an excerpt: the reservoir reaches 511 bytes back
CONTEXT_SECONDS = 0.05  # resampler context each side of an excerpt


def _checked(path: str | os.PathLike) -> str:
    """The file's container, after the checks :func:`utils.audio.decoder.decode` makes first."""
    fmt = decoder.sniff(path)
    problem = decoder.truncation(path, fmt)
    if problem:
        raise decoder.TruncatedAudioError(path, problem)
    return fmt


@dataclass(frozen=True, eq=False)
class Probe:
    """What :func:`probe` read of a file, once: its container, length and (MP3) checked frame index, so
    that :func:`length` and :func:`excerpts` given it read none of that again."""

    path: str
    fmt: str
    n_samples: int
    sample_rate: int
    frames: Mp3Frames | None  # an MP3's checked index; None: the decoder's own seek, or one FFmpeg pass


def probe(path: str | os.PathLike) -> Probe:
    """The :class:`Probe` of ``path``: its checks, its length from its headers and, for an MP3, its
    frame index checked against the decoder. Raises :class:`utils.audio.decoder.AudioError` for a file
    that cannot be used."""
    fmt = _checked(path)
    frames = _mp3(path) if fmt == "mp3" else None
    n, sr = (frames.n_samples, frames.sample_rate) if frames is not None else _header_length(path, fmt)
    return Probe(os.fspath(path), fmt, n, sr, frames)


def _probed(source: str | os.PathLike | Probe) -> Probe:
    return source if isinstance(source, Probe) else probe(source)


def length(source: str | os.PathLike | Probe) -> tuple[int, int]:
    """``(samples, rate in Hz)`` of a full decode of ``source`` (a path, or its :class:`Probe`), from its
    headers (no audio is decoded for MP3, WAV, FLAC and Ogg Vorbis; FFmpeg's container duration
    otherwise, to a frame). Raises :class:`utils.audio.decoder.AudioError` for a file that cannot be used."""
    p = _probed(source)
    return p.n_samples, p.sample_rate


def _header_length(path, fmt: str) -> tuple[int, int]:
    """``(samples, rate)`` from the headers of a file without a checked MP3 index."""
    if fmt in ("mp3", "wav", "flac", "ogg"):
        import miniaudio

        try:  # by content: miniaudio.get_file_info goes by the file's extension
            info = getattr(miniaudio, f"{'vorbis' if fmt == 'ogg' else fmt}_get_file_info")(os.fspath(path))
            return int(info.num_frames), int(info.sample_rate)
        except miniaudio.DecodeError:
            if fmt != "ogg":
                raise decoder.AudioDecodeError(path, f"the {fmt.upper()} decoder cannot read this file") from None
    return _av_length(path, fmt)


def _av_length(path, fmt: str) -> tuple[int, int]:
    import av

    decoder.decode_blocks(path, fmt)  # opens the file as a full decode would: the same error for a bad one
    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.audio[0]
            sr = int(stream.codec_context.sample_rate or stream.rate or 0)
            seconds = (float(stream.duration * stream.time_base) if stream.duration else
                       container.duration / 1e6 if container.duration else 0.0)
    except (av.FFmpegError, IndexError, UnicodeDecodeError):
        seconds, sr = 0.0, 0
    if sr <= 0 or seconds <= 0:
        raise decoder.AudioDecodeError(path, "its length cannot be read from its headers")
    return round(seconds * sr), sr


def _mp3(path) -> Mp3Frames | None:
    """The MP3's frame index, checked against the decoder: the frames after the tag frame, decoded from
    memory, must end in the same samples as a plain decode of the file's start (the first 2 s that are
    not digital silence; a file silent for longer is taken on the index's word). None when the headers
    do not chain or the check fails: the file is then decoded by miniaudio's own seek."""
    with _mapped(path) as data:
        return _checked_index(path, data)


def _checked_index(path, data) -> Mp3Frames | None:
    frames = mp3_frames(data)
    if frames is None:
        return None
    tag, starts = int(frames.tagged), frames.starts
    for k in (tag + 80, tag + 400):  # about 2 s, then 10 s of frames
        k = min(k, len(frames.samples))
        n = int(starts[k]) - frames.skipped
        _, blocks = decoder.decode_blocks(path, "mp3", 0.0, n / frames.sample_rate)
        head = np.concatenate([np.zeros(0, np.float32), *blocks])
        mem = _decode_memory(path, data[frames.offsets[tag]:frames.offsets[k]])
        m = min(4 * int(frames.samples[0]), head.size, mem.size)
        if head.size != n or not m:
            return None
        if np.any(head[-m:]):
            return frames if np.array_equal(head[-m:], mem[-m:]) else None
    return frames


@contextmanager
def _mapped(path) -> Iterator[mmap.mmap]:
    """The file's bytes, memory-mapped: an hour of MP3 is walked and cut without being read into memory."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def excerpts(source: str | os.PathLike | Probe, sr: int, spans: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    """Mono float32 samples at ``sr`` Hz of each ``(start, stop)`` span of ``load(path, sr)``, in order
    (spans in samples at ``sr``, sorted by start); zeros beyond the file's ends. ``source``: the path,
    or its :class:`Probe` (the file's checks and index are then not made again).

    Equal to slicing the full decode to the resampler's float rounding. Raises
    :class:`utils.audio.decoder.AudioError` for a file that cannot be used.
    """
    p = _probed(source)
    for start, y in zip((s for s, _ in spans), _excerpts(p, sr, [(max(0, a), b) for a, b in spans])):
        yield np.concatenate([np.zeros(-start, np.float32), y]) if start < 0 else y


def _excerpts(p: Probe, sr: int, spans: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    n_native, native = p.n_samples, p.sample_rate
    step = native // math.gcd(native, sr)  # native samples between starts where both rates meet
    context = step * math.ceil(CONTEXT_SECONDS * native / step)
    wanted = []
    for start, stop in spans:  # native [a, b): from the grid, with context; the file's own ends stay ends
        a = max(0, (start * native // sr) // step * step - context)
        b = min(n_native, -(-stop * native // sr) + context)
        wanted.append((a, max(a, b), start, stop))
    native_parts = _native_excerpts(p, [(a, b) for a, b, _, _ in wanted])
    for (a, _, start, stop), y in zip(wanted, native_parts):
        out = y if native == sr else soxr.resample(y, native, sr, quality="HQ")
        yield _slice(np.asarray(out[start - a * sr // native:], np.float32), stop - start)


def _native_excerpts(p: Probe, spans: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """Mono samples at the file's own rate of each ``(start, stop)`` span (clipped to the file)."""
    if p.frames is not None:
        with _mapped(p.path) as data:
            for a, b in spans:
                yield _mp3_excerpt(p.path, data, p.frames, a, b)
    elif p.fmt in ("mp3", "wav", "flac", "ogg"):
        for a, b in spans:
            yield _decoded(p.path, p.fmt, p.sample_rate, a, b)
    else:
        yield from _one_pass(p.path, p.fmt, spans)


def _decoded(path, fmt: str, native: int, a: int, b: int) -> np.ndarray:
    """Samples ``a`` to ``b`` by the decoder's own seek (exact; MP3 decodes its way there)."""
    if b <= a:
        return np.zeros(0, np.float32)
    _, blocks = decoder.decode_blocks(path, fmt, a / native, (b - a) / native)
    return _slice(np.concatenate([np.zeros(0, np.float32), *blocks]), b - a)


def _slice(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if y.size >= n else np.concatenate([y, np.zeros(n - y.size, np.float32)])


def _mp3_excerpt(path, data: bytes, frames: Mp3Frames, a: int, b: int) -> np.ndarray:
    """Samples ``a`` to ``b`` of a full decode of the MP3, decoded from the frames that hold them."""
    if b <= a:
        return np.zeros(0, np.float32)
    starts = frames.starts
    raw_a, raw_b = a + frames.skipped, b + frames.skipped  # in the frames' own count
    first = int(np.searchsorted(starts, raw_a, side="right")) - 1
    last = int(np.searchsorted(starts, raw_b, side="left"))  # frames [first, last) hold the span
    lead = first - PREROLL_FRAMES
    if lead <= int(frames.tagged):  # near the start: a plain decode costs no more
        return _decoded(path, "mp3", frames.sample_rate, a, b)
    y = _decode_memory(path, data[frames.offsets[lead]:frames.offsets[last]])
    end = int(starts[last])  # the decoded samples end where frame `last` begins
    return _slice(y[y.size - (end - raw_a):], b - a)


def _decode_memory(path, data: bytes) -> np.ndarray:
    """Mono float32 samples of MP3 bytes (a run of whole frames), decoded by miniaudio from memory."""
    from _miniaudio import ffi, lib

    dec = ffi.new("ma_decoder *")
    config = lib.ma_decoder_config_init(lib.ma_format_f32, 0, 0)
    buffer = ffi.from_buffer(data)
    if lib.ma_decoder_init_memory(buffer, len(data), ffi.addressof(config), dec) != lib.MA_SUCCESS:
        raise decoder.AudioDecodeError(path, "the MP3 decoder cannot read these frames")
    try:
        channels = int(dec.outputChannels)
        weights = decoder.downmix_weights(("FC",) if channels == 1 else ("FL", "FR")[:channels])
        block = np.empty((1 << 16, channels), np.float32)
        n_read, parts = ffi.new("ma_uint64 *"), []
        while True:
            lib.ma_decoder_read_pcm_frames(dec, ffi.from_buffer(block), len(block), n_read)
            n = int(n_read[0])
            parts.append(block[:n, 0].copy() if channels == 1 else decoder.downmix(block[:n], weights))
            if n < len(block):
                return np.concatenate(parts)
    finally:
        lib.ma_decoder_uninit(dec)


def _one_pass(path, fmt: str, spans: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The spans cut from one streaming decode of the whole file (for containers without exact seeking)."""
    pending = list(spans)
    buffer, first = np.zeros(0, np.float32), 0  # samples held and the index of buffer[0]
    _, blocks = decoder.decode_blocks(path, fmt, block_frames=1 << 16)
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while pending and first + buffer.size >= pending[0][1]:
            a, b = pending.pop(0)
            yield buffer[a - first:b - first]
        drop = min(buffer.size, max(0, pending[0][0] - first)) if pending else buffer.size
        buffer, first = buffer[drop:], first + drop
        if not pending:
            return
    for a, b in pending:  # past the end: what there is
        yield _slice(buffer[max(0, a - first):max(0, b - first)], b - a)
