"""Audio decoding: any audio file -> mono float32 samples at a chosen rate.

One function, :func:`load`, serves training, evaluation, the CLI and the web
app; :func:`stream` serves long files in bounded memory. Decoding goes
straight to mono (:func:`downmix`: ITU-R BS.775 beyond stereo, no polarity cancellation) at the file's own rate and
is then resampled with soxr's high-quality filter, the same resampler
``librosa.load`` uses by default (``res_type="soxr_hq"``).

Decoders: miniaudio (dr_mp3, dr_wav, dr_flac, stb_vorbis) for MP3, WAV, FLAC
and Ogg Vorbis, the fastest open decoders in the registries; FFmpeg through
PyAV for everything else (M4A/AAC, Opus, AIFF, WMA, ...). Every problem with
an input is raised as an :class:`AudioError` whose message names the file and
what is wrong with it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from utils.audio.headers import truncation
from utils.errors import FmaGenreError

AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a",
                    ".mp4", ".aac", ".aif", ".aiff", ".wma")
# Peak amplitude below one 16-bit step (-90.3 dBFS) is digital silence.
SILENCE_PEAK = 2.0 ** -15
_BLOCK_FRAMES = 1 << 20  # decoder read size: 1,048,576 frames (23.8 s at 44.1 kHz)


class AudioError(FmaGenreError):
    """An input that cannot be used as audio. ``str(err)`` is ``"<path>: <problem>"``."""


class MissingFileError(AudioError):
    """The path does not exist or is not a regular file."""


class EmptyFileError(AudioError):
    """The file has zero bytes."""


class NotAudioError(AudioError):
    """The file's content is not a known audio format."""


class TruncatedAudioError(AudioError):
    """The file ends before its last frame / declared data does."""


class AudioDecodeError(AudioError):
    """A decoder failed on the file, or it holds no audio samples."""


class SilentAudioError(AudioError):
    """Every sample is below one 16-bit step (digital silence)."""


class NonFiniteAudioError(AudioError):
    """The samples contain NaN or infinity."""


class TooShortError(AudioError):
    """The audio is shorter than the minimum the front end accepts."""


# Signatures of common files that are not audio, named in the error rather than handed to FFmpeg
_NOT_AUDIO = {b"PK\x03\x04": "a ZIP archive", b"%PDF": "a PDF document", b"\x89PNG": "a PNG image",
              b"\xff\xd8\xff": "a JPEG image", b"\x1f\x8b": "a gzip file", b"7z\xbc\xaf": "a 7-Zip archive",
              b"Rar!": "a RAR archive", b"\x7fELF": "a program (ELF)"}


def sniff(path: str | os.PathLike) -> str:
    """Identify a file's audio container from its first bytes.

    Returns one of ``"mp3"``, ``"wav"``, ``"flac"``, ``"ogg"``, ``"mp4"``,
    ``"aiff"``, ``"asf"``, ``"aac"`` or ``"unknown"``. Raises
    :class:`MissingFileError` or :class:`EmptyFileError`.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(path, "no such file" if not p.exists() else "not a regular file")
    with open(p, "rb") as f:
        head = f.read(12)
    if not head:
        raise EmptyFileError(path, "empty file (0 bytes)")
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF
                              and head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 3):
        return "mp3"
    if head[:2] == b"\xff\xf1" or head[:2] == b"\xff\xf9":
        return "aac"
    signatures = {b"fLaC": "flac", b"OggS": "ogg"}
    if head[:4] in signatures:
        return signatures[head[:4]]
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    return "unknown"


def decode(path: str | os.PathLike, offset: float = 0.0,
           duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file to mono float32 samples at its own rate.

    Parameters
    ----------
    path : audio file (MP3, WAV, FLAC, Ogg, M4A, ... see :data:`AUDIO_EXTENSIONS`)
    offset : start of the excerpt in seconds; only what follows is decoded
    duration : length of the excerpt in seconds (None: to the end). Decoding
        stops there, so a 30 s excerpt of a one-hour file costs 30 s of audio.

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32, nominally in [-1, 1]
    sr : the file's sample rate in Hz

    Raises
    ------
    AudioError
        A subclass naming the file and the problem: missing, empty, not
        audio, truncated, undecodable, silent or non-finite.
    """
    fmt = sniff(path)
    problem = truncation(path, fmt)
    if problem:
        raise TruncatedAudioError(path, problem)
    sr, blocks = decode_blocks(path, fmt, offset, duration)
    parts = list(blocks) or [np.zeros(0, np.float32)]
    y = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if y.size == 0:
        where = f" after {offset:g} s" if offset else ""
        raise AudioDecodeError(path, f"no audio samples{where}")
    check_samples(path, y)
    return y, sr


