"""Screenshot of the web page classifying a real FMA clip, for the slides: reports/figures/web_page.png.

    python scripts/web_screenshot.py [--model models/default.keras] [--audio FILE] [--out PNG]

Serves the app on 127.0.0.1 (a free port), drives Debian's headless Chromium
with Playwright, uploads the file, waits for the result and saves the page.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from utils.models.predict import DEFAULT_MODEL, load_predictor
from utils.apps.web import create_app, running

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--audio", type=Path, default=Path("data/sample/fma/audio/000/000002.mp3"))
    ap.add_argument("--out", type=Path, default=Path("reports/figures/web_page.png"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    app = create_app(load_predictor(args.model), model_name=args.model.stem)
    with running(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#status:has-text('knows')")
        page.set_input_files("#file", str(args.audio))
        page.wait_for_selector("#result:not([hidden])", timeout=120000)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(f".{args.out.name}.tmp.png")
        page.screenshot(path=str(tmp), full_page=True)
        tmp.replace(args.out)
        browser.close()
    print(f"{args.out}: {page.url} after uploading {args.audio.name}")


if __name__ == "__main__":
    main()
