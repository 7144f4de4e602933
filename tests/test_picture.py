"""fma_small's pictures: the dataset read in place, and the same picture made from audio.

The parity tests render the bundled FMA clips whose pictures are in ../shared/data/fma_small_mel and
compare them pixel by pixel; the drawing's column sampling and colour round trip are checked against
matplotlib and librosa themselves, the recipe the pictures were made with.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SAMPLE, shared_data
from utils.audio import AudioError
from utils.audio.frontend import FMA_SMALL, FrontEnd, LogMel
from utils.audio.picture import (VIRIDIS8, column_frames, decode_excerpt, picture_file, picture_levels,
                                 pixels_to_window, save_png, window_to_pixels)
from utils.data.datasets import DatasetError
from utils.data.pictures import GENRES, pictures, read_picture

AUDIO = SAMPLE / "fma" / "audio"
# the bundled clips of fma_small's training split: their pictures are shared
SHARED_PICTURES = ("000002", "000010", "000140", "001039", "001082", "001083")


def mp3(track_id: str):
    return AUDIO / track_id[:3] / f"{track_id}.mp3"


@pytest.fixture(scope="module")
def shared_tracks():
    return pictures(shared_data("fma_small_mel"))


def within_one_level(made: np.ndarray, shared: np.ndarray) -> float:
    return float((np.abs(made.astype(int) - shared.astype(int)) <= 1).mean())


@pytest.mark.parametrize("track_id", SHARED_PICTURES)
def test_a_picture_made_from_audio_is_the_shared_one(track_id, shared_tracks):
    shared = read_picture(shared_tracks.set_index("track_id").path[track_id])
    offset, made = picture_file(mp3(track_id), FMA_SMALL)
    assert offset == 0.0 and made.shape == shared.shape == (128, 128)
    assert within_one_level(made, shared) >= 0.995  # the bound; every pixel was equal here


def test_the_cli_writes_the_pictures_as_the_shared_pngs(tmp_path, shared_tracks):
    from PIL import Image

    out = subprocess.run([sys.executable, "-m", "utils.apps.cli", "spectrograms", "--frontend", "fma-small",
                          str(mp3("000002")), str(mp3("001066")), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "2 of 2 files -> pictures (128 x 128, 256 levels)" in out.stdout
    written = np.asarray(Image.open(tmp_path / "000002.png"))
    shared = np.asarray(Image.open(shared_tracks.set_index("track_id").path["000002"]))
    assert Image.open(tmp_path / "000002.png").mode == "L" and written.shape == shared.shape
    assert within_one_level(written, shared) >= 0.995
    assert (tmp_path / "001066.png").is_file()  # a test-split clip: its picture is sealed, ours is not


def test_columns_are_the_frames_matplotlib_draws():
    """The columns and rows of specshow's 128 x 128 raster, read back from its colours."""
    pytest.importorskip("librosa.display")
    import matplotlib

    matplotlib.use("Agg")
    import librosa.display
    import matplotlib.pyplot as plt
    from PIL import Image

    lut = matplotlib.colormaps["viridis"](np.arange(256))[:, :3] * 255
    for n in (2582, 2584, 1301):  # a 30 s clip at 44.1 kHz, and a shorter one
        values = (np.arange(n) % 32 * 8).astype(np.float32)  # colours far apart: no rounding can swap them
        values[-1] = 255.0
        fig = plt.figure(figsize=(1.28, 1.28), dpi=100)
        ax = fig.add_subplot()
        librosa.display.specshow(np.tile(values, (128, 1)), sr=44100, cmap="viridis", ax=ax)
        ax.axis("off")
        plt.tight_layout(pad=0)
        png = io.BytesIO()
        fig.savefig(png, format="png", bbox_inches="tight", pad_inches=0)
        plt.close(fig)
        rgb = np.asarray(Image.open(png).convert("RGB"), float)[64]
        drawn = ((rgb[:, None, :] - lut[None]) ** 2).sum(-1).argmin(-1)
        expected = np.minimum(np.floor(values[column_frames(n, 128)] / 255 * 256), 255)
        np.testing.assert_array_equal(drawn, expected)


def test_the_colour_round_trip_is_derived_from_viridis():
    import matplotlib

    lut = matplotlib.colormaps["viridis"](np.arange(256))[:, :3]
    drawn, read_as = np.round(lut * 255), np.floor(lut * 255)  # drawn rounded, read back against truncated
    nearest = np.array([((read_as - c) ** 2).sum(1).argmin() for c in drawn])
    np.testing.assert_array_equal(VIRIDIS8, nearest)
    assert (VIRIDIS8 != np.arange(256)).sum() == 67


def test_levels_follow_the_recipe_on_librosa_own_spectrogram():
    """picture_levels on our decode equals the recipe's arithmetic on librosa's: load, melspectrogram,
    power_to_db(ref=np.max), the drawn columns, floor of 256 steps, the colour round trip."""
    librosa = pytest.importorskip("librosa")
    y, sr = librosa.load(mp3("000010"), sr=None, duration=30)
    db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=128), ref=np.max)
    scaled = (db[:, column_frames(db.shape[1], 128)] - db.min()) / -db.min()
    recipe = VIRIDIS8[np.minimum(np.floor(scaled * 256), 255).astype(int)].T
    _, ours = decode_excerpt(mp3("000010"), FMA_SMALL)
    assert within_one_level(picture_levels(ours, FMA_SMALL), recipe) >= 0.999


