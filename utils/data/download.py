"""Download, verify and unpack the official FMA archives.

``download("fma_small", Path("data"))`` fetches ``fma_small.zip`` from the
FMA authors' server, checks its SHA-1 against the published one and unpacks
it to ``data/fma_small/``. Every step survives interruption and skips work
already done:

- The bytes go to ``<archive>.part``; a rerun (or an automatic retry after a
  dropped connection) asks the server for the rest with an HTTP ``Range``
  request. A server that ignores ``Range`` (answers 200, not 206) is
  handled by starting the file over.
- The SHA-1 is computed while the bytes arrive, so a download is read once.
  Only a verified file is renamed (atomically) to ``<archive>.zip``; one
  that fails the check is renamed to ``<archive>.zip.sha1-mismatch`` and
  kept, never silently deleted or reused.
- Extraction writes into ``.<name>.extracting/`` and renames the finished
  folder into place; a rerun skips members already written in full.
- Nothing hangs: a server that does not answer fails within ``timeout_s``
  (15 s); a failed name lookup, a refused connection or a silent server are
  reported at once, not retried. A connection lost midway is retried,
  resuming, with a line saying so; progress shows bytes and speed (a line
  every 10 s when standard error is not a terminal).
- Free space is checked against the archive size before writing, and a full
  disk during a write (``ENOSPC``) becomes a :class:`DiskFullError` that
  says the download resumes once space is freed.

HTTP uses the standard library (``urllib.request``) only.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urljoin, urlsplit

from tqdm import tqdm
from utils.errors import FmaGenreError

BASE_URL = "https://os.unil.cloud.switch.ch/fma/"  # published in the mdeff/fma README
MiB, GiB = 1 << 20, 1 << 30
_CHUNK_BYTES = 1 << 20  # read / hash block: 1 MiB
TIMEOUT_S = 15.0  # connecting, and waiting for each read: a server silent this long has failed
# Failures worth a retry that resumes where the bytes stopped.
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class Archive:
    """One published archive: ``<name>.zip`` unpacks to a folder ``<name>/``.

    ``approx_bytes`` is the published size, used for the free-space check
    until the server states the exact length.
    """

    name: str
    sha1: str
    approx_bytes: int
    contents: str

    @property
    def filename(self) -> str:
        return f"{self.name}.zip"


# The FMA authors' table (mdeff/fma README), copied verbatim.
ARCHIVES = MappingProxyType({a.name: a for a in (
    Archive("fma_metadata", "f0df49ffe5f2a6008d7dc83c6915b31835dfe733", 342 * MiB,
            "metadata: tracks.csv, genres.csv, features.csv, ..."),
    Archive("fma_small", "ade154f733639d52e35e32f5593efe5be76c6d70", int(7.2 * GiB),
            "8,000 clips of 30 s, 8 genres"),
    Archive("fma_medium", "c67b69ea232021025fca9231fc1c7c1a063ab50b", 22 * GiB,
            "25,000 clips of 30 s, 16 genres"),
    Archive("fma_large", "497109f4dd721066b5ce5e5f250ec604dc78939e", 93 * GiB,
            "106,574 clips of 30 s"),
    Archive("fma_full", "0f0ace23fbe9ba30ecb7e95f763e435ea802b8ab", 879 * GiB,
            "106,574 untrimmed tracks"),
)})


class DownloadError(FmaGenreError):
    """A download, check or extraction that cannot complete; the message says what to do."""


class ChecksumError(DownloadError):
    """The file's SHA-1 is not the published one."""


class DiskFullError(DownloadError):
    """Not enough free disk space, before or during a write."""


class ExtractError(DownloadError):
    """Python's zipfile cannot unpack the archive."""


def download(archive: Archive | str, dest: str | os.PathLike = "data", *, extract: bool = True,
             base_url: str = BASE_URL, retries: int = 5, backoff_s: float = 2.0,
             timeout_s: float = TIMEOUT_S, progress: bool = True) -> Path:
    """Download, verify and (by default) unpack an archive into ``dest``.

    Parameters
    ----------
    archive : an :class:`Archive`, or the name of one of :data:`ARCHIVES`
    dest : folder for ``<name>.zip`` and the unpacked ``<name>/``
    extract : unpack after verifying
    base_url : server (or mirror) holding ``<name>.zip``
    retries : reconnections after a dropped connection, each resuming the download
    backoff_s : wait before retry ``k`` is ``k * backoff_s`` seconds
    timeout_s : seconds to connect, and to wait for each read, before giving up

    Returns the unpacked folder, or the verified ``.zip`` when ``extract`` is
    false. Raises :class:`DownloadError` (or a subclass) with the reason.
    """
    if isinstance(archive, str):
        if archive not in ARCHIVES:
            raise DownloadError(f"unknown archive {archive!r}; choose from {', '.join(ARCHIVES)}")
        archive = ARCHIVES[archive]
    dest = Path(dest)
    folder = dest / archive.name
    if extract and folder.is_dir():
        return folder  # unpacked by an earlier run (extraction renames it into place last)
    path = fetch(urljoin(base_url, archive.filename), dest / archive.filename, archive.sha1,
                 size_hint=archive.approx_bytes, retries=retries, backoff_s=backoff_s,
                 timeout_s=timeout_s, progress=progress)
    return unzip(path, dest, progress=progress) if extract else path


