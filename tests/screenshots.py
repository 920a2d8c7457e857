"""Take the README's screenshots with Playwright and Debian's chromium: the gallery on a laptop
(1366x900) and on a phone (390x844), from the app serving the shipped weights, offline.

    python tests/screenshots.py              # writes aigc_demo/ui/assets/screenshot*.png
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from aigc_demo.settings import ServeSettings  # noqa: E402
from aigc_demo.ui.launch import create, launch_kwargs  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

ASSETS = ROOT / "aigc_demo" / "ui" / "assets"
SHOTS = {"screenshot.png": {"width": 1366, "height": 900},  # the gallery on a laptop
         "screenshot-phone.png": {"width": 390, "height": 844}}  # the gallery on a phone


def main() -> None:
    settings = ServeSettings(host="127.0.0.1", port=free_port(), device="cpu", weights_dir=str(ROOT / "weights"))
    demo = create(settings)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(settings))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, viewport in SHOTS.items():
                page = browser.new_page(viewport=viewport, device_scale_factor=1)
                page.goto(f"http://127.0.0.1:{settings.port}/")
                expect(page.locator("#gallery-count")).to_be_visible(timeout=60_000)
                expect(page.locator("#device-badge")).to_contain_text("Running on", timeout=60_000)
                page.wait_for_timeout(1500)  # let the load events settle
                page.screenshot(path=str(ASSETS / name))
                print("wrote", ASSETS / name)
                page.close()
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
