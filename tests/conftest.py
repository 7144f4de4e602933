"""Shared fixtures: the real sample committed under data/sample/ (10 labelled FMA clips) and the
shared data folder beside the repository (../shared/data: GTZAN, fma_small pictures), which may not
be redistributed and is read in place; a test that needs it is skipped, with one line naming the
folder, where it is absent (a fresh clone)."""
from pathlib import Path

import pytest

from utils.data.datasets import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
# what each folder of ../shared/data holds, for the skip line of a test that needs it
SHARED_FOLDERS = {
    "gtzan_mini": "GTZAN clips, not redistributable",
    "gtzan_more": "GTZAN clips, not redistributable",
    "fma_small_mel": "fma_small pictures, not redistributable",
    "fma_sample": "the originals of the bundled FMA clips",
}
# the bundled clips' labels (fma_small's genre_top), in the official tracks.csv format
SAMPLE_TRACKS = SAMPLE / "fma" / "metadata" / "tracks.csv"


def shared_data(name: str) -> Path:
    """``../shared/data/<name>``, or skip the calling test with one line that names the folder it needs."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"needs ../shared/data/{name} ({SHARED_FOLDERS[name]}): absent")
    return folder


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def gtzan_sample(tmp_path_factory) -> Path:
    """Two GTZAN clips per genre (``<genre>/<genre>.0000{0,1}.wav``, 20 clips) copied from
    ../shared/data/gtzan_mini into a temporary folder, so tests may write beside them."""
    import shutil

    source = shared_data("gtzan_mini")
    root = tmp_path_factory.mktemp("gtzan")
    for genre in sorted(d for d in source.iterdir() if d.is_dir()):
        (root / genre.name).mkdir()
        for clip in sorted(genre.glob("*.wav"))[:2]:
            shutil.copyfile(clip, root / genre.name / clip.name)
    return root


@pytest.fixture(scope="session")
def gtzan_wavs(gtzan_sample) -> list[Path]:
    return sorted(gtzan_sample.rglob("*.wav"))


@pytest.fixture(scope="session")
def fma_mp3s() -> list[Path]:
    return sorted((SAMPLE / "fma" / "audio").rglob("*.mp3"))


@pytest.fixture(scope="session")
def fma_tracks():
    """The bundled sample as a track table: 10 labelled FMA clips, their official split and artists."""
    from utils.data.catalog import load_dataset

    return load_dataset("fma", SAMPLE / "fma" / "audio", SAMPLE_TRACKS, subset="small")[0]


@pytest.fixture(scope="session")
def fma_wavs(fma_mp3s, tmp_path_factory) -> list[Path]:
    """The bundled FMA clips decoded to GTZAN's format (30 s, 22,050 Hz, mono, 16-bit WAV), named
    ``<track_id>.wav``: real WAV files for tests that need no GTZAN clip in particular."""
    import soundfile as sf

    from utils import audio

    folder = tmp_path_factory.mktemp("fma_wav")
    paths = []
    for mp3 in fma_mp3s:
        paths.append(folder / f"{mp3.stem}.wav")
        sf.write(paths[-1], audio.load(mp3, 22050), 22050, subtype="PCM_16")
    return paths


@pytest.fixture(scope="session")
def fma_labelled(fma_wavs, tmp_path_factory) -> Path:
    """The bundled FMA clips as a labelled folder in GTZAN's layout, ``<genre>/<track_id>.wav`` (the WAVs
    of ``fma_wavs``, genres from the sample's tracks.csv): 6 genres of 1 to 5 clips."""
    import shutil

    import pandas as pd

    genre = pd.read_csv(SAMPLE_TRACKS, index_col=0, header=[0, 1])[("track", "genre_top")]
    root = tmp_path_factory.mktemp("fma_labelled")
    for wav in fma_wavs:
        (root / genre[int(wav.stem)]).mkdir(exist_ok=True)
        shutil.copyfile(wav, root / genre[int(wav.stem)] / wav.name)
    return root


