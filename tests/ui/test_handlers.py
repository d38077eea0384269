"""The studio's handlers called directly, without a server: what each one shows the user."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import imageio_ffmpeg
import numpy as np
import pytest
from gradio.helpers import special_args
from gradio.utils import get_upload_folder
from PIL import Image

from studio.clips import run_job
from studio.jobs import Job, prepare_job
from studio.presets import load_library
from studio.serve import ownership
from studio.settings import Settings
from studio.shootout.results import ShootoutResult, ShootoutRow, results_table
from studio.ui import handlers as h
from studio.ui.handlers import Studio
from tests.test_presets import GOOD

ALICE = SimpleNamespace(username="alice", session_hash="alice-tab")
BOB = SimpleNamespace(username="bob", session_hash="bob-tab")
PRESET = "product/slow-push-in"
FORM = {"duration": 1, "fps": 8, "seed": 7}  # a short clip: four takes in seconds


def small_settings(tmp: Path, **kw) -> Settings:
    return Settings(outputs_dir=tmp / "outputs", user_presets_dir=tmp / "none", long_side=128,
                    workers=2, **kw)  # fmt: skip


def refusal(call, *args, **kwargs) -> str:
    """The sentence the user sees when the handler refuses (a gr.Error's message)."""
    with pytest.raises(gr.Error) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):
            next(result)  # a streaming handler refuses on its first step
    return info.value.message


def clicked(index) -> gr.SelectData:
    """A click on a History item as the browser reports it."""
    return gr.SelectData(None, {"index": index, "value": None})


def value(update) -> object:
    return update.get("value") if isinstance(update, dict) else update


@pytest.fixture(scope="module")
def made(tmp_path_factory, samples):
    """One scored job by Alice on a team studio (logins on): the studio and every update."""
    tmp = tmp_path_factory.mktemp("handlers")
    studio = Studio.open(small_settings(tmp, auth="alice:pw1,bob:pw2"))
    updates = list(h.generate(studio, str(samples["product"]), PRESET, request=ALICE, **FORM))
    return studio, updates


def test_generate_streams_each_clip_then_shows_four_ranked_takes_with_the_best_selected(made):
    studio, updates = made
    assert len(updates) >= 5  # at least one update per clip, then the ranked one
    last = updates[-1]
    assert len(last) == 4 + 7 + 4  # the /generate outputs: clips, state, panels, buttons, names
    videos, paths, status, chosen, download = last[:4], last[4], last[5], last[6], last[7]
    assert all(Path(p).is_file() and p.endswith(".mp4") for p in paths) and len(set(paths)) == 4
    assert [value(v) for v in videos] == paths
    assert videos[0]["label"].startswith("#1 · variant ")
    assert "seed 7" in status and "best take preselected" in status
    assert value(chosen) == paths[0] and chosen["label"].startswith("Selected: #1 (variant ")
    assert download["visible"] and download["label"] == f"Download {Path(paths[0]).name}"
    assert "<table" in last[8] and last[9] == 8  # the scores table; the clips' fps
    assert [b["value"] for b in last[10:14]] == ["Select #1", "Select #2", "Select #3", "Select #4"]
    assert last[14][0] == chosen["label"].removeprefix("Selected: ")
    # The clips went into Alice's own job folder.
    assert {Path(p).parent.name.split("-")[0] for p in paths} == {ownership.owner_id("alice")}


def test_generate_names_slots_by_variant_while_the_takes_are_rendering(made):
    _, updates = made
    first_clip = next(u for u in updates if any(u[4]))
    slot = next(i for i, p in enumerate(first_clip[4]) if p)
    assert first_clip[slot]["label"] == f"Variant {slot + 1}"
    assert first_clip[10 + slot]["value"] == f"Select variant {slot + 1}"
    assert "%" in first_clip[5]  # the status shows how far the job is


def test_generate_without_a_photo_asks_for_one(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    assert refusal(h.generate, studio, None, PRESET) == (
        "Upload a photo first (or click one of the samples)."
    )


def test_generate_refuses_an_unknown_preset_in_one_sentence(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path))
    message = refusal(h.generate, studio, str(samples["product"]), "product/nope")
    # The picker's own sentence: the list is this login's, so the handler checks the id.
    assert message == (
        "Motion preset: product/nope is not in the list of choices; pick one from the list."
    )


def test_generate_reports_progress_with_the_stage_of_the_job(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path, score=False))
    seen = []
    outputs = list(h.generate(studio, str(samples["scenic"]), "scenic/drifting-clouds",
                              progress=lambda f, desc=None: seen.append((f, desc)), **FORM))  # fmt: skip
    assert seen[0] == (0.0, "Analysing the photo…")
    assert max(f for f, _ in seen) == 1.0
    assert sum(1 for p in outputs[-1][4] if p) == 4  # unscored: four takes, by variant
    assert outputs[-1][6] == gr.update()  # nothing preselected without scores