def test_a_long_track_is_pictured_from_its_middle_30_seconds(tmp_path):
    """FMA's own excerpt of an untrimmed track: the middle 30 s, decoded by seeking."""
    librosa = pytest.importorskip("librosa")
    long = tmp_path / "long.mp3"
    clips = [mp3(t) for t in ("000002", "000010", "000140")]
    subprocess.run(["ffmpeg", "-v", "error", *sum((["-i", str(c)] for c in clips), []), "-filter_complex",
                    "concat=n=3:v=0:a=1", "-c:a", "libmp3lame", "-b:a", "192k", str(long)], check=True)
    offset, made = picture_file(long, FMA_SMALL)
    duration = librosa.get_duration(path=long)
    assert offset == duration // 2 - 15 and 25 < offset < 35
    y, sr = librosa.load(long, sr=None, offset=offset, duration=30)
    assert within_one_level(made, picture_levels(y, FMA_SMALL)) >= 0.99


def test_another_rate_is_resampled_to_44_1_khz(tmp_path):
    import soundfile
    import soxr

    _, y = decode_excerpt(mp3("000140"), FMA_SMALL)
    low = tmp_path / "low.wav"
    soundfile.write(low, soxr.resample(y, 44100, 22050), 22050)
    _, made = picture_file(low, FMA_SMALL)
    assert made.shape == (128, 128)
    # the top band is empty at 22.05 kHz: its levels sit at the floor; the rest keeps its shape
    _, full = picture_file(mp3("000140"), FMA_SMALL)
    assert np.corrcoef(made[:, :80].ravel(), full[:, :80].ravel())[0, 1] > 0.9


@pytest.mark.parametrize("content,problem", [(b"PK\x03\x04" + bytes(100), "not an audio file"),
                                             (b"", "empty file")])
def test_a_bad_file_is_one_line_naming_it(tmp_path, content, problem):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(content)
    with pytest.raises(AudioError, match=problem) as err:
        picture_file(bad, FMA_SMALL)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    out = subprocess.run([sys.executable, "-m", "utils.apps.cli", "spectrograms", "--frontend", "fma-small",
                          str(bad), "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"failed: {bad}" in out.stderr and not (tmp_path / "out").exists()


def test_pixels_and_windows_round_trip(tmp_path):
    window = np.random.default_rng(0).integers(0, 256, (128, 128)).astype(np.float32)
    pixels = window_to_pixels(window)
    assert pixels[0, 0] == window[0, -1]  # top row: the highest Mel band
    np.testing.assert_array_equal(pixels_to_window(pixels), window)
    save_png(window, tmp_path / "p.png")
    np.testing.assert_array_equal(read_picture(tmp_path / "p.png"), window)


def test_the_picture_front_end_is_checked():
    with pytest.raises(ValueError, match="window_frames == columns"):
        FrontEnd(columns=64, excerpt_seconds=30.0)
    with pytest.raises(ValueError, match="levels needs"):
        FrontEnd(levels=256)
    with pytest.raises(ValueError, match="decoder"):
        FrontEnd(decoder="ffmpeg")
    assert FrontEnd.from_dict(FMA_SMALL.to_dict()) == FMA_SMALL
    assert FMA_SMALL.is_picture and FMA_SMALL.window_seconds == 30.0 and not FrontEnd().is_picture
    with pytest.raises(ValueError, match="draws no picture"):
        picture_levels(np.zeros(44100, np.float32), FrontEnd(), LogMel(FrontEnd()))


def test_the_shared_pictures_are_fma_small_official_split(shared_tracks):
    counts = shared_tracks.groupby("split").size().to_dict()
    assert counts == {"training": 6394, "validation": 800}  # the test split is sealed
    assert set(shared_tracks.label) == set(GENRES)
    assert (shared_tracks[shared_tracks.split == "validation"].label.value_counts() == 100).all()
    by_split = shared_tracks.groupby("artist").split.nunique()
    assert shared_tracks.artist.notna().mean() > 0.99 and (by_split == 1).all()  # no artist on both sides


def test_any_folder_of_pictures_is_a_dataset(tmp_path, shared_tracks):
    some = shared_tracks.groupby("label").head(2)
    for path, label in zip(some.path, some.label):
        (tmp_path / "flat" / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, tmp_path / "flat" / label / path.rsplit("/", 1)[1])
    flat = pictures(tmp_path / "flat")
    assert len(flat) == 16 and set(flat.split) == {"training"}  # the split from tracks.csv
    assert (flat.artist.notna()).all()
    (tmp_path / "flat" / "Rock" / "cover.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="cover.png: not a picture of an FMA track"):
        pictures(tmp_path / "flat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no pictures"):
        pictures(tmp_path / "empty")


def test_a_picture_that_is_not_one_is_refused(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="x.png: not a readable PNG"):
        read_picture(tmp_path / "x.png")
    from PIL import Image

    Image.new("RGB", (128, 128)).save(tmp_path / "rgb.png")
    with pytest.raises(DatasetError, match="8-bit greyscale"):
        read_picture(tmp_path / "rgb.png")
