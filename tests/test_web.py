"""The web app: the JSON API on real uploads, its limits, concurrency, a window model and a picture model
served side by side, and the page in a real browser."""
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


@pytest.fixture(scope="module")
def picture_model(tmp_path_factory) -> Path:
    """An untrained stand-in for the shipped fma-small model: fma_small's 8 genres and picture front end, saved
    with its card. Enough to wire the API and the page to a picture model without the shipped one."""
    import numpy as np

    from utils.audio.frontend import FMA_SMALL
    from utils.data.pictures import GENRES
    from utils.models.architectures import build_model
    from utils.models.card import ModelCard, save_model

    path = tmp_path_factory.mktemp("picture_model") / "fma_small.keras"
    model = build_model("cnn1d", (FMA_SMALL.columns, FMA_SMALL.n_mels), len(GENRES),
                        np.zeros(FMA_SMALL.n_mels), np.ones(FMA_SMALL.n_mels))
    save_model(model, path, ModelCard(labels=GENRES, frontend=FMA_SMALL, architecture="cnn1d"))
    return path


@pytest.fixture(scope="module")
def pictures(picture_model):
    return load_predictor(picture_model, max_windows=DEFAULT_BUDGET)


@pytest.fixture(scope="module")
def both(predictor, pictures):
    """The tiny window model (the default) and the picture model, as `fma-genre serve` serves its two."""
    from fastapi.testclient import TestClient

    return TestClient(create_app({"tiny": predictor, "fma-small": pictures}, WebConfig(max_upload_mib=2.0)))


def post(client, name, content, model=None):
    return client.post("/api/predict", params={"model": model} if model else None,
                       files={"file": (name, content, "application/octet-stream")})


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


def test_each_upload_is_judged_by_the_model_asked_for(both, fma_mp3s):
    health = both.get("/api/health").json()
    assert [(m["name"], len(m["genres"]), m["picture"], m["window_budget"]) for m in health["models"]] == [
        ("tiny", 2, False, DEFAULT_BUDGET), ("fma-small", 8, True, None)]
    assert health["model"] == "tiny" and health["genres"] == ["Hip-Hop", "Rock"]  # the default: the first
    song = fma_mp3s[0].read_bytes()
    for model, genres in ((None, 2), ("tiny", 2), ("fma-small", 8)):
        body = post(both, "a.mp3", song, model).json()
        assert body["model"] == (model or "tiny") and len(body["probabilities"]) == genres
    r = post(both, "a.mp3", song, "gtzan ")
    assert r.status_code == 422 and r.json() == {
        "detail": "invalid request: unknown model 'gtzan '; this server has tiny, fma-small"}
    [param] = both.get("/openapi.json").json()["paths"]["/api/predict"]["post"]["parameters"]
    assert param["name"] == "model" and param["schema"]["enum"] == ["tiny", "fma-small"]


def test_a_picture_model_shows_the_picture_it_judged(pictures, fma_mp3s, fma_wavs, tmp_path):
    """One picture of the clip, or of a longer track's middle 30 s: the PNG is that picture (128 x 128,
    one pixel a level) and the timeline is one segment over the excerpt."""
    import base64
    import io

    from PIL import Image

    from utils.apps.web import _classify, picture_png
    from utils.audio.picture import excerpt_span, picture_file

    fe = pictures.frontend
    song = tmp_path / "two_minutes.wav"
    _repeat_wav(fma_wavs[0], song, times=4)
    for path in (fma_mp3s[1], song):
        body = _classify(pictures, str(path), path.name, WebConfig(), "fma-small")
        start, _ = excerpt_span(body["duration"], fe)
        assert body["model"] == "fma-small" and body["windows_analysed"] == 1 and body["window_budget"] is None
        assert body["spectrogram_png"] == picture_png(picture_file(path, fe)[1])
        assert Image.open(io.BytesIO(base64.b64decode(body["spectrogram_png"]))).size == (128, 128)
        end = min(start + fe.excerpt_seconds, body["duration"])
        assert body["spectrogram_start"] == start and body["spectrogram_seconds"] == pytest.approx(end - start)
        [segment] = body["segments"]
        assert (segment["start"], segment["end"]) == pytest.approx((start, end), abs=0.02)
    assert start == body["duration"] // 2 - 15 and body["duration"] > 119  # FMA's middle 30 s


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
def test_the_page_in_a_real_browser(tmp_path, fma_mp3s, pictures):
    """Headless Chromium uploads a real FMA mp3 to the page served with the shipped GTZAN model and a
    picture model, reads the result shown, picks the other model and reads its result (the picture it
    saw, one segment); a missing shipped GTZAN model fails the test."""
    from playwright.sync_api import sync_playwright

    assert DEFAULT_MODEL.exists(), f"the shipped model {DEFAULT_MODEL} is missing"
    predictor = load_predictor(DEFAULT_MODEL)
    app = create_app({"gtzan": predictor, "fma-small": pictures})
    with running(app) as url, sync_playwright() as p:
        assert urllib.request.urlopen(f"{url}/api/health").status == 200
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1000, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#status:has-text('MiB')")
        assert page.locator("#models label .name").all_text_contents() == ["gtzan · 10 genres", "fma-small · 8 genres"]
        assert page.is_checked("#models input[value=gtzan]")
        page.set_input_files("#file", str(fma_mp3s[0]))
        page.wait_for_selector("#status:has-text('judged by gtzan')", timeout=60000)
        genre = page.text_content("#genre")
        assert any(genre.startswith(g) for g in predictor.labels) and genre.endswith("%")
        assert page.locator("#bars li").count() == len(predictor.labels)
        assert page.evaluate("document.getElementById('spectrogram').naturalWidth") > 128
        assert page.locator("#timeline div").count() >= 1
        page.click("text=fma-small · 8 genres")  # the file shown is judged again by the model picked
        page.wait_for_selector("#status:has-text('judged by fma-small')", timeout=60000)
        assert any(page.text_content("#genre").startswith(g) for g in pictures.labels)
        assert page.locator("#bars li").count() == len(pictures.labels)
        assert page.evaluate("[document.getElementById('spectrogram').naturalWidth, "
                             "document.getElementById('spectrogram').naturalHeight]") == [128, 128]
        assert page.text_content("#spectrogram-title").startswith("The picture the model saw: 128 columns over 0–30 s")
        assert page.locator("#timeline div").count() == 1 and "one picture" in page.text_content("#analysed")
        page.screenshot(path=str(tmp_path / "web_page.png"), full_page=True)
        page.set_input_files("#file", str(Path(__file__)))  # a Python file: refused with a message
        page.wait_for_selector("#error")
        assert "not an accepted audio file" in page.text_content("#error")
        browser.close()
    assert (tmp_path / "web_page.png").stat().st_size > 10000


def _repeat_wav(src: Path, dst: Path, times: int) -> None:
    import numpy as np
    import soundfile as sf

    y, sr = sf.read(src, dtype="int16")
    sf.write(dst, np.tile(y, times), sr, subtype="PCM_16")