def test_select_stars_one_take_per_job_and_names_it_as_its_slot_does(made):
    studio, updates = made
    paths, names = updates[-1][4], updates[-1][14]
    chosen, download, number = h.select(studio, 1, paths, names)
    assert chosen["label"] == f"Selected: {names[1]}" and value(chosen) == paths[1]
    assert download["label"] == f"Download {Path(paths[1]).name}" and number == 2
    assert studio.runner.history.selected() == {Path(paths[1]).resolve()}
    h.select(studio, 2, paths, names)
    assert studio.runner.history.selected() == {Path(paths[2]).resolve()}


def test_select_before_the_take_is_ready_says_so(made):
    studio, _ = made
    assert refusal(h.select, studio, 3, [None] * 4) == "That variant is not ready yet."


def test_history_shows_each_login_only_its_own_clips(made):
    studio, updates = made
    mine = sorted(updates[-1][4])
    items, paths, page, note, newer, older = h.history_view(studio, 0, ALICE)
    assert sorted(paths) == mine and note == "Page 1 of 1 · 4 clips"
    assert all(Path(poster).suffix == ".jpg" for poster, _ in items)  # posters, not the videos
    assert all(caption.startswith(f"{PRESET} · v") for _, caption in items)
    assert h.history_view(studio, 0, BOB)[:4] == ([], [], 0, "No clips yet.")
    # Without logins the one local user sees every clip.
    local = Studio.open(replace(studio.settings, auth=""))
    assert sorted(h.page_load(local)[1]) == mine


def test_history_pages_newest_first_and_stops_at_the_ends(made, monkeypatch):
    studio, _ = made
    monkeypatch.setattr(h, "HISTORY_PAGE", 3)
    first = h.history_latest(studio, ALICE)
    assert first[2:4] == (0, "Page 1 of 2 · 4 clips")
    assert not first[4]["interactive"] and first[5]["interactive"]
    second = h.older_page(studio, first[2], ALICE)
    assert second[2:4] == (1, "Page 2 of 2 · 4 clips") and len(second[1]) == 1
    assert second[4]["interactive"] and not second[5]["interactive"]
    assert set(first[1]).isdisjoint(second[1])
    assert h.older_page(studio, second[2], ALICE)[2] == 1  # past the last page: the last page
    assert h.newer_page(studio, second[2], ALICE)[1] == first[1]


def test_clicking_a_history_item_opens_that_clip_and_a_gone_one_is_refused(made, tmp_path):
    studio, _ = made
    paths = h.history_view(studio, 0, ALICE)[1]
    chosen, download = h.open_past(studio, paths, clicked(1), ALICE)
    assert value(chosen) == paths[1] and chosen["label"].startswith("Selected from History: ")
    assert download["visible"]
    gone = [str(tmp_path / "deleted.mp4")]
    for shown, index in ((paths, 9), (gone, 0), (paths, "1")):
        message = refusal(h.open_past, studio, shown, clicked(index), ALICE)
        assert message == "That clip is no longer available."


def test_cancel_note_says_how_many_finished_takes_were_kept(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path, score=False))
    assert h.cancelled(studio, ALICE) == "Nothing was running to cancel."
    job = h.generate(studio, str(samples["product"]), PRESET, request=ALICE, **FORM)
    first = next(u for u in job if any(u[4]))  # one take is done
    job.close()  # what Cancel (or a closed tab) does to the running handler
    note = h.cancelled(studio, ALICE)
    kept = int(re.fullmatch(r"\*\*Cancelled\.\*\* (\d) finished takes? (was|were) kept.*", note)[1])
    folder = Path(next(p for p in first[4] if p)).parent
    assert kept >= 1 and kept == len(list(folder.glob("*.mp4")))
    assert "(they are in History)" in note


def test_shootout_shows_the_table_best_first_and_links_the_report(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path))
    photos = [str(samples["product"]), str(samples["scenic"])]
    note, table, files = h.shootout(studio, photos, [PRESET], ["engine"], 2, 7, ALICE)
    report = next((tmp_path / "outputs").glob("*shootout-*/report.html"))
    assert f"[Open the report](/gradio_api/file={report})" in note
    assert note.startswith("**Done in ") and "4 clips, 0 failed" in note
    assert table["headers"] == ["photo", "preset", "backend", "variant", "score", "", "error"]
    rows = table["value"]
    assert [r[0] for r in rows] == ["coffee.png"] * 2 + ["rocket.jpg"] * 2
    for photo in ("coffee.png", "rocket.jpg"):
        best, other = (r for r in rows if r[0] == photo)
        assert best[5] == "winner" and other[5] == "" and best[4] >= other[4]
    assert [Path(f).name for f in files] == ["report.html", "results.csv", "results.json"]


