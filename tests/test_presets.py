"""Presets load from data, are validated with errors naming file and field, and merge a user folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.errors import PresetError
from studio.plan import CAMERA_MOVES
from studio.presets import load_file, load_library

GOOD = """
family: test
presets:
  - id: drift
    title: Drift
    description: A drift.
    prompt: a slow drift
    camera: {move: pan, strength: 0.4}
    ambient:
      - {kind: wind, strength: 0.3}
    defaults: {duration: 2, fps: 12, aspect: "1:1"}
    variation: {direction: [-10, 10], amplitude: [0.9, 1.1], easing: [smooth, linear]}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_builtin_library_has_at_least_five_presets_per_family():
    families = load_library().families()
    assert set(families) >= {"product", "portrait", "scenic"}
    for family in ("product", "portrait", "scenic"):
        assert len(families[family]) >= 5, family
    assert list(families)[0] == "product"  # the studio opens on product shots


def test_every_builtin_preset_is_complete_for_ui_and_models():
    for p in load_library():
        assert p.id == f"{p.family}/{p.name}"
        assert p.title and p.description and p.prompt and p.negative_prompt
        assert p.camera.move in CAMERA_MOVES
        assert 0 < p.duration <= 20 and 6 <= p.fps <= 60
        # The four variants must have something to differ by.
        v = p.variation
        assert (
            v.direction[1] > v.direction[0] or v.amplitude[1] > v.amplitude[0] or len(v.easing) > 1
        )


def test_builtin_library_covers_every_camera_move():
    moves = {p.camera.move for p in load_library()}
    assert moves == set(CAMERA_MOVES)


def test_user_preset_file_is_parsed(tmp_path):
    (preset,) = load_file(write(tmp_path, "test.yaml", GOOD))
    assert preset.id == "test/drift"
    assert preset.camera.move == "pan" and preset.camera.strength == 0.4
    assert preset.ambient[0].kind == "wind"
    assert (preset.duration, preset.fps, preset.aspect) == (2.0, 12, "1:1")
    assert preset.variation.easing == ("smooth", "linear")


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", GOOD.replace("title: Drift", "title: [Drift"))
    with pytest.raises(PresetError, match=r"broken\.yaml: is not valid YAML at line \d+"):
        load_file(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("strength: 0.4}", "strength: fast}", r"camera: field 'strength' must be a float"),
        ("move: pan", "move: zoom", r"field 'move' must be one of push-in"),
        ("strength: 0.4}", "strength: 7}", r"field 'strength' must be between 0 and 1"),
        ("    title: Drift\n", "", r"field 'title' is missing"),
        ("kind: wind", "kind: tornado", r"ambient\[0\]: field 'kind' must be one of"),
        ('aspect: "1:1"', 'aspect: "2:1"', r"defaults: field 'aspect' must be one of"),
        (
            "direction: [-10, 10]",
            "direction: [10, -10]",
            r"variation: field 'direction' must satisfy",
        ),
        ("id: drift", "id: Drift Left", r"field 'id' must be lowercase"),
    ],
)
def test_wrong_field_is_named_with_file_and_preset(tmp_path, old, new, message):
    path = write(tmp_path, "bad.yaml", GOOD.replace(old, new))
    with pytest.raises(PresetError, match=message) as info:
        load_file(path)
    assert "bad.yaml" in str(info.value)


def test_user_folder_adds_and_overrides_presets(tmp_path):
    write(tmp_path, "test.yaml", GOOD)
    override = GOOD.replace("family: test", "family: product").replace(
        "id: drift", "id: slow-push-in"
    )
    write(tmp_path, "mine.yaml", override.replace("title: Drift", "title: My push-in"))
    library = load_library(user_dir=tmp_path)
    assert library.get("test/drift").title == "Drift"
    assert library.get("product/slow-push-in").title == "My push-in"
    assert library.warnings == []


def test_broken_user_file_is_skipped_with_a_warning_and_the_rest_still_load(tmp_path):
    write(tmp_path, "good.yaml", GOOD)
    write(tmp_path, "typo.yaml", "family: [oops\n")
    write(
        tmp_path,
        "wrongtype.yaml",
        GOOD.replace("family: test", "family: other").replace("fps: 12", "fps: twelve"),
    )
    library = load_library(user_dir=tmp_path)
    assert "test/drift" in library.presets
    assert "product/slow-push-in" in library.presets
    text = "\n".join(library.warnings)
    assert "typo.yaml" in text and "wrongtype.yaml" in text and "fps" in text


