"""What a file's bytes say without decoding it: whether it is cut short, and where its MP3 frames lie.

:func:`truncation` tells a WAV whose data chunk runs past the end of the file, or
an MP3 whose last frame does, from the headers alone (a decoder would stop
quietly and return fewer samples). :func:`mp3_frames` walks an MP3's frame
headers (no decoding: about 5 ms for a 4-minute song) so that
:mod:`utils.audio.seek` can decode any stretch of it from the frames that hold it.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

import numpy as np


def truncation(path: str | os.PathLike, fmt: str) -> str | None:
    """Describe how the file is cut short, or None if it is whole (or cannot be told)."""
    if fmt == "mp3":
        return _mp3_truncation(path)
    if fmt == "wav":
        return _wav_truncation(path)
    return None


def _wav_truncation(path) -> str | None:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(12)
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                have = size - f.tell()
                if 0 < n < 0xFFFFFFFF and have < n:  # 0 / 0xFFFFFFFF: length left unknown by a streaming writer
                    return f"truncated: WAV data chunk declares {n} bytes, file holds {have}"
                return None
            f.seek(n + (n & 1), 1)


# MPEG audio bitrates in kbit/s, indexed [version is MPEG-1][layer 1..3][bitrate index]
_MPEG_KBPS = {
    True: {1: (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
           2: (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
           3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)},
    False: {1: (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
            2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
            3: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)},
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(b: bytes, i: int) -> int:
    """Length in bytes of the MPEG audio frame whose header starts at b[i], or 0 if none does."""
    if i + 4 > len(b) or b[i] != 0xFF or b[i + 1] & 0xE0 != 0xE0:
        return 0
    version, layer_bits = (b[i + 1] >> 3) & 3, (b[i + 1] >> 1) & 3
    rate_index, padding = (b[i + 2] >> 2) & 3, (b[i + 2] >> 1) & 1
    bitrate_index = b[i + 2] >> 4
    if version == 1 or layer_bits == 0 or rate_index == 3 or bitrate_index in (0, 15):
        return 0
    layer, mpeg1 = 4 - layer_bits, version == 3
    bitrate = _MPEG_KBPS[mpeg1][layer][bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding


def _mp3_truncation(path, tail_bytes: int = 32768) -> str | None:
    """Follow the chain of MPEG frames through the file's tail: a last frame
    that runs past the end of the file means the file was cut short."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - tail_bytes))
        b = f.read()
    end = len(b) - (128 if b[-128:-125] == b"TAG" else 0)  # ID3v1 tag
    for start in range(len(b) - 4):
        first = _mp3_frame_length(b, start)
        second = first and _mp3_frame_length(b, start + first)
        if not (second and _mp3_frame_length(b, start + first + second)):
            continue  # not a run of three frames: a chance sync pattern in the data
        i = start
        while i < end and (n := _mp3_frame_length(b, i)):
            i += n
        if i > end:
            return f"truncated MP3: the last frame needs {i - end} bytes more than the file has"
        if 0 < end - i < 4 and b[i] == 0xFF:
            return "truncated MP3: the file ends inside a frame header"
        return None
    return None


@dataclass(frozen=True)
class Mp3Frames:
    """The frames of an MP3 file, found from their headers.

    Attributes
    ----------
    offsets : byte offset of each frame, ``(n + 1,)``: the last entry is where the frames end
    samples : samples per channel of each frame (1152, or 576 / 384), ``(n,)``
    sample_rate : Hz, of the first frame
    skipped : samples a decoder that honours the Xing / LAME tag (miniaudio's dr_mp3) drops at the
        start: the tag frame, the encoder and decoder delay (the tag's delay + 529), and the first
        frames it cannot decode for want of a bit reservoir; see :func:`mp3_frames`
    padding : samples such a decoder drops at the end (the LAME tag's padding, less the 529 of delay)
    tagged : the first frame is a Xing / Info tag, not audio
    """

    offsets: np.ndarray
    samples: np.ndarray
    sample_rate: int
    skipped: int
    padding: int
    tagged: bool

    @property
    def starts(self) -> np.ndarray:
        """First sample of each frame, counting every sample of every frame, ``(n + 1,)``."""
        return np.r_[0, np.cumsum(self.samples)]

    @property
    def n_samples(self) -> int:
        """Samples per channel a full decode gives."""
        return int(self.samples.sum()) - self.skipped - self.padding


def mp3_frames(data: bytes | mmap.mmap) -> Mp3Frames | None:
    """Walk the MPEG audio frames of an MP3 file's bytes (after any ID3v2 tag): None when they do not
    form one unbroken chain of Layer III frames at one rate (free format, junk between frames), which
    a caller then decodes without the index.

    ``skipped`` follows what a full decode drops, so sample ``i`` of a full decode is sample
    ``i + skipped`` of the frames' own count: a Xing / Info tag frame, then the tag's encoder delay
    plus the decoder's 529 (no tag, no delay), then every leading frame whose ``main_data_begin``
    reaches back further than the frames before it left in the bit reservoir (511 bytes at most).
    """
    i = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]) if data[:3] == b"ID3" else 0
    offsets, samples, reach, main = [], [], [], []
    end = len(data) - (128 if data[-128:-125] == b"TAG" else 0)
    while i < end:
        n = _mp3_frame_length(data, i)
        if not n or (data[i + 1] >> 1) & 3 != 1:  # not a frame, or not Layer III
            break
        mpeg1, mono, crc = (data[i + 1] >> 3) & 3 == 3, data[i + 3] >> 6 == 3, not data[i + 1] & 1
        side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
        at = i + 4 + 2 * crc
        begin = (data[at] << 1 | data[at + 1] >> 7) if mpeg1 else data[at]
        offsets.append(i)
        samples.append(1152 if mpeg1 else 576)
        reach.append(begin)
        main.append(n - 4 - 2 * crc - side)
        i += n
    if len(offsets) < 3 or i < end - 4096:  # a chain that stops far from the end is not the whole stream
        return None
    rates = {_MPEG_RATES[(data[o + 1] >> 3) & 3][(data[o + 2] >> 2) & 3] for o in offsets}
    if len(rates) != 1:
        return None
    first = data[offsets[0]:offsets[0] + int(main[0]) + 64]
    tag = next((first.find(t) for t in (b"Xing", b"Info") if first.find(t) >= 0), -1)
    skipped, padding, k = 0, 0, 0
    if tag >= 0:
        flags = int.from_bytes(first[tag + 4:tag + 8], "big")
        lame = tag + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
        d = first[lame + 21:lame + 24] if len(first) >= lame + 24 else b"\0\0\0"
        skipped = samples[0] + ((d[0] << 4) | (d[1] >> 4)) + 529
        padding = max(0, (((d[1] & 15) << 8) | d[2]) - 529)
        k = 1
    reservoir = 0
    while k < len(offsets) and reach[k] > reservoir:  # undecodable without the frames before the file began
        skipped += samples[k]
        reservoir = min(511, reservoir + main[k])
        k += 1
    return Mp3Frames(np.array(offsets + [i]), np.array(samples), rates.pop(), skipped, padding, tag >= 0)