def test_shootout_without_photos_asks_for_one(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    assert refusal(h.shootout, studio, [], [PRESET], ["engine"]) == "Add at least one photo."


def test_results_table_puts_each_photos_best_first_and_a_failed_cell_last():
    def row(photo: int, variant: int, score, error=None, winner=False) -> ShootoutRow:
        return ShootoutRow(photo, f"/in/photo{photo}.jpg", PRESET, "engine", variant, 7,
                           score=score, error=error, winner=winner)  # fmt: skip

    rows = [row(1, 1, 50.0), row(0, 1, None, "This backend cannot run here."),
            row(0, 2, 61.26, winner=True), row(1, 2, 72.0, winner=True), row(0, 3, 40.0)]  # fmt: skip
    result = ShootoutResult(Path("/out"), [], [PRESET], ["engine"], 7, 3, rows, {}, 1.0)
    assert results_table(result) == [
        ["photo0.jpg", PRESET, "engine", 2, 61.3, "winner", ""],
        ["photo0.jpg", PRESET, "engine", 3, 40.0, "", ""],
        ["photo0.jpg", PRESET, "engine", 1, None, "", "This backend cannot run here."],
        ["photo1.jpg", PRESET, "engine", 2, 72.0, "winner", ""],
        ["photo1.jpg", PRESET, "engine", 1, 50.0, "", ""],
    ]


def test_preset_info_describes_the_move_length_and_aspect(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    assert h.preset_info(studio, PRESET) == (
        "A calm dolly towards the product while a soft highlight glides across it.  \n"
        "*push-in + light-sweep · 3 s · 24 fps · 1:1*"
    )
    assert h.preset_info(studio, "nope/nope").startswith("Unknown preset 'nope/nope'.")


def test_the_form_starts_on_the_first_preset_of_the_library(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    assert studio.default_preset == PRESET == next(iter(studio.library)).id
    assert h.preset_choices(studio.library)[0] == ("Product · Slow push-in", PRESET)


def test_page_load_names_a_broken_user_preset_file(tmp_path):
    presets = tmp_path / "user-presets"
    presets.mkdir()
    (presets / "good.yaml").write_text(GOOD)
    (presets / "typo.yaml").write_text("family: [oops\n")
    settings = replace(small_settings(tmp_path), user_presets_dir=presets)
    studio = Studio.open(settings, load_library(user_dir=presets))
    with pytest.warns(UserWarning, match="typo.yaml"):
        assert h.page_load(studio)[3] == "No clips yet."


def test_bound_handlers_still_get_the_request_and_progress_from_gradio(tmp_path):
    # As the form sends them: photo, preset, ..., model folder, corrections, prompt, negative,
    # loop, framing point.
    sent = ["photo.png", PRESET, "engine", "preset", 1, 8, 7, 1.0, "", [], "", "", "once", None]
    studio = Studio.open(small_settings(tmp_path))
    request = gr.Request(username="alice")
    inputs, progress_index, _, _ = special_args(h.bind(h.generate, studio), sent, request=request)
    assert inputs[14] is request and isinstance(inputs[15], gr.Progress) and progress_index == 15
    inputs, _, event_index, _ = special_args(h.bind(h.subject_click, studio),
                                             ["photo.png", [], "add", 5], request=request,
                                             event_data=clicked([3, 4]))  # fmt: skip
    assert isinstance(inputs[4], gr.SelectData) and inputs[5] is request and event_index == 4
    inputs, _, event_index, _ = special_args(h.bind(h.open_past, studio), [[]], request=request,
                                             event_data=clicked(0))  # fmt: skip
    assert isinstance(inputs[1], gr.SelectData) and inputs[2] is request and event_index == 1


def test_report_link_is_the_web_servers_file_route(tmp_path):
    report = tmp_path / "a b" / "report.html"
    assert h.file_url(report) == f"/gradio_api/file={str(report).replace(' ', '%20')}"


# --- the Subject view ---------------------------------------------------------------------------

SUIT = {"mode": "remove", "points": [[0.3, 0.75]], "radius": 0.08}


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_a_click_on_the_subject_removes_a_round_area_and_undo_takes_it_back(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path))
    portrait = str(samples["portrait"])
    plain, edits, note = h.subject_new_photo(studio, portrait)
    assert edits == [] and note == "Subject: the person matte (1 face found)."
    assert pixels(plain).shape == (512, 512, 3)  # the 512 px preview of the portrait

    # The browser reports the clicked pixel of the overlay; the correction is in 0..1.
    shown, edits, note = h.subject_click(studio, portrait, edits, "remove", 8, clicked([153, 383]))
    assert note.endswith("1 correction.")
    ((x, y),) = edits[0]["points"]
    assert edits[0]["mode"] == "remove" and edits[0]["radius"] == 0.08
    assert abs(x - 0.3) < 0.002 and abs(y - 0.75) < 0.002
    before, after = pixels(plain), pixels(shown)
    changed = np.abs(after - before).sum(axis=2) > 30
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 1000  # the dab is drawn as background now
    far = np.hypot(xs - 153.5, ys - 383.5) > 1.3 * 0.08 * 512
    assert far.sum() <= 10  # and nowhere else, but for a few specks of lossy compression

    # A second click, then Undo: the first correction's picture again, byte for byte.
    _, two, note = h.subject_click(studio, portrait, edits, "add", 5, clicked([400, 40]))
    assert [e["mode"] for e in two] == ["remove", "add"] and note.endswith("2 corrections.")
    undone = h.subject_undo(two)
    assert undone == edits and h.subject_view(studio, portrait, undone)[0] == shown
    assert h.subject_view(studio, portrait, h.subject_reset())[0] == plain


def test_the_overlay_is_served_from_gradios_folder_to_its_own_login_only(made, samples):
    studio, _ = made
    shown, _, _ = h.subject_view(studio, str(samples["product"]), [SUIT], ALICE)
    assert Path(shown).is_relative_to(Path(get_upload_folder()).resolve())
    # Gradio serves the file as is (its name is the keyed hash Gradio gives its own copies),
    # and the web guard lets only the logins it was handed to read it.
    assert studio.runner.history.granted(Path(shown).parent.name) == {ownership.owner_id("alice")}


def test_a_new_photo_that_is_not_one_is_named_in_the_note_without_a_popup(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    bogus = tmp_path / "notes.png"
    bogus.write_bytes(b"this is not a picture at all")
    shown, edits, note = h.subject_new_photo(studio, str(bogus))
    assert shown is None and edits == [] and "not a photo" in note
    assert h.subject_new_photo(studio, None)[2].startswith("Upload a photo")


def test_the_subject_view_refuses_impossible_corrections_and_clicks_in_one_sentence(
    tmp_path, samples
):
    studio = Studio.open(small_settings(tmp_path))
    portrait = str(samples["portrait"])
    assert "must be a list of strokes" in refusal(h.subject_view, studio, portrait, "all")
    assert refusal(h.subject_view, studio, None, []).startswith("Upload a photo first")
    message = refusal(h.subject_click, studio, portrait, [], "add", 5, clicked("nowhere"))
    assert message == "Click a point on the picture."
    too_many = [SUIT] * 200
    assert "At most 200" in refusal(h.subject_click, studio, portrait, too_many, "add", 5,
                                    clicked([10, 10]))  # fmt: skip


def test_generate_carries_the_corrections_and_a_history_rerun_reproduces_them(tmp_path, samples):
    studio = Studio.open(small_settings(tmp_path, score=False))
    *_, last = h.generate(studio, str(samples["portrait"]), "portrait/gentle-breath",
                          subject_edits=[SUIT], **FORM)  # fmt: skip
    first = Path(next(p for p in last[4] if p and "-v1-" in p))
    manifest = studio.runner.history.manifest(first)
    assert manifest["job"]["subject_edits"] == [SUIT]

    # The job History recorded, run again on the same photo (History names an upload by its
    # hash, never by its path): the same corrections, the same first take.
    assert manifest["job"]["image"] == f"upload:{manifest['input']['sha256'][:16]}"
    job = replace(Job.from_dict(manifest["job"]), image=str(samples["portrait"]))
    prepared = prepare_job(job, studio.settings, studio.library)
    assert prepared.photo.sha256 == manifest["input"]["sha256"]
    assert [e.to_dict() for e in prepared.edits] == [SUIT]
    *_, again = run_job(prepared, tmp_path / "rerun", studio.settings)
    redo = next(c.path for c in again.clips if c.index == 0)

    def first_frame(path: Path) -> np.ndarray:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        return np.frombuffer(next(reader), np.uint8).reshape(meta["size"][1], meta["size"][0], 3)

    assert np.abs(first_frame(redo).astype(int) - first_frame(first)).max() <= 2
