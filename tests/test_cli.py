"""The fma-genre command on the real sample, as a user runs it."""
import subprocess
import sys

import numpy as np
import pytest

from utils.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "spectrograms" in capsys.readouterr().out


def test_spectrograms_of_a_folder(sample, capsys, tmp_path):
    rc = main(["spectrograms", str(sample / "gtzan" / "jazz"), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "jazz.00000.wav" in out and "2 of 2 files" in out
    S = np.load(tmp_path / "jazz.00001.npy")
    assert S.shape == (1293, 128) and S.dtype == np.float32
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_files_are_listed_and_fail_the_exit_code(sample, capsys, tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"")
    rc = main(["spectrograms", str(sample / "gtzan" / "metal" / "metal.00000.wav"), str(bad)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "1 of 2 files" in captured.out
    assert f"failed: {bad}: empty file (0 bytes)" in captured.err
    assert "Traceback" not in captured.err


def test_missing_path_is_a_clear_error(capsys):
    assert main(["spectrograms", "no/such/folder"]) == 1
    assert "fma-genre: error: no/such/folder: no such file or folder" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "utils.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("fma-genre ")
