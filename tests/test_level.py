"""Level and channel handling at the front door (issue 13): per-window level normalisation in the
front end, the ITU downmix in the decoder, and the shipped model's answers at other levels and layouts."""
import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from utils import audio
from utils.audio.decoder import downmix_weights
from utils.evaluation import conditions
from utils.audio.frontend import MUSICNN, FrontEnd, LogMel, stream_windows, windows
from utils.audio.levels import audible, band_offsets, level_gain_db, normalize_level
from utils.models.musicnn import band_reference

LEVELLED = dataclasses.replace(MUSICNN, level="window")
BANDED = dataclasses.replace(LEVELLED, band_level="window", band_reference=band_reference())


@pytest.fixture(scope="module")
def rock(fma_wavs) -> np.ndarray:
    """A real Rock clip (FMA 001039, Lightning Bolt) at 16 kHz."""
    return audio.load(next(p for p in fma_wavs if p.stem == "001039"), 16000)


@pytest.mark.parametrize("fe", [LEVELLED, dataclasses.replace(FrontEnd(), level="window")])
@pytest.mark.parametrize("gain_db", [-30.0, -10.0, 12.0])
def test_window_level_removes_a_gain(rock, fe, gain_db):
    """Any real signal will do, whatever its rate: the same clip louder or quieter gives the same windows,
    each at fe.level_db, where the front end without levelling shows the gain."""
    lm, plain = LogMel(fe), dataclasses.replace(fe, level="none")
    louder = rock * np.float32(10 ** (gain_db / 20))
    a, b = windows(lm(rock), fe), windows(lm(louder), fe)
    raw = windows(lm(rock), plain)
    assert np.abs(raw - windows(lm(louder), plain)).max() > 0.1
    assert np.abs(a - b).max() < (1e-3 if fe.log == "log10_1p" else 1e-2)  # dB values are larger
    power = 10 ** (a.astype(np.float64) / 10) if fe.log == "db" else np.expm1(a * np.log(10.0)) / 1e4
    assert np.allclose(10 * np.log10(power.mean(axis=(1, 2))), fe.level_db, atol=1e-2)


def test_silence_stays_silent_and_quiet_windows_are_capped(rock):
    lm = LogMel(LEVELLED)
    y = np.concatenate([rock[:16000 * 6], np.zeros(16000 * 6, np.float32), 1e-5 * rock[:16000 * 6]])
    w = windows(lm(y), LEVELLED)
    raw = windows(lm(y), MUSICNN)
    silent = raw.max(axis=(1, 2)) == 0
    assert silent.any() and (w[silent] == 0).all()
    gains = level_gain_db(raw, LEVELLED)
    assert gains.max() <= LEVELLED.level_db - LEVELLED.level_floor_db + 1e-9
    assert np.isfinite(w).all()


def test_streamed_windows_are_levelled_like_whole_ones(rock):
    lm = LogMel(LEVELLED)
    y = 0.05 * rock
    whole = windows(lm(y), LEVELLED)
    blocks = (y[s:s + 7000] for s in range(0, len(y), 7000))
    streamed = np.stack([w for _, w in stream_windows(lm.stream(blocks), LEVELLED)])
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 1e-4


def test_level_travels_with_the_front_end_and_old_cards_still_load():
    d = LEVELLED.to_dict()
    assert d["level"] == "window" and FrontEnd.from_dict(d) == LEVELLED
    old = {k: v for k, v in MUSICNN.to_dict().items() if not k.startswith("level")}
    assert FrontEnd.from_dict(old) == MUSICNN and MUSICNN.level == "none"
    assert normalize_level(np.ones((1, 4, 3), np.float32), MUSICNN) is not None
    with pytest.raises(ValueError, match="level"):
        FrontEnd(level="lufs")
    with pytest.raises(ValueError, match="level_floor_db"):
        FrontEnd(level="window", level_db=-70.0)


