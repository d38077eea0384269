"""The prompt as a control, in Chromium: the boxes show for models that read prompts, an edited prompt is saved as one's own preset, listed, and generated with."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from studio.presets import load_library
from tests.appserver import running_app
from tests.e2e.test_browser import browser  # noqa: F401 - the shared Chromium fixture
from tests.e2e.test_exports_batch import short_clips

pytestmark = pytest.mark.e2e

PRESET = load_library().get("product/slow-push-in")
EDITED = "a coffee cup on a marble table, steam curling up, slow push-in, morning light"
NEGATIVE = "text, logos, extra cups"
# Where the screenshot of the prompt box and Save row goes for people to look at (optional).
SHOTS = os.environ.get("STUDIO_SCREENSHOTS")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prompt-ui")
    with running_app(tmp, env={"STUDIO_LONG_SIDE": "128", "STUDIO_SCORE": "0"}) as url:
        yield url, tmp


def pick(page, elem: str, option: str | re.Pattern) -> None:
    page.locator(f"#{elem} input").click()
    page.get_by_role("option", name=option).click()


def wait_text(page, elem: str, text: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "([sel, text]) => { const e = document.querySelector(sel); return e && e.innerText.includes(text); }",
        arg=[f"#{elem}", text],
        timeout=timeout,
    )


def wait_value(page, selector: str, value: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "([sel, v]) => { const e = document.querySelector(sel); return e && e.value === v; }",
        arg=[selector, value],
        timeout=timeout,
    )


def test_edit_the_prompt_save_it_as_my_preset_see_it_listed_and_generate_with_it(
    browser,  # noqa: F811
    app,
    samples,
    tmp_path,
):
    url, tmp = app
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator("#photo input[type=file]").set_input_files(str(samples["product"]))
    page.wait_for_selector("#photo img", timeout=15_000)

    # 1. The engine reads no prompt: no boxes, one line saying so.
    page.locator("#prompt-panel").wait_for(state="hidden", timeout=10_000)
    wait_text(page, "prompt-off", "The motion engine reads no prompt")

    # 2. A model that reads prompts shows the preset's prompt, negative prompt and phrasings.
    pick(page, "backend", re.compile(r"^LTX-Video"))
    page.locator("#prompt-panel").wait_for(state="visible", timeout=10_000)
    wait_value(page, "#prompt textarea", PRESET.prompt)
    wait_value(page, "#negative-prompt textarea", PRESET.negative_prompt)
    wait_text(page, "prompt-note", "2 others from the preset")
    assert not page.locator("#prompt-off").is_visible()
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.locator("#prompt-panel").screenshot(path=str(Path(SHOTS) / "prompt_phrasings.png"))

    # 3. SVD reads none either: the boxes go and the note names it.
    pick(page, "backend", re.compile(r"^Stable Video Diffusion"))
    page.locator("#prompt-panel").wait_for(state="hidden", timeout=10_000)
    wait_text(page, "prompt-off", "Stable Video Diffusion XT reads no prompt")

    # 4. Back on LTX-Video: edit the wording and the length, and save it all as my preset.
    pick(page, "backend", re.compile(r"^LTX-Video"))
    page.locator("#prompt-panel").wait_for(state="visible", timeout=10_000)
    page.locator("#prompt textarea").fill(EDITED)
    page.locator("#negative-prompt textarea").fill(NEGATIVE)
    short_clips(page)  # opens Advanced settings, lets its fields mount, types until it stays
    page.locator("#preset-name textarea, #preset-name input").first.fill("Steam rising")
    page.locator("#save-preset").click()
    wait_text(page, "save-note", "Saved Steam rising (product/steam-rising)")

    # 5. It is selected in the list, and picking it filled the form with what was saved.
    wait_value(page, "#preset input", "Product · Steam rising")
    wait_text(page, "preset-info", "(Saved from Slow push-in.)")
    wait_value(page, "#prompt textarea", EDITED)
    wait_value(page, "#negative-prompt textarea", NEGATIVE)
    assert page.locator("#duration input[type=number]").input_value() == "1"
    assert page.locator("#fps input[type=number]").input_value() == "8"
    page.wait_for_timeout(300)  # let the page settle before the picture is taken
    column = page.locator("#prompt-panel").locator(
        "xpath=ancestor::div[contains(@class,'column')][1]"
    )
    for folder in filter(None, (str(tmp_path), SHOTS)):
        Path(folder).mkdir(parents=True, exist_ok=True)
        column.screenshot(path=str(Path(folder) / "prompt_and_save.png"))
    saved = yaml.safe_load((tmp / "user-presets" / "product--steam-rising.yaml").read_text())
    (entry,) = saved["presets"]
    assert (entry["prompt"], entry["negative_prompt"]) == (EDITED, NEGATIVE)
    assert entry["based_on"] == PRESET.id and entry["defaults"]["duration"] == 1.0

    # 6. Generate with it (on the engine, which renders in seconds; the job carries the words).
    pick(page, "backend", "Embedded motion engine (CPU)")
    page.locator("#prompt-panel").wait_for(state="hidden", timeout=10_000)
    page.locator("#generate").click()
    for i in range(1, 5):
        page.wait_for_selector(f"#variant-{i} video[src]", timeout=120_000)
    wait_text(page, "status", "Done", timeout=60_000)

    # 7. A fresh page (a new session) lists the saved preset too.
    page.goto(url, wait_until="load")
    page.wait_for_selector("#generate", timeout=30_000)
    page.locator("#preset input").click()
    page.get_by_role("option", name="Product · Steam rising").wait_for(timeout=10_000)
    page.close()

    (summary,) = (tmp / "outputs").glob("*/manifest.json")
    plans = [json.loads(p.read_text()) for p in summary.parent.glob("*-v*.json")]
    assert len(plans) == 4
    for manifest in plans:
        assert manifest["preset"] == "product/steam-rising"
        assert manifest["plan"]["prompt"] == EDITED
        assert manifest["plan"]["negative_prompt"] == NEGATIVE
        assert manifest["plan"]["frames"] == 8  # the saved preset's 1 s at 8 fps