# the tiny model's genres and the one clip of each it was trained on
TINY_MODEL_CLIPS = {"Hip-Hop": SAMPLE / "fma" / "audio" / "000" / "000002.mp3",
                    "Rock": SAMPLE / "fma" / "audio" / "001" / "001039.mp3"}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A small CNN really trained (2 epochs) on the windows of two labelled FMA sample clips,
    Hip-Hop (000002) vs Rock (001039), saved with its card: enough to exercise prediction end to end."""
    import numpy as np

    from utils import audio
    from utils.audio.frontend import FrontEnd, LogMel, windows
    from utils.models.card import ModelCard, save_model
    from utils.models.training import TrainConfig, train

    fe = FrontEnd()
    lm = LogMel(fe)
    xs, ys = [], []
    for label, clip in enumerate(TINY_MODEL_CLIPS.values()):
        w = windows(lm(audio.load(clip, fe.sample_rate)), fe)
        xs.append(w)
        ys.append(np.full(len(w), label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    run = tmp_path_factory.mktemp("tiny_model")
    result = train(TrainConfig(epochs=2, batch_size=16, seed=0), (x, y), (x[::4], y[::4]), 2, run / "run")
    path = run / "tiny.keras"
    save_model(result.model, path, ModelCard(tuple(TINY_MODEL_CLIPS), fe, "cnn", result.summary(),
                                             data={"tracks": "FMA sample: 000002 (Hip-Hop), 001039 (Rock)"}))
    return path


@pytest.fixture(scope="session")
def quick_config():
    """The pipeline's ``--quick`` run (one epoch, 20 pictures per genre and split) on ../shared/data/fma_small_mel."""
    from utils.apps.pipeline import PipelineConfig

    return PipelineConfig(quick=True, root=str(shared_data("fma_small_mel")))


@pytest.fixture(scope="session")
def sample_run(quick_config, tmp_path_factory) -> tuple[Path, dict]:
    """The five notebooks run once by the pipeline with ``quick_config``, shared by the notebook and
    slide tests: ``(run folder, run record)``."""
    from utils.apps.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("pipeline") / "sample"
    return root, run_pipeline(quick_config, root, progress=False, log=lambda line: None)


def _mount_tmpfs(target: Path, options: str) -> bool:
    """Mount a tmpfs at ``target``; False where this process may not mount (not root, no CAP_SYS_ADMIN)."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True).returncode == 0


def _under(path, folder: Path) -> bool:
    import os

    return isinstance(path, (str, os.PathLike)) and os.path.abspath(path).startswith(str(folder) + os.sep)


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch) -> Path:
    """A folder on a read-only file system: a read-only tmpfs mounted there where this process may
    mount; elsewhere the calls that write under it (open for writing, os.open, mkdir, link, symlink,
    rename, replace, unlink) are patched to fail with EROFS, as the kernel's would."""
    import builtins
    import errno
    import io
    import os
    import subprocess

    folder = tmp_path / "read_only"
    folder.mkdir()
    if _mount_tmpfs(folder, "ro,size=1m"):
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
        return

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    real_open, real_os_open = builtins.open, os.open

    def patched_open(file, mode="r", *args, **kw):
        if _under(file, folder) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kw)

    def patched_os_open(path, flags, *args, **kw):
        if _under(path, folder) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kw)

    monkeypatch.setattr(builtins, "open", patched_open)
    monkeypatch.setattr(io, "open", patched_open)
    monkeypatch.setattr(os, "open", patched_os_open)
    for name in ("mkdir", "unlink", "remove"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p, *a, _real=real, **k: refuse(p) if _under(p, folder) else _real(p, *a, **k))
    for name in ("link", "symlink", "rename", "replace"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda s, d, *a, _real=real, **k: refuse(d) if _under(d, folder) else _real(s, d, *a, **k))
    yield folder


@pytest.fixture
def other_file_system(tmp_path, monkeypatch) -> Path:
    """A writable folder on another file system than ``tmp_path``: a tmpfs mounted there where this
    process may mount; elsewhere ``os.link`` into it is patched to fail with EXDEV, as the kernel's would."""
    import errno
    import os
    import subprocess

    folder = tmp_path / "other_fs"
    folder.mkdir()
    if _mount_tmpfs(folder, "size=64m"):
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
        return
    real = os.link

    def link(src, dst, *a, **k):
        if _under(dst, folder):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
        return real(src, dst, *a, **k)
    monkeypatch.setattr(os, "link", link)
    yield folder
