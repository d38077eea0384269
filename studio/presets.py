"""Load and validate the motion presets in presets/*.yaml (plus a user folder) into typed objects."""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio import yamlio
from studio.errors import PresetError
from studio.fields import FieldReader
from studio.plan import AMBIENT_KINDS, CAMERA_MOVES, EASINGS, Ambient, CameraMove

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "presets"


@dataclass(frozen=True)
class Aspect:
    """A clip shape the studio offers: its label in the picker and its width/height ratio."""

    label: str
    ratio: float | None  # None: the photo's own ratio


# The one list of clip shapes: presets, jobs and the aspect picker all read it.
ASPECTS: dict[str, Aspect] = {
    "16:9": Aspect("16:9 landscape", 16 / 9),
    "9:16": Aspect("9:16 vertical", 9 / 16),
    "1:1": Aspect("1:1 square", 1.0),
    "4:5": Aspect("4:5 portrait", 4 / 5),
    "match": Aspect("Match photo", None),
}
# Files in presets/ that are not preset families (the model catalog and export targets live there too).
NOT_PRESETS = {"models.yaml", "exports.yaml"}

# A prompt longer than this is far past what any text encoder here reads (T5 stops at 512
# tokens, about 2,000 characters of English; CLIP at 77 tokens).
MAX_PROMPT_CHARS = 1000
MAX_PHRASINGS = 8  # a preset's prompt plus its alternatives: one for each of up to 8 takes
# Characters that change how text is shown rather than what it says: bidirectional overrides
# and isolates can make a prompt read differently on screen than it is sent.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(text: str, limit: int = MAX_PROMPT_CHARS) -> str | None:
    """Why a prompt or name cannot be used, as the end of a sentence, or None when it can."""
    if len(text) > limit:
        return f"is longer than {limit} characters ({len(text)}); shorten it"
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS:
            return (
                "contains a control character (such as a line break or tab); "
                "write it as one line of plain text"
            )
    return None


@dataclass(frozen=True)
class Variation:
    """How the variants of one preset differ from each other."""

    direction: tuple[float, float] = (0.0, 0.0)  # degrees added to camera.direction
    amplitude: tuple[float, float] = (1.0, 1.0)  # multiplier on every strength
    focus: float = 0.0  # max shift of the focal point, fraction of the frame
    easing: tuple[str, ...] = ("ease-in-out",)
    flip: bool = False  # may mirror the direction of travel (pan left vs right)


@dataclass(frozen=True)
class Preset:
    id: str  # "family/name"
    family: str
    title: str
    description: str
    prompt: str
    negative_prompt: str
    camera: CameraMove
    ambient: tuple[Ambient, ...]
    duration: float
    fps: int
    aspect: str
    variation: Variation = field(default_factory=Variation)
    source: str = ""  # the file it came from, for error messages
    order: float = 100  # families are listed by this, then by name
    # Other wordings of the prompt: the takes of a job cycle through (prompt, *prompts).
    prompts: tuple[str, ...] = ()
    strength: float = 1.0  # the motion strength a job uses unless it says otherwise
    based_on: str = ""  # a saved preset: the id of the preset it was saved from

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]

    @property
    def phrasings(self) -> tuple[str, ...]:
        """Every wording of the prompt, the main one first."""
        return (self.prompt, *self.prompts)


