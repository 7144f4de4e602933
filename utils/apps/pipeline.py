"""Run the five notebooks in order with papermill: one command, one run folder.

``fma-genre pipeline --dataset gtzan --root ../shared/data/gtzan_mini --out runs/gtzan``
executes ``notebooks/01_eda`` ... ``05_evaluation`` with the same parameters
and writes everything one run made into its own folder (:class:`RunLayout`)::

    runs/<name>/
      run.json                 parameters, start and end times, status of each notebook
      notebooks/0N_*.ipynb     the executed copies (papermill)
      logs/0N_*.log            what each notebook printed (stdout and stderr)
      reports/*.json           metrics, split, tables; reports/figures/*.png the figures
      models/best.keras        the chosen model with its card (best.card.json)
      training/<run>/          checkpoints of every training run (resumable)
      cache/                   the spectrogram cache (unless --cache names another)
      features.csv             hand-crafted features of the baselines

A run folder is never overwritten silently: an existing one is refused
unless ``--resume`` (finish it: notebooks already executed are skipped,
training and extraction resume where they stopped) or ``--force`` (run every
notebook again; the files a run makes are replaced, the cache is kept).

``--out s3://bucket/prefix/<name>`` runs in the local folder ``--work``
(default ``runs/<name>``), papermill writes each executed notebook straight
to S3 (visible while it runs), and after each notebook the run's
``run.json``, ``reports/``, ``models/`` and ``logs/`` are uploaded beside it.
S3 needs ``boto3`` and AWS credentials (papermill's S3 support uses them;
``BOTO3_ENDPOINT_URL`` selects an S3-compatible store).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from utils.atomic import write_atomic
from utils.audio.frontend import FrontEnd
from utils.data.datasets import SHARED_DATA
from utils.apps.s3 import exists as _s3_exists
from utils.apps.s3 import is_s3, upload
from utils.errors import FmaGenreError
from utils.models.registry import CNN_MODELS

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
NOTEBOOKS_DIR = REPO / "notebooks"
NOTEBOOKS = ("01_eda", "02_spectrograms", "03_binary_cnn", "04_multiclass_cnn", "05_evaluation")
RECORD_FORMAT = 1
# Stable names of what the notebooks write: reports/figures/<name>.png and reports/<file>, each with the
# notebook that makes it (the slides name the notebook when a figure is missing). Besides these, 03 and 04
# write experiment.run's per-run figures and metrics: binary_{tracks,windows}_* and
# multiclass_<model>_{tracks,windows}_{confusion,confusion_normalized,per_class_f1,reliability[,learning_curves]}.
FIGURES = {name: nb for nb, names in {
    "01_eda": ("eda_class_balance", "eda_clip_durations", "eda_fma_class_balance", "eda_fma_durations",
               "eda_fma_bit_rates", "eda_fma_genre_tree", "eda_waveforms"),
    "02_spectrograms": ("spectrograms_per_genre", "frontend_n_fft", "frontend_hop_length", "frontend_n_mels",
                        "frontend_log", "mean_spectrograms", "mean_spectra", "genre_distances"),
    "03_binary_cnn": ("binary_tracks_learning_curves", "binary_tracks_confusion", "binary_tracks_reliability",
                      "binary_balancing"),
    "04_multiclass_cnn": ("multiclass_models", "multiclass_learning_curves", "genre_growth"),
    "05_evaluation": ("test_confusion", "test_confusion_normalized", "test_per_class_f1", "test_reliability",
                      "test_examples"),
}.items() for name in names}
REPORTS = {name: nb for nb, names in {
    "01_eda": ("eda.json", "split.json"), "02_spectrograms": ("spectrograms.json", "genre_order.json"),
    "03_binary_cnn": ("binary_tracks_metrics.json", "binary_balancing.json"),
    "04_multiclass_cnn": ("multiclass_models.json", "genre_growth.json"),
    "05_evaluation": ("test_metrics.json", "results.json", "results.md", "test_predictions.json"),
}.items() for name in names}
# what a run makes, removed by --force; the cache is kept (costly, and it checks itself)
_GENERATED = ("run.json", "notebooks", "logs", "reports", "models", "training", "features.csv")
_UPLOADED = ("run.json", "reports", "models", "logs")


class PipelineError(FmaGenreError):
    """A run that cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class RunLayout:
    """Where a run keeps what it makes (see the module docstring); ``cache_dir`` overrides ``<root>/cache``."""

    root: Path
    cache_dir: Path | None = None

    @property
    def record(self) -> Path:
        return self.root / "run.json"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def figures(self) -> Path:
        return self.reports / "figures"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def training(self) -> Path:
        return self.root / "training"

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.root / "cache"

    @property
    def features(self) -> Path:
        return self.root / "features.csv"


