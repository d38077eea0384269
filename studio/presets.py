"""Load and validate the motion presets in presets/*.yaml (plus a user folder) into typed objects."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
# Files in presets/ that are not preset families (the model catalog lives there too).
NOT_PRESETS = {"models.yaml"}


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

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]


class _Fields(FieldReader):
    """Reads typed fields out of one preset mapping, naming file and field in every error."""

    error = PresetError

    def text(self, name: str, default: Any = ...) -> str:
        value = self.get(name, str, default)
        if default is ... and not value.strip():
            raise self.fail(name, "must not be empty.")
        return value.strip()

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
    return Preset(
        id=f"{family}/{name}",
        family=family,
        title=f.text("title"),
        description=f.text("description"),
        prompt=f.text("prompt"),
        negative_prompt=f.text("negative_prompt", ""),
        camera=camera,
        ambient=tuple(ambient),
        duration=d.number("duration", 0.5, 20.0, 3.0),
        fps=int(d.number("fps", 6, 60, 24)),
        aspect=d.choice("aspect", tuple(ASPECTS), "16:9"),
        variation=variation,
        source=where,
        order=order,
    )


def load_file(path: Path) -> list[Preset]:
    """Parse one family file; raises PresetError naming the file and field."""
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        why = f" ({problem})" if problem else ""
        raise PresetError(f"{where}: is not valid YAML{at}{why}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"{where}: cannot be read ({exc.__class__.__name__}).") from None
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


def load_library(builtin_dir: Path = BUILTIN_DIR, user_dir: Path | None = None) -> PresetLibrary:
    """Load built-in presets (errors are fatal: they are ours) and merge a user folder.

    A broken user file is skipped with a warning naming it, so one typo does not take
    down the studio; the remaining user files still load.
    """
    presets: dict[str, Preset] = {}
    for path in _family_files(builtin_dir):
        for p in load_file(path):
            if p.id in presets:
                raise PresetError(f"{path}: preset id '{p.id}' is defined twice.")
            presets[p.id] = p
    warnings: list[str] = []
    if user_dir is not None:
        user_dir = Path(user_dir).expanduser()
        if not user_dir.is_dir():
            if user_dir.exists():
                warnings.append(f"User presets folder {user_dir} is not a folder; ignored.")
        else:
            for path in _family_files(user_dir):
                try:
                    loaded = load_file(path)
                except PresetError as exc:
                    warnings.append(f"Skipped user preset file: {exc}")
                    continue
                for p in loaded:
                    presets[p.id] = p
    for w in warnings:
        log.warning(w)
    ordered = sorted(presets.values(), key=lambda p: (p.order, p.family))
    return PresetLibrary({p.id: p for p in ordered}, warnings)
