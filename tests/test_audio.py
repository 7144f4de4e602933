"""Decoding real audio, reading excerpts, streaming, and a clear typed error for every kind of bad input."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from utils import audio


def test_decodes_real_mp3_and_wav_to_mono_float32(fma_mp3s, fma_wavs):
    y, sr = audio.decode(fma_mp3s[0])  # FMA: 44.1 kHz stereo, mixed to mono
    assert sr == 44100 and y.dtype == np.float32 and y.ndim == 1
    assert 29.5 < y.size / sr < 30.5 and 0.01 < np.abs(y).max() <= 1.0
    y, sr = audio.decode(fma_wavs[0])
    reference, ref_sr = sf.read(fma_wavs[0], dtype="float32")
    assert sr == ref_sr == 22050
    np.testing.assert_array_equal(y, reference)  # 16-bit PCM: bit-exact with libsndfile


def test_mp3_mono_mix_matches_libsndfile_after_the_first_frame(fma_mp3s):
    # dr_mp3 drops an MP3's first frame when its bit reservoir points before the
    # file start (FMA clips are cut from longer tracks); libsndfile decodes it.
    ours, _ = audio.decode(fma_mp3s[0])
    stereo, _ = sf.read(fma_mp3s[0], dtype="float32")
    theirs = stereo.mean(axis=1)[1152:]
    n = min(ours.size, theirs.size)
    assert abs(ours.size - theirs.size) <= 1152
    diff = np.abs(ours[:n] - theirs[:n])
    # two float decoders: all but a handful of samples agree to 1e-4
    assert np.percentile(diff, 99.9) < 1e-4 and diff.max() < 0.01


def test_load_resamples_to_the_target_rate(fma_mp3s):
    y = audio.load(fma_mp3s[1], 22050)
    native, sr = audio.decode(fma_mp3s[1])
    assert abs(y.size - native.size * 22050 / sr) <= 1


@pytest.mark.parametrize("kind", ["wav", "mp3"])
def test_excerpt_equals_the_same_part_of_the_whole(kind, fma_mp3s, fma_wavs):
    path = fma_wavs[3] if kind == "wav" else fma_mp3s[2]
    whole, sr = audio.decode(path)
    part, _ = audio.decode(path, offset=10.0, duration=5.0)
    assert part.size == 5 * sr
    start = 10 * sr
    np.testing.assert_allclose(part, whole[start:start + part.size], atol=1e-6)


def test_excerpt_of_a_long_file_decodes_only_what_is_asked(tmp_path, fma_wavs):
    # ten minutes of real music (one sample clip repeated), 16-bit at 22,050 Hz
    clip, sr = sf.read(fma_wavs[5], dtype="int16")
    long_file = tmp_path / "ten_minutes.wav"
    sf.write(long_file, np.tile(clip, 20), sr, subtype="PCM_16")
    tracemalloc.start()
    y = audio.load(long_file, 22050, offset=300.0, duration=30.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert y.size == 30 * 22050
    whole_file_as_float32 = 600 * 22050 * 4
    assert peak < whole_file_as_float32 / 5, f"peak {peak / 1e6:.1f} MB for a 30 s excerpt"


def test_stream_equals_load_in_blocks(fma_mp3s):
    whole = audio.load(fma_mp3s[3], 22050)
    blocks = list(audio.stream(fma_mp3s[3], 22050, block_seconds=7.0))
    assert len(blocks) >= 4
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)


def test_other_containers_go_through_ffmpeg(tmp_path, fma_wavs):
    av = pytest.importorskip("av")
    clip, sr = sf.read(fma_wavs[0], dtype="float32")
    m4a = tmp_path / "clip.m4a"
    with av.open(str(m4a), "w") as out:  # real music, AAC-encoded by FFmpeg
        s = out.add_stream("aac", rate=sr)
        s.layout = "mono"
        for i in range(0, sr * 5, 1024):
            frame = av.AudioFrame.from_ndarray(clip[None, i:i + 1024], format="flt", layout="mono")
            frame.sample_rate = sr
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    assert audio.sniff(m4a) == "mp4"
    y = audio.load(m4a, 22050, offset=1.0, duration=2.0)
    assert y.size == 2 * 22050
    # AAC is lossy and delays the signal by its priming samples: compare loudness, not samples
    ref = clip[22050:3 * 22050]
    assert abs(np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(ref ** 2)) - 1) < 0.1


def test_find_audio_lists_folders_recursively(sample):
    found = audio.find_audio([sample])  # the clips, not the metadata beside them
    assert len(found) == 10 and all(f.suffix == ".mp3" for f in found)
    with pytest.raises(audio.MissingFileError, match="no such file or folder"):
        audio.find_audio([sample / "nope"])


# --- bad input: one typed error each, naming the file -------------------------

def _expect(error, path, match):
    with pytest.raises(error, match=match) as info:
        audio.load(path, 22050)
    assert str(path) in str(info.value) and info.value.path == str(path)


def test_missing_file(tmp_path):
    _expect(audio.MissingFileError, tmp_path / "absent.mp3", "no such file")


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.touch()
    _expect(audio.EmptyFileError, empty, "empty file")


def test_text_file_renamed_mp3(tmp_path):
    fake = tmp_path / "notes.mp3"
    fake.write_text("hello, this is not music\n")
    _expect(audio.NotAudioError, fake, "not an audio file \\(starts with b'hello, t'\\)")


def test_random_bytes_renamed_mp3_streamed_and_loaded(tmp_path):
    fake = tmp_path / "noise.mp3"  # FFmpeg finds an audio stream without a sample rate in these bytes
    fake.write_bytes(np.random.default_rng(0).bytes(100_000))
    _expect(audio.NotAudioError, fake, "not an audio file \\(starts with b")
    with pytest.raises(audio.NotAudioError, match="not an audio file"):
        list(audio.stream(fake, 16000))


def test_zip_renamed_mp3(tmp_path):
    import zipfile

    fake = tmp_path / "archive.mp3"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("a.txt", "x")
    _expect(audio.NotAudioError, fake, "starts with b'PK")


def test_truncated_mp3(tmp_path, fma_mp3s):
    data = fma_mp3s[0].read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2 + 101])  # mid-frame
    _expect(audio.TruncatedAudioError, cut, "truncated MP3")


def test_whole_mp3s_are_not_reported_truncated(fma_mp3s):
    for path in fma_mp3s:
        audio.load(path, 22050, duration=1.0)


def test_truncated_wav(tmp_path, fma_wavs):
    data = fma_wavs[0].read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 3])
    _expect(audio.TruncatedAudioError, cut, "WAV data chunk declares")


def test_silent_audio(tmp_path):
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(22050 * 3, np.int16), 22050, subtype="PCM_16")
    _expect(audio.SilentAudioError, silent, "silent audio \\(peak 0, digital silence\\)")


def test_non_finite_samples(tmp_path, fma_wavs):
    y, sr = sf.read(fma_wavs[0], dtype="float32")
    y[1000] = np.nan
    bad = tmp_path / "nan.wav"
    sf.write(bad, y, sr, subtype="FLOAT")
    _expect(audio.NonFiniteAudioError, bad, "non-finite samples")


def test_folder_given_as_file(tmp_path):
    _expect(audio.MissingFileError, tmp_path, "not a regular file")


def test_offset_past_the_end(fma_wavs):
    with pytest.raises(audio.AudioDecodeError, match="no audio samples after 100 s"):
        audio.load(fma_wavs[0], 22050, offset=100.0)


def test_sniff_knows_the_sample_formats(fma_mp3s, fma_wavs):
    assert audio.sniff(fma_mp3s[0]) == "mp3"
    assert audio.sniff(fma_wavs[0]) == "wav"
    assert audio.sniff(Path(__file__)) == "unknown"
