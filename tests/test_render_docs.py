"""Every figure in the documentation is traceable: generated blocks equal the reports their scripts
render from JSON, and no measured figure is typed into README or the deck outside a block."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("render_docs", ROOT / "scripts" / "render_docs.py")
render_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_docs)


@pytest.mark.parametrize("doc", render_docs.DOCS)
def test_every_block_equals_its_report(doc):
    text = (ROOT / doc).read_text()
    for file, content in render_docs.blocks(text):
        assert (ROOT / file).exists(), f"{doc} embeds {file}, which does not exist"
        assert content == (ROOT / file).read_text(), f"{doc}: block {file} is stale: run scripts/render_docs.py"


def test_the_docs_embed_or_link_every_benchmark_and_experiment_report():
    pages = {doc: (ROOT / doc).read_text() for doc in render_docs.DOCS}
    embedded = {file for text in pages.values() for file, _ in render_docs.blocks(text)}
    linked = {(Path(doc).parent / link).as_posix().replace("docs/../", "") for doc, text in pages.items()
              for link in re.findall(r"\]\(([^)#\s]+\.md)\)", text)}
    assert {f"reports/{name}.md" for name in render_docs.RENDERERS} <= embedded | linked


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300 and "make demo" in readme and "make test" in readme
    embedded = {file for file, _ in render_docs.blocks(readme)}
    assert {"reports/robustness_headline.md", "reports/benchmarks_predict_headline.md"} <= embedded
    for page in (ROOT / "docs").glob("*.md"):  # every page is linked from the README and rendered
        assert f"docs/{page.name}" in readme and f"docs/{page.name}" in render_docs.DOCS


@pytest.mark.parametrize("doc", render_docs.DOCS)
def test_every_block_has_a_script_that_renders_it_from_json(doc):
    embedded = {file for file, _ in render_docs.blocks((ROOT / doc).read_text())}
    assert embedded <= {f"reports/{name}.md" for name in render_docs.RENDERERS}, sorted(embedded)


@pytest.mark.parametrize("name", sorted(render_docs.RENDERERS))
def test_each_report_is_what_its_script_renders_from_its_json(name):
    reports = ROOT / "reports"
    assert (reports / f"{name}.md").read_text() == render_docs.rendered(name, reports), (
        f"reports/{name}.md was edited or its JSON changed: run scripts/render_docs.py")


@pytest.mark.parametrize("name", sorted({json_name for _, _, json_name in render_docs.RENDERERS.values()}))
def test_each_report_json_says_where_it_came_from(name):
    prov = json.loads((ROOT / "reports" / f"{name}.json").read_text())["provenance"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d.*", prov["date"])
    assert prov["commit"] and prov["command"].startswith("python ")
    assert prov["machine"]["cpu_count"] >= 1 and prov["load_average"]


@pytest.mark.parametrize("doc", [*render_docs.DOCS, "slides/deck.md"])
def test_no_measured_figure_is_typed_outside_a_block(doc):
    assert render_docs.unsourced_figures((ROOT / doc).read_text()) == []


def test_typed_figures_are_found_and_settings_are_not():
    text = ("Speed-up 1.57 and **2.21x** naive, 101,583 windows/s, 81.4 ± 12.0 %.\n"
            "Windows of 128 frames with 50 % overlap; `{{ report.ratio:.0%}}` in a slide.\n"
            "| cnn | 81.4 | 128 frames |\n"
            "<!-- BEGIN reports/x.md -->\n| 99.9 % | 3.5x |\n<!-- END reports/x.md -->\n")
    found = render_docs.unsourced_figures(text)
    assert [f.split(" in: ")[0] for f in found] == ["'2.21x'", "'101,583 windows/s'", "'81.4 ± 12.0 %'", "'81.4'"]


def test_refresh_rewrites_stale_blocks_and_check_reports_them(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "a.md").write_text("| a | 2.0x |\n")
    stale = "intro\n<!-- BEGIN reports/a.md -->\n| a | 1.0x |\n<!-- END reports/a.md -->\nend\n"
    fresh = render_docs.refresh(stale, lambda f: (tmp_path / f).read_text())
    assert fresh == "intro\n<!-- BEGIN reports/a.md -->\n| a | 2.0x |\n<!-- END reports/a.md -->\nend\n"
    assert dict(render_docs.blocks(fresh)) == {"reports/a.md": "| a | 2.0x |\n"}
    assert render_docs.refresh(fresh, lambda f: (tmp_path / f).read_text()) == fresh


def test_the_window_budget_the_pages_state_is_the_predictors():
    from utils.models.predict import DEFAULT_BUDGET

    said = re.compile(r"(?:at most|judged on|At most) (\d+)(?: of its 3 s)? windows|\((\d+) windows a track by default")
    for doc in (*render_docs.DOCS, "slides/deck.md"):
        text = re.sub(r"<!-- BEGIN .*?<!-- END [^>]*-->", "", (ROOT / doc).read_text(), flags=re.S)
        stated = {int(a or b) for a, b in said.findall(" ".join(text.split()))}
        assert stated <= {DEFAULT_BUDGET}, f"{doc} states a budget of {stated}; the predictor's is {DEFAULT_BUDGET}"
