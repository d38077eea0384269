"""Clean engine takes of the sample photos, and the same takes with layer defects planted in them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from studio.motion.render import PlanRig
from studio.motion.scene import Scene, build_scene
from studio.plan import VariantPlan
from studio.presets import load_library
from studio.variants import plan_variants

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
# What the scorer sees of a 1024x576 take: the studio scores frames decoded at 512 px.
SIZE = (512, 288)
FRAMES = 72
# One job per sample photo, with a preset that moves the subject against its background.
JOBS = {
    "astronaut.png": "portrait/orbit",
    "coffee.png": "product/slow-push-in",
    "rocket.jpg": "scenic/tilt-reveal",
}
SEAM_COLOUR = (112, 124, 148)  # the blue-grey of an old sky carried on a subject's edge
KINDS = ("seam", "holes", "smear", "specks")


@dataclass(frozen=True)
class Take:
    """One rendered take: its plan, its frames and where the subject layer is in each frame."""

    plan: VariantPlan
    frames: np.ndarray  # T x H x W x 3 uint8
    subject: np.ndarray  # T x H x W float32, 1 inside the composited subject layer


@cache
def photo(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(EXAMPLES / name)), cv2.COLOR_BGR2RGB)


@cache
def takes(name: str, n: int = 4, seed: int = 3) -> tuple[Take, ...]:
    """The n takes of one job on a sample photo, as the studio renders them."""
    preset = load_library().get(JOBS[name])
    plans = plan_variants(
        preset, seed=seed, n=n, width=SIZE[0], height=SIZE[1], frames=FRAMES, fps=24
    )
    scene = build_scene(photo(name), plans)
    masks = _white_subject(scene)
    out = []
    for plan in plans:
        frames = np.stack(list(PlanRig(scene, plan).frames()))
        lit = np.stack(list(PlanRig(masks, replace(plan, ambient=())).frames()))
        out.append(Take(plan, frames, lit[..., 0].astype(np.float32) / 255.0))
    return tuple(out)


def _white_subject(scene: Scene) -> Scene:
    """The scene with a white subject over a black plate: rendered, it shows where the layer lands."""
    white = np.full(scene.alpha.shape + (3,), 255, np.uint8)
    a8 = np.clip(np.rint(scene.alpha * 255), 0, 255).astype(np.uint8)[..., None]
    # The layer is premultiplied: white times the matte, then the matte.
    layer = np.dstack([np.repeat(a8, 3, axis=2), a8])
    return replace(scene, image=white, plate=np.zeros_like(white), layer=layer)


def _growth(t: int, count: int, start: float = 0.2) -> float:
    """0 before `start` of the clip, then rising to 1 at its end: defects that grow with motion."""
    return float(np.clip((t / max(count - 1, 1) - start) / (1 - start), 0.0, 1.0))


def _outline(subject: np.ndarray) -> np.ndarray:
    """A 1 px ring just outside the subject layer's soft edge: where a matte that carries the
    old background's colour shows it."""
    hard = (subject > 0.1).astype(np.uint8)
    return cv2.dilate(hard, np.ones((3, 3), np.uint8)) - hard


def plant_seam(take: Take, width: int = 1) -> np.ndarray:
    """A blue-grey line tracing the subject's edge, covering more of the outline as it moves."""
    out = take.frames.copy()
    count = len(out)
    for t in range(count):
        grow = _growth(t, count)
        if grow == 0:
            continue
        ring = _outline(take.subject[t])
        if width > 1:
            ring = cv2.dilate(ring, np.ones((width, width), np.uint8)) & (take.subject[t] <= 0.1)
        ys, xs = np.nonzero(ring)
        if len(xs) == 0:
            continue
        # Start on the subject's left and sweep round it: a growing arc of the outline.
        cx, cy = xs.mean(), ys.mean()
        angle = np.arctan2(ys - cy, xs - cx)  # -pi..pi, 0 on the right
        keep = np.abs(np.angle(np.exp(1j * (angle - np.pi)))) <= np.pi * grow
        ys, xs = ys[keep], xs[keep]
        colour = np.array(SEAM_COLOUR, np.float32)
        px = out[t, ys, xs].astype(np.float32)
        out[t, ys, xs] = np.clip(0.15 * px + 0.85 * colour, 0, 255).astype(np.uint8)
    return out


