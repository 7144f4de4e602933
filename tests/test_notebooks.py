"""The five notebooks: committed clean and parameterised, executed by the pipeline on fma_small's pictures.

The pipeline test runs all five notebooks with papermill on a slice of ../shared/data/fma_small_mel
(``--quick``: 20 pictures per genre and split, one epoch), once per session, and checks what a run
must leave behind: executed copies without errors, the reports and figures
under their stable names, ``run.json``. A run folder is never overwritten
silently (refused, resumed, or forced). One test executes the committed
01_eda with nbval (lax), exactly as committed. The executed copies under
``notebooks/executed/`` (``make notebooks``: the full run on fma_small) must hold the current
notebooks' cells.
"""
import base64
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from conftest import shared_data
from utils.apps import pipeline
from utils.apps.notebooks import publish
from utils.apps.pipeline import (FIGURES, NOTEBOOKS, REPORTS, PipelineConfig, PipelineError, RunLayout, run_pipeline,
                                 smoke_test)
from utils.apps.cli import build_parser, main
from utils.apps.cli import pipeline as pipeline_cli

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_LIMIT = 10_000  # bytes of outputs a committed notebook may carry
FILE_LIMIT = 64 * 1024
EXECUTED_LIMIT = 3 * 1024 * 1024  # bytes of all five executed copies together
# knobs a notebook keeps at its own default (the pipeline does not set them)
NOTEBOOK_ONLY = {"minority_fraction", "balancing", "growth_steps"}
QUICK = PipelineConfig(quick=True)  # the parameters of the session's sample_run (conftest.py), on its own root
# an existing folder: runs refused, or failing, before anything reads it
ANY_ROOT = PipelineConfig(quick=True, root=str(ROOT / "data" / "sample"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_parameterised_and_stripped(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "one `parameters` cell, the first code cell"
    # one set-up call, which chooses the backend before anything can import Keras
    setup = "from utils.apps.notebooks import open_run, read_report\n\nlayout = open_run(out_dir, keras_backend"
    assert code[1].source.startswith(setup)
    assert not [c for c in code if "backend.use(" in c.source or "RunLayout(" in c.source]
    text = "".join(c.source for c in nb.cells)
    assert ".notes/" not in text and "(../docs/design.md#notebooks-and-the-pipeline)" in text
    assert all(c.execution_count is None for c in code)
    assert sum(len(json.dumps(c.outputs)) for c in code) <= OUTPUT_LIMIT
    assert path.stat().st_size <= FILE_LIMIT
    declared = set(papermill.inspect_notebook(str(path)))
    assert {"keras_backend", "out_dir"} <= declared
    given = set(QUICK.parameters(RunLayout(Path("runs/x"))))
    assert declared <= given | NOTEBOOK_ONLY, f"parameters the pipeline cannot set: {declared - given - NOTEBOOK_ONLY}"


def test_the_section_the_notebooks_link_to_exists_from_the_sources_and_the_executed_copies():
    assert "\n## Notebooks and the pipeline\n" in (ROOT / "docs" / "design.md").read_text()
    for folder in (ROOT / "notebooks", ROOT / "notebooks" / "executed"):
        for path in sorted(folder.glob("0*.ipynb")):
            links = re.findall(r"\]\((?![a-z]+:|#)([^)#\s]+)", path.read_text())
            assert links and all((folder / link).resolve().is_file() for link in links), (path, links)


def test_open_run_chooses_the_backend_before_keras_is_imported(tmp_path):
    code = ("import sys\nfrom utils.apps.notebooks import open_run\nassert 'keras' not in sys.modules\n"
            f"layout = open_run({str(tmp_path / 'run')!r}, 'jax')\n"
            "import keras\nprint(keras.config.backend(), layout.figures.is_dir())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "jax True"
    assert f"run: {(tmp_path / 'run').resolve()}" in done.stdout


def _cells(nb) -> list[tuple[str, str]]:
    """The cells, link targets aside: publish rebases them for its folder (checked on their own below)."""
    return [(c.cell_type, re.sub(r"\]\([^)]*\)", "]()", c.source)) for c in nb.cells
            if "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_executed_copy_is_of_the_current_notebook(name):
    """notebooks/executed/ is a pipeline run on fma_small (`make notebooks`); rerun it when a notebook changes."""
    executed = nbformat.read(ROOT / "notebooks" / "executed" / f"{name}.ipynb", as_version=4)
    assert _cells(executed) == _cells(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)), \
        "notebooks/executed/ is stale: run `make notebooks`"
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.get("data", {}).get("image/png") for o in outputs)
    assert {c.metadata.papermill.status for c in executed.cells} == {"completed"}
    injected = next(c.source for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    if "data_root" in injected:  # fma_small's shared pictures, named relative to the repository
        assert 'data_root = "../shared/data/fma_small_mel"' in injected
    assert str(ROOT) not in json.dumps(executed)  # paths made relative to the repository
    total = sum((ROOT / "notebooks" / "executed" / f"{n}.ipynb").stat().st_size for n in NOTEBOOKS)
    assert total <= EXECUTED_LIMIT


def test_publish_refuses_a_run_that_did_not_execute(tmp_path):
    with pytest.raises(PipelineError, match="01_eda.ipynb: not executed"):
        publish(tmp_path, tmp_path / "executed")
    assert not (tmp_path / "executed").exists()


def test_smoke_test_runs_are_named():
    assert PipelineConfig(quick=True).smoke_test() == "--quick (1 epoch), a slice of 20 pictures per genre and split"
    assert PipelineConfig(per_genre=50).smoke_test() == "a slice of 50 pictures per genre and split"
    assert PipelineConfig().smoke_test() is None  # every picture of ../shared/data/fma_small_mel
    assert smoke_test({"smoke_test": None, "config": {"quick": True}}) is None  # what the run recorded
    assert "--quick" in smoke_test({"config": {"quick": True}})  # a run.json from before the field


def test_the_kernel_is_this_python():
    assert pipeline.check_kernel("python3") == sys.executable
    with pytest.raises(PipelineError, match="no Jupyter kernel"):
        pipeline.check_kernel("no-such-kernel-here")


# what TensorFlow, absl, oneDNN and the CUDA probe print at start-up, and tf.function's retracing notices
LIBRARY_NOISE = re.compile(r"absl::InitializeLog|oneDNN custom operations|cuInit|cuda_|retracing|"
                           r"^[IWE]\d{4} \d\d:\d\d:\d\d|This TensorFlow binary is optimized", re.M)


def _printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_executed_copies_show_no_library_log_noise(name):
    nb = nbformat.read(ROOT / "notebooks" / "executed" / f"{name}.ipynb", as_version=4)
    assert not LIBRARY_NOISE.findall(_printed(nb)), LIBRARY_NOISE.findall(_printed(nb))[:5]


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the first test to use sample_run pays for the whole run (~3-6 min on 2 cores)
def test_pipeline_runs_the_five_notebooks_on_a_slice_of_fma_small(sample_run):
    root, record = sample_run
    assert record["status"] == "ok", {n: e.get("error") for n, e in record["notebooks"].items()}
    assert json.loads((root / "run.json").read_text()) == record
    assert record["parameters"]["epochs"] == 1 and record["python"] == sys.executable
    for name in NOTEBOOKS:
        entry = record["notebooks"][name]
        assert entry["status"] == "ok" and entry["seconds"] > 0
        assert len(entry["load_average"]) == 3 and entry["cpus"] == os.cpu_count()
        nb = nbformat.read(root / "notebooks" / f"{name}.ipynb", as_version=4)
        assert {c.metadata.papermill.status for c in nb.cells} == {"completed"}
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        assert any(o.get("data", {}).get("image/png") for o in outputs), f"{name} shows no figure"
        assert (root / "logs" / f"{name}.log").exists()
        assert not LIBRARY_NOISE.findall(_printed(nb)), (name, LIBRARY_NOISE.findall(_printed(nb))[:5])
    first = nbformat.read(root / "notebooks" / "01_eda.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in first.cells if c.cell_type == "code" for o in c.outputs)
    assert f"Python: {sys.executable}" in printed  # the kernel ran this environment's Python
    assert record["smoke_test"] == QUICK.smoke_test()


@pytest.mark.slow
def test_publish_makes_the_executed_copies_fit_to_commit(sample_run, tmp_path):
    root, _ = sample_run
    written = publish(root, tmp_path / "executed", max_width=600)
    assert [p.name for p in written] == [f"{n}.ipynb" for n in NOTEBOOKS]
    from PIL import Image

    for path, name in zip(written, NOTEBOOKS):
        text = path.read_text()
        assert str(ROOT) not in text and "<audio" not in text
        nb = nbformat.reads(text, as_version=4)
        assert _cells(nb) == _cells(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4))
        for o in (o for c in nb.cells if c.cell_type == "code" for o in c.outputs):
            if "image/png" in o.get("data", {}):
                assert Image.open(io.BytesIO(base64.b64decode(o.data["image/png"]))).width <= 600
    first = nbformat.read(written[0], as_version=4)
    injected = next(c.source for c in first.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'data_root = "../shared/data/fma_small_mel"' in injected  # the shared folder, named relative
    executed = sum((root / "notebooks" / p.name).stat().st_size for p in written)
    assert sum(p.stat().st_size for p in written) < executed / 2


@pytest.mark.slow
def test_pipeline_writes_reports_and_figures_with_stable_names(sample_run):
    root, _ = sample_run
    figures = {p.stem for p in (root / "reports" / "figures").glob("*.png")}
    assert set(FIGURES) <= figures, f"missing: {set(FIGURES) - figures}"
    assert {n for n in REPORTS} <= {p.name for p in (root / "reports").iterdir()}
    report = {name: json.loads((root / "reports" / name).read_text()) for name in REPORTS if name.endswith(".json")}
    split = report["split.json"]
    assert split["tracks"] == {"training": 160, "validation": 160} and split["artists_in_two_splits"] == 0
    assert "test" not in split["track_ids"]  # the sealed split is never read
    assert report["spectrograms.json"]["parity"]["equal"] == 1.0  # 000002.mp3 drawn as its shared picture
    pair = report["genre_order.json"]["pair"]
    assert report["binary_metrics.json"]["class_names"] == sorted(pair)
    assert report["binary_metrics.json"]["n_samples"] == 40  # 20 validation pictures of each genre
    runs = report["binary_balancing.json"]["runs"]
    assert [r["training"] for r in runs] == ["all tracks (1:1)", "1:5, none", "1:5, class_weight", "1:5, oversample",
                                             "1:5, undersample"]
    assert runs[1]["n_training"] == 24 and runs[3]["n_training"] == 40  # 20 + 4 pictures; 4 repeated to 20
    assert [s["n_genres"] for s in report["genre_growth.json"]["steps"]] == [2, 4, 8]
    validation = report["validation_metrics.json"]
    assert validation["n_samples"] == 160 and len(validation["class_names"]) == 8
    rows = {r["model"] for r in report["results.json"]["table"]}
    assert {"majority (most frequent training genre)", "picture statistics + logistic regression",
            "VGGish (AudioSet) + logistic regression", "04's cnn1d (this run)"} <= rows
    card = json.loads((root / "models" / "best.card.json").read_text())
    assert card["architecture"] == "cnn1d" and len(card["labels"]) == 8 and card["frontend"]["columns"] == 128


@pytest.mark.slow
def test_an_existing_run_is_refused_resumed_or_not_mixed(sample_run, quick_config):
    root, record = sample_run
    with pytest.raises(PipelineError, match="already holds a run"):
        run_pipeline(quick_config, root, progress=False)
    lines = []
    resumed = run_pipeline(quick_config, root, resume=True, progress=False, log=lines.append)
    assert resumed["status"] == "ok" and len(lines) == len(NOTEBOOKS)
    assert all("skipped" in line for line in lines)
    assert {n: e["seconds"] for n, e in resumed["notebooks"].items()} == \
        {n: e["seconds"] for n, e in record["notebooks"].items()}
    with pytest.raises(PipelineError, match="other parameters.*epochs"):
        run_pipeline(dataclasses.replace(quick_config, quick=False), root, resume=True, progress=False)
    with pytest.raises(PipelineError, match="not both"):
        run_pipeline(quick_config, root, resume=True, force=True, progress=False)


def test_a_folder_that_is_not_a_run_is_never_touched(tmp_path):
    mine = tmp_path / "music"
    mine.mkdir()
    (mine / "song.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(PipelineError, match="not a pipeline run"):
            run_pipeline(ANY_ROOT, mine, force=force, progress=False)
    assert [p.name for p in mine.iterdir()] == ["song.txt"]


@pytest.mark.slow
def test_force_runs_again_from_the_start(quick_config, tmp_path):
    root = tmp_path / "run"
    first = run_pipeline(quick_config, root, notebooks=("01_eda",), progress=False, log=lambda line: None)
    assert first["status"] == "partial" and first["notebooks"]["02_spectrograms"]["status"] == "pending"
    (root / "reports" / "stale.json").write_text("{}")
    again = run_pipeline(quick_config, root, notebooks=("01_eda",), force=True, progress=False, log=lambda line: None)
    assert again["notebooks"]["01_eda"]["status"] == "ok"
    assert not (root / "reports" / "stale.json").exists() and (root / "reports" / "eda.json").exists()


def test_a_failing_notebook_stops_the_run_and_is_recorded(tmp_path):
    # 02 before 01: its split plan is missing, so it fails in its setup cell
    record = run_pipeline(ANY_ROOT, tmp_path / "run", notebooks=("02_spectrograms",), progress=False,
                          log=lambda line: None)
    entry = record["notebooks"]["02_spectrograms"]
    assert record["status"] == "failed" and entry["status"] == "failed"
    assert "FileNotFoundError" in entry["error"] and "01_eda" in entry["error"]
    assert (tmp_path / "run" / "notebooks" / "02_spectrograms.ipynb").exists()


def test_command_line(tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["pipeline", "--root", "pictures", "--per-genre", "50", "--epochs", "30",
                              "--binary-genres", "Folk", "Rock", "--out", "runs/small"])
    config = pipeline_cli.config_from_args(args)
    assert (config.per_genre, config.epochs, config.binary_genres, config.model) == (50, 30, ("Folk", "Rock"), "cnn1d")
    params = config.parameters(RunLayout(Path("runs/small")))
    assert Path(params["data_root"]).is_absolute() and params["vggish"].endswith("pictures/vggish_training_validation.npz")
    assert params["out_dir"] == str(Path("runs/small").resolve()) and params["per_genre"] == 50
    assert pipeline_cli.config_from_args(parser.parse_args(["pipeline"])) == PipelineConfig()
    assert PipelineConfig().root.endswith("shared/data/fma_small_mel")
    quick = pipeline_cli.config_from_args(parser.parse_args(["pipeline", "--quick"])).parameters(RunLayout(Path("r")))
    assert (quick["per_genre"], quick["epochs"]) == (20, 1)
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["pipeline", "--help"])
    assert done.value.code == 0 and "--resume" in capsys.readouterr().out
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("")
    assert main(["pipeline", "--root", ANY_ROOT.root, "--out", str(taken)]) == 1
    assert "not a pipeline run" in capsys.readouterr().err
    assert main(["pipeline", "--root", str(tmp_path / "absent"), "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "absent: no such picture folder (fma_small's pictures are not bundled: the default reads "
        "../shared/data/fma_small_mel beside the repository; give --root DIR)")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_committed_eda_notebook_runs_under_nbval(tmp_path):
    # the notebook exactly as committed, run where its relative defaults resolve: ../data (linked to the
    # repository's), ../../shared/data (linked to the shared data folder) and ../runs (inside tmp_path)
    shared = shared_data("fma_small_mel").parents[1]
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "01_eda.ipynb", repo / "notebooks")
    (repo / "data").symlink_to(ROOT / "data")
    (tmp_path / "shared").symlink_to(shared)
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q",
                           "-p", "no:cacheprovider", "notebooks/01_eda.ipynb"],
                          cwd=repo, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert (repo / "runs" / "notebooks" / "reports" / "eda.json").exists()


def test_s3_output(quick_config, tmp_path, monkeypatch):
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BOTO3_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="runs")
        out = "s3://runs/fma-genre/sample"
        record = run_pipeline(quick_config, out, work=tmp_path / "work", notebooks=("01_eda",), progress=False,
                              log=lambda line: None)
        assert record["notebooks"]["01_eda"]["status"] == "ok"
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="runs", Prefix="fma-genre/sample/")["Contents"]}
        for key in ("notebooks/01_eda.ipynb", "run.json", "reports/eda.json", "reports/split.json",
                    "reports/figures/eda_class_balance.png", "logs/01_eda.log"):
            assert f"fma-genre/sample/{key}" in keys
        body = s3.get_object(Bucket="runs", Key="fma-genre/sample/notebooks/01_eda.ipynb")["Body"].read()
        executed = nbformat.reads(body.decode(), as_version=4)
        assert {c.metadata.papermill.status for c in executed.cells} == {"completed"}
        with pytest.raises(PipelineError, match="already holds a run"):
            run_pipeline(quick_config, out, work=tmp_path / "other", notebooks=("01_eda",), progress=False)
