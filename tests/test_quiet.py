"""Item 12: a CLI command that imports TensorFlow prints no TensorFlow/CUDA noise, and nothing else is lost."""
import os
import subprocess
import sys
from pathlib import Path

from utils.apps.cli.quiet import is_noise

ROOT = Path(__file__).resolve().parents[1]


def test_predict_prints_only_its_own_messages(tiny_model, sample, tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("not music")
    script = ("import atexit, sys; atexit.register(lambda: print('tensorflow loaded:', 'tensorflow' in sys.modules))\n"
              "from utils.apps.cli import console; console()\n")  # the program's entry point, as fma-genre runs it
    out = subprocess.run([sys.executable, "-c", script, "predict", str(sample / "fma" / "audio" / "000"), str(bad),
                          "--model", str(tiny_model), "--runtime", "keras"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 1 and all(out.stdout.count(f"{t}.mp3") == 1 for t in ("000002", "000010", "000140"))
    assert "tensorflow loaded: True" in out.stdout  # the Keras runtime ran TensorFlow in that process
    assert out.stderr == f"failed: {bad}: not an audio file (starts with b'not musi')\n"


def test_only_known_noise_is_dropped():
    noise = ["I0000 00:00:1796191280.256887   26172 port.cc:153] oneDNN custom operations are on.\n",
             "W0000 00:00:1796191280.266243   26172 cudart_stub.cc:31] Could not find cuda drivers\n",
             "E0000 00:00:1796191294.627465   26172 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n",
             "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
             "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
             "appropriate compiler flags.\n"]
    kept = ["E0000 00:00:1796191294.627465   26172 bfc_allocator.cc:485] Allocator ran out of memory\n",
            "F0000 00:00:1796191294.627465   26172 check.cc:1] Check failed: fatal\n",
            "failed: song.mp3: not an audio file\n", "I0000 is how my song starts\n"]
    assert all(map(is_noise, noise)) and not any(map(is_noise, kept))