def test_missing_user_folder_is_not_an_error(tmp_path):
    library = load_library(user_dir=tmp_path / "nope")
    assert len(library) >= 15 and library.warnings == []


def test_unknown_preset_id_tells_how_to_list_presets():
    with pytest.raises(
        PresetError, match=r"Unknown preset 'product/nope'.*python -m studio presets"
    ):
        load_library().get("product/nope")


# --- alternative phrasings of the prompt -----------------------------------------------------

PHRASED = GOOD.replace(
    "    prompt: a slow drift\n",
    "    prompt: a slow drift\n"
    "    prompts:\n"
    "      - the camera drifts slowly sideways\n"
    "      - '  a gentle sideways glide  '\n",
)


def test_a_preset_lists_alternative_phrasings_beside_its_prompt(tmp_path):
    (preset,) = load_file(write(tmp_path, "test.yaml", PHRASED))
    assert preset.prompt == "a slow drift"
    assert preset.prompts == ("the camera drifts slowly sideways", "a gentle sideways glide")
    assert preset.phrasings == ("a slow drift", *preset.prompts)
    (plain,) = load_file(write(tmp_path, "plain.yaml", GOOD))
    assert plain.prompts == () and plain.phrasings == ("a slow drift",)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    prompts:\n", "    prompts: the camera drifts\n    x:\n", r"field 'prompts' must be a list"),
        ("      - the camera drifts slowly sideways\n", "      - ''\n",
         r"field 'prompts' entry 1 must be a non-empty text"),
        ("      - the camera drifts slowly sideways\n", "      - 42\n",
         r"field 'prompts' entry 1 must be a non-empty text, got 42"),
        ("      - the camera drifts slowly sideways\n", "      - a slow drift\n",
         r"field 'prompts' entry 1 repeats another phrasing: 'a slow drift'"),
        ("'  a gentle sideways glide  '", "the camera drifts slowly sideways",
         r"field 'prompts' entry 2 repeats another phrasing"),
        ("'  a gentle sideways glide  '", '"a gentle\\nsideways glide"',
         r"field 'prompts' entry 2 contains a control character"),
        ("'  a gentle sideways glide  '", '"a gentle \\e[31m glide"',
         r"field 'prompts' entry 2 contains a control character"),
        ("'  a gentle sideways glide  '", "x" * 1001,
         r"field 'prompts' entry 2 is longer than 1000 characters \(1001\)"),
        ("      - the camera drifts slowly sideways\n", "".join(f"      - take {i}\n" for i in range(7)),
         r"field 'prompts' may list at most 7 alternative prompts"),  # 8 with the glide
        ("    prompt: a slow drift\n", '    prompt: "a slow\\tdrift"\n',
         r"field 'prompt' contains a control character"),
    ],
)  # fmt: skip
def test_a_bad_phrasing_is_named_with_file_preset_and_entry(tmp_path, old, new, message):
    assert old in PHRASED
    path = write(tmp_path, "bad.yaml", PHRASED.replace(old, new))
    with pytest.raises(PresetError, match=message) as info:
        load_file(path)
    assert "bad.yaml" in str(info.value) and "(preset 'drift')" in str(info.value)


def test_builtin_presets_offer_alternative_phrasings_in_every_family():
    phrased = [p for p in load_library() if p.prompts]
    assert {p.family for p in phrased} == {"product", "portrait", "scenic"}
    for p in phrased:
        # Each wording is a full prompt of its own, not a fragment.
        assert all(len(text.split()) >= 8 for text in p.phrasings), p.id


def test_a_preset_may_set_its_motion_strength_and_say_what_it_was_saved_from(tmp_path):
    text = GOOD.replace('aspect: "1:1"}', 'aspect: "1:1", strength: 1.4}').replace(
        "    title: Drift\n", "    title: Drift\n    based_on: scenic/drifting-clouds\n"
    )
    (preset,) = load_file(write(tmp_path, "test.yaml", text))
    assert preset.strength == 1.4 and preset.based_on == "scenic/drifting-clouds"
    (plain,) = load_file(write(tmp_path, "plain.yaml", GOOD))
    assert plain.strength == 1.0 and plain.based_on == ""
    with pytest.raises(PresetError, match=r"defaults: field 'strength' must be between 0 and 2"):
        load_file(write(tmp_path, "bad.yaml", text.replace("strength: 1.4", "strength: 3")))
