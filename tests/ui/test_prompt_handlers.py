"""The prompt boxes and "Save as my preset", called as handlers: what the form shows and what a job gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from studio.presets import load_file, load_library
from studio.serve import ownership
from studio.ui import handlers as h
from studio.ui.handlers import Studio
from tests.test_presets import GOOD
from tests.ui.test_handlers import ALICE, BOB, FORM, refusal, small_settings

PRESET = "product/slow-push-in"  # three wordings of its prompt
# The form's Save inputs after the name: preset, aspect, duration, fps, strength, prompt, negative.
SAVE = ("preset", 2.0, 12, 1.3)
OWN_PROMPT = "a coffee cup on a marble table, steam curling up, slow push-in"


def manifests(outputs_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(outputs_dir.rglob("*-v*.json"))]


def test_the_prompt_boxes_show_for_models_that_read_prompts_only(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    panel, note = h.prompt_controls(studio, "ltx-video")
    assert panel["visible"] is True and note["visible"] is False
    panel, note = h.prompt_controls(studio, "engine")
    assert panel["visible"] is False and note["visible"] is True
    assert note["value"].startswith("The motion engine reads no prompt")
    panel, note = h.prompt_controls(studio, "svd-xt")
    assert panel["visible"] is False
    assert note["value"] == (
        "Stable Video Diffusion XT reads no prompt: the photo and the motion strength drive it."
    )
    # Every checkpoint the catalog marks as text-conditioned shows them, and no other.
    for info in h.list_backends(studio.settings):
        shown = h.prompt_controls(studio, info.id)[0]["visible"]
        ckpt = getattr(h.get_backend(info.id, studio.settings), "checkpoint", None)
        assert shown == bool(ckpt and ckpt.text_prompt), info.id


def test_picking_a_preset_fills_its_prompt_and_its_length_fps_and_strength(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    preset = studio.library.get(PRESET)
    info, prompt, negative, note, duration, fps, strength = h.preset_form(studio, PRESET)
    assert info.startswith(preset.description)
    assert (prompt, negative) == (preset.prompt, preset.negative_prompt)
    assert note == (
        "*The takes alternate between this wording and 2 others from the preset; "
        "a prompt of your own goes to every take.*"
    )
    assert (duration, fps, strength) == (3.0, 24, 1.0)
    assert h.preset_form(studio, "product/hero-pull-out")[3] == ""  # one wording: no note


def test_the_boxes_text_goes_to_the_job_only_when_it_is_the_users_own():
    preset_text = "slow dolly-in towards a product"
    assert h._own_text(preset_text, preset_text) is None  # untouched: the preset's phrasings
    assert h._own_text("  slow dolly-in\ntowards a   product ", preset_text) is None
    assert h._own_text(None, preset_text) is None  # left off by an API client
    assert h._own_text("", preset_text) is None and h._own_text("   ", preset_text) is None
    assert h._own_text(" ", "blurry", blank="") == ""  # an emptied negative prompt: none
    assert h._own_text("a warm\r\nglow", preset_text) == "a warm glow"  # a pasted line break
    assert h._own_text("a \x1b[2J glow", preset_text) == "a \x1b[2J glow"  # left to the job


def test_an_edited_prompt_reaches_every_take_and_the_presets_own_keeps_its_phrasings(
    tmp_path, samples
):
    studio = Studio.open(small_settings(tmp_path, score=False))
    list(h.generate(studio, str(samples["product"]), PRESET, **FORM,
                    prompt=OWN_PROMPT + "\n", negative_prompt="text, logos"))  # fmt: skip
    edited = manifests(tmp_path / "outputs")
    assert len(edited) == 4
    assert {m["plan"]["prompt"] for m in edited} == {OWN_PROMPT}
    assert {m["plan"]["negative_prompt"] for m in edited} == {"text, logos"}
    assert {m["job"]["prompt"] for m in edited} == {OWN_PROMPT}

    preset = studio.library.get(PRESET)
    list(h.generate(studio, str(samples["product"]), PRESET, **FORM,
                    prompt=preset.prompt, negative_prompt=preset.negative_prompt))  # fmt: skip
    second = [m for m in manifests(tmp_path / "outputs") if m["job"]["prompt"] is None]
    assert len(second) == 4
    assert {m["plan"]["prompt"] for m in second} == set(preset.phrasings)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("x" * 1001, "The prompt is longer than 1000 characters (1001); shorten it."),
        ("a \x1b[2J glow", "The prompt contains a control character (such as a line break or "
                           "tab); write it as one line of plain text."),
        ("a \u202e glow", "The prompt contains a control character"),
    ],
)  # fmt: skip
def test_a_hostile_prompt_is_refused_in_one_sentence_before_anything_is_written(
    tmp_path, samples, prompt, message
):
    studio = Studio.open(small_settings(tmp_path))
    sent = refusal(h.generate, studio, str(samples["product"]), PRESET, **FORM, prompt=prompt)
    assert sent.startswith(message) and "\n" not in sent
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.mp4"))


def test_save_as_my_preset_writes_a_valid_file_selects_it_and_a_job_uses_it(tmp_path, samples):
    settings = small_settings(tmp_path, score=False)
    studio = Studio.open(settings)
    picker, note = h.save_preset(studio, "Warm push-in", PRESET, *SAVE, OWN_PROMPT, "")
    assert picker["value"] == "product/warm-push-in"
    assert ("Product · Warm push-in", "product/warm-push-in") in picker["choices"]
    assert note.startswith("Saved **Warm push-in** (product/warm-push-in)")

    # 1. The file is in the user presets folder and loads as the built-ins do.
    path = settings.user_presets_dir / "product--warm-push-in.yaml"
    (saved,) = load_file(path)
    origin = studio.library.get(PRESET)
    assert saved.based_on == PRESET and saved.title == "Warm push-in"
    assert (saved.prompt, saved.prompts, saved.negative_prompt) == (OWN_PROMPT, (), "")
    assert (saved.duration, saved.fps, saved.aspect, saved.strength) == (2.0, 12, "1:1", 1.3)
    assert (saved.camera, saved.ambient, saved.variation) == (
        origin.camera, origin.ambient, origin.variation
    )  # fmt: skip
    assert not list(settings.user_presets_dir.glob(".*"))  # written atomically, no temp left

    # 2. Picking it fills the form with what was saved; the studio and a restart both list it.
    _, prompt, negative, _, duration, fps, strength = h.preset_form(studio, saved.id)
    assert (prompt, negative, duration, fps, strength) == (OWN_PROMPT, "", 2.0, 12, 1.3)
    assert saved.id in load_library(user_dir=settings.user_presets_dir).presets
    assert h.preset_list(Studio.open(settings), PRESET)[0]["value"] == PRESET

    # 3. Generate with it: its prompt, length, fps and strength reach every take.
    list(h.generate(studio, str(samples["product"]), saved.id, duration=2.0, fps=12,
                    strength=1.3, seed=7, prompt=prompt, negative_prompt=negative))  # fmt: skip
    made = manifests(settings.outputs_dir)
    assert len(made) == 4 and {m["preset"] for m in made} == {saved.id}
    assert {m["plan"]["prompt"] for m in made} == {OWN_PROMPT}
    assert {m["plan"]["frames"] for m in made} == {24} and made[0]["job"]["strength"] == 1.3


def test_saving_the_presets_own_wording_keeps_its_phrasings_and_saving_again_replaces(tmp_path):
    settings = small_settings(tmp_path)
    studio = Studio.open(settings)
    origin = studio.library.get(PRESET)
    h.save_preset(studio, "My push", PRESET, *SAVE, origin.prompt, origin.negative_prompt)
    saved = studio.presets(ownership.LOCAL).get("product/my-push")
    assert saved.phrasings == origin.phrasings and saved.negative_prompt == origin.negative_prompt
    # A preset saved from a saved preset says where it started once, not twice.
    h.save_preset(studio, "My push 2", "product/my-push", *SAVE, "", "")
    again = studio.presets(ownership.LOCAL).get("product/my-push-2")
    assert again.based_on == "product/my-push" and again.description == saved.description
    _, note = h.save_preset(studio, "My push", PRESET, "16:9", 4.0, 24, 1.0, OWN_PROMPT, "")
    assert note.startswith("Replaced **My push**")
    assert studio.presets(ownership.LOCAL).get("product/my-push").aspect == "16:9"
    assert len(list(settings.user_presets_dir.glob("*.yaml"))) == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give your preset a name first."),
        ("   ", "Give your preset a name first."),
        ("../../etc/passwd", "A preset name cannot contain slashes or '..'."),
        ("..", "A preset name cannot contain slashes or '..'."),
        ("a\\b", "A preset name cannot contain slashes or '..'."),
        ("x" * 61, "A preset name can be at most 60 characters."),
        ("x" * 1_000_000, "A preset name can be at most 60 characters."),
        ("warm\npush", "A preset name must be one line of plain text."),
        ("warm\x00push", "A preset name must be one line of plain text."),
        ("!!! ???", "A preset name needs at least one letter or digit."),
        ("Slow push-in", "'Slow push-in' is the name of a built-in preset; choose another name."),
        (
            "ORBIT  reveal!",
            "'ORBIT reveal!' is the name of a built-in preset; choose another name.",
        ),
        (42, "Give your preset a name first."),
    ],
)
def test_a_hostile_preset_name_is_refused_in_one_sentence_and_nothing_is_written(
    tmp_path, name, message
):
    settings = small_settings(tmp_path)
    studio = Studio.open(settings)
    assert refusal(h.save_preset, studio, name, PRESET, *SAVE, "", "") == message
    assert not settings.user_presets_dir.exists()


def test_a_hostile_prompt_or_setting_is_refused_when_saving_too(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    cases = [
        ((*SAVE, "x" * 1001, ""), "The prompt is longer than 1000 characters (1001); shorten it."),
        ((*SAVE, "", "blur\x07"), "The negative prompt contains a control character"),
        (("preset", 2.0, 12, float("nan"), "", ""), "Motion strength must be between 0 and 2"),
        (("2:1", 2.0, 12, 1.0, "", ""), "Aspect must be one of"),
    ]
    for args, message in cases:
        assert refusal(h.save_preset, studio, "Fine name", PRESET, *args).startswith(message)
    sent = refusal(h.save_preset, studio, "Fine name", "product/../../x", *SAVE, "", "")
    assert sent.startswith("Motion preset: product/../../x is not in the list of choices")


def test_a_preset_saved_by_hand_in_the_shared_folder_is_not_overwritten(tmp_path):
    settings = small_settings(tmp_path, auth="alice:pw1,bob:pw2")
    shared = settings.user_presets_dir
    shared.mkdir(parents=True)
    (shared / "team.yaml").write_text(GOOD.replace("family: test", "family: product"))
    studio = Studio.open(settings)
    assert "product/drift" in studio.presets(ownership.owner_id("alice")).presets
    message = refusal(h.save_preset, studio, "Drift", PRESET, *SAVE, "", "", request=ALICE)
    assert message == "A preset called 'Drift' already exists; choose another name."


def test_with_logins_each_login_sees_only_its_own_saved_presets(tmp_path, samples):
    settings = small_settings(tmp_path, auth="alice:pw1,bob:pw2", score=False)
    studio = Studio.open(settings)
    picker, _ = h.save_preset(studio, "Alice's glow", PRESET, *SAVE, OWN_PROMPT, "", request=ALICE)
    mine = picker["value"]
    assert mine == "product/alice-s-glow"
    folder = settings.user_presets_dir / "logins" / ownership.owner_id("alice")
    assert [p.name for p in folder.iterdir()] == ["product--alice-s-glow.yaml"]
    assert (
        yaml.safe_load((folder / "product--alice-s-glow.yaml").read_text())["family"] == "product"
    )

    # Alice's list has it after a reload; Bob's list, Bob's jobs and Bob's saves never see it.
    alice_list = h.preset_list(studio, PRESET, ALICE)[0]
    assert mine in [v for _, v in alice_list["choices"]]
    bob_list = h.preset_list(studio, mine, BOB)[0]
    assert mine not in [v for _, v in bob_list["choices"]] and bob_list["value"] == PRESET
    assert h.preset_info(studio, mine, BOB).startswith("Unknown preset")
    message = refusal(h.generate, studio, str(samples["product"]), mine, **FORM, request=BOB)
    assert message.startswith(f"Motion preset: {mine} is not in the list of choices")
    refusal(h.save_preset, studio, "Copy", mine, *SAVE, "", "", request=BOB)
    # Bob may use the same name for a preset of his own, in his own folder.
    picker, note = h.save_preset(studio, "Alice's glow", PRESET, *SAVE, "", "", request=BOB)
    assert picker["value"] == mine and note.startswith("Saved")
    assert studio.presets(ownership.owner_id("alice")).get(mine).prompt == OWN_PROMPT
    assert studio.presets(ownership.owner_id("bob")).get(mine).prompt != OWN_PROMPT
    # The one local user (no login) sees neither: the logins' folders are theirs.
    assert mine not in studio.presets(ownership.LOCAL).presets


def test_page_load_puts_the_chosen_presets_prompt_in_the_boxes(tmp_path):
    studio = Studio.open(small_settings(tmp_path))
    picker, prompt, negative, note = h.preset_list(studio, "portrait/gentle-breath")
    preset = studio.library.get("portrait/gentle-breath")
    assert picker["value"] == preset.id and prompt == preset.prompt
    assert negative == preset.negative_prompt and "2 others" in note
    assert picker["choices"] == h.preset_choices(studio.library)