@pytest.mark.parametrize("band_mean", ["db", "power"])
def test_band_level_removes_a_constant_per_band_exactly(rock, band_mean):
    """In dB a fixed per-band gain adds a constant to each band (to its cells and to its mean power):
    band normalisation removes it."""
    fe = dataclasses.replace(FrontEnd(sample_rate=16000, n_mels=8), level="window")
    banded = dataclasses.replace(fe, band_level="window", band_reference=tuple(np.linspace(-10, -40, 8)),
                                 band_mean=band_mean)
    S = LogMel(fe)(rock)
    tilt = np.linspace(12.0, -18.0, 8, dtype=np.float32)
    assert np.abs(windows(S, fe) - windows(S + tilt, fe)).max() > 5
    np.testing.assert_allclose(windows(S, banded), windows(S + tilt, banded), atol=1e-3)


def test_band_level_brings_a_filtered_copy_close_to_its_source(rock):
    """A real highpass and bass shelf (scipy): far smaller a change to the windows than with level alone."""
    from scipy import signal

    sos = np.concatenate([signal.butter(4, 400, "highpass", fs=16000, output="sos"),
                          signal.butter(2, 4000, "lowpass", fs=16000, output="sos")])
    filtered = signal.sosfilt(sos, rock).astype(np.float32)
    change = {fe.band_level: np.abs(windows(LogMel(fe)(rock), fe) - windows(LogMel(fe)(filtered), fe)).mean()
              for fe in (LEVELLED, BANDED)}
    assert change["window"] < 0.25 * change["none"], change


@pytest.mark.skipif(not conditions.available(), reason="needs ffmpeg (apt-get install ffmpeg)")
def test_power_band_means_move_a_low_bitrate_mp3_less(gtzan_wavs, tmp_path):
    """FFmpeg's MP3 at 16 kbit/s zeroes cells here and there (spectral holes): they drag a band's dB mean
    down, and band normalisation then boosts the whole band; its mean power hardly moves. On GTZAN's
    uncompressed clips: the FMA clips were MP3s already, with holes of their own."""
    import subprocess

    for src in [p for p in gtzan_wavs if p.parent.name in ("blues", "jazz")][::2]:
        mp3 = tmp_path / f"{src.stem}.mp3"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "libmp3lame", "-b:a", "16k", str(mp3)],
                       check=True)
        y, z = audio.load(src, 16000), audio.load(mp3, 16000)
        n = min(len(y), len(z))
        change = {}
        for mean in ("db", "power"):
            fe = dataclasses.replace(BANDED, band_mean=mean)
            change[mean] = np.abs(windows(LogMel(fe)(y[:n]), fe) - windows(LogMel(fe)(z[:n]), fe)).mean()
        assert change["power"] < 0.95 * change["db"], (src.name, change)


@pytest.mark.parametrize("tolerance", [0.0, 4.0, 15.0])
def test_band_level_keeps_silence_silent_and_sound_audible(rock, tolerance):
    fe = dataclasses.replace(BANDED, band_tolerance=tolerance)
    y = np.concatenate([np.zeros(16000 * 6, np.float32), rock[:16000 * 9], 1e-4 * rock[:16000 * 6]])
    levelled, banded = windows(LogMel(LEVELLED)(y), LEVELLED), windows(LogMel(fe)(y), fe)
    heard = audible(levelled, LEVELLED)
    assert not heard.all() and heard.any()
    np.testing.assert_array_equal(audible(banded, fe), heard)
    np.testing.assert_array_equal(banded[~heard], levelled[~heard])
    if tolerance == 0:  # one profile in dB for all, up to the raise of a window its band means left too quiet
        offsets = band_offsets(banded[heard], fe)[:, 0]
        np.testing.assert_allclose(offsets - offsets.mean(axis=1, keepdims=True), 0, atol=0.05)  # dB


def test_band_tolerance_spans_band_normalisation_to_level_only(rock):
    """Tolerance 0 sets every band to the reference; a tolerance no offset reaches changes nothing; in
    between, a real filtered copy moves less than with level alone and the clean clip keeps more of its
    own spectral shape than with no tolerance."""
    from scipy import signal

    filtered = signal.sosfilt(signal.butter(4, 400, "highpass", fs=16000, output="sos"), rock).astype(np.float32)
    fes = [dataclasses.replace(BANDED, band_tolerance=t) for t in (0.0, 4.0, 1e9)]
    clean = [windows(LogMel(fe)(rock), fe) for fe in [LEVELLED, *fes]]
    np.testing.assert_array_equal(clean[-1], clean[0])
    change = [np.abs(w - windows(LogMel(fe)(filtered), fe)).mean() for w, fe in zip(clean[1:], fes)]
    shape_lost = [np.abs(w - clean[0]).mean() for w in clean[1:]]
    assert change[0] < change[1] < change[2] and shape_lost[0] > shape_lost[1] > shape_lost[2] == 0, (change,
                                                                                                       shape_lost)