def fetch(url: str, path: str | os.PathLike, sha1: str, *, size_hint: int | None = None,
          retries: int = 5, backoff_s: float = 2.0, timeout_s: float = TIMEOUT_S,
          progress: bool = True) -> Path:
    """Download ``url`` to ``path``, resumably, and check its SHA-1 (hex).

    An existing ``path`` is only verified. Bytes arrive in ``<path>.part``,
    which a later call resumes. ``size_hint`` (bytes) serves the free-space
    check and progress bar when the server sends no length. A connection
    lost midway is retried ``retries`` times; a server that cannot be
    reached or does not answer within ``timeout_s`` seconds is not.
    """
    path = Path(path)
    if urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http and https URLs are supported")
    if path.exists():
        got = sha1_of(path, progress)
        if got != sha1:
            raise ChecksumError(f"{path}: SHA-1 mismatch: expected {sha1}, got {got}. "
                                "It is not the published archive: move it away and run again.")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    for attempt in range(retries + 1):
        try:
            got = _resume(url, part, size_hint, timeout_s, progress)
            break
        except _TRANSIENT as err:
            if isinstance(err, urllib.error.HTTPError) and err.code < 500:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            held = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                raise DownloadError(f"{url}: connection failed {retries + 1} times ({_reason(err)}); "
                                    f"{_kept(part)}") from err
            wait = backoff_s * (attempt + 1)
            print(f"{url}: connection lost ({_reason(err)}) with {size_text(held)} downloaded; "
                  f"retry {attempt + 1} of {retries} in {wait:g} s", file=sys.stderr)
            time.sleep(wait)
    if got != sha1:
        kept = path.with_name(path.name + ".sha1-mismatch")
        os.replace(part, kept)
        raise ChecksumError(f"{path.name}: SHA-1 mismatch: expected {sha1}, got {got}. "
                            f"The downloaded bytes are kept in {kept}; delete it and run again.")
    os.replace(part, path)
    return path


def _resume(url: str, part: Path, size_hint: int | None, timeout_s: float, progress: bool) -> str:
    """Fetch the rest of ``url`` into ``part``; return the whole file's SHA-1."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after byte `have`: the part is complete
            return sha1_of(part, progress)
        raise
    except (urllib.error.URLError, OSError) as err:
        _raise_if_unreachable(url, err, timeout_s, part)
        raise
    with response:
        if have and not _continues_at(response, have):
            have = 0  # the server ignored Range and sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else size_hint
        if total:
            check_space(part.parent, total - have, part.name)
        digest = hashlib.sha1()
        with open(part, "r+b" if have else "wb") as f, _bar(total, have, part.name, progress) as bar:
            _hash_into(digest, f, have)  # the bytes already there, leaving f at `have`
            f.truncate()
            while block := response.read(_CHUNK_BYTES):
                _write(f, block, part)
                digest.update(block)
                bar.update(len(block))
            size = f.tell()
    if length and size != total:
        raise http.client.IncompleteRead(b"", total - size)
    return digest.hexdigest()


def _raise_if_unreachable(url: str, err: Exception, timeout_s: float, part: Path) -> None:
    """Raise :class:`DownloadError` for a failure to reach the server, which a retry would only repeat:
    a failed name lookup, a refused connection, no answer within ``timeout_s``."""
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    where = urlsplit(url).netloc
    if isinstance(reason, socket.gaierror):
        raise DownloadError(f"{url}: cannot find the server {urlsplit(url).hostname} ({reason.strerror}): "
                            f"check the address and the network; {_kept(part)}") from err
    if isinstance(reason, ConnectionRefusedError):
        raise DownloadError(f"{url}: {where} refused the connection (no server on that port); "
                            f"{_kept(part)}") from err
    if isinstance(reason, TimeoutError):
        raise DownloadError(f"{url}: no answer from {where} within {timeout_s:g} s (try again later, "
                            f"or another mirror with --base-url); {_kept(part)}") from err


def _kept(part: Path) -> str:
    """What a failed download leaves on disk, for its message."""
    held = part.stat().st_size if part.exists() else 0
    return f"{part} holds {held:,} bytes: run again to resume" if held else "nothing is downloaded yet"


def _reason(err: Exception) -> str:
    return str(err.reason if isinstance(err, urllib.error.URLError) else err) or type(err).__name__


def _continues_at(response: http.client.HTTPResponse, have: int) -> bool:
    """Whether a response is the 206 partial content starting at byte ``have``."""
    content_range = response.headers.get("Content-Range", "")  # "bytes 100-999/1000"
    return response.status == 206 and content_range.startswith(f"bytes {have}-")


def _hash_into(digest, f, n_bytes: int) -> None:
    f.seek(0)
    while n_bytes > 0 and (block := f.read(min(_CHUNK_BYTES, n_bytes))):
        digest.update(block)
        n_bytes -= len(block)


def _write(f, block: bytes, path: Path) -> None:
    try:
        f.write(block)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"disk full while writing {path} ({f.tell():,} bytes written): "
                                "free some space and run again to resume") from err
        raise


def sha1_of(path: str | os.PathLike, progress: bool = True) -> str:
    """SHA-1 (hex) of a file, read in 1 MiB blocks."""
    path = Path(path)
    digest = hashlib.sha1()
    with open(path, "rb") as f, _bar(path.stat().st_size, 0, f"sha1 {path.name}", progress) as bar:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def check_space(folder: str | os.PathLike, n_bytes: int, what: str) -> None:
    """Raise :class:`DiskFullError` if ``folder``'s file system has less than ``n_bytes`` free."""
    free = shutil.disk_usage(folder).free
    if free < n_bytes:
        raise DiskFullError(f"not enough free disk space in {folder} for {what}: "
                            f"{size_text(n_bytes)} needed, {size_text(free)} free")


