"""The comparison bar's sound switch in Chromium: only the selected take is heard, and it follows the selection."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from studio.audio import Audio, mux_audio
from studio.encode import stage_mp4
from tests.e2e.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.e2e
ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _clip(path: Path, shade: int, hz: float | None) -> None:
    frames = (np.full((48, 64, 3), shade + i, np.uint8) for i in range(16))
    staged = stage_mp4(frames, path, fps=8)
    if hz is not None:
        t = np.arange(48000) / 24000
        tone = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        staged = mux_audio(staged, Audio(np.stack([tone, tone]), 24000))
    staged.commit()


# Every take playing: started, and past its first frame.
PLAYING = (
    "() => [...document.querySelectorAll('[id^=variant-] video')]"
    ".every(v => !v.paused && v.currentTime > 0)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A page laid out like the studio's grid (four slots, the Selected panel, the bar),
    served on loopback, with compare.js run as the bar's js_on_load."""
    root = tmp_path_factory.mktemp("sound")
    for i, hz in enumerate([220.0, 330.0, 440.0, None], start=1):  # take 4 is silent
        _clip(root / f"v{i}.mp4", 40 * i, hz)
    slots = "".join(
        f'<div class="variant"><div id="variant-{i}"><video src="v{i}.mp4" muted loop '
        f"playsinline autoplay></video></div></div>"
        for i in range(1, 5)
    )
    script = ASSETS.joinpath("compare.js").read_text(encoding="utf-8")
    # dropped.html: the first take's autoplay never came (a busy machine, a clip still loading).
    dropped = slots.replace(
        'src="v1.mp4" muted loop playsinline autoplay', 'src="v1.mp4" muted loop playsinline'
    )
    for name, grid in (("index.html", slots), ("dropped.html", dropped)):
        (root / name).write_text(
            f"<!doctype html><html><body>{grid}"
            '<div id="selected"><video src="v2.mp4" muted></video></div>'
            f'<div id="compare">{ASSETS.joinpath("compare.html").read_text(encoding="utf-8")}</div>'
            "<script>const element = document.querySelector('#compare'); const props = {value: 8};"
            f"\n{script}</script></body></html>",
            encoding="utf-8",
        )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


def muted(page) -> list[bool]:
    return page.eval_on_selector_all("[id^=variant-] video", "vs => vs.map(v => v.muted)")


def test_only_the_selected_take_is_heard_and_the_sound_follows_the_selection(browser, site):  # noqa: F811
    page = browser.new_page()
    page.goto(site, wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[id^=variant-] video')].every(v => v.readyState >= 2)",
        timeout=15_000,
    )
    sound = page.locator("#compare .cmp-sound")
    assert sound.inner_text() == "Sound off" and muted(page) == [True] * 4

    page.locator("#compare .cmp-play").click(timeout=5_000)
    sound.click(timeout=5_000)
    page.wait_for_function("() => document.querySelector('.cmp-sound').textContent === 'Sound: #2'",
                           timeout=5_000)  # fmt: skip
    assert muted(page) == [True, False, True, True]
    assert sound.get_attribute("aria-pressed") == "true"
    # The heard take really plays its sound track (Chromium counts the audio it decodes).
    page.wait_for_function(
        "() => document.querySelector('#variant-2 video').webkitAudioDecodedByteCount > 0",
        timeout=10_000,
    )

    # Another take selected: its sound replaces the other's, and the A/B copies stay muted.
    page.locator("#compare .cmp-ab").click(timeout=5_000)
    page.evaluate("() => { document.querySelector('#selected video').src = 'v3.mp4'; }")
    page.wait_for_function("() => document.querySelector('.cmp-sound').textContent === 'Sound: #3'",
                           timeout=5_000)  # fmt: skip
    assert muted(page) == [True, True, False, True]
    assert page.eval_on_selector_all(".ab-stage video", "vs => vs.every(v => v.muted)")

    page.keyboard.press("m")  # the key switches it off again
    page.wait_for_function("() => document.querySelector('.cmp-sound').textContent === 'Sound off'",
                           timeout=5_000)  # fmt: skip
    assert muted(page) == [True] * 4 and sound.get_attribute("aria-pressed") == "false"
    page.close()


def test_a_take_whose_autoplay_was_dropped_is_started_and_the_others_keep_playing(browser, site):  # noqa: F811
    page = browser.new_page()
    page.goto(site.replace("index.html", "dropped.html"), wait_until="load")
    page.wait_for_function(PLAYING, timeout=15_000)
    page.locator("#compare .cmp-play").click(timeout=5_000)  # paused on purpose: stays paused
    page.wait_for_timeout(1500)
    assert page.eval_on_selector_all("[id^=variant-] video", "vs => vs.every(v => v.paused)")
    page.close()


def test_takes_paused_by_a_script_stay_paused_however_the_pause_event_lands(browser, site):  # noqa: F811
    # A pause is seen on the clip at once, its event later: a bar that waited for the event
    # to tell a deliberate pause from a dropped autoplay started the takes again (CI, once).
    page = browser.new_page()
    page.goto(site, wait_until="load")
    page.wait_for_function(PLAYING, timeout=15_000)
    for _ in range(8):
        page.wait_for_timeout(600)  # past the bar's half-second retry gap
        # Paused in a long task: the page may draw a frame before the pause events come.
        page.evaluate(
            "() => { document.querySelectorAll('[id^=variant-] video').forEach(v => v.pause());"
            " const t = performance.now(); while (performance.now() - t < 100); }"
        )
        page.wait_for_timeout(700)
        assert page.eval_on_selector_all("[id^=variant-] video", "vs => vs.every(v => v.paused)")
        assert page.locator("#compare .cmp-play").inner_text().strip() == "Play all"
        page.locator("#compare .cmp-play").click(timeout=5_000)
        page.wait_for_function(PLAYING, timeout=5_000)
    page.close()