def test_band_level_streams_and_travels_with_the_front_end():
    S = LogMel(BANDED)(np.random.default_rng(0).normal(0, 0.1, 16000 * 20).astype(np.float32))
    streamed = np.stack([w for _, w in stream_windows((S[i:i + 100] for i in range(0, len(S), 100)), BANDED)])
    np.testing.assert_array_equal(streamed, windows(S, BANDED))
    d = json.loads(json.dumps(BANDED.to_dict()))  # a card's JSON: the profile comes back as a list
    assert FrontEnd.from_dict(d) == BANDED and hash(FrontEnd.from_dict(d)) == hash(BANDED)
    old = {k: v for k, v in LEVELLED.to_dict().items() if not k.startswith("band")}
    assert FrontEnd.from_dict(old).band_level == "none"
    with pytest.raises(ValueError, match="band_level='window' needs level='window'"):
        dataclasses.replace(BANDED, level="none")
    with pytest.raises(ValueError, match="96 band_reference values, got level='window' and 3"):
        dataclasses.replace(BANDED, band_reference=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="band_level must be"):
        dataclasses.replace(LEVELLED, band_level="track")
    tolerant = dataclasses.replace(BANDED, band_tolerance=7.5)
    assert FrontEnd.from_dict(json.loads(json.dumps(tolerant.to_dict()))) == tolerant
    assert FrontEnd.from_dict({k: v for k, v in BANDED.to_dict().items() if k != "band_tolerance"}) == BANDED
    assert FrontEnd.from_dict({k: v for k, v in BANDED.to_dict().items() if k != "band_mean"}).band_mean == "db"
    with pytest.raises(ValueError, match="band_mean must be 'db' or 'power'"):
        dataclasses.replace(BANDED, band_mean="median")
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="band_tolerance must be finite and >= 0"):
            dataclasses.replace(BANDED, band_tolerance=bad)


def test_downmix_weights_follow_itu():
    assert downmix_weights(["FC"]).tolist() == [1.0]
    assert downmix_weights(["FL", "FR"]).tolist() == [0.5, 0.5]
    w = downmix_weights(["FL", "FR", "FC", "LFE", "BL", "BR"])
    assert w[3] == 0 and w[2] == pytest.approx(0.7071) and w[4] == pytest.approx(0.3536)


def write_channels(path, frames: np.ndarray, layout: str):
    """``frames (n, channels)`` at 16 kHz as ``path``: an ``.m4a`` through FFmpeg's AAC encoder (the PyAV
    decoding path, with FFmpeg's channel names), anything else through soundfile (float WAV)."""
    import av

    if path.suffix == ".m4a":
        with av.open(str(path), "w") as out:
            stream = out.add_stream("aac", rate=16000, layout=layout)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(frames.T), format="fltp", layout=layout)
            frame.sample_rate = 16000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
    else:
        sf.write(path, frames, 16000, subtype="FLOAT" if path.suffix == ".wav" else None)
    return path


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".m4a"])
def test_centre_only_51_keeps_its_level(rock, tmp_path, suffix):
    """A 5.1 file with the signal only in its centre: 3 dB below the source (ITU), not 15.6 dB (a plain mean)."""
    six = np.zeros((len(rock), 6), np.float32)
    six[:, 2] = rock
    path = write_channels(tmp_path / f"centre{suffix}", six, "5.1")
    z = audio.load(path, 16000)
    n = min(len(z), len(rock)) - 4096
    ratio_db = 10 * np.log10(np.mean(z[2048:n] ** 2) / np.mean(rock[2048:n] ** 2))
    assert ratio_db == pytest.approx(-3.01, abs=0.3)