class _Fields(FieldReader):
    """Reads typed fields out of one preset mapping, naming file and field in every error."""

    error = PresetError

    def text(self, name: str, default: Any = ...) -> str:
        value = self.get(name, str, default)
        if default is ... and not value.strip():
            raise self.fail(name, "must not be empty.")
        problem = text_problem(value.strip())
        if problem:
            raise self.fail(name, f"{problem}.")
        return value.strip()

    def phrasings(self, name: str, prompt: str) -> tuple[str, ...]:
        """Alternative wordings of `prompt`: distinct, non-empty, plain one-line texts."""
        items = self.get(name, list, [])
        if len(items) + 1 > MAX_PHRASINGS:
            raise self.fail(name, f"may list at most {MAX_PHRASINGS - 1} alternative prompts.")
        seen, out = {prompt}, []
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(name, f"entry {i + 1} must be a non-empty text, got {item!r}.")
            text = item.strip()
            problem = text_problem(text)
            if problem:
                raise self.fail(name, f"entry {i + 1} {problem}.")
            if text in seen:
                raise self.fail(name, f"entry {i + 1} repeats another phrasing: '{text}'.")
            seen.add(text)
            out.append(text)
        return tuple(out)

    def number(self, name: str, lo: float, hi: float, default: Any = ...) -> float:
        value = self.get(name, float, default)
        if not lo <= value <= hi:
            raise self.fail(name, f"must be between {lo:g} and {hi:g}, got {value:g}.")
        return float(value)

    def choice(self, name: str, options: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(name, str, default)
        if value not in options:
            raise self.fail(name, f"must be one of {', '.join(options)}; got '{value}'.")
        return value

    def point(self, name: str, default: tuple[float, float]) -> tuple[float, float]:
        value = self.data.get(name, list(default))
        ok = isinstance(value, list) and len(value) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok or not all(0.0 <= v <= 1.0 for v in value):
            raise self.fail(name, f"must be an [x, y] pair between 0 and 1, got {value!r}.")
        return (float(value[0]), float(value[1]))

    def span(self, name: str, lo: float, hi: float, default: tuple[float, float]) -> tuple:
        value = self.data.get(name, list(default))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(name, f"must be a [low, high] pair of numbers, got {value!r}.")
        a, b = float(value[0]), float(value[1])
        if not (lo <= a <= b <= hi):
            raise self.fail(name, f"must satisfy {lo:g} <= low <= high <= {hi:g}, got {value!r}.")
        return (a, b)


def _parse_preset(raw: Any, family: str, where: str, order: float = 100) -> Preset:
    f = _Fields(raw, where)
    name = f.text("id")
    if "/" in name or not name.replace("-", "").isalnum() or name != name.lower():
        raise f.fail("id", f"must be lowercase letters, digits and dashes, got '{name}'.")
    where = f"{where} (preset '{name}')"
    f.where = where

    cam = _Fields(f.get("camera", dict), f"{where} camera")
    camera = CameraMove(
        move=cam.choice("move", CAMERA_MOVES),
        strength=cam.number("strength", 0.0, 1.0, 0.5),
        direction=cam.number("direction", -360.0, 360.0, 0.0),
        focus=cam.point("focus", (0.5, 0.5)),
        easing=cam.choice("easing", EASINGS, "ease-in-out"),
    )

    ambient = []
    for i, item in enumerate(f.get("ambient", list, [])):
        a = _Fields(item, f"{where} ambient[{i}]")
        ambient.append(
            Ambient(
                kind=a.choice("kind", AMBIENT_KINDS), strength=a.number("strength", 0.0, 1.0, 0.5)
            )
        )

    d = _Fields(f.get("defaults", dict, {}), f"{where} defaults")
    var = _Fields(f.get("variation", dict, {}), f"{where} variation")
    easing = var.get("easing", (list, str), [camera.easing])
    easing = [easing] if isinstance(easing, str) else easing
    for e in easing:
        if e not in EASINGS:
            raise var.fail("easing", f"entries must be among {', '.join(EASINGS)}; got '{e}'.")
    variation = Variation(
        direction=var.span("direction", -180.0, 180.0, (0.0, 0.0)),
        amplitude=var.span("amplitude", 0.0, 2.0, (1.0, 1.0)),
        focus=var.number("focus", 0.0, 0.25, 0.0),
        easing=tuple(easing),
        flip=var.get("flip", bool, False),
    )
    prompt = f.text("prompt")
    based_on = f.text("based_on", "")
    if based_on and (len(based_on) > 200 or based_on.count("/") != 1):
        raise f.fail(
            "based_on", f"must be a preset id such as product/slow-push-in, got '{based_on}'."
        )
    return Preset(
        id=f"{family}/{name}",
        family=family,
        title=f.text("title"),
        description=f.text("description"),
        prompt=prompt,
        prompts=f.phrasings("prompts", prompt),
        negative_prompt=f.text("negative_prompt", ""),
        strength=d.number("strength", 0.0, 2.0, 1.0),
        based_on=based_on,
        camera=camera,
        ambient=tuple(ambient),
        duration=d.number("duration", 0.5, 20.0, 3.0),
        fps=int(d.number("fps", 6, 60, 24)),
        aspect=d.choice("aspect", tuple(ASPECTS), "16:9"),
        variation=variation,
        source=where,
        order=order,
    )


def parse_family(data: Any, where: str) -> list[Preset]:
    """Validate one family file's parsed YAML; raises PresetError naming `where` and the field."""
    top = _Fields(data, where)
    family = top.text("family")
    if not family.replace("-", "").isalnum() or family != family.lower():
        raise top.fail("family", f"must be lowercase letters, digits and dashes, got '{family}'.")
    order = top.number("order", 0, 1000, 100)
    items = top.get("presets", list)
    if not items:
        raise top.fail("presets", "must list at least one preset.")
    return [
        _parse_preset(item, family, f"{where} presets[{i}]", order) for i, item in enumerate(items)
    ]


def parse_text(text: str, where: str) -> list[Preset]:
    """Validate one family file's text, exactly as the studio loads it from disk."""
    try:
        data = yamlio.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        why = f" ({problem})" if problem else ""
        raise PresetError(f"{where}: is not valid YAML{at}{why}.") from None
    return parse_family(data, where)


def load_file(path: Path) -> list[Preset]:
    """Parse one family file; raises PresetError naming the file and field."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"{where}: cannot be read ({exc.__class__.__name__}).") from None
    return parse_text(text, where)


@dataclass
class PresetLibrary:
    """All presets by id, in file order; user presets override built-ins with the same id."""

    presets: dict[str, Preset]
    warnings: list[str] = field(default_factory=list)

    def get(self, preset_id: str) -> Preset:
        try:
            return self.presets[preset_id]
        except KeyError:
            raise PresetError(
                f"Unknown preset '{preset_id}'. Run 'python -m studio presets' to list them."
            ) from None

    def families(self) -> dict[str, list[Preset]]:
        out: dict[str, list[Preset]] = {}
        for p in self.presets.values():
            out.setdefault(p.family, []).append(p)
        return out

    def __iter__(self):
        return iter(self.presets.values())

    def __len__(self) -> int:
        return len(self.presets)


def _family_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.glob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and p.name not in NOT_PRESETS
    )


def load_folder(folder: Path) -> tuple[list[Preset], list[str]]:
    """The presets of every family file in a user folder, and a warning for each broken file.

    A broken user file is skipped with a warning naming it, so one typo does not take down
    the studio; the remaining files still load. A missing folder has no presets.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        exists = folder.exists()
        return [], [f"User presets folder {folder} is not a folder; ignored."] if exists else []
    presets: list[Preset] = []
    warnings: list[str] = []
    for path in _family_files(folder):
        try:
            presets += load_file(path)
        except PresetError as exc:
            warnings.append(f"Skipped user preset file: {exc}")
    return presets, warnings


def _library(presets: dict[str, Preset], warnings: list[str]) -> PresetLibrary:
    ordered = sorted(presets.values(), key=lambda p: (p.order, p.family))
    return PresetLibrary({p.id: p for p in ordered}, warnings)


def load_library(builtin_dir: Path = BUILTIN_DIR, user_dir: Path | None = None) -> PresetLibrary:
    """Load built-in presets (errors are fatal: they are ours) and merge a user folder."""
    presets: dict[str, Preset] = {}
    for path in _family_files(builtin_dir):
        for p in load_file(path):
            if p.id in presets:
                raise PresetError(f"{path}: preset id '{p.id}' is defined twice.")
            presets[p.id] = p
    warnings: list[str] = []
    if user_dir is not None:
        loaded, warnings = load_folder(user_dir)
        presets.update((p.id, p) for p in loaded)
    for w in warnings:
        log.warning(w)
    return _library(presets, warnings)


def with_folder(library: PresetLibrary, folder: Path) -> PresetLibrary:
    """The library plus the presets of one more user folder, read now (they override)."""
    loaded, warnings = load_folder(folder)
    presets = dict(library.presets)
    presets.update((p.id, p) for p in loaded)
    fresh = [w for w in warnings if w not in library.warnings]
    return _library(presets, [*library.warnings, *fresh])