def unzip(archive: str | os.PathLike, dest: str | os.PathLike, progress: bool = True) -> Path:
    """Unpack ``<name>.zip`` to ``dest/<name>/`` and return that folder.

    An archive holding a single top folder ``<name>/`` (the FMA layout) has
    it renamed into place; any other archive's members go under
    ``dest/<name>/``. An existing ``dest/<name>/`` is returned as is.
    """
    archive, dest = Path(archive), Path(dest)
    folder = dest / archive.name.removesuffix(".zip")
    if folder.is_dir():
        return folder
    dest.mkdir(parents=True, exist_ok=True)
    work = dest / f".{folder.name}.extracting"
    try:
        with zipfile.ZipFile(archive) as zf:
            todo = [m for m in zf.infolist() if not m.is_dir() and not _unpacked(work, m)]
            check_space(dest, sum(m.file_size for m in todo), f"unpacking {archive.name}")
            with _bar(sum(m.file_size for m in todo), 0, f"unzip {archive.name}", progress) as bar:
                for member in todo:
                    _extract_member(zf, member, work)
                    bar.update(member.file_size)
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError) as err:
        raise ExtractError(f"{archive}: Python's zipfile cannot unpack it ({err}). The FMA authors "
                           f"suggest 7-Zip for their archives: 7z x {archive} -o{dest} "
                           "(Debian/Ubuntu: apt install 7zip)") from err
    work.mkdir(exist_ok=True)  # an archive of empty folders only
    inner = work / folder.name
    if [p.name for p in work.iterdir()] == [folder.name] and inner.is_dir():
        os.replace(inner, folder)
        work.rmdir()
    else:
        os.replace(work, folder)
    return folder


def _unpacked(work: Path, member: zipfile.ZipInfo) -> bool:
    """Whether an earlier, interrupted run wrote ``member`` in full."""
    target = work / member.filename
    return target.is_file() and target.stat().st_size == member.file_size


def _extract_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, work: Path) -> None:
    try:
        zf.extract(member, work)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"disk full while unpacking {member.filename} into {work}: "
                                "free some space and run again to continue") from err
        raise


def _bar(total: int | None, initial: int, desc: str, progress: bool) -> tqdm | _Lines:
    """Progress in bytes and bytes per second: a bar on a terminal, else a line every 10 s and at the end."""
    if progress and not sys.stderr.isatty():
        return _Lines(total, initial, desc)
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not progress or None, file=sys.stderr)


class _Lines:
    """:func:`_bar` for logs: ``desc: 120.0 MiB of 7.2 GiB (1.6 %), 5.3 MiB/s`` lines."""

    def __init__(self, total: int | None, initial: int, desc: str, every_s: float = 10.0) -> None:
        self.total, self.initial, self.n, self.desc, self.every_s = total, initial, initial, desc, every_s
        self.start = self.shown = time.monotonic()

    def update(self, n: int) -> None:
        self.n += n
        if time.monotonic() - self.shown >= self.every_s:
            self._show()

    def _show(self) -> None:
        self.shown = time.monotonic()
        speed = (self.n - self.initial) / max(self.shown - self.start, 1e-6)
        of = f" of {size_text(self.total)} ({100 * self.n / self.total:.1f} %)" if self.total else ""
        print(f"{self.desc}: {size_text(self.n)}{of}, {size_text(speed)}/s", file=sys.stderr)

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc) -> None:
        self._show()


def size_text(n_bytes: int) -> str:
    """``n_bytes`` as GiB or MiB with one decimal, for messages."""
    return f"{n_bytes / GiB:.1f} GiB" if n_bytes >= GiB else f"{n_bytes / MiB:.1f} MiB"
