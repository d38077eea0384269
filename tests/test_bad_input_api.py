"""Bad input at every door (API, UI config, CLI): one clear sentence each, and the studio keeps serving."""

from __future__ import annotations

import io
import json
import math
import urllib.request

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.appserver import running_app
from tests.studio_api import FAST, call_raw, client, clip_files, history_clips, submit, upload
from tests.test_cli import assert_one_error_line, studio
from tests.test_images import noisy_photo, png_with_header
from tests.test_presets import GOOD


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


TRUNCATED = _jpeg(noisy_photo(400, 300))[:6000]
AWKWARD_PHOTOS = {
    "empty": (b"", "empty"),
    "truncated": (TRUNCATED, "damaged or incomplete"),
    "not-an-image": (b"just some text, not an image at all", "not a photo"),
    "bomb": (png_with_header(30000, 30000), "30000x30000"),
    "tiny": (_jpeg(Image.new("RGB", (10, 10), (255, 0, 0))), "too small"),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("badinput")
    presets = tmp / "user-presets"
    presets.mkdir()
    (presets / "good.yaml").write_text(GOOD)
    (presets / "typo.yaml").write_text("family: [oops\n")
    wrong = GOOD.replace("family: test", "family: other").replace("fps: 12", "fps: twelve")
    (presets / "wrongtype.yaml").write_text(wrong)
    with running_app(tmp, env=FAST) as url:
        yield url, tmp


def assert_one_clear_sentence(message: str, *needles: str) -> None:
    assert "Traceback" not in message and "\n" not in message.strip(), message
    assert len(message) < 300, f"{len(message)} characters: {message[:200]}…"
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("name", list(AWKWARD_PHOTOS))
def test_awkward_photo_through_the_api_gets_one_clear_sentence(app, tmp_path, name):
    url, _ = app
    content, needle = AWKWARD_PHOTOS[name]
    photo = tmp_path / f"{name}.jpg"
    photo.write_bytes(content)
    with pytest.raises(AppError) as info:
        submit(client(url), photo).result(timeout=60)
    assert_one_clear_sentence(str(info.value), needle)


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ({"duration": 0}, ["less than minimum value"]),
        ({"duration": 10_000}, ["greater than maximum value"]),
        ({"fps": -3}, ["less than minimum value"]),
        ({"fps": 10_000}, ["greater than maximum value"]),
        ({"aspect": "1x1"}, ["Aspect: 1x1 is not in the list of choices"]),
        ({"aspect": "20000x20000"}, ["Aspect: 20000x20000 is not in the list of choices"]),
        ({"preset": "product/nope"}, ["Motion preset: product/nope is not in the list"]),
        ({"preset": "x" * 1_000_000}, ["Motion preset: xxxx", "… is not in the list"]),
        ({"backend": "magic"}, ["Backend: magic is not in the list of choices"]),
        ({"strength": -1}, ["less than minimum value"]),
        ({"seed": 1e30}, ["Seed must be a whole number"]),
    ],
)
def test_absurd_parameters_through_the_api_get_one_clear_sentence(app, samples, override, needles):
    url, _ = app
    kw = {"preset": "product/slow-push-in", **override}
    preset = kw.pop("preset")
    with pytest.raises(AppError) as info:
        submit(client(url), samples["product"], preset, **kw).result(timeout=60)
    assert_one_clear_sentence(str(info.value), *needles)


def test_nan_strength_sent_as_raw_json_gets_one_clear_sentence(app, samples):
    url, _ = app
    photo = upload(url, samples["product"].read_bytes(), "coffee.png")
    args = [photo, "product/slow-push-in", "engine", "preset", 2, 12, 7, math.nan, ""]
    event, data = call_raw(url, "generate", args)  # json.dumps writes NaN; clients refuse to
    assert event == "error"
    assert_one_clear_sentence(json.loads(data)["error"],
                              "Strength must be a number between 0 and 2")  # fmt: skip


