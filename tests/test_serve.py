"""``fma-genre serve`` as a user runs it: a real server process with two models, its limits, its options,
its OpenAPI document checked by schemathesis (all checks), and how it stops."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from test_web import picture_model  # noqa: F401  (a fixture: the stand-in picture model)
from utils.apps.cli import main
from utils.apps.web import WebConfig
from utils.models.predict import SHIPPED

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MIB = 2


class Server:
    """``python -m utils.apps.cli serve --port 0`` in a process of its own, with its own temp folder;
    ``models``: each given with ``--model``, none for the default (the shipped models)."""

    def __init__(self, models: list[Path], tmp: Path, *options: str) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "utils.apps.cli", "serve", "--port", "0",
                                      *(f"--model={m}" for m in models), *options],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()  # "fma-genre: serving on http://127.0.0.1:PORT ..."
        found = re.search(r"http://[\d.]+:\d+", line)
        if not found:
            self.proc.kill()
            raise AssertionError(f"no 'serving on' line: {line!r} {self.proc.stderr.read()}")
        self.url = found.group(0)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tiny_model, picture_model, tmp_path_factory):
    srv = Server([tiny_model, picture_model], tmp_path_factory.mktemp("serve_tmp"), "--max-upload-mib", str(LIMIT_MIB))
    yield srv
    srv.stop()


def test_each_model_served_answers_by_its_name(server, fma_mp3s):
    health = httpx.get(f"{server.url}/api/health", timeout=10).json()
    assert [(m["name"], len(m["genres"])) for m in health["models"]] == [("tiny", 2), ("fma_small", 8)]
    for name, genres in (("tiny", 2), ("fma_small", 8)):
        with open(fma_mp3s[0], "rb") as f:
            r = httpx.post(f"{server.url}/api/predict", params={"model": name}, files={"file": (fma_mp3s[0].name, f)},
                           timeout=60)
        assert r.status_code == 200 and r.json()["model"] == name and len(r.json()["probabilities"]) == genres
    r = httpx.post(f"{server.url}/api/predict?model=fma-small", files={"file": ("a.mp3", b"ID3")}, timeout=10)
    assert r.status_code == 422 and r.json() == {
        "detail": "invalid request: unknown model 'fma-small'; this server has tiny, fma_small"}


def test_by_default_both_shipped_models_are_served(tmp_path, fma_mp3s):
    if not SHIPPED["fma-small"].exists():
        pytest.skip(f"the shipped fma-small model {SHIPPED['fma-small'].name} is not in models/ yet")
    srv = Server([], tmp_path)
    try:
        health = httpx.get(f"{srv.url}/api/health", timeout=10).json()
        assert [(m["name"], len(m["genres"]), m["picture"]) for m in health["models"]] == [
            ("gtzan", 10, False), ("fma-small", 8, True)]
        with open(fma_mp3s[0], "rb") as f:
            r = httpx.post(f"{srv.url}/api/predict?model=fma-small", files={"file": (fma_mp3s[0].name, f)}, timeout=60)
        body = r.json()
        assert r.status_code == 200 and body["windows_analysed"] == 1 and len(body["segments"]) == 1
    finally:
        srv.stop()


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                  b"Content-Length: 300000000\r\n\r\n")  # 300 MB announced, not one byte of it sent
        answer = b""
        while chunk := s.recv(4096):  # before the fix: the server waits for the body (timeout)
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and time.monotonic() - start < 2
    assert b'{"detail":"upload: file too large (over 2 MiB)"}' in answer


def test_a_chunked_upload_is_stopped_at_the_limit(server):
    sent = 0

    def body():
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(300):  # 300 MiB, without a Content-Length
            sent += 1 << 20
            yield b"\0" * (1 << 20)
    try:
        r = httpx.post(f"{server.url}/api/predict", content=body(), timeout=60,
                       headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413 and "too large" in r.json()["detail"]
    except httpx.TransportError:  # the server closed the connection on the rest of the body
        assert sent > 0
    # before the fix the server read (and spooled to its temp folder) all 300 MiB
    assert sent < 10 * LIMIT_MIB * (1 << 20), f"the client sent {sent >> 20} MiB"


def test_errors_are_one_line_strings_as_the_schema_says(server):
    r = httpx.post(f"{server.url}/api/predict", data={"other": "x"}, timeout=30)  # no file field
    assert r.status_code == 422 and r.json() == {"detail": "invalid request: file: Field required"}
    schema = httpx.get(f"{server.url}/openapi.json").json()
    responses = schema["paths"]["/api/predict"]["post"]["responses"]
    assert set(responses) == {"200", "400", "413", "415", "422"}
    error = {"$ref": "#/components/schemas/Error"}
    assert all(responses[c]["content"]["application/json"]["schema"] == error for c in ("400", "413", "415", "422"))
    body = schema["components"]["schemas"]["Body_predict_api_predict_post"]["properties"]["file"]
    assert body["minLength"] == 1  # an empty upload is refused, and the schema says so
    empty = httpx.post(f"{server.url}/api/predict", files={"file": ("e.mp3", b"")}, timeout=30)
    assert empty.status_code == 422 and empty.json() == {"detail": "e.mp3: empty file (0 bytes)"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_schemathesis_finds_nothing(server, tmp_path, seed):
    """Every schemathesis check against the running server, on three seeds. A random non-empty file is
    valid by the schema but is not audio: 415 or 422 is the right answer to it, so positive data may
    get those; an empty one the schema itself refuses (``minLength``), as the server does."""
    config = tmp_path / "schemathesis.toml"
    config.write_text('[checks.positive_data_acceptance]\nexpected-statuses = ["2xx", "415", "422"]\n')
    st = Path(sys.executable).with_name("schemathesis")
    out = subprocess.run([str(st), "--config-file", str(config), "run", f"{server.url}/openapi.json",
                          "--checks", "all", "--max-examples", "40", "--workers", "1", "--no-color",
                          "--seed", str(seed)], capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert re.search(r"\d+ generated, \d+ passed", out.stdout)


@pytest.mark.parametrize("option, value, message", [
    ("--max-concurrent", "0", "argument --max-concurrent: must be 1 or more, got 0"),
    ("--max-upload-mib", "-1", "argument --max-upload-mib: must be at least 1/1024 (1 KiB), got -1"),
    ("--max-upload-mib", "nan", "argument --max-upload-mib: must be at least 1/1024 (1 KiB), got nan"),
    ("--port", "70000", "argument --port: must be 0 to 65535, got 70000"),
])
def test_every_option_is_checked_at_start(option, value, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["serve", option, value])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.strip().splitlines()[-1].endswith(message)
    with pytest.raises(ValueError):  # the library refuses them too
        WebConfig(max_upload_mib=-1) if option == "--max-upload-mib" else WebConfig(max_concurrent=0)


def test_two_models_of_one_name_are_one_line(capsys):
    assert main(["serve", "--port", "0", "--model", "runs/a/model.keras", "--model", "runs/b/model.keras"]) == 1
    assert capsys.readouterr().err == ("fma-genre: error: two models named model (a model's name is its file's "
                                       "stem): give each once, or copy one to another name\n")


def test_a_port_in_use_is_one_line_and_exit_2(tiny_model, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        rc = main(["serve", "--port", str(port), "--model", str(tiny_model)])
    out, err = capsys.readouterr()
    assert rc == 2 and "serving on" not in out
    assert err == f"fma-genre serve: error: cannot listen on 127.0.0.1:{port}: port already in use " \
                  "(is another server running? choose another with --port)\n"


@pytest.mark.timeout(120)
def test_sigterm_stops_the_server_during_a_prediction_and_leaves_no_temp_file(tiny_model, tmp_path, fma_wavs):
    long_wav = tmp_path / "long.wav"
    _repeat_wav(fma_wavs[0], long_wav, times=20)  # ten minutes: a prediction that takes a while
    srv = Server([tiny_model], tmp_path / "tmp", "--max-upload-mib", "200")
    try:
        answered = []

        def upload():
            try:
                with open(long_wav, "rb") as f:
                    answered.append(httpx.post(f"{srv.url}/api/predict", files={"file": ("long.wav", f)},
                                               timeout=120).status_code)
            except httpx.TransportError as err:
                answered.append(type(err).__name__)
        thread = threading.Thread(target=upload)
        thread.start()
        deadline = time.monotonic() + 30
        while not list(srv.tmp.glob("fma-genre-*")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the upload is received once the route's temp copy exists
        assert list(srv.tmp.glob("fma-genre-*")), "the upload never reached the route"
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=20)
        took = time.monotonic() - start
        thread.join(timeout=30)
    finally:
        srv.stop()
    assert took < 10, f"SIGTERM took {took:.1f} s"
    # the upload's temp files are gone: the route's copy (fma-genre-*) and Starlette's spooled body (tmp*)
    assert [p.name for p in srv.tmp.iterdir() if p.name.startswith(("fma-genre-", "tmp"))] == []
    assert "Traceback" not in srv.proc.stderr.read()


def _repeat_wav(src: Path, dst: Path, times: int) -> None:
    import soundfile as sf
    import numpy as np

    y, sr = sf.read(src, dtype="int16")
    sf.write(dst, np.tile(y, times), sr, subtype="PCM_16")
