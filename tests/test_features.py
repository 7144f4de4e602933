"""Hand-crafted features: column layout, known answers on pure tones, real clips, failures, CLI."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from utils import audio
from utils.evaluation.features import (STATISTICS, FeatureConfig, columns, feature_vector, features_table,
                            file_features, frame_features, load_features, save_features, summarize)
from utils.apps.cli import main

SR = 22050


@pytest.fixture(scope="module")
def folk(fma_wavs) -> Path:
    """A real Folk clip as a 16-bit WAV (FMA 000140)."""
    return fma_wavs[2]


@pytest.fixture(scope="module")
def rock(fma_wavs) -> Path:
    """A real Rock clip as a 16-bit WAV (FMA 001039)."""
    return fma_wavs[3]


def tone(frequency: float, seconds: float = 5.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_columns_follow_fma_layout():
    cols = columns()
    assert cols.names == ["feature", "statistics", "number"]
    assert len(cols) == 7 * (12 + 20 + 1 + 1 + 1 + 7 + 1 + 1) == 308
    assert cols.is_unique and cols.is_monotonic_increasing  # sorted, as FMA's features.csv
    assert set(cols.get_level_values("statistics")) == set(STATISTICS)
    assert ("mfcc", "mean", "20") in cols and ("spectral_contrast", "max", "07") in cols
    assert ("chroma_cqt", "std", "12") in columns(FeatureConfig(chroma="cqt"))
    with pytest.raises(ValueError, match="chroma"):
        FeatureConfig(chroma="cens")


@pytest.mark.parametrize("frequency, pitch_class", [(440.0, 9), (1000.0, 11)])  # A4; 1 kHz is nearest B5
def test_pure_tone_known_answers(frequency, pitch_class):
    v = feature_vector(tone(frequency))
    assert v.index.equals(columns())
    assert v["spectral_centroid", "median"].item() == pytest.approx(frequency, rel=0.01)
    assert v["spectral_rolloff", "median"].item() == pytest.approx(frequency, abs=2 * SR / 2048)
    assert v["zcr", "median"].item() == pytest.approx(2 * frequency / SR, rel=0.01)
    assert v["rmse", "median"].item() == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert int(np.argmax(v["chroma_stft", "mean"].to_numpy())) == pitch_class


def test_statistics_match_scipy_on_real_audio(rock):
    frames = frame_features(audio.load(rock, SR, duration=10.0))
    for name, values in frames.items():
        s = summarize(values)
        x = values.astype(np.float64)
        np.testing.assert_allclose(s[STATISTICS.index("skew")], stats.skew(x, axis=1), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(s[STATISTICS.index("kurtosis")], stats.kurtosis(x, axis=1),
                                   rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(s[STATISTICS.index("median")], np.median(x, axis=1))
    constant = summarize(np.full((1, 50), 3.0))
    assert constant[:, 0].tolist() == [3.0, 0.0, 0.0, 0.0, 3.0, 3.0, 3.0]  # skew/kurtosis 0, not NaN


def test_real_clips_and_failures_are_recorded(folk, rock, tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not a wave file")
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(folk.read_bytes()[:50_000])
    short = tmp_path / "blip.wav"
    short.write_bytes(folk.read_bytes()[:44 + 2000])  # 1,000 samples < one frame
    # a RIFF size that promises more than the file holds counts as truncated, so mend the header
    header = bytearray(short.read_bytes())
    header[4:8] = (len(header) - 8).to_bytes(4, "little")
    header[40:44] = (len(header) - 44).to_bytes(4, "little")
    short.write_bytes(bytes(header))
    paths = [folk, not_audio, rock, truncated, tmp_path / "missing.mp3", short]
    table, failures = features_table(paths, progress=False)
    assert table.index.tolist() == [str(folk), str(rock)]
    assert table.columns.equals(columns()) and np.isfinite(table.to_numpy()).all()
    assert set(failures) == {str(p) for p in (not_audio, truncated, tmp_path / "missing.mp3", short)}
    for path, message in failures.items():
        assert message.startswith(f"{path}: ")
    assert "shorter than one 2048-sample analysis frame" in failures[str(short)]
    np.testing.assert_allclose(table.loc[str(rock)], file_features(rock))


def test_save_and_load_round_trip(folk, tmp_path):
    table, _ = features_table([folk], progress=False)
    loaded = load_features(save_features(table, tmp_path / "features.csv"))
    assert loaded.columns.equals(table.columns) and loaded.index.tolist() == [str(folk)]
    np.testing.assert_allclose(loaded.to_numpy(), table.to_numpy(), rtol=1e-9)


def run_cli(argv: list[str]) -> int:
    return main(argv)


def test_cli_computes_and_resumes(folk, rock, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["features", "--help"])
    assert exit_info.value.code == 0 and "--chroma" in capsys.readouterr().out
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(folk, music)
    out = tmp_path / "features.csv"
    assert run_cli(["features", str(music), "--out", str(out)]) == 0
    first = load_features(out)
    assert first.index.tolist() == [str(music / folk.name)]
    shutil.copy(rock, music)
    (music / "broken.wav").write_text("nothing")
    assert run_cli(["features", str(music), "--out", str(out), "--every", "1"]) == 1  # one file failed
    err = capsys.readouterr().err
    assert "1 already in" in err and "failed: " in err and "broken.wav" in err
    second = load_features(out)
    assert sorted(second.index) == sorted(str(music / p.name) for p in (folk, rock))
    pd.testing.assert_series_equal(second.loc[first.index[0]], first.iloc[0])  # kept, not recomputed
    assert run_cli(["features", str(music), "--out", str(out), "--chroma", "cqt"]) == 1
    assert "other feature columns" in capsys.readouterr().err
    not_features = tmp_path / "notes.csv"
    not_features.write_text("a,b\n")
    assert run_cli(["features", str(music), "--out", str(not_features)]) == 1
    assert "notes.csv: cannot read features CSV" in capsys.readouterr().err
    assert not_features.read_text() == "a,b\n"  # a user's file is never overwritten
