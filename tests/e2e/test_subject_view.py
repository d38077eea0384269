"""The Subject view in Chromium: see what the engine takes as the subject, correct it with clicks, and the job carries it."""

from __future__ import annotations

import json

import pytest

from tests.appserver import running_app
from tests.e2e.test_browser import browser  # noqa: F401 - the shared Chromium fixture
from tests.e2e.test_exports_batch import short_clips

pytestmark = pytest.mark.e2e

OVERLAY = "#subject-overlay img"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("subject-ui")
    with running_app(tmp, env={"STUDIO_LONG_SIDE": "128", "STUDIO_SCORE": "0"}) as url:
        yield url, tmp


def overlay_src(page) -> str:
    return page.eval_on_selector(OVERLAY, "img => img.currentSrc || img.src")


def wait_for_new_overlay(page, old: str) -> str:
    page.wait_for_function(
        "([sel, old]) => { const im = document.querySelector(sel);"
        " return im && (im.currentSrc || im.src) !== old && im.complete && im.naturalWidth > 0; }",
        arg=[OVERLAY, old],
        timeout=20_000,
    )
    return overlay_src(page)


def note(page) -> str:
    return page.locator("#subject-note").inner_text()


def test_a_click_removes_part_of_the_subject_and_the_job_carries_the_correction(
    browser,  # noqa: F811
    app,
    samples,
    tmp_path,
):
    url, tmp = app
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator("#photo input[type=file]").set_input_files(str(samples["portrait"]))
    page.wait_for_selector("#photo img", timeout=15_000)

    # 1. Open the Subject view: the overlay shows the engine's subject, the note says which.
    page.locator("#subject-panel").get_by_text("Subject: what moves in front").first.click()
    original = wait_for_new_overlay(page, "")
    page.wait_for_function(
        "() => document.querySelector('#subject-note').innerText.includes('person matte')",
        timeout=15_000,
    )
    size = page.eval_on_selector(OVERLAY, "im => [im.naturalWidth, im.naturalHeight]")
    assert size == [512, 512]  # the preview of the 512x512 portrait

    # 2. Remove a round area of the suit: the overlay changes and counts the correction.
    page.locator("#subject-mode").get_by_text("Remove from subject").click()
    image = page.locator(OVERLAY)
    box = image.bounding_box()
    image.click(position={"x": 0.3 * box["width"], "y": 0.75 * box["height"]})
    corrected = wait_for_new_overlay(page, original)
    assert "1 correction." in note(page)

    # 3. Undo brings the engine's own subject back (the very same picture), then redo the click.
    page.locator("#subject-undo").click()
    assert wait_for_new_overlay(page, corrected) == original
    assert "correction" not in note(page)
    image.click(position={"x": 0.3 * box["width"], "y": 0.75 * box["height"]})
    wait_for_new_overlay(page, original)
    page.wait_for_function(
        "() => document.querySelector('#subject-note').innerText.includes('1 correction.')",
        timeout=15_000,
    )
    page.locator("#subject-panel").screenshot(path=str(tmp_path / "subject_view.png"))

    # 4. Generate a short clip: the job, and every clip's manifest, carry the correction.
    short_clips(page)  # opens Advanced settings, lets its fields mount, types until it stays
    page.locator("#generate").click()
    for i in range(1, 5):
        page.wait_for_selector(f"#variant-{i} video[src]", timeout=120_000)
    page.wait_for_function(
        "() => document.querySelector('#status').innerText.includes('Done')", timeout=60_000
    )
    page.close()

    (summary,) = (tmp / "outputs").glob("*/manifest.json")
    manifests = [json.loads(p.read_text()) for p in summary.parent.glob("*.json")]
    assert len(manifests) == 5  # four clips and the job's summary
    for manifest in manifests:
        (edit,) = manifest["job"]["subject_edits"]
        assert edit["mode"] == "remove" and edit["radius"] == 0.05
        x, y = edit["points"][0]
        assert abs(x - 0.3) < 0.02 and abs(y - 0.75) < 0.02, edit
    plan = json.loads(next(summary.parent.glob("*-v1-*.json")).read_text())["plan"]
    assert plan["frames"] == 8  # the short clip asked for in the form
