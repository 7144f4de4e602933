"""The CLI on a corpus of broken and unusual files made at test time with real encoders (FFmpeg, SoX):
each file is classified, or failed with one line that names it and says why; never a traceback."""
from __future__ import annotations

import csv
import io
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEEDS = [tool for tool in ("ffmpeg", "sox") if not shutil.which(tool)]
pytestmark = pytest.mark.skipif(bool(NEEDS) and not os.environ.get("CI"),
                                reason=f"{' and '.join(NEEDS)} not installed (CI installs them: .ci/run)")

CLASSIFIED = None  # the outcome of a file that must be classified
# file name -> None (classified) or the reason its one line must give
EXPECTED = {
    "empty.mp3": "empty file (0 bytes)",
    "text.wav": "not an audio file",
    "archive.mp3": "not an audio file: a ZIP archive (starts with b'PK\\x03\\x04",
    "truncated.mp3": "truncated MP3",
    "header_only.wav": "no audio samples",
    "bit_flipped.mp3": CLASSIFIED,  # MP3 frames resynchronise: a few damaged frames are skipped
    "half_second.wav": "too short",
    "silence.wav": "digital silence",
    "8khz_8bit.wav": CLASSIFIED,
    "96khz_6ch.wav": CLASSIFIED,
    "opus.opus": CLASSIFIED,
    "vorbis.ogg": CLASSIFIED,
    "lossless.flac": CLASSIFIED,
    "aac.m4a": CLASSIFIED,
    "Sigur Rós – Hoppípolla 日本語.mp3": CLASSIFIED,
    "one_hour.mp3": CLASSIFIED,
}


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sample, fma_wavs) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    wav = fma_wavs[3]  # 001039, Rock
    mp3 = sample / "fma" / "audio" / "000" / "000002.mp3"
    (d / "empty.mp3").write_bytes(b"")
    (d / "text.wav").write_text("These are the liner notes, not the song.\n")
    with zipfile.ZipFile(d / "archive.mp3", "w") as zf:
        zf.write(mp3, "000002.mp3")
    data = mp3.read_bytes()
    (d / "truncated.mp3").write_bytes(data[:len(data) // 2])
    _run("sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(d / "header_only.wav"), "trim", "0", "0")
    flipped = bytearray(data)
    rng = random.Random(0)
    for i in rng.sample(range(len(data) // 4, 3 * len(data) // 4), 200):
        flipped[i] ^= 1 << rng.randrange(8)
    (d / "bit_flipped.mp3").write_bytes(bytes(flipped))
    _run("sox", str(wav), str(d / "half_second.wav"), "trim", "0", "0.5")
    _run("sox", "-D", "-n", "-r", "22050", "-c", "1", "-b", "16", str(d / "silence.wav"), "trim", "0", "30")  # -D: no dither
    _run("sox", str(wav), "-r", "8000", "-b", "8", "-e", "unsigned-integer", str(d / "8khz_8bit.wav"))
    _run("ffmpeg", "-v", "error", "-i", str(wav), "-ar", "96000", "-ac", "6", str(d / "96khz_6ch.wav"))
    _run("ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", "-b:a", "64k", str(d / "opus.opus"))
    _run("ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libvorbis", "-q:a", "3", str(d / "vorbis.ogg"))
    _run("ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "flac", str(d / "lossless.flac"))
    _run("ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(d / "aac.m4a"))
    shutil.copy(mp3, d / "Sigur Rós – Hoppípolla 日本語.mp3")
    _run("ffmpeg", "-v", "error", "-stream_loop", "119", "-i", str(wav), "-ac", "1", "-c:a", "libmp3lame",
         "-b:a", "32k", str(d / "one_hour.mp3"))  # 120 x 30 s
    assert sorted(p.name for p in d.iterdir()) == sorted(EXPECTED)
    return d


@pytest.mark.timeout(900)
def test_every_file_is_classified_or_named_with_its_reason(corpus, tiny_model, tmp_path):
    out_csv = tmp_path / "out.csv"
    run = subprocess.run([sys.executable, "-m", "utils.apps.cli", "predict", str(corpus), "--model", str(tiny_model),
                          "--format", "csv", "--output", str(out_csv), "--jobs", "2"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=880)
    assert "Traceback" not in run.stderr and run.returncode == 1, run.stderr
    rows = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(out_csv.read_text(encoding="utf-8")))}
    assert sorted(rows) == sorted(EXPECTED)
    failed_lines = run.stderr.splitlines()
    for name, reason in EXPECTED.items():
        row = rows[name]
        if reason is CLASSIFIED:
            assert row["error"] == "" and row["genre"] in ("Hip-Hop", "Rock"), (name, row)
        else:
            assert row["genre"] == "" and reason in row["error"], (name, row["error"])
            assert f"failed: {corpus / name}: {row['error']}" in failed_lines, name
    assert len(failed_lines) == sum(r is not CLASSIFIED for r in EXPECTED.values())  # one line each, nothing else