def load(path: str | os.PathLike, sr: int, offset: float = 0.0,
         duration: float | None = None) -> np.ndarray:
    """Decode an audio file (see :func:`decode`) to mono float32 samples at ``sr`` Hz.

    Resampling uses soxr's high-quality filter, as ``librosa.load`` does.
    """
    y, native_sr = decode(path, offset, duration)
    return y if native_sr == sr else soxr.resample(y, native_sr, sr, quality="HQ")


def stream(path: str | os.PathLike, sr: int, block_seconds: float = 60.0,
           offset: float = 0.0, duration: float | None = None) -> Iterator[np.ndarray]:
    """Decode an audio file block by block, in memory bounded by ``block_seconds``.

    Yields mono float32 blocks at ``sr`` Hz (about ``block_seconds`` each,
    the last shorter). Concatenated, they equal :func:`load` up to the
    resampler's float rounding. The whole stream is checked like
    :func:`load`: non-finite samples raise at the block that has them,
    silence and emptiness at the end.
    """
    fmt = sniff(path)
    problem = truncation(path, fmt)
    if problem:
        raise TruncatedAudioError(path, problem)
    native_sr, blocks = decode_blocks(path, fmt, offset, duration,
                                block_frames=max(1, int(block_seconds * 44100)))
    resampler = None if native_sr == sr else soxr.ResampleStream(native_sr, sr, 1, "float32", "HQ")
    peak, count = 0.0, 0
    for block in blocks:
        if not np.isfinite(block.sum()):
            raise NonFiniteAudioError(path, "non-finite samples (NaN or infinity)")
        peak = max(peak, float(np.max(np.abs(block))))
        count += block.size
        out = block if resampler is None else resampler.resample_chunk(block)
        if out.size:
            yield out
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if tail.size:
            yield tail
    if count == 0:
        raise AudioDecodeError(path, "no audio samples")
    if peak < SILENCE_PEAK:
        raise SilentAudioError(path, f"silent audio (peak {_dbfs(peak)})")


def check_samples(path: str | os.PathLike, y: np.ndarray) -> None:
    """Raise :class:`NonFiniteAudioError` or :class:`SilentAudioError` for ``y``."""
    lo, hi = float(np.min(y)), float(np.max(y))  # NaN propagates through both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise NonFiniteAudioError(path, "non-finite samples (NaN or infinity)")
    peak = max(-lo, hi)
    if peak < SILENCE_PEAK:
        raise SilentAudioError(path, f"silent audio (peak {_dbfs(peak)})")


def _dbfs(peak: float) -> str:
    return "0, digital silence" if peak == 0 else f"{20 * np.log10(peak):.1f} dBFS"