@dataclass(frozen=True)
class PipelineConfig:
    """The parameters every notebook receives (paths are made absolute before the run).

    ``quick`` shrinks the run for a smoke test (one epoch, fewer windows and
    shorter audio excerpts); its numbers mean nothing. ``sample_rate`` ...
    ``window_hop`` are the :class:`~utils.audio.frontend.FrontEnd`'s (02 builds
    the cache with them; later notebooks read them from the cache and the model card).
    """

    dataset: str = "gtzan"
    root: str = str(SHARED_DATA / "gtzan_mini")  # GTZAN is never bundled: read beside the repository
    metadata: str | None = None
    subset: str = "medium"
    genres: tuple[str, ...] | None = None
    binary_genres: tuple[str, ...] | None = ("classical", "metal")
    models: tuple[str, ...] = CNN_MODELS
    epochs: int = 3
    batch_size: int = 32
    patience: int = 5
    keras_backend: str = "tensorflow"
    seed: int = 0
    folds: int = 5
    repeats: int = 1
    features: str | None = None
    cache: str | None = None
    quick: bool = False
    sample_rate: int = FrontEnd.sample_rate
    n_fft: int = FrontEnd.n_fft
    hop_length: int = FrontEnd.hop_length
    n_mels: int = FrontEnd.n_mels
    window_frames: int = FrontEnd.window_frames
    window_hop: int = FrontEnd.window_hop

    def smoke_test(self) -> str | None:
        """Why this run's numbers mean nothing, or None: ``--quick``, or the bundled sample (10 FMA clips)."""
        reasons = (["--quick (1 epoch, fewer windows)"] if self.quick else []) + \
            (["the bundled sample (10 clips)"] if Path(self.root).resolve().is_relative_to(SAMPLE) else [])
        return ", ".join(reasons) or None

    def parameters(self, layout: RunLayout) -> dict:
        """The papermill parameters of the notebooks (each gets the ones it declares)."""
        metadata = _absolute(self.metadata)
        genres_csv = Path(metadata).with_name("genres.csv") if metadata else None
        sample_meta = SAMPLE / "fma" / "metadata"
        return {
            "dataset": self.dataset, "data_root": _absolute(self.root), "metadata": metadata,
            "subset": self.subset, "genres": list(self.genres) if self.genres else None,
            "binary_genres": list(self.binary_genres) if self.binary_genres else None,
            "models": list(self.models), "epochs": 1 if self.quick else self.epochs,
            "batch_size": self.batch_size, "patience": 1 if self.quick else self.patience,
            "keras_backend": self.keras_backend, "seed": self.seed, "folds": self.folds,
            "repeats": self.repeats, "out_dir": str(layout.root.resolve()),
            "cache_dir": str(layout.cache.resolve()), "features_csv": _absolute(self.features),
            # 01 shows real FMA metadata: the dataset's own, else the bundled Rock / Hip-Hop export
            "fma_metadata": metadata if self.dataset == "fma" and metadata else
            str(sample_meta / "fma-rock-vs-hiphop.csv.gz"),
            "fma_genres": str(genres_csv) if genres_csv and genres_csv.exists() else str(sample_meta / "genres.csv"),
            "max_windows": 200 if self.quick else 2000, "listen_seconds": 2.0 if self.quick else 5.0,
            "eda_max_files": 50 if self.quick else 200,
            "sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length,
            "n_mels": self.n_mels, "window_frames": self.window_frames, "window_hop": self.window_hop,
        }


