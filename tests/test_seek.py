"""Excerpts decoded by seeking equal the same samples of a full decode, on every decoder path, from real codecs."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from utils import audio
from utils.audio import seek
from utils.audio.headers import mp3_frames

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt-get install ffmpeg)")

# name -> FFmpeg output options: LAME CBR, VBR, CBR without the Xing tag, MPEG-2 mono at 22.05 kHz; FLAC; Vorbis;
# AAC in MP4 and Opus (PyAV's path)
ENCODINGS = {"cbr.mp3": ["-c:a", "libmp3lame", "-b:a", "128k"], "vbr.mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
             "noxing.mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0"],
             "mono22.mp3": ["-ac", "1", "-ar", "22050", "-c:a", "libmp3lame", "-b:a", "32k"],
             "song.flac": [], "song.ogg": ["-c:a", "libvorbis"], "song.m4a": ["-c:a", "aac"],
             "song.opus": ["-c:a", "libopus", "-ar", "48000"]}  # Opus runs at 48 kHz
INEXACT_LENGTH = {"song.m4a", "song.opus"}  # FFmpeg's container duration, to a frame: the last samples may differ


@pytest.fixture(scope="module")
def songs(tmp_path_factory, fma_wavs) -> dict:
    """A 90 s stereo song at 44.1 kHz (three sample clips joined) in each encoding."""
    folder = tmp_path_factory.mktemp("songs")
    wav = folder / "song.wav"
    y = np.concatenate([sf.read(p, dtype="float32")[0] for p in fma_wavs[2:8:2]])
    sf.write(wav, np.stack([y, 0.8 * y], axis=1), 22050)
    out = {"song.wav": wav}
    for name, options in ENCODINGS.items():
        out[name] = folder / name
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "44100",
                        *options, str(out[name])], check=True)
    return out


def spans_of(n: int, sr: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(0)
    middle = sorted((int(s), int(s) + 3 * sr) for s in rng.integers(sr, n - 4 * sr, 5))
    return [(-100, 2 * sr), *middle, (n - sr, n + 300)]  # the start (centre padding), the middle, past the end


@pytest.mark.parametrize("name", ["song.wav", *ENCODINGS])
def test_every_excerpt_equals_the_full_decode(songs, name):
    path, sr = songs[name], 16000
    full = audio.load(path, sr)
    spans = spans_of(full.size, sr)
    padded = np.concatenate([np.zeros(100, np.float32), full, np.zeros(400, np.float32)])
    parts = list(seek.excerpts(path, sr, spans))
    for (a, b), x in zip(spans, parts):
        assert x.shape == (b - a,) and x.dtype == np.float32
        if name in INEXACT_LENGTH and b > full.size - sr:
            continue
        np.testing.assert_allclose(x, padded[a + 100:b + 100], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in ENCODINGS if n.endswith(".mp3")])
def test_the_mp3_index_knows_what_a_full_decode_drops(songs, name):
    path = songs[name]
    frames = mp3_frames(path.read_bytes())
    y, sr = audio.decode(path)
    assert frames is not None and frames.sample_rate == sr and frames.n_samples == y.size
    assert seek.length(path) == (y.size, sr) and seek._mp3(path) is not None  # the index passed its check


def test_the_index_matches_real_fma_mp3s(fma_mp3s):
    for path in fma_mp3s:  # FFmpeg's Info tag without a delay; one clip skips two frames for its reservoir
        frames = mp3_frames(path.read_bytes())
        assert frames.n_samples == audio.decode(path)[0].size and seek._mp3(path) is not None


def test_an_mp3_the_index_cannot_vouch_for_is_decoded_by_miniaudios_own_seek(songs, monkeypatch):
    """Should the index's count of dropped samples be wrong for some encoder, the check against the
    decoder's own start refuses it and every excerpt is still exact (by miniaudio's seek)."""
    import dataclasses

    path = songs["cbr.mp3"]
    full = audio.load(path, 16000)
    honest = seek.mp3_frames
    monkeypatch.setattr(seek, "mp3_frames", lambda data: dataclasses.replace(honest(data), skipped=honest(data).skipped
                                                                             + 576))
    assert seek._mp3(path) is None
    a, b = 600_000, 648_000
    np.testing.assert_allclose(next(seek.excerpts(path, 16000, [(a, b)])), full[a:b], rtol=0, atol=1e-5)


def test_bad_files_keep_their_one_line_errors(songs, tmp_path):
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(songs["cbr.mp3"].read_bytes()[:-1000])
    text = tmp_path / "notes.mp3"
    text.write_text("not music at all\n")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    for path in (cut, text, empty, tmp_path / "missing.wav"):
        with pytest.raises(audio.AudioError) as decoding:
            audio.decode(path)
        with pytest.raises(audio.AudioError) as seeking:
            list(seek.excerpts(path, 16000, [(0, 1000)]))
        assert type(seeking.value) is type(decoding.value) and str(seeking.value) == str(decoding.value)
        assert "\n" not in str(seeking.value) and str(seeking.value).startswith(str(path))
