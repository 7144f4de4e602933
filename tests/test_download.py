"""The downloader against a real HTTP server on 127.0.0.1 serving a zip of real FMA mp3s."""
from __future__ import annotations

import errno
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from utils.data import download as dl
from utils.apps.cli import build_parser, main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "fma" / "audio"
MEMBERS = ("000/000002.mp3", "001/001039.mp3")
CUT = 700_000  # bytes served before an interrupted response is cut


class Server(http.server.ThreadingHTTPServer):
    """Serves ``payload`` at ``/<name>``; records every request's headers."""

    def __init__(self, name: str, payload: bytes, ranges: bool = True, cuts: int = 0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.name, self.payload, self.ranges, self.cuts = name, payload, ranges, cuts
        self.requests: list[dict[str, str]] = []
        self.bytes_sent = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append(dict(self.headers))
        if self.path != f"/{srv.name}":
            self.send_error(404)
            return
        data, start = srv.payload, 0
        ask = self.headers.get("Range")
        if ask and srv.ranges:
            start = int(ask.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cuts:  # the connection drops midway (HTTP/1.0: closed when we return)
            srv.cuts -= 1
            body = body[:CUT]
        srv.bytes_sent += len(body)  # before the write: the client may finish before this thread resumes
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests go straight to 127.0.0.1, never through a proxy from the environment."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def serve():
    servers = []

    def start(name: str, payload: bytes, **kw) -> Server:
        srv = Server(name, payload, **kw)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def payload() -> bytes:
    """A zip in the FMA layout (fma_test/<id[:3]>/<id>.mp3) of two real FMA clips."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for m in MEMBERS:
            zf.write(SAMPLE / m, f"fma_test/{m}")
    return buf.getvalue()


def archive(payload: bytes, name: str = "fma_test") -> dl.Archive:
    return dl.Archive(name, hashlib.sha1(payload).hexdigest(), len(payload), "test clips")


def test_download_verify_extract(serve, payload, tmp_path):
    srv = serve("fma_test.zip", payload)
    folder = dl.download(archive(payload), tmp_path, base_url=srv.base_url, progress=False)
    assert folder == tmp_path / "fma_test"
    for m in MEMBERS:
        assert (folder / m).read_bytes() == (SAMPLE / m).read_bytes()
    assert (tmp_path / "fma_test.zip").read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fma_test", "fma_test.zip"]
    # done work is skipped: no request for an unpacked archive or a verified zip
    assert dl.download(archive(payload), tmp_path, base_url=srv.base_url, progress=False) == folder
    assert dl.download(archive(payload), tmp_path, base_url=srv.base_url, extract=False,
                       progress=False) == tmp_path / "fma_test.zip"
    assert len(srv.requests) == 1


def test_interrupted_download_resumes_with_range(serve, payload, tmp_path):
    srv = serve("fma_test.zip", payload, cuts=1)
    with pytest.raises(dl.DownloadError, match="run again to resume"):
        dl.download(archive(payload), tmp_path, base_url=srv.base_url, retries=0, progress=False)
    part = tmp_path / "fma_test.zip.part"
    assert part.stat().st_size == CUT
    assert not (tmp_path / "fma_test.zip").exists() and not (tmp_path / "fma_test").exists()

    folder = dl.download(archive(payload), tmp_path, base_url=srv.base_url, retries=0, progress=False)
    assert [r.get("Range") for r in srv.requests] == [None, f"bytes={CUT}-"]
    assert srv.bytes_sent == len(payload)  # nothing was downloaded twice
    assert (folder / MEMBERS[1]).read_bytes() == (SAMPLE / MEMBERS[1]).read_bytes()
    assert not part.exists()


def test_dropped_connection_is_retried_in_the_same_call(serve, payload, tmp_path):
    srv = serve("fma_test.zip", payload, cuts=2)
    path = dl.fetch(srv.base_url + "fma_test.zip", tmp_path / "a.zip", archive(payload).sha1,
                    retries=2, backoff_s=0, progress=False)
    assert path.read_bytes() == payload
    assert [r.get("Range") for r in srv.requests] == [None, f"bytes={CUT}-", f"bytes={2 * CUT}-"]
    assert srv.bytes_sent == len(payload)


def test_server_without_range_support_restarts_cleanly(serve, payload, tmp_path):
    srv = serve("fma_test.zip", payload, ranges=False, cuts=1)
    folder = dl.download(archive(payload), tmp_path, base_url=srv.base_url, retries=1,
                         backoff_s=0, progress=False)
    assert srv.requests[1].get("Range") == f"bytes={CUT}-"  # asked, but got the whole file
    assert srv.bytes_sent == CUT + len(payload)
    assert (tmp_path / "fma_test.zip").read_bytes() == payload
    assert (folder / MEMBERS[0]).read_bytes() == (SAMPLE / MEMBERS[0]).read_bytes()


def test_checksum_mismatch_keeps_the_bytes(serve, payload, tmp_path):
    srv = serve("fma_test.zip", payload)
    wrong = dl.Archive("fma_test", "0" * 40, len(payload), "test clips")
    with pytest.raises(dl.ChecksumError) as err:
        dl.download(wrong, tmp_path, base_url=srv.base_url, progress=False)
    got = hashlib.sha1(payload).hexdigest()
    assert f"expected {'0' * 40}, got {got}" in str(err.value)
    kept = tmp_path / "fma_test.zip.sha1-mismatch"
    assert str(kept) in str(err.value) and kept.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == [kept.name]


def test_existing_archive_with_wrong_checksum_is_refused_not_touched(payload, tmp_path):
    (tmp_path / "fma_test.zip").write_bytes(payload[:-1])
    with pytest.raises(dl.ChecksumError, match="move it away"):
        dl.download(archive(payload), tmp_path, base_url="http://127.0.0.1:9/", progress=False)
    assert (tmp_path / "fma_test.zip").read_bytes() == payload[:-1]


def test_not_enough_disk_space_is_refused_before_writing(serve, payload, tmp_path, monkeypatch):
    srv = serve("fma_test.zip", payload)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**12, used=10**12, free=1000))
    with pytest.raises(dl.DiskFullError, match=r"not enough free disk space .* needed, 0\.0 MiB free"):
        dl.download(archive(payload), tmp_path, base_url=srv.base_url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_writing_keeps_the_part_for_resuming(serve, payload, tmp_path, monkeypatch):
    srv = serve("fma_test.zip", payload)

    class FillingDisk(io.FileIO):
        """A file on a disk with room for CUT bytes."""

        def write(self, b):
            if self.tell() + len(b) > CUT:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(b)

    monkeypatch.setattr(dl, "open", FillingDisk, raising=False)  # shadows the builtin in dl
    monkeypatch.setattr(dl, "_CHUNK_BYTES", 100_000)
    with pytest.raises(dl.DiskFullError, match="disk full while writing .* run again to resume"):
        dl.download(archive(payload), tmp_path, base_url=srv.base_url, progress=False)
    assert (tmp_path / "fma_test.zip.part").stat().st_size == CUT
    monkeypatch.delattr(dl, "open")
    dl.download(archive(payload), tmp_path, base_url=srv.base_url, progress=False)
    assert srv.requests[-1].get("Range") == f"bytes={CUT}-"
    assert (tmp_path / "fma_test.zip").read_bytes() == payload


def test_unsupported_compression_suggests_7zip(serve, payload, tmp_path):
    # Deflate64 (method 9), which 7-Zip unpacks and Python's zipfile does not
    odd = bytearray(payload)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = odd.find(sig)
        odd[i + at:i + at + 2] = (9).to_bytes(2, "little")
    odd = bytes(odd)
    srv = serve("fma_test.zip", odd)
    with pytest.raises(dl.ExtractError, match=r"cannot unpack it .* 7z x "):
        dl.download(archive(odd), tmp_path, base_url=srv.base_url, progress=False)
    assert (tmp_path / "fma_test.zip").read_bytes() == odd  # the verified download stays


def test_interrupted_unzip_continues(payload, tmp_path):
    zip_path = tmp_path / "fma_test.zip"
    zip_path.write_bytes(payload)
    done = tmp_path / ".fma_test.extracting" / "fma_test" / MEMBERS[0]
    done.parent.mkdir(parents=True)
    done.write_bytes((SAMPLE / MEMBERS[0]).read_bytes())
    stamp = done.stat().st_mtime_ns
    folder = dl.unzip(zip_path, tmp_path, progress=False)
    assert (folder / MEMBERS[0]).stat().st_mtime_ns == stamp  # not written again
    assert (folder / MEMBERS[1]).read_bytes() == (SAMPLE / MEMBERS[1]).read_bytes()
    assert not (tmp_path / ".fma_test.extracting").exists()


def test_cli(serve, tmp_path, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["download", "--help"])
    assert stop.value.code == 0
    assert "fma_large" in capsys.readouterr().out
    # the real table's name and SHA-1, served wrong bytes from a local mirror
    srv = serve("fma_metadata.zip", b"not the archive")
    assert main(["download", "fma_metadata", "--dest", str(tmp_path), "--base-url", srv.base_url,
                 "--no-extract"]) == 1
    assert f"expected {dl.ARCHIVES['fma_metadata'].sha1}" in capsys.readouterr().err


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers; counts them."""
    import socket

    sock = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/", accepted
    sock.close()
    for conn in accepted:
        conn.close()


@pytest.mark.timeout(60)
def test_a_silent_server_fails_within_the_timeout_without_retries(silent_server, payload, tmp_path):
    import inspect
    import time

    url, accepted = silent_server
    assert dl.TIMEOUT_S == 15 and inspect.signature(dl.download).parameters["timeout_s"].default == dl.TIMEOUT_S
    start = time.monotonic()  # the user's 15 s, shortened: the same path, a shorter wait
    with pytest.raises(dl.DownloadError, match=r"no answer from 127\.0\.0\.1:\d+ within 2 s") as err:
        dl.download(archive(payload), tmp_path, base_url=url, progress=False, timeout_s=2)
    assert time.monotonic() - start < 5 and len(accepted) == 1
    assert "nothing is downloaded yet" in str(err.value) and list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_refused_and_unresolvable_are_not_retried(payload, tmp_path):
    import socket
    import time

    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed on leaving: nothing listens there
    for url, message in ((f"http://127.0.0.1:{port}/", "refused the connection"),
                         ("http://no-such-host.invalid/", "cannot find the server no-such-host.invalid")):
        start = time.monotonic()
        with pytest.raises(dl.DownloadError, match=message) as err:
            dl.download(archive(payload), tmp_path, base_url=url, progress=False)
        assert time.monotonic() - start < 5, url
        assert ".part" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_progress_lines_and_retry_messages_in_a_log(serve, payload, tmp_path, capsys):
    srv = serve("fma_test.zip", payload, cuts=1)
    dl.fetch(srv.base_url + "fma_test.zip", tmp_path / "a.zip", archive(payload).sha1, retries=1, backoff_s=0)
    err = capsys.readouterr().err  # not a terminal: lines, not a bar
    assert "connection lost" in err and "with 0.7 MiB downloaded; retry 1 of 1" in err
    assert f"a.zip.part: {dl.size_text(len(payload))} of {dl.size_text(len(payload))} (100.0 %), " in err
    assert "MiB/s" in err