DAB = {"mode": "remove", "points": [[0.5, 0.5]], "radius": 0.05}
HOSTILE_EDITS = {
    "too many strokes": ([DAB] * 201, "At most 200 subject corrections are allowed."),
    "a huge list": ([0] * 100_000, "At most 200 subject corrections are allowed."),
    "too many points": ([{**DAB, "points": [[0.5, 0.5]] * 5000}], "needs 1 to 2000 points"),
    "a string": ("remove the cup", "Subject corrections must be a list of strokes."),
    "one stroke, not a list": (DAB, "Subject corrections must be a list of strokes."),
    "an unknown mode": ([{**DAB, "mode": "erase"}], "mode must be 'add' or 'remove'"),
    "NaN": ([{**DAB, "points": [[math.nan, 0.5]]}], "(x, y) pairs between 0 and 1"),
    "infinite radius": ([{**DAB, "radius": math.inf}], "radius must be between 0.002 and 0.5"),
    "a point far off": ([{**DAB, "points": [[1e300, 0.5]]}], "(x, y) pairs between 0 and 1"),
    "a number too large": ([{**DAB, "radius": 10**400}], "radius must be"),
    "nested junk": ([[[["deep"]], {"mode": None}]], "must be a stroke with a mode and points"),
    "junk points": ([{**DAB, "points": [[{"x": [1]}, None]]}], "(x, y) pairs"),
}


@pytest.mark.parametrize("name", list(HOSTILE_EDITS))
def test_absurd_subject_corrections_through_the_api_get_one_clear_sentence(app, samples, name):
    url, tmp = app
    edits, needle = HOSTILE_EDITS[name]
    photo = upload(url, samples["portrait"].read_bytes(), "astronaut.png")
    before = set((tmp / "outputs").rglob("*")) if (tmp / "outputs").exists() else set()
    for api, args in (
        ("generate", [photo, "product/slow-push-in", "engine", "preset", 2, 12, 7, 1.0, "", edits]),
        ("subject", [photo, edits]),
    ):
        event, data = call_raw(url, api, args)  # raw JSON: NaN and 10**400 as sent
        assert event == "error", (api, data[:200])
        assert_one_clear_sentence(json.loads(data)["error"], needle)
    assert set((tmp / "outputs").rglob("*")) == before  # refused before anything was written


HOSTILE_PROMPTS = {
    "a megabyte": ("x" * 1_000_000, "The prompt is longer than 1000 characters (1000000)"),
    "escape codes": ("slow push \x1b[2J\x1b[31m", "The prompt contains a control character"),
    "a NUL": ("slow\x00push", "The prompt contains a control character"),
    "a bidi override": ("slow \u202egnp.exe push", "The prompt contains a control character"),
}


@pytest.mark.parametrize("name", list(HOSTILE_PROMPTS))
def test_a_hostile_prompt_through_the_api_gets_one_clear_sentence(app, samples, name):
    url, tmp = app
    prompt, needle = HOSTILE_PROMPTS[name]
    photo = upload(url, samples["product"].read_bytes(), "coffee.png")
    before = set((tmp / "outputs").rglob("*")) if (tmp / "outputs").exists() else set()
    for args, said in (([prompt, None], needle),
                       ([None, prompt], needle.replace("The prompt", "The negative prompt"))):  # fmt: skip
        event, data = call_raw(url, "generate", [photo, "product/slow-push-in", "engine", "preset",
                                                 2, 12, 7, 1.0, "", [], *args])  # fmt: skip
        assert event == "error", data[:200]
        assert_one_clear_sentence(json.loads(data)["error"], said)
    assert set((tmp / "outputs").rglob("*")) == before  # refused before anything was written


SAVE_FORM = ["product/slow-push-in", "preset", 2, 12, 1.0, None, None]
HOSTILE_NAMES = {
    "path traversal": ("../../../etc/cron.d/x", "A preset name cannot contain slashes or '..'."),
    "a Windows path": ("..\\..\\boot.ini", "A preset name cannot contain slashes or '..'."),
    "huge": ("n" * 1_000_000, "A preset name can be at most 60 characters."),
    "empty": ("", "Give your preset a name first."),
    "control characters": ("warm\r\npush\x1b[0m", "A preset name must be one line of plain text."),
    "a built-in's name": ("Orbit reveal", "'Orbit reveal' is the name of a built-in preset"),
    "punctuation only": ("../", "A preset name cannot contain slashes or '..'."),
}


