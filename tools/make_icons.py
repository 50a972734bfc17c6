"""Draw the web app's PNG icons from engine/web/static/icon.svg with Debian's Chromium.

iOS's "add to home screen" reads only a PNG apple-touch-icon, and Android wants 192 and 512 px
PNGs in the manifest; the SVG stays the one source. Run after changing icon.svg:

    .venv/bin/python tools/make_icons.py
"""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

STATIC = Path(__file__).resolve().parent.parent / "engine" / "web" / "static"
SIZES = {"icon-192.png": 192, "icon-512.png": 512, "apple-touch-icon.png": 180}


def main() -> None:
    svg = (STATIC / "icon.svg").read_text(encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        for name, size in SIZES.items():
            page = browser.new_page(viewport={"width": size, "height": size})
            # iOS rounds the corners itself: the apple icon is the full square
            fill = "#12324f" if name.startswith("apple") else "transparent"
            page.set_content(f"<style>html,body{{margin:0;background:{fill}}}"
                             f"svg{{display:block;width:{size}px;height:{size}px}}</style>{svg}")
            page.screenshot(path=str(STATIC / name), omit_background=fill == "transparent")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
