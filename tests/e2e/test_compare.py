"""The comparison bar in Chromium tells the truth about the four clips, also after a new job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio.serve.history import open_history
from tests.appserver import running_app
from tests.e2e.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.e2e

ALL_PLAYING = (
    "() => [...document.querySelectorAll('[id^=variant-] video')]"
    ".every(v => v.currentSrc && !v.paused && v.currentTime > 0)"
)
ALL_PAUSED = "() => [...document.querySelectorAll('[id^=variant-] video')].every(v => v.paused)"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    # Small clips keep this quick on two cores; scoring stays on so the takes are ranked.
    with running_app(tmp, env={"STUDIO_LONG_SIDE": "160", "STUDIO_SCORE": "1"}) as url:
        yield url, tmp / "outputs"


@pytest.fixture(scope="module")
def page(browser, app, samples):  # noqa: F811 - pytest injects the imported fixture
    url, _ = app
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator("#photo input[type=file]").set_input_files(str(samples["product"]))
    page.wait_for_selector("#photo img", timeout=15_000)
    generate(page)
    yield page
    page.close()


def generate(page) -> list[str]:
    """Run a job to the end (ranked, best take preselected); the four clip URLs, best first."""
    before = grid_sources(page)
    page.locator("#generate").click()
    page.wait_for_function(
        "(old) => { const s = document.querySelector('#status').innerText;"
        " const v = [...document.querySelectorAll('[id^=variant-] video')].map(v => v.currentSrc);"
        " return s.includes('preselected') && v.length === 4 && v.every(x => x && !old.includes(x)); }",
        arg=before,
        timeout=120_000,
    )
    page.wait_for_function(ALL_PLAYING, timeout=20_000)
    return grid_sources(page)


def grid_sources(page) -> list[str]:
    return page.eval_on_selector_all("[id^=variant-] video", "vs => vs.map(v => v.currentSrc)")


def play_label(page) -> str:
    return page.locator("#compare .cmp-play").inner_text().strip()


def outlined(page) -> list[int]:
    """The slots (1-4) outlined as the selected take."""
    return page.evaluate(
        "() => [1, 2, 3, 4].filter(i => document.querySelector(`#variant-${i}`)"
        ".closest('.variant').classList.contains('selected'))"
    )


def slot_variant(page, slot: int) -> int:
    """The variant number the slot's label names ('#2 · variant 4 · score 80')."""
    text = page.locator(f"#variant-{slot}").inner_text()
    match = re.search(rf"#{slot} · variant (\d+)", text)
    assert match, text
    return int(match.group(1))


def focus_page(page) -> None:
    page.locator("body").click(position={"x": 5, "y": 5})


def test_play_button_says_what_the_autoplaying_clips_are_doing(page):
    # The clips autoplay after a job: the button offers to pause them.
    page.wait_for_function(ALL_PLAYING, timeout=20_000)
    page.wait_for_function(
        "() => document.querySelector('#compare .cmp-play').innerText.trim() === 'Pause all'",
        timeout=5_000,
    )
    # One click pauses all four (not a first click that "plays" what already plays).
    page.locator("#compare .cmp-play").click()
    page.wait_for_function(ALL_PAUSED, timeout=5_000)
    assert play_label(page) == "Play all"
    # Space with the button still focused toggles once, not twice (key and button press).
    page.keyboard.press(" ")
    page.wait_for_function(ALL_PLAYING, timeout=5_000)
    page.wait_for_timeout(300)
    assert play_label(page) == "Pause all"
    focus_page(page)
    page.keyboard.press(" ")
    page.wait_for_function(ALL_PAUSED, timeout=5_000)
    page.wait_for_timeout(300)
    assert play_label(page) == "Play all"
    # Paused outside the bar (a video's own controls, a script): the button follows.
    page.locator("#compare .cmp-play").click()
    page.wait_for_function(ALL_PLAYING, timeout=5_000)
    page.evaluate("() => document.querySelectorAll('[id^=variant-] video').forEach(v => v.pause())")
    page.wait_for_function(
        "() => document.querySelector('#compare .cmp-play').innerText.trim() === 'Play all'",
        timeout=5_000,
    )


