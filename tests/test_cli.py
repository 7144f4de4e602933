"""The fma-genre command on the real sample, as a user runs it."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_MODEL_CLIPS
from utils.apps.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "spectrograms" in capsys.readouterr().out


def test_spectrograms_of_a_folder(sample, capsys, tmp_path):
    rc = main(["spectrograms", str(sample / "fma" / "audio" / "000"), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "000002.mp3" in out and "3 of 3 files" in out
    S = np.load(tmp_path / "000010.npy")
    assert S.shape == (1290, 128) and S.dtype == np.float32  # 29.99 s at 22,050 Hz, hop 512
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_files_are_listed_and_fail_the_exit_code(capsys, tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"")
    rc = main(["spectrograms", str(TINY_MODEL_CLIPS["Rock"]), str(bad)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "1 of 2 files" in captured.out
    assert f"failed: {bad}: empty file (0 bytes)" in captured.err
    assert "Traceback" not in captured.err


def test_missing_path_is_a_clear_error(capsys):
    assert main(["spectrograms", "no/such/folder"]) == 1
    assert "fma-genre: error: no/such/folder: no such file or folder" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "utils.apps.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("fma-genre ")


def test_predict_prints_a_table_and_writes_json(tiny_model, sample, tmp_path, capsys):
    rc = main(["predict", str(sample / "fma" / "audio" / "000"), "--model", str(tiny_model), "--segments"])
    out = capsys.readouterr().out
    assert rc == 0 and "000002.mp3" in out and "top 3" in out and " s  " in out
    rc = main(["predict", str(sample / "fma"), "--model", str(tiny_model), "--format", "json",
               "--output", str(tmp_path / "p.json"), "--jobs", "2"])
    import json

    rows = json.loads((tmp_path / "p.json").read_text())
    assert rc == 0 and len(rows) == 10 and all(abs(sum(r["probabilities"].values()) - 1) < 1e-6 for r in rows)


def test_predict_csv_and_a_bad_file(tiny_model, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    rc = main(["predict", str(TINY_MODEL_CLIPS["Rock"]), str(bad),
               "--model", str(tiny_model), "--format", "csv"])
    out, err = capsys.readouterr()
    assert rc == 1
    rows = out.splitlines()
    assert rows[0] == "path,genre,probability,Hip-Hop,Rock,windows_analysed,window_budget,error" and len(rows) == 3
    assert rows[1].startswith(str(TINY_MODEL_CLIPS["Rock"]) + ",") and rows[1].endswith(",")
    assert err.startswith(f"failed: {bad}: ") and len(err.splitlines()) == 1
    reason = err.strip().removeprefix(f"failed: {bad}: ")
    assert rows[2] == f"{bad},,,,,,,{reason}"  # item 8: the failed file is listed with its error


def test_predict_with_a_missing_model(sample, tmp_path, capsys):
    assert main(["predict", str(sample / "fma"), "--model", str(tmp_path / "x.keras")]) == 1
    assert "x.keras: no such model file" in capsys.readouterr().err


def test_train_runs_end_to_end_on_the_sample(fma_wavs, tmp_path, capsys):
    """`fma-genre extract` then `fma-genre train` on real sample clips, as a user runs them: 1 epoch,
    a model with its card, test metrics printed. `--spec-augment 1` is 1 time and 1 frequency mask."""
    songs = tmp_path / "songs"
    wavs = {p.stem: p for p in fma_wavs}  # untagged: no artist, so the split is by track
    for genre, clip in TINY_MODEL_CLIPS.items():
        (songs / genre).mkdir(parents=True)
        for k in range(10):  # 10 tracks per genre, the least a stratified 80/10/10 split takes
            (songs / genre / f"{clip.stem}-{k}.wav").symlink_to(wavs[clip.stem])
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert main(["extract", "--dataset", "folder", "--root", str(songs), "--out", str(cache), "--workers", "0"]) == 0
    rc = main(["train", "--cache", str(cache), "--out", str(run), "--epochs", "1", "--batch-size", "16",
               "--spec-augment", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "training cnn on 16 tracks of 2 classes (2 validation, 2 test" in captured.err
    assert "test: track accuracy" in captured.out and f"model: {run / 'model.keras'}" in captured.out
    card = json.loads((run / "model.card.json").read_text())
    assert card["labels"] == ["Hip-Hop", "Rock"] and card["training"]["epochs"] == 1
    augment = card["training"]["config"]["augment"]
    assert (augment["time_masks"], augment["freq_masks"]) == (1, 1)
