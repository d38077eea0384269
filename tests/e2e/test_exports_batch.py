"""Several photos in one go and the export panel in Chromium: pick a take per photo, ZIP them, export each format and play it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from studio.encode import probe_mp4
from tests.appserver import running_app
from tests.e2e.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parent.parent.parent / "assets"
# Where a downloaded export is served to a blank page (answered by page.route, not a server).
PLAYER = "http://player.test"
MIME = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exports-ui")
    with running_app(tmp, env={"STUDIO_LONG_SIDE": "128", "STUDIO_SCORE": "0"}) as url:
        yield url, tmp


def short_clips(page) -> None:
    """One second at 8 fps: a few frames per take keeps the batch quick on two cores.

    Gradio mounts a closed accordion's fields only when it is first opened (0.1-0.5 s here,
    measured; no request goes to the server), and a value typed in the moment they appear
    can be overwritten by their own start-up value (seen once in 14 tries on a loaded
    machine; no person types that fast). So the fields are given time to settle, and a value
    that did not stay is typed again.
    """
    page.get_by_text("Advanced settings").click()
    wanted = (("duration", "1"), ("fps", "8"))
    for elem, _ in wanted:
        page.wait_for_selector(f"#{elem} input[type=number]", timeout=10_000)
    page.wait_for_timeout(300)
    for _ in range(5):
        for elem, value in wanted:
            field = page.locator(f"#{elem} input[type=number]")
            field.fill(value)
            field.press("Enter")
        page.wait_for_timeout(1000)
        if all(page.locator(f"#{e} input[type=number]").input_value() == v for e, v in wanted):
            return
    raise AssertionError("the clip's length kept going back to its start-up value")


def download(page, button: str, folder: Path) -> Path:
    with page.expect_download(timeout=30_000) as info:
        page.locator(button).click()
    saved = folder / info.value.suggested_filename
    info.value.save_as(saved)
    return saved


def plays_in_chromium(browser, path: Path) -> dict:  # noqa: F811
    """Load the file into a <video> (or an <img> for a GIF) on a blank page; what it decoded."""
    page = browser.new_page()
    body = path.read_bytes()
    page.route(f"{PLAYER}/**", lambda route: route.fulfill(
        status=200, body=body if route.request.url.endswith(path.name) else b"<!doctype html>",
        content_type=MIME[path.suffix] if route.request.url.endswith(path.name) else "text/html",
    ))  # fmt: skip
    page.goto(f"{PLAYER}/", wait_until="load")
    src = f"{PLAYER}/{path.name}"
    if path.suffix == ".gif":
        got = page.evaluate(
            "src => new Promise(ok => { const im = new Image(); im.onload = im.onerror = () =>"
            " ok({w: im.naturalWidth, h: im.naturalHeight}); im.src = src;"
            " setTimeout(() => ok({w: -1}), 10000); })",
            src,
        )
    else:
        got = page.evaluate(
            "src => new Promise(ok => { const v = document.createElement('video'); v.muted = true;"
            " v.onloadeddata = () => ok({state: v.readyState, w: v.videoWidth, h: v.videoHeight,"
            " duration: v.duration}); v.onerror = () => ok({state: -1, error: v.error && v.error.code});"
            " setTimeout(() => ok({state: v.readyState, timeout: true}), 10000);"
            " v.src = src; document.body.appendChild(v); v.load(); })",
            src,
        )
    page.close()
    return got


def test_batch_zip_of_selected_takes_and_each_export_plays(browser, app, samples, tmp_path):  # noqa: F811
    url, tmp = app
    page = browser.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    short_clips(page)

    # 1. Two photos in the batch panel, four takes each.
    page.locator("#batch-panel").get_by_text("Several photos in one go").first.click()
    page.locator("#batch-photos input[type=file]").set_input_files(
        [str(samples["product"]), str(samples["portrait"])]
    )
    page.wait_for_function(
        "() => document.querySelector('#batch-photos').innerText.includes('astronaut')",
        timeout=15_000,
    )
    page.locator("#batch-generate").click()
    page.wait_for_function(
        "() => { const t = document.querySelector('#batch-status').innerText;"
        " return t.includes('Photo 1 of 2 (coffee.png): done')"
        " && t.includes('Photo 2 of 2 (astronaut.png): done'); }",
        timeout=180_000,
    )
    page.wait_for_function(
        "() => { const im = [...document.querySelectorAll('#batch-takes img')];"
        " return im.length === 8 && im.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=20_000,
    )

    # 2. One take per photo: the second of photo 1, the fourth of photo 2 (the one exported).
    for index, stars in ((1, 1), (7, 2)):
        page.locator("#batch-takes img").nth(index).click()
        page.wait_for_function(
            "n => document.querySelector('#batch-takes').innerText.split('★').length - 1 === n",
            arg=stars,
            timeout=15_000,
        )
    page.wait_for_selector("#selected video[src]", timeout=15_000)
    chosen = Path(page.locator("#download").inner_text().replace("Download ", "").strip())
    assert "-v4" in chosen.name, chosen

    # 3. Download all selected: exactly those two takes and their manifests.
    page.locator("#batch-zip").click()
    page.wait_for_selector("#batch-zip-file", state="visible", timeout=20_000)
    assert "2 takes" in page.locator("#batch-zip-file").inner_text()
    archive = download(page, "#batch-zip-file", tmp_path)
    with zipfile.ZipFile(archive) as z:
        names = sorted(z.namelist())
        assert len(names) == 4, names
        assert [n.split("/")[0] for n in names] == ["photo-1"] * 2 + ["photo-2"] * 2
        takes = [n for n in names if n.endswith(".mp4")]
        assert "-v2" in takes[0] and "-v4" in takes[1] and takes[1].endswith(chosen.name)
        for take in takes:
            manifest = json.loads(z.read(take.replace(".mp4", ".json")))
            assert manifest["video"]["file"] == Path(take).name
            (original,) = (tmp / "outputs").rglob(Path(take).name)
            assert z.read(take) == original.read_bytes()

    # 4. The selected take exported once as each format; each file plays in Chromium.
    panel = page.locator("#export-panel").first
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(tmp_path / "export-panel.png"))
    made = {}
    for label, suffix in (("MP4", ".mp4"), ("WebM", ".webm"), ("GIF", ".gif")):
        page.locator("#export-format").get_by_text(label, exact=True).click()
        if suffix == ".mp4":  # the clip's own MP4 is the take itself: ask for a platform's frame
            page.locator("#export-platform input").click()
            page.get_by_role("option", name="Square", exact=False).first.click()
        page.locator("#export").click()
        page.wait_for_function(
            "s => { const b = document.querySelector('#export-file');"
            " return b && b.offsetParent !== null && b.innerText.trim().endsWith(s); }",
            arg=suffix,
            timeout=60_000,
        )
        saved = download(page, "#export-file", tmp_path)
        assert saved.suffix == suffix and saved.stem.startswith(chosen.stem), saved
        made[suffix] = saved
    page.close()

    facts = probe_mp4(chosen_path := next((tmp / "outputs").rglob(chosen.name)))
    assert facts["frames"] == 8
    for suffix, saved in made.items():
        got = plays_in_chromium(browser, saved)
        if suffix == ".gif":
            assert got["w"] > 0 and got["h"] > 0, (saved.name, got)
        else:
            assert got["state"] >= 2 and got["w"] > 0, (saved.name, got)
            assert abs(got["duration"] - 1.0) < 0.2, (saved.name, got)
    assert probe_mp4(made[".mp4"])["width"] == 1080  # the square platform frame
    assert probe_mp4(made[".webm"])["codec"].startswith("vp9")
    assert chosen_path.is_file()
