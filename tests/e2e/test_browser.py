"""The most important test: a person uploads a photo, picks a preset, gets four playing clips, picks one, downloads it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from studio.encode import probe_mp4
from tests.appserver import running_app

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
REQUIRED = os.environ.get("STUDIO_REQUIRE_BROWSER") == "1"

pytestmark = pytest.mark.e2e


def unquoted(url: str) -> str:
    from urllib.parse import unquote

    return unquote(url)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if REQUIRED:
            pytest.fail(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--headless",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("studio")
    # A smaller long side keeps the browser test quick on two cores; everything else is real.
    with running_app(tmp, env={"STUDIO_LONG_SIDE": "320"}) as url:
        yield url


def test_upload_pick_preset_compare_four_select_and_download(browser, app_url, samples, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)

    page.locator("#photo input[type=file]").set_input_files(str(samples["product"]))
    page.wait_for_selector("#photo img", timeout=15_000)

    page.locator("#preset input").click()
    page.get_by_role("option", name="Product · Orbit reveal").click()
    page.wait_for_function(
        "() => document.querySelector('#preset-info').innerText.includes('arcs a few degrees')",
        timeout=10_000,
    )

    page.locator("#generate").click()
    for i in range(1, 5):
        page.wait_for_selector(f"#variant-{i} video[src]", timeout=120_000)

    # Four different clips, all looping and actually playing.
    sources = page.eval_on_selector_all(
        "[id^=variant-] video", "vs => vs.map(v => v.currentSrc || v.src)"
    )
    assert len(sources) == 4 and len(set(sources)) == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('[id^=variant-] video')]"
        ".every(v => v.loop && !v.paused && v.currentTime > 0 && v.readyState >= 2)",
        timeout=20_000,
    )
    assert "4 variants" in page.locator("#status").inner_text()

    # Ranked: every take is labelled with its rank and score, and the best one is preselected.
    page.wait_for_function(
        "() => document.querySelector('#variant-1').innerText.includes('#1')", timeout=20_000
    )
    labels = [page.locator(f"#variant-{i}").inner_text() for i in range(1, 5)]
    assert all(f"#{i}" in text and "score" in text for i, text in enumerate(labels, 1)), labels
    page.wait_for_selector("#download", state="visible", timeout=15_000)
    best = page.eval_on_selector("#variant-1 video", "v => decodeURIComponent(v.currentSrc)")
    assert page.locator("#download").inner_text().replace("Download ", "").strip() in best
    page.get_by_text("Why this order?").click()
    page.wait_for_selector("#scores table.score-table", timeout=10_000)
    assert page.locator("#scores tbody tr").count() == 4

    # One transport for all four: pause, step one frame, and they stay in lock-step.
    page.locator("#compare .cmp-play").click()  # playing -> pause all
    page.wait_for_function(
        "() => [...document.querySelectorAll('[id^=variant-] video')].every(v => v.paused)"
    )
    page.locator("#compare .cmp-fwd").click()
    page.locator("#compare .cmp-fwd").click()
    times = page.eval_on_selector_all("[id^=variant-] video", "vs => vs.map(v => v.currentTime)")
    assert max(times) - min(times) <= 1 / 24 + 1e-3, times
    # A/B viewer with a split line loads two of the takes.
    page.locator("#compare .cmp-ab").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare .ab-stage video')].every(v => v.readyState >= 1)",
        timeout=15_000,
    )

    # Keyboard: "3" selects the third take; the download panel follows.
    third = page.eval_on_selector("#variant-3 video", "v => v.currentSrc")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("3")
    page.wait_for_function(
        "() => document.querySelector('#selected').innerText.includes('#3')", timeout=15_000
    )
    page.wait_for_selector("#download", state="visible", timeout=15_000)
    with page.expect_download(timeout=30_000) as download_info:
        page.locator("#download").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    assert saved.suffix == ".mp4" and saved.name in unquoted(third)
    probe = probe_mp4(saved)
    assert probe["codec"].startswith("h264") and probe["pix_fmt"].startswith("yuv420p")
    # Product presets default to 1:1, 3 s at 24 fps; the app runs with a 320 px long side.
    assert (probe["width"], probe["height"]) == (320, 320)
    assert probe["frames"] == 72
    page.close()


def test_non_image_upload_gets_a_clear_message_and_the_server_keeps_serving(
    browser, app_url, tmp_path
):
    bogus = tmp_path / "notes.png"
    bogus.write_bytes(b"this is not a picture at all")
    page = browser.new_page()
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator("#photo input[type=file]").set_input_files(str(bogus))
    page.wait_for_timeout(500)
    page.locator("#generate").click()
    toast = page.get_by_text("not a photo", exact=False).first
    toast.wait_for(timeout=20_000)
    page.close()

    page = browser.new_page()
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.close()


def test_shootout_tab_runs_photos_through_presets_and_links_a_report(browser, app_url, samples):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="load")
    page.get_by_role("tab", name="Shootout").click()
    page.locator("#shootout-photos input[type=file]").set_input_files(
        [str(samples["product"]), str(samples["portrait"])]
    )
    page.wait_for_timeout(500)
    page.locator("#shootout-run").click()
    page.wait_for_function(
        "() => document.querySelector('#shootout-status').innerText.includes('Done')",
        timeout=120_000,
    )
    assert "0 failed" in page.locator("#shootout-status").inner_text()
    # Two photos x the default preset x the engine x two variants, with one winner per photo.
    table = page.locator("#shootout-table").inner_text()
    assert table.count("product/slow-push-in") == 4, table
    assert table.count("winner") == 2, table
    report = page.locator("#shootout-status a").get_attribute("href")
    page.goto(app_url + report, wait_until="load")
    page.wait_for_function(
        "() => { const v = [...document.querySelectorAll('video')];"
        " return v.length >= 4 && v.every(x => x.readyState >= 1); }",
        timeout=30_000,
    )
    page.close()
