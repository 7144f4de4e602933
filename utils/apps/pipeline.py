"""Run the five notebooks in order with papermill: one command, one run folder.

``fma-genre pipeline --out runs/fma_small`` executes ``notebooks/01_eda`` ...
``05_evaluation`` on fma_small's pictures (``../shared/data/fma_small_mel``:
FMA's official split, training and validation; the test split is sealed) with
the same parameters and writes everything one run made into its own folder
(:class:`RunLayout`)::

    runs/<name>/
      run.json                 parameters, start and end times, status of each notebook
      notebooks/0N_*.ipynb     the executed copies (papermill)
      logs/0N_*.log            what each notebook printed (stdout and stderr)
      reports/*.json           metrics, split, tables; reports/figures/*.png the figures
      models/best.keras        04's 8-genre model with its card (best.card.json)
      training/<run>/          each model trained (model.keras + card; training/: checkpoints, resumable)

The pictures are read where they are (7,194 PNGs load in about 10 s), so a run
has no cache of its own. A run folder is never overwritten silently: an existing
one is refused unless ``--resume`` (finish it: notebooks already executed are
skipped, training resumes where it stopped) or ``--force`` (run every notebook
again; the files a run makes are replaced).

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
from utils.data.datasets import SHARED_DATA
from utils.data.vggish import VGGISH
from utils.apps.s3 import exists as _s3_exists
from utils.apps.s3 import is_s3, upload
from utils.errors import FmaGenreError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
NOTEBOOKS_DIR = REPO / "notebooks"
NOTEBOOKS = ("01_eda", "02_spectrograms", "03_binary_cnn", "04_multiclass_cnn", "05_evaluation")
RECORD_FORMAT = 1
QUICK_PER_GENRE = 20  # --quick: pictures per genre and split
KERNEL_START_SECONDS = 600  # papermill's 60 s default fails on a loaded machine, where importing TensorFlow is slow
# Stable names of what the notebooks write: reports/figures/<name>.png and reports/<file>, each with the
# notebook that makes it (the slides name the notebook when a figure is missing). Besides these, 03 and 04
# write experiment.run's per-run figures and metrics: binary_{tracks,windows}_* and
# multiclass_<model>_{tracks,windows}_{confusion,confusion_normalized,per_class_f1,reliability[,learning_curves]}.
FIGURES = {name: nb for nb, names in {
    "01_eda": ("eda_class_balance", "eda_tracks_per_artist", "eda_levels", "eda_pictures"),
    "02_spectrograms": ("picture_steps", "picture_parity", "mean_spectra", "genre_distances"),
    "03_binary_cnn": ("binary_learning_curves", "binary_confusion", "binary_reliability", "binary_balancing"),
    "04_multiclass_cnn": ("multiclass_learning_curves", "multiclass_confusion_normalized", "genre_growth"),
    "05_evaluation": ("validation_confusion", "validation_confusion_normalized", "validation_per_class_f1",
                      "validation_reliability", "validation_baselines"),
}.items() for name in names}
REPORTS = {name: nb for nb, names in {
    "01_eda": ("eda.json", "split.json"), "02_spectrograms": ("spectrograms.json", "genre_order.json"),
    "03_binary_cnn": ("binary_metrics.json", "binary_balancing.json"),
    "04_multiclass_cnn": ("multiclass_metrics.json", "multiclass_models.json", "genre_growth.json"),
    "05_evaluation": ("validation_metrics.json", "results.json", "results.md"),
}.items() for name in names}
# what a run makes, removed by --force
_GENERATED = ("run.json", "notebooks", "logs", "reports", "models", "training")
_UPLOADED = ("run.json", "reports", "models", "logs")


class PipelineError(FmaGenreError):
    """A run that cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class RunLayout:
    """Where a run keeps what it makes (see the module docstring)."""

    root: Path

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



@dataclass(frozen=True)
class PipelineConfig:
    """The parameters every notebook receives (paths are made absolute before the run).

    ``root``: fma_small's pictures laid out ``<split>/<Genre>/<track_id>.png`` with ``tracks.csv``
    beside them (default: ``../shared/data/fma_small_mel``, never bundled); only ``training`` and
    ``validation`` are read. ``per_genre``: that many pictures per genre and split (a slice, for CI);
    None: all. ``binary_genres``: 03's pair (None: the two most distinct of 02). ``quick`` shrinks the
    run for a smoke test (one epoch, 20 pictures per genre and split); its numbers mean nothing.
    ``shipped_model``: the model 05 judges when it exists (else 04's, and 05 says so).
    """

    dataset: str = "fma_small"
    root: str = str(SHARED_DATA / "fma_small_mel")  # the pictures are never bundled: read beside the repository
    genres: tuple[str, ...] | None = None
    binary_genres: tuple[str, ...] | None = None
    per_genre: int | None = None
    model: str = "cnn1d"
    epochs: int = 4
    batch_size: int = 64
    patience: int = 4
    keras_backend: str = "tensorflow"
    seed: int = 0
    shipped_model: str = "fma-small"
    sample_clip: str = str(SAMPLE / "fma" / "audio" / "000" / "000002.mp3")
    quick: bool = False

    def smoke_test(self) -> str | None:
        """Why this run's numbers mean little, or None: ``--quick``, or a slice of the pictures."""
        per_genre = QUICK_PER_GENRE if self.quick and self.per_genre is None else self.per_genre
        reasons = (["--quick (1 epoch)"] if self.quick else []) + \
            ([f"a slice of {per_genre} pictures per genre and split"] if per_genre is not None else [])
        return ", ".join(reasons) or None

    def parameters(self, layout: RunLayout) -> dict:
        """The papermill parameters of the notebooks (each gets the ones it declares)."""
        root = _absolute(self.root)
        return {
            "dataset": self.dataset, "data_root": root,
            "vggish": str(Path(root) / VGGISH), "sample_clip": _absolute(self.sample_clip),
            "genres": list(self.genres) if self.genres else None,
            "binary_genres": list(self.binary_genres) if self.binary_genres else None,
            "per_genre": QUICK_PER_GENRE if self.quick and self.per_genre is None else self.per_genre,
            "model": self.model, "epochs": 1 if self.quick else self.epochs, "batch_size": self.batch_size,
            "patience": 1 if self.quick else self.patience, "keras_backend": self.keras_backend,
            "seed": self.seed, "shipped_model": self.shipped_model, "out_dir": str(layout.root.resolve()),
        }


def smoke_test(record: dict) -> str | None:
    """Why the run of ``record`` (its ``run.json``) proves only that the pipeline runs, or None."""
    if "smoke_test" in record:
        return record["smoke_test"]
    config = record.get("config", {})  # a run.json written before the field
    return PipelineConfig(quick=bool(config.get("quick")), per_genre=config.get("per_genre")).smoke_test()


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
        raise PipelineError(f"{config.root}: no such picture folder (fma_small's pictures are not bundled: the "
                            "default reads ../shared/data/fma_small_mel beside the repository; give --root DIR)")
    layout = RunLayout(root)
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
                    start_timeout=KERNEL_START_SECONDS,
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