def decode_blocks(path, fmt: str, offset: float = 0.0, duration: float | None = None,
                  block_frames: int = _BLOCK_FRAMES) -> tuple[int, Iterator[np.ndarray]]:
    """Open a decoder for a file of container ``fmt`` (:func:`sniff`): ``(native rate in Hz, mono
    float32 blocks from ``offset`` for ``duration`` seconds)``, unchecked (no silence or emptiness test)."""
    if offset < 0 or (duration is not None and duration <= 0):
        raise ValueError(f"offset must be >= 0 and duration > 0, got {offset}, {duration}")
    if fmt in ("mp3", "wav", "flac", "ogg"):
        opened = _open_miniaudio(path)
        if opened is not None:
            decoder, native_sr = opened
            return native_sr, _blocks_miniaudio(path, decoder, native_sr, offset, duration, block_frames)
        if fmt != "ogg":  # Ogg Opus is the one format here miniaudio does not decode
            raise AudioDecodeError(path, f"the {fmt.upper()} decoder cannot read this file")
    return _open_av(path, fmt, offset, duration, block_frames)


# Channel order of WAV / FLAC files by channel count (WAVEFORMATEXTENSIBLE's default masks).
_DEFAULT_LAYOUTS = {1: ("FC",), 2: ("FL", "FR"), 3: ("FL", "FR", "FC"), 4: ("FL", "FR", "BL", "BR"),
                    5: ("FL", "FR", "FC", "BL", "BR"), 6: ("FL", "FR", "FC", "LFE", "BL", "BR"),
                    7: ("FL", "FR", "FC", "LFE", "BC", "SL", "SR"), 8: ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR")}
# ITU-R BS.775 downmix to stereo (Lo = L + 0.707 C + 0.707 Ls, LFE left out), then mono = (Lo + Ro) / 2.
_ITU_MONO = {"FL": 0.5, "FR": 0.5, "FC": 0.7071, "LFE": 0.0, "BL": 0.3536, "BR": 0.3536, "SL": 0.3536,
             "SR": 0.3536, "BC": 0.5, "FLC": 0.5, "FRC": 0.5}


def downmix_weights(channels) -> np.ndarray:
    """Mono mixing weights (float32) for channels named as FFmpeg names them (``FL``, ``FC``, ``LFE``, ...).

    Mono is itself; stereo is (L + R) / 2; more channels follow ITU-R BS.775, so
    a 5.1 file whose signal is only in the centre comes out 3 dB below it, where a
    plain average of its six channels would lose 15.6 dB (the front end's level
    normalisation takes the rest). Channels with other names share a plain average.
    """
    n = len(channels)
    if n <= 2:
        return np.full(max(n, 1), 1.0 / max(n, 1), np.float32)
    return np.array([_ITU_MONO.get(c, 1.0 / n) for c in channels], np.float32)


def downmix(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mono samples (float32) from ``frames (n, channels)`` mixed with ``weights`` (:func:`downmix_weights`).

    A channel in opposite polarity to the first (correlation under -0.5 over
    these frames) is flipped before mixing: a stereo file with one channel
    inverted, as a miswired recording or a bad rip leaves it, would otherwise
    cancel to near silence.

    Examples
    --------
    >>> left = np.sin(np.linspace(0, 100, 1000, dtype=np.float32))
    >>> mono = downmix(np.stack([left, -left], axis=1), downmix_weights(["FL", "FR"]))
    >>> bool(np.allclose(mono, left))
    True
    """
    frames = np.asarray(frames, np.float32)
    ref = frames[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (ref @ frames) / np.sqrt((ref @ ref) * np.einsum("ij,ij->j", frames, frames))
    return frames @ np.where(corr < -0.5, -weights, weights).astype(np.float32)


def _open_miniaudio(path):
    from _miniaudio import ffi, lib  # the compiled core of the `miniaudio` package

    decoder = ffi.new("ma_decoder *")
    # f32, the file's own channels (0) and rate (0): we downmix (see downmix)
    config = lib.ma_decoder_config_init(lib.ma_format_f32, 0, 0)
    if lib.ma_decoder_init_file(os.fsencode(path), ffi.addressof(config), decoder) != lib.MA_SUCCESS:
        return None
    return decoder, int(decoder.outputSampleRate)


def _blocks_miniaudio(path, decoder, sr: int, offset: float, duration: float | None,
                      block_frames: int) -> Iterator[np.ndarray]:
    from _miniaudio import ffi, lib

    try:
        channels = int(decoder.outputChannels)
        weights = downmix_weights(_DEFAULT_LAYOUTS.get(channels, ("",) * channels))
        start = round(offset * sr)
        if start and lib.ma_decoder_seek_to_pcm_frame(decoder, start) != lib.MA_SUCCESS:
            return  # offset past the end: nothing to decode
        remaining = None if duration is None else round(duration * sr)
        n_read = ffi.new("ma_uint64 *")
        while remaining is None or remaining > 0:
            want = block_frames if remaining is None else min(block_frames, remaining)
            block = np.empty((want, channels), np.float32)  # interleaved frames
            lib.ma_decoder_read_pcm_frames(decoder, ffi.from_buffer(block), want, n_read)
            n = int(n_read[0])
            if n:
                yield block[:n, 0] if channels == 1 else downmix(block[:n], weights)
            if remaining is not None:
                remaining -= n
            if n < want:
                return
    finally:
        lib.ma_decoder_uninit(decoder)


def _open_av(path, fmt: str, offset: float, duration: float | None,
             block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    import av

    if fmt == "unknown":  # FFmpeg would probe it, and may find "audio" in, say, a ZIP of MP3s
        head = _head(path)
        kind = next((k for sig, k in _NOT_AUDIO.items() if head.startswith(sig)), None)
        if kind:
            raise NotAudioError(path, f"not an audio file: {kind} (starts with {head!r})")
    try:
        container = av.open(os.fspath(path))
        stream_ = container.streams.audio[0]
        # FFmpeg may find a stream without a rate in bytes that hold none (random data named .mp3)
        sr = int(stream_.codec_context.sample_rate or stream_.rate or 0)
        if sr <= 0:
            container.close()
            raise IndexError("no sample rate")
    except (av.FFmpegError, IndexError, UnicodeDecodeError) as err:
        if fmt == "unknown":
            raise NotAudioError(path, f"not an audio file (starts with {_head(path)!r})") from None
        raise AudioDecodeError(path, f"cannot decode {fmt.upper()}: {err}") from None
    return sr, _blocks_av(path, container, stream_, sr, offset, duration, block_frames)


def _head(path, n: int = 8) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _blocks_av(path, container, stream_, sr: int, offset: float, duration: float | None,
               block_frames: int) -> Iterator[np.ndarray]:
    import av

    skip = round(offset * sr)  # decoded from the start and dropped: exact, unlike a seek
    remaining = None if duration is None else round(duration * sr)
    pending: list[np.ndarray] = []
    size = 0
    to_float = av.AudioResampler(format="fltp", rate=sr)  # keep channels: we downmix (downmix)
    weights = None
    try:
        with container:
            for frame in container.decode(stream_):
                for out in to_float.resample(frame):
                    if weights is None:
                        weights = downmix_weights([c.name for c in out.layout.channels])
                    y = downmix(out.to_ndarray().T, weights)
                    if skip:
                        y, skip = y[skip:], max(0, skip - y.size)
                    if remaining is not None:
                        y = y[:remaining]
                        remaining -= y.size
                    if y.size:
                        pending.append(y)
                        size += y.size
                    if size >= block_frames:
                        yield np.concatenate(pending)
                        pending, size = [], 0
                if remaining == 0:
                    break
    except av.FFmpegError as err:
        raise AudioDecodeError(path, f"decoding failed: {err}") from None
    if pending:
        yield np.concatenate(pending)


def find_audio(paths: list[str | os.PathLike]) -> list[Path]:
    """Audio files named by ``paths``: files as given, folders searched recursively
    for :data:`AUDIO_EXTENSIONS` (sorted). A missing path raises :class:`MissingFileError`."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
        elif p.exists():
            found.append(p)
        else:
            raise MissingFileError(p, "no such file or folder")
    return found
