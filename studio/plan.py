"""The plain, serializable description of one clip to render: camera move, ambient motion, size and seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CAMERA_MOVES = (
    "push-in",
    "pull-out",
    "pan",
    "tilt",
    "orbit",
    "dolly-zoom",
    "handheld",
    "locked-off",
)
AMBIENT_KINDS = (
    "wind",
    "light-sweep",
    "breathing",
    "blink",
    "head-turn",
    "clouds",
    "fog",
    "shimmer",
)
EASINGS = ("linear", "ease-in-out", "ease-out", "ease-in", "smooth")
# How a clip loops, as a job asks for it: "seamless" (the motion itself is periodic, so the
# last frame flows into the first) or "boomerang" (played forwards, then backwards).
LOOPS = ("seamless", "boomerang")
# What a plan may carry: a job's loop, or "crossfade", the seamless loop of a backend that
# cannot make its motion periodic (a model take), made after rendering (studio.loops).
PLAN_LOOPS = (*LOOPS, "crossfade")


@dataclass(frozen=True)
class CameraMove:
    """A virtual camera move over the whole clip.

    strength 0..1 scales how far the camera travels; direction is an angle in degrees
    (0 = to the right, 90 = up) used by pan, tilt, orbit and handheld; focus is the
    point the camera pushes towards, in 0..1 image coordinates.
    """

    move: str = "push-in"
    strength: float = 0.5
    direction: float = 0.0
    focus: tuple[float, float] = (0.5, 0.5)
    easing: str = "ease-in-out"


@dataclass(frozen=True)
class Ambient:
    """A local motion layered on top of the camera: wind, light sweep, breathing..."""

    kind: str
    strength: float = 0.5


@dataclass(frozen=True)
class VariantPlan:
    """Everything a backend needs to render one variant; JSON-serializable via to_dict()."""

    index: int
    seed: int
    width: int
    height: int
    frames: int
    fps: int
    camera: CameraMove = field(default_factory=CameraMove)
    ambient: tuple[Ambient, ...] = ()
    prompt: str = ""
    negative_prompt: str = ""
    # Backend-specific knobs (steps, guidance, offload...) travel here untouched.
    params: dict[str, Any] = field(default_factory=dict)
    loop: str | None = None  # one of PLAN_LOOPS, or None for a clip that plays once

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def periodic(self) -> bool:
        """True when the renderer must make every motion repeat after exactly `frames` frames."""
        return self.loop == "seamless"

    @property
    def still(self) -> bool:
        """True when the camera is meant to stay put (only ambient motion is asked for)."""
        return self.camera.move == "locked-off" or self.camera.strength == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["camera"]["focus"] = list(self.camera.focus)
        data["ambient"] = [asdict(a) for a in self.ambient]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantPlan:
        data = dict(data)
        cam = dict(data.pop("camera", {}))
        if "focus" in cam:
            cam["focus"] = tuple(cam["focus"])
        ambient = tuple(Ambient(**a) for a in data.pop("ambient", ()))
        return cls(camera=CameraMove(**cam), ambient=ambient, **data)
