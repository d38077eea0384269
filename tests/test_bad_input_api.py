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
from tests.studio_api import (
    FAST,
    Session,
    call_raw,
    client,
    clip_files,
    history_clips,
    submit,
    upload,
)
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


def outputs_now(tmp) -> set:
    return set((tmp / "outputs").rglob("*")) if (tmp / "outputs").exists() else set()


SHORT = ["product/slow-push-in", "engine", "preset", 1, 8, 7, 1.0, "", [], None, None]
HOSTILE_LOOPS = ["sideways", "x" * 100_000, 1e308, ["seamless"], {"loop": "boomerang"}]


@pytest.mark.parametrize("loop", HOSTILE_LOOPS, ids=["word", "huge", "number", "list", "dict"])
def test_a_hostile_loop_through_the_api_gets_one_clear_sentence(app, samples, loop):
    url, tmp = app
    photo = upload(url, samples["product"].read_bytes(), "coffee.png")
    before = outputs_now(tmp)
    event, data = call_raw(url, "generate", [photo, *SHORT, loop, None])
    assert event == "error", data[:200]
    assert_one_clear_sentence(json.loads(data)["error"])
    assert outputs_now(tmp) == before


HOSTILE_POINTS = {
    "NaN": [math.nan, 0.5],
    "out of range": [2, 0.5],
    "negative": [-0.1, 0.5],
    "one number": [0.5],
    "three numbers": [0.5, 0.5, 0.5],
    "a word": "middle",
    "nested junk": [[0.5, [0.5]], {"x": [1]}],
    "too large": [10**400, 0.5],
    "a dict": {"x": 0.5, "y": 0.5},
}


@pytest.mark.parametrize("name", list(HOSTILE_POINTS))
def test_a_hostile_framing_point_through_the_api_gets_one_clear_sentence(app, samples, name):
    url, tmp = app
    photo = upload(url, samples["scenic"].read_bytes(), "rocket.jpg")
    before = outputs_now(tmp)
    event, data = call_raw(url, "generate", [photo, *SHORT, "once", HOSTILE_POINTS[name]])
    assert event == "error", data[:200]
    assert_one_clear_sentence(json.loads(data)["error"], "The framing point must be two numbers")
    assert outputs_now(tmp) == before


@pytest.fixture(scope="module")
def selected(app, samples):
    """A session (a browser tab, spoken raw) that made four takes; its best one is selected."""
    url, _ = app
    tab = Session(url)
    photo = upload(url, samples["product"].read_bytes(), "coffee.png")
    ok, out = tab.call(tab.fn(api_name="generate"), [photo, *SHORT, "once", None])
    assert ok, out
    ok, out = tab.call(tab.fn(after="generate"), [None])
    assert ok, out  # the take is kept in the session's State, never sent to the client
    return tab


HOSTILE_EXPORTS = {
    "format NaN": ([math.nan, "clip", 8], "Format"),
    "format negative": ([-1, "clip", 8], "Format"),
    "format huge": (["avi" * 100_000, "clip", 8], "Format"),
    "format a list": ([["gif", "webm"], "clip", 8], "Format"),
    "platform NaN": (["webm", math.nan, 8], "Frame"),
    "platform unknown": (["webm", "imax", 8], "Frame"),
    "platform a dict": (["webm", {"w": 99999}, 8], "Frame"),
    "cap NaN": (["gif", "square", math.nan], ""),
    "cap negative": (["gif", "square", -1], ""),
    "cap huge": (["gif", "square", 1e300], ""),
    "cap a word": (["gif", "square", "eight"], "not in a form the studio accepts"),
}


@pytest.mark.parametrize("name", list(HOSTILE_EXPORTS))
def test_hostile_export_choices_through_the_api_get_one_clear_sentence(app, selected, name):
    _, tmp = app
    args, needle = HOSTILE_EXPORTS[name]
    before = outputs_now(tmp)
    ok, message = selected.call(selected.fn(api_name="export"), [None, *args])
    assert not ok, message
    assert_one_clear_sentence(message, needle)
    assert outputs_now(tmp) == before


def test_the_selected_take_exports_through_the_api_once_the_choices_are_sane(selected):
    ok, out = selected.call(selected.fn(api_name="export"), [None, "webm", "clip", 8])
    assert ok, out
    assert out[0]["value"]["path"].endswith(".webm") and out[1].startswith("**WebM**")


