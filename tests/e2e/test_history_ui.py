"""History in Chromium: posters, pages back to the oldest clip, a click opens a clip; Cancel says what it kept."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio.clips import run_job
from studio.jobs import Job, prepare_job
from studio.settings import Settings
from tests.appserver import running_app
from tests.e2e.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.e2e

JOBS = 7  # 28 clips: more than one page of 24


@pytest.fixture(scope="module")
def app(tmp_path_factory, samples):
    tmp = tmp_path_factory.mktemp("history-ui")
    settings = Settings(outputs_dir=tmp / "outputs", user_presets_dir=tmp / "presets",
                        score=False, workers=2)  # fmt: skip
    settings = replace(settings, long_side=128)
    for seed in range(JOBS):  # clips made earlier (by the CLI or a previous session)
        job = Job(image=str(samples["product"]), preset="product/glint", seed=seed, frames=8)
        for _ in run_job(prepare_job(job, settings), settings.outputs_dir / f"job{seed}", settings):
            pass
    with running_app(tmp, env={"STUDIO_LONG_SIDE": "256", "STUDIO_SCORE": "0"}) as url:
        yield url


def test_history_shows_posters_pages_back_and_opens_a_clip(browser, app):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(app, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator("#history-panel").get_by_text("History").first.click()
    page.wait_for_function(
        "() => document.querySelector('#history-page')?.innerText.includes('Page 1 of 2 · 28 clips')",
        timeout=20_000,
    )
    # Posters, not grey video placeholders: 24 images that really loaded.
    page.wait_for_function(
        "() => { const im = [...document.querySelectorAll('#history img')];"
        " return im.length === 24 && im.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=20_000,
    )
    assert page.locator("#history video").count() == 0
    assert page.locator("#history-newer").is_disabled()

    page.locator("#history-older").click()
    page.wait_for_function(
        "() => document.querySelector('#history-page').innerText.includes('Page 2 of 2')",
        timeout=15_000,
    )
    page.wait_for_function(
        "() => document.querySelectorAll('#history img').length === 4", timeout=15_000
    )
    assert page.locator("#history-older").is_disabled()

    page.locator("#history img").first.click()
    page.wait_for_selector("#selected video[src]", timeout=15_000)
    page.wait_for_selector("#download", state="visible", timeout=15_000)
    assert "History" in page.locator("#selected").inner_text()
    page.close()


def test_cancel_says_the_job_stopped_and_how_many_takes_were_kept(browser, app, samples):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(app, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator("#photo input[type=file]").set_input_files(str(samples["scenic"]))
    page.wait_for_selector("#photo img", timeout=15_000)
    page.get_by_text("Advanced settings").click()
    # Its fields mount when it first opens: typed in that moment, a value can be lost.
    page.wait_for_selector("#duration input[type=number]", timeout=10_000)
    page.wait_for_timeout(300)
    duration = page.get_by_label("Duration (s)").first
    duration.fill("10")
    duration.press("Enter")
    page.locator("#generate").click()
    page.wait_for_function(
        "() => document.querySelector('#status').innerText.includes('Rendering')", timeout=60_000
    )
    page.locator("#cancel").click()
    page.wait_for_function(
        "() => document.querySelector('#status').innerText.includes('Cancelled.')",
        timeout=20_000,
    )
    text = page.locator("#status").inner_text()
    assert "kept" in text and "Rendering" not in text, text
    page.close()


def test_a_sample_photo_clicked_in_the_page_is_accepted_as_an_upload(browser, app):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(app, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator(".gallery-item, [data-testid='examples'] button, table.examples-table td")\
        .first.click()  # fmt: skip
    page.wait_for_selector("#photo img", timeout=15_000)
    page.locator("#generate").click()
    for i in range(1, 5):
        page.wait_for_selector(f"#variant-{i} video[src]", timeout=120_000)
    assert "not uploaded" not in page.locator("body").inner_text()
    page.close()