@pytest.mark.parametrize("name", list(HOSTILE_NAMES))
def test_a_hostile_preset_name_through_the_api_gets_one_clear_sentence(app, name):
    url, tmp = app
    text, needle = HOSTILE_NAMES[name]
    before = sorted((tmp / "user-presets").rglob("*"))
    event, data = call_raw(url, "save_preset", [text, *SAVE_FORM])
    assert event == "error", data[:200]
    assert_one_clear_sentence(json.loads(data)["error"], needle)
    assert sorted((tmp / "user-presets").rglob("*")) == before


def test_saving_from_a_preset_that_is_not_there_or_with_junk_is_one_sentence(app):
    url, _ = app
    for form, needle in (
        (["product/../../x", *SAVE_FORM[1:]], "Motion preset: product/../../x is not in the list"),
        (["p" * 100_000, *SAVE_FORM[1:]], "Motion preset: pppp"),
        (
            [{"id": "product/glint"}, *SAVE_FORM[1:]],
            "Motion preset: send one choice from the list, not several.",
        ),
        ([*SAVE_FORM[:5], "x" * 5000, None], "The prompt is longer than 1000 characters"),
    ):
        event, data = call_raw(url, "save_preset", ["Fine name", *form])
        assert event == "error", data[:200]
        assert_one_clear_sentence(json.loads(data)["error"], needle)


def test_a_preset_saved_through_the_api_is_used_by_another_client_at_once(app, samples):
    url, tmp = app
    prompt = "a coffee cup on a marble table, steam curling up"
    picker, note = client(url).predict("Steam rising", *SAVE_FORM[:5], prompt, "",
                                       api_name="/save_preset")  # fmt: skip
    assert "Saved **Steam rising** (product/steam-rising)" in note
    assert (tmp / "user-presets" / "product--steam-rising.yaml").is_file()
    # A new client (a new session, whose picker was built before the save) generates with it.
    result = submit(client(url), samples["product"], "product/steam-rising", seed=3).result(60)
    names = clip_files(result)
    assert len(names) == 4
    plans = [json.loads(p.read_text())["plan"] for p in (tmp / "outputs").rglob("*-v*.json")
             if p.with_suffix(".mp4").name in names]  # fmt: skip
    assert len(plans) == 4 and {p["prompt"] for p in plans} == {prompt}


def test_the_subject_view_of_a_photo_that_is_not_one_is_one_sentence(app, tmp_path):
    url, _ = app
    photo = upload(url, b"just some text, not an image at all", "notes.png")
    event, data = call_raw(url, "subject", [photo, []])
    assert event == "error"
    assert_one_clear_sentence(json.loads(data)["error"], "not a photo")


def test_broken_user_preset_files_are_named_in_the_ui_and_the_rest_still_load(app):
    url, _ = app
    with urllib.request.urlopen(f"{url}/config", timeout=10) as r:
        config = json.loads(r.read())
    props = {c["props"].get("elem_id"): c["props"] for c in config["components"]}
    status = props["status"]["value"]
    assert "typo.yaml" in status and "wrongtype.yaml" in status and "fps" in status
    choices = [value for _, value in props["preset"]["choices"]]
    assert "test/drift" in choices and "product/slow-push-in" in choices


def test_after_all_that_the_studio_still_serves_a_good_job(app, samples):
    url, _ = app
    c = client(url)
    assert len(clip_files(submit(c, samples["product"], "test/drift", seed=2).result(60))) == 4
    assert history_clips(c.predict(api_name="/history"))  # and History lists it


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["truncated", "bomb", "tiny"])
def test_awkward_photo_on_the_command_line_is_one_error_line(tmp_path, name):
    content, needle = AWKWARD_PHOTOS[name]
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(content)
    out = tmp_path / "out"
    result = studio("generate", str(photo), "--preset", "product/glint", "--out", str(out),
                    tmp=tmp_path)  # fmt: skip
    assert_one_error_line(result, needle)
    assert not out.exists()


def test_huge_size_on_the_command_line_is_one_error_line(tmp_path, samples):
    out = tmp_path / "out"
    result = studio("generate", str(samples["product"]), "--preset", "product/glint",
                    "--size", "20000x20000", "--out", str(out), tmp=tmp_path)  # fmt: skip
    assert_one_error_line(result, "Width must be")
    assert not out.exists()