def test_a_batch_with_too_many_none_or_junk_files_is_one_sentence(app, samples):
    url, tmp = app
    photo = upload(url, samples["product"].read_bytes(), "coffee.png")
    form = SHORT[:8] + [None, None, "once"]
    before = outputs_now(tmp)
    for files, needle in (
        ([photo] * 51, "Add at most 50 photos at a time."),
        ([], "Add at least one photo."),
        (None, "Add at least one photo."),
        ("coffee.png", "not uploaded"),
        ([{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}], "not uploaded"),
    ):
        event, data = call_raw(url, "generate_batch", [files, *form])
        assert event == "error", (needle, data[:200])
        assert_one_clear_sentence(json.loads(data)["error"], needle)
    assert outputs_now(tmp) == before


def test_a_batch_names_the_file_that_is_not_a_photo_and_renders_the_rest(app, samples):
    url, _ = app
    junk = upload(url, b"just some text, not an image at all", "notes.png")
    photo = upload(url, samples["product"].read_bytes(), "coffee.png")
    form = SHORT[:8] + [None, None, "once"]
    event, data = call_raw(url, "generate_batch", [[junk, photo], *form], timeout=120)
    assert event == "complete", data[:300]
    lines = json.loads(data)[0].split("  \n")
    assert lines[0].startswith("Photo 1 of 2 (notes.png): ⚠ ") and "not a photo" in lines[0]
    assert lines[1].startswith("Photo 2 of 2 (coffee.png): done"), lines


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


# --- two logins: one cannot export or ZIP the other's takes ---------------------------------


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("team")
    with running_app(tmp, env={**FAST, "STUDIO_AUTH": "alice:pw-alice,bob:pw-bob"}) as url:
        yield url, tmp


def test_another_logins_take_cannot_be_exported_or_zipped(team, samples):
    url, tmp = team
    alice = Session(url, ("alice", "pw-alice"))
    photo = upload_as(alice, samples["product"].read_bytes(), "coffee.png")
    form = SHORT[:8] + [None, None, "once"]
    ok, out = alice.call(alice.fn(api_name="generate_batch"), [[photo], *form])
    assert ok, out
    takes = [item["image"]["path"] for item in out[1]]
    assert len(takes) == 4
    pick = alice.fn(output="batch-takes")  # a click on a take of the batch
    ok, out = alice.call(pick, [None, None], event_data={"index": 1, "value": None})
    assert ok, out
    take = out[2]
    zip_fn = alice.fn(output="batch-zip-file")
    ok, out = alice.call(zip_fn, [None])
    assert ok and out[0]["value"]["path"].endswith(".zip"), out

    # Bob sends Alice's take and her batch as the page's State: the server keeps its own.
    bob = Session(url, ("bob", "pw-bob"))
    before = outputs_now(tmp)
    ok, message = bob.call(bob.fn(api_name="export"), [take, "webm", "clip", 8])
    assert not ok and message.startswith("Select a take first"), message
    jobs = [{"k": 1, "folder": str(tmp / "outputs")}]
    ok, message = bob.call(zip_fn, [jobs])
    assert not ok and message.startswith("Select a take first"), message
    event, data = call_raw_as(bob, "export", [take, "gif", "clip", 8])
    assert event == "error" and "Select a take first" in data, data[:200]
    assert outputs_now(tmp) == before
    # Alice's own export still works.
    ok, out = alice.call(alice.fn(api_name="export"), [None, "webm", "clip", 8])
    assert ok and out[0]["value"]["path"].endswith(".webm"), out


def upload_as(tab: Session, data: bytes, name: str) -> dict:
    boundary = "studio-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"'
        f"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode() + data
    body += f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    req = urllib.request.Request(f"{tab.url}/gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    with tab.opener.open(req, timeout=30) as r:
        (path,) = json.loads(r.read())
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def call_raw_as(tab: Session, api: str, data: list) -> tuple[str, str]:
    """call_raw with a login's cookies: /call/<api>, a session of its own."""
    req = urllib.request.Request(f"{tab.url}/gradio_api/call/{api}",
                                 data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with tab.opener.open(req, timeout=10) as r:
        event_id = json.loads(r.read())["event_id"]
    event, payload = "", ""
    with tab.opener.open(f"{tab.url}/gradio_api/call/{api}/{event_id}", timeout=60) as r:
        for line in r:
            line = line.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                payload = line.split(":", 1)[1].strip()
            if event in ("complete", "error") and payload:
                break
    return event, payload
