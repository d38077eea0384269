"""Save as my preset: the studio's current settings written as a user preset file, validated like the built-ins."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from studio.encode import write_text
from studio.errors import PresetError
from studio.presets import (
    ASPECTS,
    BUILTIN_DIR,
    Preset,
    PresetLibrary,
    load_folder,
    load_library,
    parse_text,
    text_problem,
    with_folder,
)
from studio.serve.ownership import LOCAL

MAX_NAME = 60  # characters of a preset's name as typed (it is the title in the picker)
MAX_SLUG = 40
MAX_SAVED = 200  # saved presets per login: enough for a prompt library, not a disk filler
LOGINS = "logins"  # with logins, each one's saved presets live in <user presets>/logins/<owner>


@dataclass(frozen=True)
class Form:
    """The studio form's settings a saved preset keeps (None: the preset's own value)."""

    aspect: str | None = None
    duration: float | None = None
    fps: int | None = None
    strength: float | None = None
    prompt: str | None = None  # None: the preset's prompt and its phrasings
    negative_prompt: str | None = None


def saved_dir(user_presets_dir: Path, owner: str) -> Path:
    """Where an owner's saved presets live.

    The one local user (no logins) saves into the user presets folder itself, beside any
    files put there by hand; each login has a folder of its own, which no other login reads.
    """
    root = Path(user_presets_dir).expanduser()
    return root if owner == LOCAL else root / LOGINS / owner


def library_for(base: PresetLibrary, user_presets_dir: Path, owner: str) -> PresetLibrary:
    """The presets one owner sees: the base library (built-ins and the shared user folder)
    plus the presets that owner saved, read now so a preset saved a moment ago is there."""
    return with_folder(base, saved_dir(user_presets_dir, owner))


def slug(name: str) -> str:
    """The id part of a preset name: lowercase ASCII letters, digits and single dashes.

    A name with no Latin letters or digits ("夜景") gets a short id made from its text.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:MAX_SLUG].strip("-")
    if not text:
        text = "preset-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return text


def check_name(name: Any) -> str:
    """The preset name as it will be shown (spaces tidied), or a PresetError in one sentence."""
    if not isinstance(name, str) or not name.strip():
        raise PresetError("Give your preset a name first.")
    if len(name) > MAX_NAME:
        raise PresetError(f"A preset name can be at most {MAX_NAME} characters.")
    if text_problem(name, MAX_NAME):
        raise PresetError("A preset name must be one line of plain text.")
    if any(ch in name for ch in "/\\") or ".." in name:
        raise PresetError("A preset name cannot contain slashes or '..'.")
    name = " ".join(name.split())
    if not any(ch.isalnum() for ch in name):
        raise PresetError("A preset name needs at least one letter or digit.")
    return name


def _check_text(label: str, text: str | None, *, empty_ok: bool) -> None:
    if text is None:
        return
    if not isinstance(text, str) or (not text.strip() and not empty_ok):
        raise PresetError(f"{label} must be some text; leave it as the preset's to keep that.")
    problem = text_problem(text)
    if problem:
        raise PresetError(f"{label} {problem}.")


def _check_number(label: str, value: Any, lo: float, hi: float, unit: str = "") -> None:
    if value is None:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:
        raise PresetError(f"{label} must be between {lo:g} and {hi:g}{unit} to save a preset.")


def _entry(origin: Preset, name: str, form: Form) -> dict[str, Any]:
    """The YAML mapping of the new preset: the origin's moves, the form's settings."""
    cam = origin.camera
    var = origin.variation
    prompt = form.prompt if form.prompt is not None else origin.prompt
    entry: dict[str, Any] = {
        "id": slug(name),
        "title": name,
        # A preset saved from a saved preset already says where it came from.
        "description": origin.description
        if origin.based_on
        else f"{origin.description} (Saved from {origin.title}.)",
        "based_on": origin.id,
        "prompt": prompt,
    }
    if form.prompt is None and origin.prompts:  # the wording is the preset's: keep all of it
        entry["prompts"] = list(origin.prompts)
    entry["negative_prompt"] = (
        origin.negative_prompt if form.negative_prompt is None else form.negative_prompt
    )
    entry["camera"] = {"move": cam.move, "strength": cam.strength, "direction": cam.direction,
                       "focus": list(cam.focus), "easing": cam.easing}  # fmt: skip
    entry["ambient"] = [{"kind": a.kind, "strength": a.strength} for a in origin.ambient]
    entry["defaults"] = {
        "duration": float(form.duration if form.duration is not None else origin.duration),
        "fps": int(form.fps if form.fps is not None else origin.fps),
        "aspect": form.aspect or origin.aspect,
        "strength": float(form.strength if form.strength is not None else origin.strength),
    }
    entry["variation"] = {"direction": list(var.direction), "amplitude": list(var.amplitude),
                          "focus": var.focus, "easing": list(var.easing), "flip": var.flip}  # fmt: skip
    return entry


def save_preset(
    library: PresetLibrary,
    folder: Path,
    name: Any,
    based_on: str,
    form: Form,
    builtin_dir: Path = BUILTIN_DIR,
) -> Preset:
    """Write the form's settings as a preset named `name` into `folder`; returns the preset.

    library: what the owner sees now (the preset it started from must be in it); folder: the
    owner's saved presets (saved_dir). The file is validated exactly as the studio loads user
    files before it is written, atomically. Saving again under the same name replaces the
    owner's own preset; a name taken by a built-in or by a preset of the shared user folder
    is refused.
    """
    # 1. Check the name and what the preset starts from.
    title = check_name(name)
    origin = library.get(based_on)
    _check_number("Duration", form.duration, 0.5, 20, " seconds")
    _check_number("FPS", form.fps, 6, 60)
    _check_number("Motion strength", form.strength, 0, 2)
    if form.aspect is not None and form.aspect not in ASPECTS:
        raise PresetError(f"Aspect must be one of {', '.join(ASPECTS)}.")
    _check_text("The prompt", form.prompt, empty_ok=False)
    _check_text("The negative prompt", form.negative_prompt, empty_ok=True)
    # 2. The id, the file, and who already has that id.
    preset_id = f"{origin.family}/{slug(title)}"
    folder = Path(folder)
    target = folder / f"{origin.family}--{slug(title)}.yaml"
    if preset_id in load_library(builtin_dir).presets:
        raise PresetError(f"'{title}' is the name of a built-in preset; choose another name.")
    if preset_id in library.presets and not target.is_file():
        raise PresetError(f"A preset called '{title}' already exists; choose another name.")
    if not target.is_file() and len(load_folder(folder)[0]) >= MAX_SAVED:
        raise PresetError(
            f"You have {MAX_SAVED} saved presets, the most the studio keeps; "
            "save over one of them (use its name) instead."
        )
    # 3. Validate the file's text exactly as it will be read back, then write it atomically.
    entry = _entry(origin, title, form)
    text = "# Saved from the studio (Save as my preset).\n" + yaml.safe_dump(
        {"family": origin.family, "order": origin.order, "presets": [entry]},
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,  # short lists inline, as in the built-in files
        width=100,
    )
    (preset,) = parse_text(text, target.name)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(text, target)
    return preset
