"""Shared fixtures: paths to the real sample committed under data/sample/."""
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def gtzan_wavs() -> list[Path]:
    return sorted((SAMPLE / "gtzan").rglob("*.wav"))


@pytest.fixture(scope="session")
def fma_mp3s() -> list[Path]:
    return sorted((SAMPLE / "fma" / "audio").rglob("*.mp3"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A small CNN really trained (2 epochs) on the windows of four GTZAN sample clips,
    classical vs metal, saved with its card: enough to exercise prediction end to end."""
    import numpy as np

    from utils import audio
    from utils.audio.frontend import FrontEnd, LogMel, windows
    from utils.models.card import ModelCard, save_model
    from utils.models.training import TrainConfig, train

    fe = FrontEnd()
    lm = LogMel(fe)
    xs, ys = [], []
    for label, genre in enumerate(("classical", "metal")):
        for path in sorted((SAMPLE / "gtzan" / genre).glob("*.wav")):
            w = windows(lm(audio.load(path, fe.sample_rate)), fe)
            xs.append(w)
            ys.append(np.full(len(w), label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    run = tmp_path_factory.mktemp("tiny_model")
    result = train(TrainConfig(epochs=2, batch_size=16, seed=0), (x, y), (x[::4], y[::4]), 2, run / "run")
    path = run / "tiny.keras"
    save_model(result.model, path, ModelCard(("classical", "metal"), fe, "cnn", result.summary(),
                                             data={"tracks": "GTZAN sample: classical.0000{0,1}, metal.0000{0,1}"}))
    return path


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> tuple[Path, dict]:
    """The five notebooks run once by the pipeline on the bundled sample (``--quick``: one epoch),
    shared by the notebook and slide tests: ``(run folder, run record)``."""
    from utils.apps.pipeline import PipelineConfig, run_pipeline

    root = tmp_path_factory.mktemp("pipeline") / "sample"
    return root, run_pipeline(PipelineConfig(quick=True), root, progress=False, log=lambda line: None)


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
