"""The export panel, the batch of several photos, its ZIP and the loop switch, called directly."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from studio.encode import probe_mp4
from studio.ui import handlers as h
from studio.ui.handlers import Studio
from tests.ui.test_handlers import ALICE, BOB, PRESET, clicked, refusal, small_settings, value

FORM = {"duration": 1, "fps": 8, "seed": 7}


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory, samples):
    """Alice's batch of three files (one is not a photo) on a team studio."""
    tmp = tmp_path_factory.mktemp("batch")
    bad = tmp / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a photo")
    studio = Studio.open(small_settings(tmp, auth="alice:pw1,bob:pw2", score=False))
    files = [str(samples["product"]), str(bad), str(samples["portrait"])]
    updates = list(h.batch_generate(studio, files, PRESET, request=ALICE, **FORM))
    return studio, updates


def test_batch_gives_each_photo_four_takes_and_one_progress_line(batch_run):
    _, updates = batch_run
    lines, items, paths, jobs = updates[-1]
    rows = lines.split("  \n")
    assert len(rows) == 3
    assert rows[0].startswith("Photo 1 of 3 (coffee.png): done")
    assert rows[1].startswith("Photo 2 of 3 (broken.jpg): ⚠ ") and "damaged" in rows[1]
    assert rows[2].startswith("Photo 3 of 3 (astronaut.png): done")
    assert len(paths) == 8 and len(items) == 8 and [j["k"] for j in jobs] == [1, 3]
    assert all(Path(p).is_file() for p in paths)
    assert {Path(p).parent for p in paths} == {Path(j["folder"]) for j in jobs}


def test_zip_holds_exactly_the_selected_take_of_each_photo_with_its_manifest(batch_run):
    studio, updates = batch_run
    _, _, paths, jobs = updates[-1]
    assert refusal(h.batch_zip, studio, jobs, ALICE).startswith("Select a take first")
    # Two clicks on the first photo: the second replaces the first (one star per job).
    h.batch_pick(studio, paths, jobs, clicked(0), ALICE)
    h.batch_pick(studio, paths, jobs, clicked(2), ALICE)
    chosen, download, take, gallery = h.batch_pick(studio, paths, jobs, clicked(5), ALICE)
    assert take == paths[5] and value(chosen) == paths[5]
    assert sum("★" in caption for _, caption in gallery) == 2
    button = h.batch_zip(studio, jobs, ALICE)
    with zipfile.ZipFile(value(button)) as z:
        names = sorted(z.namelist())
        want = [f"photo-1/{Path(paths[2]).name}", f"photo-3/{Path(paths[5]).name}"]
        want += [n.replace(".mp4", ".json") for n in want]
        assert names == sorted(want)
        manifest = json.loads(z.read(want[2]))
        assert manifest["video"]["file"] == Path(paths[2]).name
        assert z.read(want[0]) == Path(paths[2]).read_bytes()
    assert "2 takes" in button["label"]
    # The ZIP is in Alice's own folder, which the web guard serves only to her.
    assert Path(value(button)).parent.name.startswith("u")


def test_export_makes_each_format_of_the_selected_take(batch_run):
    studio, updates = batch_run
    take = updates[-1][2][0]
    facts = probe_mp4(take)
    for fmt, codec in (("webm", "vp9"), ("gif", "gif"), ("mp4", "h264")):
        button, note = h.export_take(studio, take, fmt, "square", 2, ALICE)
        path = Path(value(button))
        assert path.parent == Path(take).parent and path.name.endswith(f".square.{fmt}")
        got = probe_mp4(path)
        assert got["codec"].startswith(codec)
        if fmt != "gif":
            assert (got["width"], got["height"]) == (1080, 1080)
        assert note.startswith(f"**{h.FORMAT_CHOICES[fmt]}**")
        # A 128 px take made 1080 px wide says so.
        assert ("enlarged" in note) == (fmt != "gif")
    button, note = h.export_take(studio, take, "webm", "clip", 8, ALICE)
    got = probe_mp4(value(button))
    assert (got["width"], got["height"], got["frames"]) == (
        facts["width"], facts["height"], facts["frames"],
    )  # fmt: skip


def test_export_refuses_another_logins_take_and_hostile_choices(batch_run):
    studio, updates = batch_run
    take = updates[-1][2][0]
    assert refusal(h.export_take, studio, take, "webm", "clip", 8, BOB) == (
        "That clip is no longer available."
    )
    assert refusal(h.export_take, studio, "/etc/passwd", "gif", "clip", 8, ALICE) == (
        "That clip is no longer available."
    )
    assert refusal(h.export_take, studio, None, "gif", "clip", 8, ALICE).startswith("Select a take")
    assert "MP4, WebM or GIF" in refusal(h.export_take, studio, take, "avi" * 500, "clip", 8, ALICE)
    assert "Platform must be" in refusal(h.export_take, studio, take, "gif", "imax", 8, ALICE)
    for cap in (-1, 1e9, float("nan"), "8"):
        message = refusal(h.export_take, studio, take, "gif", "square", cap, ALICE)
        assert message.startswith("The GIF size cap must be")


def test_loop_choice_goes_into_the_job(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path, score=False))
    updates = list(h.generate(studio, str(samples["product"]), PRESET, loop="boomerang",
                              **{**FORM, "duration": 0.5}))  # fmt: skip
    clip = next(p for p in updates[-1][4] if p)
    manifest = json.loads(Path(clip).with_suffix(".json").read_text())
    assert manifest["job"]["loop"] == "boomerang"
    assert h.loop_value("once") is None and h.loop_value(None) is None
    message = refusal(h.generate, studio, str(samples["product"]), PRESET, loop="sideways")
    assert message.startswith("Loop must be")


def test_a_click_in_move_the_frame_mode_pins_the_frame_and_the_job_carries_it(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path, score=False))
    photo = str(samples["scenic"])
    plain, _, note = h.subject_view(studio, photo, [], None, None, "9:16", PRESET)
    assert "white frame" in note and "moved by you" not in note
    shown, edits, note, pin = h.subject_pick(studio, photo, [], "frame", 5, None, "9:16", PRESET,
                                             clicked([40, 100]))  # fmt: skip
    assert edits == [] and "moved by you" in note and shown != plain
    assert 0 < pin[0] < 0.2 and 0 < pin[1] < 1
    # The frame is drawn where the pin puts it: a 9:16 strip at the left of the landscape photo.
    x, y, w, hgt = h.frame_rect(None, (512, 341), 9 / 16, tuple(pin))
    assert x == 0 and hgt == 341 and abs(w / hgt - 9 / 16) < 0.01
    # A subject click keeps the pin.
    _, edits, _, kept = h.subject_pick(studio, photo, [], "add", 5, pin, "9:16", PRESET,
                                       clicked([200, 100]))  # fmt: skip
    assert len(edits) == 1 and kept == pin
    assert h.subject_reset_all() == ([], None)
    updates = list(h.generate(studio, photo, PRESET, aspect="9:16", framing=pin,
                              **{**FORM, "duration": 0.5}))  # fmt: skip
    clip = next(p for p in updates[-1][4] if p)
    manifest = json.loads(Path(clip).with_suffix(".json").read_text())
    assert manifest["job"]["params"]["framing"] == pin
    for bad in ([2, 0.5], ["x", 1], [0.5], "middle", [float("nan"), 0.1]):
        message = refusal(h.generate, studio, photo, PRESET, framing=bad)
        assert message == "The framing point must be two numbers between 0 and 1 (across, down)."
