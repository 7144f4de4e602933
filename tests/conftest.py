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