@pytest.mark.parametrize("suffix", [".wav", ".m4a"])
def test_stereo_with_one_channel_inverted_does_not_cancel(rock, tmp_path, suffix):
    """L = -R (a miswired recording or rip) mixes to the source, not to silence, through both decoders;
    ordinary stereo mixes as (L + R) / 2."""
    wide = np.stack([rock, np.roll(rock, 4000)], axis=1)  # two channels of music, not in opposite polarity
    for name, frames, expected in [("inverted", np.stack([rock, -rock], axis=1), rock),
                                   ("wide", wide, wide.mean(axis=1))]:
        z = audio.load(write_channels(tmp_path / f"{name}{suffix}", frames, "stereo"), 16000)
        lag = int(np.argmax(np.correlate(z[16000:20000], expected[16000:18000])))  # AAC adds a priming delay
        z = z[lag:lag + len(expected) - 8000]
        ratio_db = 10 * np.log10(np.mean(z[2048:] ** 2) / np.mean(expected[2048:len(z)] ** 2))
        assert ratio_db == pytest.approx(0.0, abs=0.5), (name, ratio_db)
        assert np.corrcoef(z[2048:], expected[2048:len(z)])[0, 1] > 0.95, name


@pytest.fixture(scope="module")
def shipped():
    from utils.models.predict import load_predictor

    return load_predictor()


@pytest.fixture(scope="module")
def levels(tmp_path_factory, fma_wavs) -> dict[str, object]:
    """A real sample clip written at -30, -20, -10 and 0 dB (float WAV, no quantisation) and normalised
    then +6 dB (16-bit WAV, clipped as a file would be), plus its centre-only 5.1 version."""
    folder = tmp_path_factory.mktemp("levels")
    source = next(p for p in fma_wavs if p.stem == "001039")
    y, sr = audio.decode(source)
    files = {}
    for db in (-30, -20, -10, 0):
        files[f"{db} dB"] = folder / f"{db}.wav"
        sf.write(files[f"{db} dB"], y * 10 ** (db / 20), sr, subtype="FLOAT")
    files["+6 dB clipped"] = folder / "clipped.wav"
    sf.write(files["+6 dB clipped"], np.clip(y / np.abs(y).max() * 2.0, -1, 1), sr, subtype="PCM_16")
    six = np.zeros((len(y), 6), np.float32)
    six[:, 2] = y
    files["5.1 centre only"] = folder / "centre.wav"
    sf.write(files["5.1 centre only"], six, sr, subtype="FLOAT")
    files["stereo, one channel inverted"] = folder / "inverted.wav"
    sf.write(files["stereo, one channel inverted"], np.stack([y, -y], axis=1), sr, subtype="FLOAT")
    return files


def test_shipped_model_answers_alike_at_every_level_and_layout(shipped, levels):
    """The issue's level test on the shipped model: same top genre, close probabilities."""
    assert shipped.frontend.level == "window"
    ref = shipped.predict_file(levels["0 dB"])
    for name, path in levels.items():
        p = shipped.predict_file(path)
        assert p.genre == ref.genre, name
        tol = 0.15 if name == "+6 dB clipped" else 0.01
        assert np.abs(p.probabilities - ref.probabilities).max() < tol, name


def test_band_reference_file_is_what_its_script_writes(tmp_path):
    """models/musicnn/band_reference.json (profile and offset quartiles) comes from scripts/band_reference.py."""
    import importlib.util
    from pathlib import Path

    from utils.models.musicnn import BAND_REFERENCE, band_offset_quartiles

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("band_reference_script", root / "scripts" / "band_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path / "ref.json")]) == 0
    assert json.loads((tmp_path / "ref.json").read_text()) == json.loads(BAND_REFERENCE.read_text())
    q = band_offset_quartiles()
    assert 0 < q["0.25"] < q["0.5"] < q["0.75"]


def test_shipped_model_on_excerpts_shorter_than_a_window(shipped, gtzan_wavs):
    """2 s excerpts (one 3 s window, filled by repeating them) mostly keep their clip's genre; with the
    window padded by silence most of them got another genre."""
    same = [shipped.predict_file(p, offset=10.0, duration=2.0).genre == shipped.predict_file(p).genre
            for p in gtzan_wavs]
    assert sum(same) >= 0.8 * len(same), f"{sum(same)} of {len(same)}"
