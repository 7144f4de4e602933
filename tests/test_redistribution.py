"""The repository holds only data it may redistribute: GTZAN clips and fma_small pictures are read from
the shared data folder beside it (../shared/data), never committed; the 10 FMA clips of data/sample/fma/audio
(Creative Commons tracks) are the one allowed copy."""
import hashlib
import subprocess
from pathlib import Path

from conftest import ROOT, SHARED_FOLDERS, shared_data
from utils.data.datasets import SHARED_DATA

# audio, pictures and the arrays pictures or embeddings are stored in
MEDIA = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".au", ".aif", ".aiff", ".opus",
         ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".npy", ".npz"}
AUDIO = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".au", ".aif", ".aiff", ".opus"}
BUNDLED = Path("data/sample/fma/audio")  # may hold exactly the shared folder's fma_sample/audio clips
BUNDLED_SOURCE = Path("fma_sample/audio")


def committed(suffixes: set[str]) -> list[Path]:
    """Files git tracks (as paths from the repository) whose suffix is in ``suffixes``."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [Path(p) for p in listed.decode().split("\0") if p and Path(p).suffix.lower() in suffixes]


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_the_only_committed_audio_is_the_ten_fma_clips():
    audio = committed(AUDIO)
    assert sorted(p.name for p in audio) == [f"{t}.mp3" for t in (
        "000002", "000010", "000140", "001039", "001066", "001069", "001073", "001075", "001082", "001083")]
    assert all(p.parent.parent == BUNDLED for p in audio), audio
    listed = subprocess.run(["git", "ls-files", "data/sample"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "gtzan" not in listed.stdout.lower()


def test_no_committed_media_file_is_a_copy_of_the_shared_data():
    for name in SHARED_FOLDERS:
        shared_data(name)  # the first folder absent skips, naming it
    ours = {p: (ROOT / p).stat().st_size for p in committed(MEDIA) if (ROOT / p).is_file()}
    sizes = set(ours.values())
    # hash only the shared files a committed file could equal: same size
    theirs: dict[str, list[Path]] = {}
    for f in SHARED_DATA.rglob("*"):
        if f.suffix.lower() in MEDIA and f.is_file() and f.stat().st_size in sizes:
            theirs.setdefault(sha1(f), []).append(f.relative_to(SHARED_DATA))
    copies = {str(p): [str(s) for s in theirs[digest]] for p in ours
              if (digest := sha1(ROOT / p)) in theirs
              and any(p.parent.parent != BUNDLED or s != BUNDLED_SOURCE / p.relative_to(BUNDLED)
                      for s in theirs[digest])}
    assert copies == {}, f"committed copies of ../shared/data: {copies}"
    bundled = [p for p in ours if p.parent.parent == BUNDLED]
    assert len(bundled) == 10 and all(
        sha1(ROOT / p) == sha1(SHARED_DATA / BUNDLED_SOURCE / p.relative_to(BUNDLED)) for p in bundled)
