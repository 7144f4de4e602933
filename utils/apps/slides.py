"""The slide deck: a Markdown source and a run's reports -> one self-contained HTML file and a PDF.

The source (``slides/deck.md``) is Markdown, one slide per block between
lines holding only ``---``. Numbers are never typed by hand: a placeholder
``{{ cv_gtzan.genres10.models.cnn.accuracy.mean:.1% }}`` reads the JSON
report ``cv_gtzan.json`` of the reports folder, follows the keys and formats
the value with the Python format spec after the colon; ``{{ include results.md # Heading }}``
inserts a section of a Markdown report (a table a script generated). Figures are Markdown
images, ``![caption](figures/name.png)``, taken from the reports folders (a
run's first, then the project's ``reports/``) and embedded, so the HTML opens offline. A missing figure or number fails the
build with a message naming what produces it, unless the slide holds the line
``<!-- optional -->``: then the slide keeps its heading and says what was not
measured in this checkout and what measures it. The PDF is the HTML printed by
headless Chromium, one page per slide.

A deck built with a pipeline run (``run``) whose numbers mean nothing (a
``--quick`` run, or one on the bundled sample; :func:`utils.apps.pipeline.smoke_test`)
marks the title and every slide that reads a number, table or figure from
that run as a smoke test.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from utils.atomic import write_atomic, write_text
from utils.errors import FmaGenreError

# What writes the report files that no notebook makes (the notebooks' own: utils.apps.pipeline.FIGURES, REPORTS)
SCRIPT_OUTPUTS = {
    "cv_gtzan": "scripts/cv_experiment.py", "fma_imbalance": "scripts/fma_imbalance.py",
    "transfer": "scripts/transfer_experiment.py", "robustness": "scripts/robustness_experiment.py",
    "web_page": "scripts/web_screenshot.py",
    "benchmarks_frontend": "benchmarks/frontend.py --json reports/benchmarks_frontend.json",
}
_INCLUDE = re.compile(r"\{\{\s*include\s+([\w.-]+\.md)\s*(?:#\s*([^}]*?))?\s*\}\}")
_PLACEHOLDER = re.compile(r"\{\{\s*([\w-]+)((?:\.[\w-]+)*)\s*(?::([^}]*))?\}\}")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_OPTIONAL = re.compile(r"(?m)^<!--\s*optional\s*-->\s*$")


class SlideError(FmaGenreError):
    """A deck that cannot be built: names the slide and what is missing."""


@dataclass(frozen=True)
class Deck:
    """A built deck: its HTML file, its PDF (None if not asked for), its number of slides, and why
    its run is a smoke test (None when the deck was built without a run or from a run that means something)."""

    html: Path
    pdf: Path | None
    slides: int
    smoke_test: str | None = None


def producer(name: str) -> str:
    """What makes the report file ``name``: a notebook of the pipeline, or a script."""
    from utils.apps.pipeline import FIGURES, REPORTS

    stem = Path(name).stem
    notebook = FIGURES.get(stem) or REPORTS.get(f"{stem}.json")
    if notebook:
        return f"notebooks/{notebook}.ipynb"
    return next((p for prefix, p in SCRIPT_OUTPUTS.items() if stem.startswith(prefix)),
                "no notebook or script of this project")


def find(name: str, reports: list[Path], slide: int) -> Path:
    """The first ``<folder>/<name>`` among the report folders; a missing one fails naming its producer."""
    for folder in reports:
        if (folder / name).is_file():
            return folder / name
    raise SlideError(f"slide {slide}: {name} is in none of {', '.join(map(str, reports))}; "
                     f"{producer(Path(name).name)} makes it")


def fill_numbers(text: str, reports: list[Path], slide: int) -> str:
    """Replace each ``{{ file.key...:spec }}`` placeholder by the formatted value from ``file.json``."""
    cache: dict[str, object] = {}

    def value(match: re.Match) -> str:
        stem, keys, spec = match.group(1), match.group(2).lstrip("."), match.group(3) or ""
        path = find(f"{stem}.json", reports, slide)
        if stem not in cache:
            cache[stem] = json.loads(path.read_text())
        node = cache[stem]
        for key in filter(None, keys.split(".")):
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            else:
                raise SlideError(f"slide {slide}: {path.name} has no {stem}.{keys} "
                                 f"(stopped at {key!r}); {producer(stem)} writes it")
        try:
            return format(node, spec.strip())
        except (TypeError, ValueError) as err:
            raise SlideError(f"slide {slide}: cannot format {stem}.{keys} = {node!r} with {spec!r}: {err}") from None

    return _PLACEHOLDER.sub(value, text)


def include_tables(text: str, reports: list[Path], slide: int) -> str:
    """Replace ``{{ include file.md # Heading }}`` by that section of a report's Markdown
    (the whole file without a heading): tables the scripts generate from their JSON."""
    def section(match: re.Match) -> str:
        name, heading = match.group(1), (match.group(2) or "").strip()
        lines = find(name, reports, slide).read_text().splitlines()
        if not heading:
            return "\n".join(lines)
        starts = [i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading and line.startswith("#")]
        if not starts:
            raise SlideError(f"slide {slide}: {name} has no section {heading!r}; {producer(name)} writes it")
        level = len(lines[starts[0]]) - len(lines[starts[0]].lstrip("#"))
        body = []
        for line in lines[starts[0] + 1:]:
            if line.startswith("#") and len(line) - len(line.lstrip("#")) <= level:
                break
            body.append(line)
        return "\n".join(body).strip()

    return _INCLUDE.sub(section, text)


def embed_images(text: str, reports: list[Path], slide: int) -> str:
    """Replace each Markdown image by an ``<img>`` whose PNG is embedded as a data URI."""
    def image(match: re.Match) -> str:
        caption, ref = match.groups()
        path = find(ref, reports, slide)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        alt = html.escape(caption, quote=True)
        return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'

    return _IMAGE.sub(image, text)


def references(text: str) -> list[str]:
    """The report files a slide's Markdown reads: ``file.md`` of each include, ``file.json`` of each
    number, each image."""
    includes = [m.group(1) for m in _INCLUDE.finditer(text)]
    text = _INCLUDE.sub("", text)
    return includes + [f"{m.group(1)}.json" for m in _PLACEHOLDER.finditer(text)] + \
        [m.group(2) for m in _IMAGE.finditer(text)]


def not_measured(block: str, reports: list[Path]) -> str | None:
    """For an ``<!-- optional -->`` slide whose reports are missing, its heading and a line saying so; else None."""
    if not _OPTIONAL.search(block):
        return None
    missing = [n for n in references(block) if not any((folder / n).is_file() for folder in reports)]
    if not missing:
        return None
    heading = next((line for line in block.splitlines() if line.startswith("#")), "")
    makers = sorted({producer(Path(n).name) for n in missing})
    return (f'{heading}\n\n<p class="missing">Not measured in this checkout: {", ".join(missing)} '
            f'(made by {", ".join(makers)}).</p>')


def render(source: str, reports: list[Path], run_reports: Path | None = None,
           smoke_test: str | None = None) -> list[str]:
    """The HTML of each slide of a Markdown deck, numbers filled in and images embedded.

    With ``smoke_test`` (why the run behind ``run_reports`` proves only that the
    pipeline runs), the title and every slide that reads a file from
    ``run_reports`` carry a smoke-test mark.
    """
    import mistune

    to_html = mistune.create_markdown(escape=False, plugins=["table"])
    blocks = [b.strip() for b in re.split(r"(?m)^---\s*$", source) if b.strip()]
    mark = f'<p class="smoke">Smoke test: {html.escape(smoke_test or "")}; its numbers mean nothing</p>'
    slides = []
    for i, block in enumerate(blocks, 1):
        block = not_measured(block, reports) or block
        body = to_html(embed_images(fill_numbers(include_tables(block, reports, i), reports, i), reports, i))
        from_run = run_reports is not None and any(find(n, reports, i).is_relative_to(run_reports)
                                                   for n in references(block))
        slides.append(mark + body if smoke_test and (i == 1 or from_run) else body)
    return slides


def build(source: str | os.PathLike, reports: list[str | os.PathLike], out: str | os.PathLike,
          pdf: bool = True, chromium: str = "/usr/bin/chromium", run: str | os.PathLike | None = None) -> Deck:
    """Build ``<out>/deck.html`` (and ``deck.pdf``) from a Markdown deck and report folders,
    searched in order for each number and figure: the pipeline run folder ``run``'s
    ``reports/`` first when given, then ``reports`` (the project's)."""
    from utils.apps.pipeline import smoke_test

    source, out = Path(source), Path(out)
    reports = [Path(r) for r in reports]
    run_reports, reason = None, None
    if run is not None:
        record = Path(run) / "run.json"
        if not record.is_file():
            raise SlideError(f"{run}: no run.json, so not a pipeline run (fma-genre pipeline --out {run} makes one)")
        try:
            reason = smoke_test(json.loads(record.read_text()))
        except (json.JSONDecodeError, AttributeError) as err:
            raise SlideError(f"{record}: not a pipeline run record ({err})") from None
        run_reports = Path(run) / "reports"
        reports.insert(0, run_reports)
    missing = [r for r in reports if not r.is_dir()]
    if missing:
        raise SlideError(f"{missing[0]}: no reports folder; run the pipeline first (fma-genre pipeline)")
    slides = render(source.read_text(), reports, run_reports, reason)
    sections = "\n".join(f'<section class="slide{" title" if i == 0 else ""}" id="s{i + 1}">{s}'
                         f'<footer>{i + 1} / {len(slides)}</footer></section>' for i, s in enumerate(slides))
    page = (Path(__file__).with_name("static") / "deck.html").read_text()
    deck = write_text(out / "deck.html", page.replace("<!--SLIDES-->", sections))
    pdf_path = print_pdf(deck, out / "deck.pdf", chromium) if pdf else None
    return Deck(deck, pdf_path, len(slides), reason)


def print_pdf(deck: Path, pdf: Path, chromium: str = "/usr/bin/chromium") -> Path:
    """Print an HTML deck to PDF with headless Chromium, one 1280 x 720 px page per slide."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page()
        page.goto(deck.resolve().as_uri())
        write_atomic(pdf, lambda tmp: tmp.write_bytes(
            page.pdf(width="1280px", height="720px", print_background=True, prefer_css_page_size=True)))
        browser.close()
    return pdf
