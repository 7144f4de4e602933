"""``fma-genre predict`` when things go wrong: failed files in the output, a folder without audio,
an output that cannot be written, Ctrl-C with several jobs, and the window budget."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from conftest import TINY_MODEL_CLIPS
from utils.apps.cli import main

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hardening_probe", ROOT / "scripts" / "hardening_probe.py")
hardening_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hardening_probe)


def test_failed_files_are_in_the_json_with_their_error(tiny_model, tmp_path, capsys):
    bad = tmp_path / "notes.mp3"
    bad.write_text("not music")
    good = TINY_MODEL_CLIPS["Rock"]
    rc = main(["predict", str(good), str(bad), "--model", str(tiny_model), "--format", "json",
               "--output", str(tmp_path / "p.json")])
    out, err = capsys.readouterr()
    rows = json.loads((tmp_path / "p.json").read_text())
    assert rc == 1 and [r["path"] for r in rows] == [str(good), str(bad)]
    assert rows[0]["error"] is None and rows[0]["genre"] in TINY_MODEL_CLIPS
    assert rows[1] == {"path": str(bad), "error": "not an audio file (starts with b'not musi')"}
    assert "1 predictions and 1 failures written to" in out and err == f"failed: {bad}: {rows[1]['error']}\n"


@pytest.mark.parametrize("runtime", ["onnx", "keras"])
def test_a_run_whose_only_file_fails_exits_cleanly(runtime, tmp_path):
    """The model threads were still scoring the silent file's windows when Python exited: the C++
    runtime then aborted the process (exit status 134) after the right output."""
    import subprocess
    import sys

    import numpy as np
    import soundfile as sf

    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(16000 * 60, np.int16), 16000, subtype="PCM_16")
    done = subprocess.run([sys.executable, "-m", "utils.apps.cli", "predict", str(silent), "--runtime", runtime],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 1, done.stderr[-500:]
    assert done.stderr.splitlines()[-1] == f"failed: {silent}: silent audio (peak 0, digital silence)"
    assert "terminate called" not in done.stderr


def test_a_folder_without_audio_is_an_error(tiny_model, tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("no music here")
    assert main(["predict", str(tmp_path), "--model", str(tiny_model)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("fma-genre: error: no audio files (.mp3, ") and err.endswith(f" under {tmp_path}\n")


@pytest.mark.parametrize("command", ["predict", "organize"])
def test_jobs_below_one_is_refused_at_start(command, tmp_path, capsys):
    args = [command, str(tmp_path)] + ([str(tmp_path / "dest")] if command == "organize" else []) + ["--jobs", "0"]
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("argument --jobs: must be at least 1, got 0")


def test_an_output_that_is_a_folder_is_refused_before_classifying(tiny_model, sample, tmp_path, capsys):
    rc = main(["predict", str(sample / "fma" / "audio" / "000"), "--model", str(tiny_model), "--output", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "" and err == f"fma-genre: error: {tmp_path}: is a folder: give a file name\n"


def test_an_output_on_a_read_only_file_system(tiny_model, sample, read_only_dir, capsys):
    rc = main(["predict", str(sample / "fma" / "audio" / "000"), "--model", str(tiny_model), "--format", "csv",
               "--output", str(read_only_dir / "p.csv")])
    out, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in err
    assert err == f"fma-genre: error: {read_only_dir}: cannot write there (Read-only file system)\n"


def test_results_go_to_stdout_when_the_write_fails_at_the_end(tiny_model, sample, tmp_path, capsys, monkeypatch):
    """The output's folder was writable at the start and is not at the end (os.replace patched to fail
    as a file system gone read-only would): the results are printed, not lost, with one line why."""
    import errno

    from utils import atomic

    def replace(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
    monkeypatch.setattr(atomic.os, "replace", replace)
    out_file = tmp_path / "p.csv"
    rc = main(["predict", str(sample / "fma" / "audio" / "000"), "--model", str(tiny_model), "--format", "csv",
               "--output", str(out_file)])
    out, err = capsys.readouterr()
    assert rc == 1 and out.splitlines()[0] == "path,genre,probability,Hip-Hop,Rock,windows_analysed,window_budget,error" and len(out.splitlines()) == 4
    assert err == (f"fma-genre: error: {out_file}: cannot write it (Read-only file system); "
                   "the results went to standard output instead\n")
    assert list(tmp_path.iterdir()) == []  # no temporary file left


@pytest.mark.timeout(300)
@pytest.mark.parametrize("jobs", [1, 2, 4])
def test_ctrl_c_exits_within_2_s(jobs, tiny_model, fma_wavs, tmp_path):
    """SIGINT once files are being classified; the process (``console``, the program's entry point)
    must be gone within 2 s."""
    import numpy as np
    import soundfile as sf

    y, sr = sf.read(fma_wavs[0], dtype="int16")
    for i in range(6):  # six ten-minute files: minutes of work in flight
        sf.write(tmp_path / f"long_{i}.wav", np.tile(y, 20), sr)
    took, rc, rest = hardening_probe.interrupt_predict([str(tmp_path), "--model", str(tiny_model)], jobs,
                                                        timeout=30)
    assert took < 2, f"--jobs {jobs}: exited {took:.1f} s after Ctrl-C"
    assert rc == 130 and "fma-genre: interrupted" in rest and "Traceback" not in rest


def test_the_window_budget_is_the_default_and_the_output_says_so(tiny_model, capsys):
    from utils.models.predict import DEFAULT_BUDGET

    wav = TINY_MODEL_CLIPS["Rock"]  # 30 s: 20 windows of the tiny model's front end
    assert main(["predict", str(wav), "--model", str(tiny_model), "--format", "json", "--segments"]) == 0
    budget, = json.loads(capsys.readouterr().out)
    assert budget["windows_analysed"] == budget["window_budget"] == DEFAULT_BUDGET and len(budget["segments"]) >= 1
    assert main(["predict", str(wav), "--model", str(tiny_model), "--format", "csv", "--every-window"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    fields = dict(zip(header.split(","), row.split(",")))
    assert fields["windows_analysed"] == "20" and fields["window_budget"] == ""
    assert main(["predict", str(wav), "--model", str(tiny_model), "--format", "csv", "--windows", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[-3:] == ["3", "3", ""]


@pytest.mark.parametrize("command", ["predict", "organize", "serve"])
def test_the_window_budget_is_documented_on_every_command(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--windows N" in text and "--every-window" in text and "spread over it" in text


def test_windows_and_every_window_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "x.mp3", "--windows", "4", "--every-window"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["predict", "x.mp3"], ["organize", "in", "out"], ["serve"]])
def test_predict_organize_and_serve_take_the_budget_by_default(command):
    from utils.apps.cli import build_parser
    from utils.apps.cli.predict import max_windows
    from utils.models.predict import DEFAULT_BUDGET

    parser = build_parser()
    assert max_windows(parser.parse_args(command)) == DEFAULT_BUDGET
    assert max_windows(parser.parse_args([*command, "--windows", "4"])) == 4
    assert max_windows(parser.parse_args([*command, "--every-window"])) is None