def _bright_blobs(frame: np.ndarray, most: int = 12) -> list[tuple[float, float, float]]:
    """(x, y, radius) of the brightest compact spots in a frame."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    top = cv2.morphologyEx(
        grey, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    )
    thr = max(30, int(np.percentile(top, 99.5)))
    count, _, stats, centroids = cv2.connectedComponentsWithStats((top >= thr).astype(np.uint8))
    blobs = [
        (
            float(centroids[i][0]),
            float(centroids[i][1]),
            float(np.clip(np.sqrt(stats[i, 4] / np.pi), 2.0, 5.0)),
        )
        for i in range(1, count)
        if stats[i, 4] >= 3
    ]
    return sorted(blobs, key=lambda b: -b[2])[:most]


def plant_holes(take: Take) -> np.ndarray:
    """Dark crescents opening beside the brightest spots, as if the plate behind them were empty."""
    out = take.frames.copy()
    count = len(out)
    blobs = _bright_blobs(out[0])
    # Follow each spot with the frame-to-frame flow so the holes stay with what they sit beside.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in out]
    pts = np.array([(x, y) for x, y, _ in blobs], np.float32)
    radii = np.array([r for _, _, r in blobs], np.float32)
    for t in range(1, count):
        flow = dis.calc(grey[t - 1], grey[t], None)
        h, w = flow.shape[:2]
        for k, (x, y) in enumerate(pts):
            xi, yi = int(np.clip(round(x), 0, w - 1)), int(np.clip(round(y), 0, h - 1))
            pts[k] += flow[yi, xi]
        grow = _growth(t, count, 0.15)
        if grow == 0:
            continue
        hole = np.zeros((h, w), np.float32)
        for (x, y), r in zip(pts, radii, strict=True):
            # A dark disc a little behind and below the spot, widening as the clip goes on.
            shift = 1.0 + 3.0 * grow
            behind = (int(round(x - shift)), int(round(y + shift / 2)))
            cv2.circle(hole, behind, int(round(r + 2 + 2 * grow)), 1.0, -1)
            # The spot itself stays: only the ring beside it is dark.
            cv2.circle(hole, (int(round(x)), int(round(y))), int(round(r)), 0.0, -1)
        hole = cv2.GaussianBlur(hole, (0, 0), 0.7)[..., None] * (0.85 * grow)
        out[t] = np.clip(out[t] * (1 - hole) + 12 * hole, 0, 255).astype(np.uint8)
    return out


def plant_smear(take: Take, band: int = 12) -> np.ndarray:
    """A band across the subject's upper part dragged sideways into a dark smear, spilling past
    its edge."""
    out = take.frames.copy()
    count, h = out.shape[:2]
    for t in range(count):
        grow = _growth(t, count)
        inside = take.subject[t] > 0.5
        ys = np.nonzero(inside)[0]
        if grow == 0 or len(ys) == 0:
            continue
        # Across the subject where it is widest, in its upper two thirds.
        top, bottom = int(ys.min()), int(ys.min() + 0.67 * (ys.max() - ys.min())) + 1
        widths = inside[top:bottom].sum(axis=1)
        y0 = max(0, top + int(np.argmax(widths)) - band // 2)
        y1 = min(h, y0 + band)
        region = out[t, y0:y1].astype(np.float32)
        streak = cv2.blur(region, (41, 3)) * 0.7
        spill = cv2.dilate(inside[y0:y1].astype(np.uint8), np.ones((1, 25), np.uint8))
        mix = 0.9 * grow * cv2.GaussianBlur(spill.astype(np.float32), (0, 0), 1.0)[..., None]
        out[t, y0:y1] = np.clip((1 - mix) * region + mix * streak, 0, 255).astype(np.uint8)
    return out


def plant_specks(take: Take, count_specks: int = 40, seed: int = 5) -> np.ndarray:
    """Stray wisps and specks floating in the background just outside the subject, riding with it."""
    out = take.frames.copy()
    count, h, w = out.shape[:3]
    rng = np.random.default_rng(seed)
    first = take.subject[0] > 0.5
    if first.any():
        # Around the subject: inside a band 4..24 px out from its edge.
        dist = cv2.distanceTransform((~first).astype(np.uint8), cv2.DIST_L2, 3)
        ys, xs = np.nonzero((dist > 4) & (dist < 24))
    else:
        ys, xs = np.nonzero(np.ones((h, w), bool))
    pick = rng.choice(len(xs), size=min(count_specks, len(xs)), replace=False)
    base = np.stack([xs[pick], ys[pick]], axis=1).astype(np.float32)
    lengths = rng.integers(1, 7, len(base))
    angles = rng.uniform(0, np.pi, len(base))
    tones = rng.choice([30.0, 225.0], len(base))

    def centre(t: int) -> np.ndarray:
        m = take.subject[t] > 0.5
        if not m.any():
            return np.array([w / 2, h / 2], np.float32)
        yy, xx = np.nonzero(m)
        return np.array([xx.mean(), yy.mean()], np.float32)

    origin = centre(0)
    for t in range(count):
        grow = _growth(t, count, 0.15)
        if grow == 0:
            continue
        # Each speck rides with the subject's centre, like a wisp cut loose from its edge.
        shift = centre(t) - origin
        layer = np.zeros((h, w), np.float32)
        value = np.zeros((h, w), np.float32)
        for (x, y), n, a, tone in zip(base + shift, lengths, angles, tones, strict=True):
            p0 = (int(round(x)), int(round(y)))
            p1 = (int(round(x + n * np.cos(a))), int(round(y + n * np.sin(a))))
            cv2.line(layer, p0, p1, 1.0, 1)
            cv2.line(value, p0, p1, float(tone), 1)
        mix = layer[..., None] * (0.85 * grow)
        out[t] = np.clip(out[t] * (1 - mix) + value[..., None] * mix, 0, 255).astype(np.uint8)
    return out


PLANT = {"seam": plant_seam, "holes": plant_holes, "smear": plant_smear, "specks": plant_specks}
