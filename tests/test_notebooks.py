"""The five notebooks: committed clean and parameterised, executed by the pipeline on GTZAN clips.

The pipeline test runs all five notebooks with papermill on 20 GTZAN clips of
../shared/data/gtzan_mini (``--quick``: one epoch), once per session, and checks what a run
must leave behind: executed copies without errors, the reports and figures
under their stable names, ``run.json``. A run folder is never overwritten
silently (refused, resumed, or forced). One test executes the committed
01_eda with nbval (lax), exactly as committed. The executed copies under
``notebooks/executed/`` (``make notebooks``) must hold the current notebooks' cells.
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
from utils.models.registry import CNN_MODELS
from utils.apps import pipeline
from utils.apps.notebooks import AUDIO_STUB, publish
from utils.apps.pipeline import (FIGURES, NOTEBOOKS, REPORTS, PipelineConfig, PipelineError, RunLayout, run_pipeline,
                                 smoke_test)
from utils.apps.cli import build_parser, main
from utils.apps.cli import pipeline as pipeline_cli

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_LIMIT = 10_000  # bytes of outputs a committed notebook may carry
FILE_LIMIT = 64 * 1024
EXECUTED_LIMIT = 3 * 1024 * 1024  # bytes of all five executed copies together
# knobs a notebook keeps at its own default (the pipeline does not set them)
NOTEBOOK_ONLY = {"model", "balancing", "growth_model", "growth_steps", "n_examples", "transfer"}
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
    setup = "from utils.apps.notebooks import open_run\n\nlayout = open_run(out_dir, keras_backend"
    assert code[1].source.startswith(setup)
    assert not [c for c in code if "backend.use(" in c.source or "RunLayout(" in c.source]
    text = "".join(c.source for c in nb.cells)
    assert ".notes/" not in text and "(../docs/design.md#notebooks-and-the-pipeline)" in text
    assert all(c.execution_count is None for c in code)
    assert sum(len(json.dumps(c.outputs)) for c in code) <= OUTPUT_LIMIT
    assert path.stat().st_size <= FILE_LIMIT
    declared = set(papermill.inspect_notebook(str(path)))
    assert {"keras_backend", "out_dir", "seed"} <= declared
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
    """notebooks/executed/ is `make notebooks`'s run on the bundled sample; rerun it when a notebook changes."""
    executed = nbformat.read(ROOT / "notebooks" / "executed" / f"{name}.ipynb", as_version=4)
    assert _cells(executed) == _cells(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)), \
        "notebooks/executed/ is stale: run `make notebooks`"
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.get("data", {}).get("image/png") for o in outputs)
    assert {c.metadata.papermill.status for c in executed.cells} == {"completed"}
    injected = next(c.source for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    if "data_root" in injected:  # the 20 GTZAN clips the repository bundled then, named relative to it
        assert 'data_root = "data/sample/gtzan"' in injected
    assert str(ROOT) not in json.dumps(executed)  # paths made relative to the repository
    total = sum((ROOT / "notebooks" / "executed" / f"{n}.ipynb").stat().st_size for n in NOTEBOOKS)
    assert total <= EXECUTED_LIMIT


def test_publish_refuses_a_run_that_did_not_execute(tmp_path):
    with pytest.raises(PipelineError, match="01_eda.ipynb: not executed"):
        publish(tmp_path, tmp_path / "executed")
    assert not (tmp_path / "executed").exists()


def test_smoke_test_runs_are_named():
    assert "--quick" in PipelineConfig(quick=True).smoke_test()
    assert "bundled sample" in PipelineConfig(root=str(ROOT / "data" / "sample" / "fma" / "audio")).smoke_test()
    assert PipelineConfig().smoke_test() is None  # the default root: ../shared/data/gtzan_mini
    assert smoke_test({"smoke_test": None, "config": {"quick": True}}) is None  # what the run recorded
    assert "--quick" in smoke_test({"config": {"quick": True, "root": "/data/gtzan_mini"}})  # a run.json from before


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
def test_pipeline_runs_the_five_notebooks_on_the_sample(sample_run):
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
    listened = nbformat.read(written[0], as_version=4)
    assert any(o.get("data", {}).get("text/plain") == AUDIO_STUB for c in listened.cells for o in c.get("outputs", []))
    executed = sum((root / "notebooks" / p.name).stat().st_size for p in written)
    assert sum(p.stat().st_size for p in written) < executed / 2


@pytest.mark.slow
def test_pipeline_writes_reports_and_figures_with_stable_names(sample_run):
    root, _ = sample_run
    figures = {p.stem for p in (root / "reports" / "figures").glob("*.png")}
    assert set(FIGURES) <= figures, f"missing: {set(FIGURES) - figures}"
    for model in QUICK.models:
        assert f"multiclass_{model}_tracks_confusion" in figures
    assert {n for n in REPORTS} <= {p.name for p in (root / "reports").iterdir()}
    test = json.loads((root / "reports" / "test_metrics.json").read_text())
    split = json.loads((root / "reports" / "split.json").read_text())
    assert test["n_samples"] == 10 and len(test["class_names"]) == 10  # one held-out clip per genre
    assert "2-fold" in split["how"]
    results = json.loads((root / "reports" / "results.json").read_text())
    sources = [r["source"] for r in results["table"]]
    assert sources.count("ours") == len(QUICK.models) + 4 and sum(s.startswith("published") for s in sources) == 3
    growth = json.loads((root / "reports" / "genre_growth.json").read_text())
    assert [s["n_genres"] for s in growth["steps"]] == [2, 4, 8, 10]
    balancing = json.loads((root / "reports" / "binary_balancing.json").read_text())
    assert {r["balancing"] for r in balancing["runs"]} == {"none", "class_weight", "oversample"}
    card = json.loads((root / "models" / "best.card.json").read_text())
    chosen = json.loads((root / "reports" / "multiclass_models.json").read_text())
    assert card["architecture"] == chosen["best"] and len(card["labels"]) == 10
    transfer = chosen["transfer"]  # musicnn on the CNNs' split, beside them in 04's table
    assert transfer["model"] == "musicnn (transfer)" and transfer["n_test_tracks"] == 10
    tuned = json.loads(Path(transfer["model_path"]).with_suffix(".card.json").read_text())
    assert tuned["data"]["split"] == split["how"]
    assert (root / "models" / "best.keras").stat().st_size > 0
    cached = json.loads((root / "reports" / "spectrograms.json").read_text())
    assert (cached["n_ok"], cached["n_skipped"], cached["n_windows"]) == (20, 0, 400)


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
def test_force_runs_again_and_keeps_the_cache(quick_config, tmp_path):
    root = tmp_path / "run"
    first = run_pipeline(quick_config, root, notebooks=("01_eda",), progress=False, log=lambda line: None)
    assert first["status"] == "partial" and first["notebooks"]["02_spectrograms"]["status"] == "pending"
    (root / "reports" / "stale.json").write_text("{}")
    (root / "cache").mkdir()
    (root / "cache" / "frontend.json").write_text("{}")
    again = run_pipeline(quick_config, root, notebooks=("01_eda",), force=True, progress=False, log=lambda line: None)
    assert again["notebooks"]["01_eda"]["status"] == "ok"
    assert not (root / "reports" / "stale.json").exists() and (root / "reports" / "eda.json").exists()
    assert (root / "cache" / "frontend.json").read_text() == "{}"


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
    args = parser.parse_args(["pipeline", "--dataset", "fma", "--root", "data/fma_medium", "--metadata",
                              "data/fma_metadata/tracks.csv", "--epochs", "60", "--out", "runs/medium"])
    config = pipeline_cli.config_from_args(args)
    assert config.binary_genres == ("Hip-Hop", "Rock") and config.epochs == 60 and config.models == CNN_MODELS
    params = config.parameters(RunLayout(Path("runs/medium")))
    assert Path(params["data_root"]).is_absolute() and params["fma_metadata"] == params["metadata"]
    assert params["out_dir"] == str(Path("runs/medium").resolve())
    folder = parser.parse_args(["pipeline", "--dataset", "folder", "--root", "x"])
    assert pipeline_cli.config_from_args(folder).binary_genres is None
    assert pipeline_cli.config_from_args(parser.parse_args(["pipeline"])).root == PipelineConfig.root
    assert pipeline_cli.config_from_args(parser.parse_args(["pipeline"])) == PipelineConfig()
    fe = pipeline_cli.config_from_args(parser.parse_args(["pipeline", "--n-mels", "96", "--hop-length", "256"]))
    assert (fe.n_mels, fe.hop_length) == (96, 256) and fe.parameters(RunLayout(Path("r")))["n_mels"] == 96
    assert main(["pipeline", "--dataset", "fma"]) == 1
    assert "needs --root" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["pipeline", "--help"])
    assert done.value.code == 0 and "--resume" in capsys.readouterr().out
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("")
    assert main(["pipeline", "--root", ANY_ROOT.root, "--out", str(taken)]) == 1
    assert "not a pipeline run" in capsys.readouterr().err
    assert main(["pipeline", "--root", str(tmp_path / "absent"), "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip().endswith("absent: no such audio folder (GTZAN is not bundled: the default "
                                                    "reads ../shared/data/gtzan_mini beside the repository; give "
                                                    "--root DIR)")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_committed_eda_notebook_runs_under_nbval(tmp_path):
    # the notebook exactly as committed, run where its relative defaults resolve: ../data (linked to the
    # repository's), ../../shared/data (linked to the shared data folder) and ../runs (inside tmp_path)
    shared = shared_data("gtzan_mini").parents[1]
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