def test_frame_counter_stops_at_the_last_frame(page):
    page.evaluate("() => document.querySelectorAll('[id^=variant-] video').forEach(v => v.pause())")
    page.wait_for_function(ALL_PAUSED, timeout=5_000)
    counter = page.locator("#compare .cmp-time")
    # Product presets are 3 s at 24 fps: 72 frames, counted 1..72.
    page.eval_on_selector(
        "#compare .cmp-scrub",
        "s => { s.value = '0'; s.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.wait_for_function(
        "() => document.querySelector('#compare .cmp-time').innerText === 'frame 1 / 72'",
        timeout=5_000,
    )
    # Scrubbed to the end: the last frame, not one past it.
    page.eval_on_selector(
        "#compare .cmp-scrub",
        "s => { s.value = '1'; s.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.wait_for_timeout(300)
    assert counter.inner_text() == "frame 72 / 72"
    # Stepping on from there stays there.
    focus_page(page)
    for _ in range(3):
        page.keyboard.press(".")
        page.wait_for_timeout(150)
    page.wait_for_timeout(300)
    assert counter.inner_text() == "frame 72 / 72"
    page.keyboard.press(",")
    page.wait_for_timeout(300)
    assert counter.inner_text() == "frame 71 / 72"
    page.keyboard.press(".")
    page.wait_for_timeout(300)
    assert counter.inner_text() == "frame 72 / 72"


def test_slot_label_button_key_and_selected_panel_name_the_same_take(page, app):
    _, outputs = app
    # Ranked: the button under each slot names the slot the label leads with.
    for slot in range(1, 5):
        slot_variant(page, slot)
        assert page.locator(f"#select-{slot}").inner_text().strip() == f"Select #{slot}"
    # The best take is preselected, named by rank and variant, and outlined.
    page.wait_for_function(
        "() => document.querySelector('#selected').innerText.includes('Selected: #1 (variant')",
        timeout=10_000,
    )
    assert (
        f"Selected: #1 (variant {slot_variant(page, 1)})" in page.locator("#selected").inner_text()
    )
    assert outlined(page) == [1]

    # The button picks its slot...
    page.locator("#select-2").click()
    expected = f"Selected: #2 (variant {slot_variant(page, 2)})"
    page.wait_for_function(
        "(t) => document.querySelector('#selected').innerText.includes(t)", arg=expected
    )
    src = page.eval_on_selector("#selected video", "v => v.currentSrc")
    assert src == grid_sources(page)[1]
    page.wait_for_function("() => document.querySelector('#variant-2').closest('.variant')"
                           ".classList.contains('selected')", timeout=5_000)  # fmt: skip
    assert outlined(page) == [2]

    # ... and so do the keys, by position; browsing leaves one take of the job starred.
    focus_page(page)
    for key in ("1", "4", "3"):
        page.keyboard.press(key)
        expected = f"Selected: #{key} (variant {slot_variant(page, int(key))})"
        page.wait_for_function(
            "(t) => document.querySelector('#selected').innerText.includes(t)", arg=expected
        )
    page.wait_for_function("() => document.querySelector('#variant-3').closest('.variant')"
                           ".classList.contains('selected')", timeout=5_000)  # fmt: skip
    assert outlined(page) == [3]
    third = Path(page.eval_on_selector("#variant-3 video", "v => decodeURIComponent(v.currentSrc)"))
    starred = open_history(outputs).selected()
    mine = [p for p in starred if p.name == third.name]
    assert mine, starred
    assert [p.name for p in starred if p.parent == mine[0].parent] == [third.name], starred

    # History shows the star at once, on that take only (no reload).
    if not page.locator("#history .caption-label").first.is_visible():
        page.get_by_text("History", exact=True).first.click()
    variant = slot_variant(page, 3)
    page.wait_for_function(
        "(v) => [...document.querySelectorAll('#history .caption-label')]"
        ".some(c => c.innerText.includes(`· v${v} ·`) && c.innerText.includes('★'))",
        arg=variant,
        timeout=10_000,
    )
    captions = page.locator("#history .caption-label").all_inner_texts()
    assert sum("★" in c for c in captions) == 1, captions


def test_a_new_job_resets_the_ab_viewer_outline_and_labels(page):
    # The A/B viewer shows two takes of this job; take #3 is selected and outlined.
    first = grid_sources(page)
    page.locator("#compare .cmp-ab").click()
    page.wait_for_function(
        "(g) => { const a = document.querySelector('#compare .ab-a');"
        " const b = document.querySelector('#compare .ab-b');"
        " return a.currentSrc === g[0] && b.currentSrc === g[1]; }",
        arg=first,
        timeout=10_000,
    )
    focus_page(page)
    page.keyboard.press("3")
    page.wait_for_function(
        "() => document.querySelector('#selected').innerText.includes('Selected: #3')"
    )
    page.wait_for_function("() => document.querySelector('#variant-3').closest('.variant')"
                           ".classList.contains('selected')", timeout=5_000)  # fmt: skip

    second = generate(page)
    assert not set(first) & set(second)
    # The A/B viewer follows the grid to the new takes ...
    page.wait_for_function(
        "(g) => { const a = document.querySelector('#compare .ab-a');"
        " const b = document.querySelector('#compare .ab-b');"
        " return (a.currentSrc === g[0] && b.currentSrc === g[1])"
        " || (!a.currentSrc && !b.currentSrc); }",
        arg=second,
        timeout=10_000,
    )
    ab = page.eval_on_selector_all("#compare .ab-stage video", "vs => vs.map(v => v.currentSrc)")
    assert not set(ab) & set(first), ab
    # ... the new best take is the one outlined, and the labels are the new job's.
    page.wait_for_function(
        "() => document.querySelector('#selected').innerText.includes('Selected: #1 (variant')",
        timeout=10_000,
    )
    assert page.eval_on_selector("#selected video", "v => v.currentSrc") == second[0]
    page.wait_for_timeout(300)
    assert outlined(page) == [1]
    assert [page.locator(f"#select-{i}").inner_text().strip() for i in range(1, 5)] == [
        "Select #1",
        "Select #2",
        "Select #3",
        "Select #4",
    ]
    # The clips autoplay again, and the button says so.
    page.wait_for_function(ALL_PLAYING, timeout=20_000)
    page.wait_for_timeout(300)
    assert play_label(page) == "Pause all"