def smoke_test(record: dict) -> str | None:
    """Why the run of ``record`` (its ``run.json``) proves only that the pipeline runs, or None."""
    if "smoke_test" in record:
        return record["smoke_test"]
    config = record.get("config", {})  # a run.json written before the field
    return PipelineConfig(root=config.get("root", ""), quick=bool(config.get("quick"))).smoke_test()


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj: dict) -> None:
    text = json.dumps(obj, indent=2) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def check_kernel(kernel_name: str = "python3") -> str:
    """The Python a kernel runs; :class:`PipelineError` unless it is this process's.

    Jupyter starts a kernelspec whose command is plain ``python`` with the
    Python of the process that starts it (this one); another path would run
    the notebooks in another environment, without this project's packages.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise PipelineError(f"no Jupyter kernel {kernel_name!r}: install one for this Python with "
                            f"`{sys.executable} -m ipykernel install --sys-prefix`") from None
    exe = spec.argv[0]
    if exe in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return sys.executable
    if Path(exe).resolve() != Path(sys.executable).resolve():
        raise PipelineError(f"Jupyter kernel {kernel_name!r} ({spec.resource_dir}) runs {exe}, not this "
                            f"Python ({sys.executable}): remove or rename that kernelspec, or install this "
                            f"environment's with `{sys.executable} -m ipykernel install --sys-prefix`")
    return exe


def _prepare(layout: RunLayout, out: str, parameters: dict, resume: bool, force: bool) -> dict | None:
    """Check the run folder; returns the record to resume (or None for a fresh run)."""
    if resume and force:
        raise PipelineError("choose --resume (finish the run) or --force (run it again), not both")
    root = layout.root
    record = json.loads(layout.record.read_text()) if layout.record.exists() else None
    if record is None and root.exists() and any(root.iterdir()):
        raise PipelineError(f"{root} is not empty and holds no run.json, so it is not a pipeline run: "
                            "choose another --out")
    if record is None:
        if is_s3(out) and not force and _s3_exists(f"{out.rstrip('/')}/run.json"):
            raise PipelineError(f"{out} already holds a run: pass --resume or --force, or choose another --out")
        return None
    if resume:
        changed = {k: (record["parameters"].get(k), v) for k, v in parameters.items()
                   if record["parameters"].get(k) != v}
        if changed:
            diff = "; ".join(f"{k}: run {a!r}, now {b!r}" for k, (a, b) in changed.items())
            raise PipelineError(f"{root} was run with other parameters ({diff}): resume with the same "
                                "options, or --force to run it again with the new ones")
        return record
    if force:
        for name in _GENERATED:
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        return None
    raise PipelineError(f"{root} already holds a run (status {record.get('status')}): pass --resume to "
                        "finish it, --force to run it again from the start, or choose another --out")


def run_pipeline(config: PipelineConfig, out: str | os.PathLike, *, work: str | os.PathLike | None = None,
                 resume: bool = False, force: bool = False, notebooks: Sequence[str] = NOTEBOOKS,
                 notebooks_dir: Path = NOTEBOOKS_DIR, kernel_name: str = "python3", progress: bool = True,
                 log: Callable[[str], None] = print) -> dict:
    """Execute ``notebooks`` in order into the run folder ``out`` (local, or ``s3://``); returns
    the run record (also in ``run.json``). Stops at the first notebook that fails: its
    executed copy shows the failing cell, the record names it. Raises :class:`PipelineError`
    for a folder it must not write or a kernel that is not this Python's."""
    import papermill

    out = str(out)
    if is_s3(out):
        name = out.rstrip("/").rsplit("/", 1)[-1]
        root = Path(work) if work else Path("runs") / name
    elif work is not None:
        raise PipelineError("--work is for an s3:// --out only; a local --out is the run folder itself")
    else:
        root = Path(out)
    if not Path(config.root).is_dir():
        raise PipelineError(f"{config.root}: no such audio folder" + (
            " (GTZAN is not bundled: the default reads ../shared/data/gtzan_mini beside the repository; "
            "give --root DIR)" if config.dataset == "gtzan" else ""))
    layout = RunLayout(root, Path(config.cache) if config.cache else None)
    parameters = config.parameters(layout)
    record = _prepare(layout, out, parameters, resume, force)
    python = check_kernel(kernel_name)
    unknown = [n for n in notebooks if n not in NOTEBOOKS]
    if unknown:
        raise PipelineError(f"unknown notebook(s) {unknown}; the pipeline's are {', '.join(NOTEBOOKS)}")
    if record is None:
        record = {"format": RECORD_FORMAT, "name": root.name, "out": out, "created": _now(),
                  "parameters": parameters, "config": json.loads(json.dumps(dataclasses.asdict(config))),
                  "python": python, "papermill": papermill.__version__, "git_commit": _git_commit(),
                  "smoke_test": config.smoke_test(),
                  "notebooks": {n: {"status": "pending"} for n in NOTEBOOKS}}
    record.update(status="running", started=_now(), ended=None)
    for sub in (layout.notebooks, layout.logs, layout.reports):
        sub.mkdir(parents=True, exist_ok=True)
    _write_json(layout.record, record)
    for nb in notebooks:
        entry = record["notebooks"][nb]
        if entry["status"] == "ok" and resume:
            log(f"{nb}: executed before ({entry['seconds']:.0f} s), skipped")
            continue
        target = f"{out.rstrip('/')}/notebooks/{nb}.ipynb" if is_s3(out) else str(layout.notebooks / f"{nb}.ipynb")
        source = notebooks_dir / f"{nb}.ipynb"
        wanted = papermill.inspect_notebook(str(source))
        entry.clear()
        entry.update(status="running", started=_now(), output=target, log=str(layout.logs / f"{nb}.log"))
        _write_json(layout.record, record)
        log(f"{nb}: running -> {target}")
        start = time.perf_counter()
        try:
            with open(layout.logs / f"{nb}.log", "w") as logfile:
                papermill.execute_notebook(
                    str(source), target, parameters={k: v for k, v in parameters.items() if k in wanted},
                    kernel_name=kernel_name, cwd=str(notebooks_dir), progress_bar=progress,
                    stdout_file=logfile, stderr_file=logfile)
        except papermill.PapermillExecutionError as err:
            entry.update(status="failed", error=f"cell {err.exec_count}: {err.ename}: {err.evalue}")
        except Exception as err:  # kernel died, timeout, unwritable output: record it, then stop
            entry.update(status="failed", error=f"{type(err).__name__}: {err}")
        else:
            entry["status"] = "ok"
        # seconds on a shared machine mean little without its load (1, 5, 15 min averages over os.cpu_count())
        entry.update(ended=_now(), seconds=round(time.perf_counter() - start, 1),
                     load_average=[round(x, 2) for x in os.getloadavg()], cpus=os.cpu_count())
        _write_json(layout.record, record)
        if is_s3(out):
            upload(layout.root, out, _UPLOADED)
        log(f"{nb}: {entry['status']} in {entry['seconds']:.0f} s" + (f" ({entry['error']})" if "error" in entry else ""))
        if entry["status"] == "failed":
            break
    statuses = {e["status"] for e in record["notebooks"].values()}
    record.update(status="failed" if "failed" in statuses else "ok" if statuses == {"ok"} else "partial",
                  ended=_now())
    _write_json(layout.record, record)
    if is_s3(out):
        upload(layout.root, out, _UPLOADED)
    return record


# --- command line ---------------------------------------------------------------------------
