"""The web app: the JSON API on real uploads, its limits, concurrency, and the page in a real browser."""
import concurrent.futures
import os
import shutil
import urllib.request
from pathlib import Path

import httpx
import pytest

from utils.models.predict import DEFAULT_BUDGET, DEFAULT_MODEL, load_predictor
from utils.apps.web import WebConfig, create_app, running


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return load_predictor(tiny_model, max_windows=DEFAULT_BUDGET)  # what `fma-genre serve` runs by default


@pytest.fixture(scope="module")
def client(predictor):
    from fastapi.testclient import TestClient

    return TestClient(create_app(predictor, WebConfig(max_upload_mib=2.0), model_name="tiny"))


def post(client, name, content):
    return client.post("/api/predict", files={"file": (name, content, "application/octet-stream")})


def test_predicts_an_uploaded_mp3(client, fma_mp3s):
    r = post(client, "000002.mp3", fma_mp3s[0].read_bytes())
    assert r.status_code == 200
    body = r.json()
    assert body["path"] == "000002.mp3" and body["genre"] in ("Hip-Hop", "Rock")
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert body["duration"] == pytest.approx(29.95, abs=0.02) and body["segments"][-1]["end"] <= body["duration"]
    assert body["spectrogram_png"].startswith("iVBORw0KGgo")  # base64 of the PNG signature
    assert body["windows_analysed"] == body["window_budget"] == DEFAULT_BUDGET
    assert body["spectrogram_seconds"] == pytest.approx(30.0, abs=0.1)
    heard = sum(s["end"] - s["start"] for s in body["segments"])  # the segments cover the analysed windows only
    assert heard <= DEFAULT_BUDGET * 128 * 512 / 22050 + 0.01


def test_the_spectrogram_is_the_opening_of_the_file(predictor, fma_mp3s, fma_wavs):
    """The PNG is the log-Mel spectrogram of the file's first seconds, decoded on their own."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from utils import audio
    from utils.apps.web import _classify, spectrogram_png

    fe = predictor.frontend
    for path, seconds in ((fma_mp3s[2], 10.0), (fma_wavs[0], 60.0)):  # an excerpt; a clip shorter than asked
        body = _classify(predictor, str(path), path.name, WebConfig(spectrogram_seconds=seconds))
        y = audio.load(path, fe.sample_rate, duration=seconds)
        S = predictor.logmel(y)
        assert body["spectrogram_seconds"] == pytest.approx(y.size / fe.sample_rate, abs=fe.hop_length / fe.sample_rate)
        # equal but for the last frames, which the excerpt pads with zeros and the whole file does not
        ours, alone = (np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))
                       for png in (body["spectrogram_png"], spectrogram_png(S)))
        assert ours.shape == alone.shape and (ours == alone).all(axis=2).mean() > 0.99


def test_an_every_window_server_says_so(tiny_model, client, fma_mp3s):
    from fastapi.testclient import TestClient

    every = TestClient(create_app(load_predictor(tiny_model, max_windows=None), model_name="tiny"))
    assert every.get("/api/health").json()["window_budget"] is None
    assert client.get("/api/health").json()["window_budget"] == DEFAULT_BUDGET
    body = post(every, "a.mp3", fma_mp3s[0].read_bytes()).json()
    assert body["window_budget"] is None and body["windows_analysed"] == 20
    assert body["segments"][0]["start"] == 0 and body["segments"][-1]["end"] == pytest.approx(body["duration"], abs=0.05)


def test_type_is_checked_by_content_not_name(client, fma_wavs):
    assert post(client, "song.mp3", b"<html>hello</html>").status_code == 415
    r = post(client, "renamed.txt", fma_wavs[0].read_bytes())  # a real WAV with a wrong name
    assert r.status_code == 200


def test_bad_uploads_get_clear_messages(client, fma_mp3s):
    r = post(client, "cut.mp3", fma_mp3s[0].read_bytes()[:40001])
    assert r.status_code == 422 and r.json()["detail"].startswith("cut.mp3: truncated MP3")
    r = post(client, "empty.mp3", b"")
    assert r.status_code == 422 and r.json()["detail"] == "empty.mp3: empty file (0 bytes)"
    r = post(client, "big.wav", b"RIFF" + b"\0" * (3 * 1024 * 1024))
    assert r.status_code == 413 and "over 2 MiB" in r.json()["detail"]


def test_health_and_openapi(client):
    assert client.get("/api/health").json()["genres"] == ["Hip-Hop", "Rock"]
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]
    assert "What genre is this song?" in client.get("/").text


def test_concurrent_requests_and_a_responsive_server(predictor, fma_mp3s):
    with running(create_app(predictor, WebConfig(max_concurrent=2))) as url:
        def upload(path):
            with open(path, "rb") as f:
                return httpx.post(f"{url}/api/predict", files={"file": (path.name, f)}, timeout=120).status_code
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            uploads = [pool.submit(upload, p) for p in fma_mp3s[:4]]
            health = httpx.get(f"{url}/api/health", timeout=10)  # answered while four uploads run
            assert health.status_code == 200
            assert [u.result() for u in uploads] == [200] * 4


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (CI installs it)")
def test_the_page_in_a_real_browser(tmp_path, fma_mp3s):
    """Headless Chromium uploads a real FMA mp3 to the page served with the shipped model
    and reads the result shown; a missing shipped model fails the test."""
    from playwright.sync_api import sync_playwright

    assert DEFAULT_MODEL.exists(), f"the shipped model {DEFAULT_MODEL} is missing"
    predictor = load_predictor(DEFAULT_MODEL)
    with running(create_app(predictor, model_name="default")) as url, sync_playwright() as p:
        assert urllib.request.urlopen(f"{url}/api/health").status == 200
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1000, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#status:has-text('knows')")
        page.set_input_files("#file", str(fma_mp3s[0]))
        page.wait_for_selector("#result:not([hidden])", timeout=60000)
        genre = page.text_content("#genre")
        assert any(genre.startswith(g) for g in predictor.labels) and genre.endswith("%")
        assert page.locator("#bars li").count() == len(predictor.labels)
        assert page.evaluate("document.getElementById('spectrogram').naturalWidth") > 100
        assert page.locator("#timeline div").count() >= 1
        page.screenshot(path=str(tmp_path / "web_page.png"), full_page=True)
        page.set_input_files("#file", str(Path(__file__)))  # a Python file: refused with a message
        page.wait_for_selector("#error")
        assert "not an accepted audio file" in page.text_content("#error")
        browser.close()
    assert (tmp_path / "web_page.png").stat().st_size > 10000
