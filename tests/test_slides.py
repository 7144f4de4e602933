"""The deck: built from the sample pipeline run (plus the project's reports), checked in a real browser and as a PDF."""
import json
import re
import shutil
from pathlib import Path

import pytest

from utils.apps.cli import main
from utils.apps.slides import SlideError, build, fill_numbers

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_numbers_come_from_the_reports(tmp_path):
    (tmp_path / "m.json").write_text('{"a": {"acc": 0.8734, "runs": [1, 2]}}')
    assert fill_numbers("acc {{ m.a.acc:.1% }}, n {{ m.a.runs.1 }}", [tmp_path], 1) == "acc 87.3%, n 2"
    with pytest.raises(SlideError, match="slide 3: m.json has no m.a.f1"):
        fill_numbers("{{ m.a.f1 }}", [tmp_path], 3)
    with pytest.raises(SlideError, match="genre_growth.json is in none of .*notebooks/04_multiclass_cnn.ipynb makes it"):
        fill_numbers("{{ genre_growth.steps }}", [tmp_path], 2)


def test_a_missing_figure_names_its_notebook(tmp_path):
    deck = tmp_path / "deck.md"
    deck.write_text("# t\n\n---\n\n![x](figures/validation_confusion.png)\n")
    with pytest.raises(SlideError, match="slide 2: figures/validation_confusion.png .*notebooks/05_evaluation.ipynb"):
        build(deck, [tmp_path], tmp_path / "out", pdf=False)


def _slides(html: str) -> list[str]:
    return re.findall(r'<section class="slide[^"]*" id="s\d+">(.*?)</section>', html, re.S)


def test_a_smoke_test_run_marks_the_title_and_every_slide_it_feeds(tmp_path):
    run, project = tmp_path / "run", tmp_path / "reports"
    (run / "reports" / "figures").mkdir(parents=True)
    (project / "figures").mkdir(parents=True)
    (run / "reports" / "test_metrics.json").write_text('{"accuracy": 0.1}')
    shutil.copy(ROOT / "reports" / "figures" / "fma_imbalance.png", run / "reports" / "figures" / "genre_growth.png")
    (project / "cv.json").write_text('{"accuracy": 0.8}')
    deck = tmp_path / "deck.md"
    deck.write_text("# t\n\n---\n\n{{ test_metrics.accuracy:.0% }}\n\n---\n\n{{ cv.accuracy:.0% }}\n\n---\n\n"
                    "![growth](figures/genre_growth.png)\n\n---\n\nno numbers\n")
    for smoke, marked in (("--quick (1 epoch, fewer windows)", [True, True, False, True, False]), (None, [False] * 5)):
        (run / "run.json").write_text(json.dumps({"smoke_test": smoke}))
        built = build(deck, [project], tmp_path / "out", pdf=False, run=run)
        slides = _slides(built.html.read_text())
        assert built.smoke_test == smoke and len(slides) == 5
        assert ["Smoke test: --quick (1 epoch, fewer windows)" in s for s in slides] == marked
    assert "10%" in slides[1] and "80%" in slides[2]
    with pytest.raises(SlideError, match="no run.json"):
        build(deck, [project], tmp_path / "out", pdf=False, run=project)


def test_an_optional_slide_without_its_report_says_not_measured(tmp_path):
    deck = tmp_path / "deck.md"
    deck.write_text("# t\n\n---\n\n## Robustness\n\n<!-- optional -->\n\n{{ include robustness.md }}\n")
    slides = _slides(build(deck, [tmp_path], tmp_path / "out", pdf=False).html.read_text())
    assert "<h2>Robustness</h2>" in slides[1]
    assert "Not measured in this checkout: robustness.md (made by scripts/robustness_experiment.py)" in slides[1]
    (tmp_path / "robustness.md").write_text("| condition | accuracy |\n|---|---|\n| clean | 90 % |\n")
    slides = _slides(build(deck, [tmp_path], tmp_path / "out", pdf=False).html.read_text())
    assert "<td>clean</td>" in slides[1] and "Not measured" not in slides[1]
    (tmp_path / "robustness.md").unlink()
    deck.write_text(deck.read_text().replace("<!-- optional -->", ""))  # a slide that is not optional fails
    with pytest.raises(SlideError, match="slide 2: robustness.md is in none of"):
        build(deck, [tmp_path], tmp_path / "out", pdf=False)


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists() and not __import__("os").environ.get("CI"),
                    reason="Debian's chromium is not installed (CI installs it)")
def test_the_deck_from_the_sample_run(sample_run, tmp_path, capsys):
    run, _ = sample_run
    out = tmp_path / "slides"
    assert main(["slides", "--run", str(run), "--reports", str(ROOT / "reports"),
                 "--source", str(ROOT / "slides" / "deck.md"), "--out", str(out)]) == 0
    n = int(re.match(r"(\d+) slides", capsys.readouterr().out).group(1))
    source = (ROOT / "slides" / "deck.md").read_text()
    assert n == len([b for b in re.split(r"(?m)^---\s*$", source) if b.strip()]) >= 12
    html = (out / "deck.html").read_text()
    assert "{{" not in html and "src=\"figures/" not in html  # every number filled, every figure embedded
    # a --quick run on the sample: the title and the slides fed by the run say it is a smoke test
    marked = ["Smoke test: --quick" in s for s in _slides(html)]
    assert marked[0] and 5 <= sum(marked) < n
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                    "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto((out / "deck.html").as_uri())
        for i in range(n):
            images = page.locator(".slide.active img")
            widths = [images.nth(k).evaluate("img => img.complete && img.naturalWidth") for k in range(images.count())]
            assert all(w and w > 0 for w in widths), f"slide {i + 1}: broken image"
            assert page.evaluate("document.querySelector('.slide.active').scrollHeight <= 720"), \
                f"slide {i + 1}: content taller than the slide"
            page.keyboard.press("ArrowRight")
        assert page.evaluate("location.hash") == f"#s{n}"
        browser.close()
    pdf = (out / "deck.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) == n
