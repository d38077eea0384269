"""Take the README screenshot: start the studio, generate four variants of a sample, select one.

Usage: .venv/bin/python scripts/screenshot.py [--photo assets/examples/coffee.png] [--out /tmp/screenshot.png]
Needs Debian's chromium (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.appserver import running_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default=str(ROOT / "assets/examples/coffee.png"))
    parser.add_argument("--preset", default="Product · Slow push-in")
    parser.add_argument("--out", default=str(ROOT / "assets/screenshot.png"))
    parser.add_argument("--select", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_app(Path(tmp)) as url,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.goto(url, wait_until="load")
        page.wait_for_selector("#generate")
        page.locator("#photo input[type=file]").set_input_files(args.photo)
        page.wait_for_selector("#photo img")
        page.locator("#preset input").click()
        page.get_by_role("option", name=args.preset).click()
        page.locator("#generate").click()
        for i in range(1, 5):
            page.wait_for_selector(f"#variant-{i} video[src]", timeout=180_000)
        page.locator(f"#select-{args.select}").click()
        page.wait_for_selector("#download", state="visible")
        page.wait_for_timeout(1500)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
