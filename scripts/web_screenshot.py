"""Screenshot of the web page classifying a real FMA clip, for the slides: reports/figures/web_page.png.

    python scripts/web_screenshot.py [--model NAME_OR_PATH ...] [--pick NAME] [--audio FILE] [--out PNG]

Serves the app with the models (default: both shipped ones, as ``fma-genre serve``)
on 127.0.0.1 (a free port), drives Debian's headless Chromium with Playwright,
picks the model, uploads the file, waits for the result and saves the page.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from utils.apps.cli.serve import model_names
from utils.models.predict import SHIPPED, load_predictor
from utils.apps.web import create_app, running

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="a shipped model's name or a .keras; again for more")
    ap.add_argument("--pick", help="the model picked on the page (default: the first)")
    ap.add_argument("--audio", type=Path, default=Path("data/sample/fma/audio/000/000002.mp3"))
    ap.add_argument("--out", type=Path, default=Path("reports/figures/web_page.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    given = args.model or list(SHIPPED)
    names = model_names(given)
    pick = args.pick or names[0]
    app = create_app({name: load_predictor(m) for name, m in zip(names, given)})
    with running(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#status:has-text('MiB')")
        if len(names) > 1:
            page.check(f"#models input[value='{pick}']")
        page.set_input_files("#file", str(args.audio))
        page.wait_for_selector(f"#status:has-text('judged by {pick}')", timeout=120000)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(f".{args.out.name}.tmp.png")
        page.screenshot(path=str(tmp), full_page=True)
        tmp.replace(args.out)
        browser.close()
    print(f"{args.out}: {page.url} after uploading {args.audio.name} to {pick}")


if __name__ == "__main__":
    main()
