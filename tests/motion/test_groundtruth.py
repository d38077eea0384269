"""The engine against synthetic scenes whose true frames are known: a textured object over a textured plane."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from studio.motion.depth import DepthSource
from studio.motion.render import PlanRig
from studio.motion.scene import Scene, build_scene
from studio.motion.subject import Subject
from studio.plan import CameraMove, VariantPlan

OUT_W, OUT_H = 320, 180
# The photo is exactly the working size (1.3x the output), so build_scene does not resample it.
PHOTO_W, PHOTO_H = 416, 234
FRAMES = 12
BAND = 6  # px either side of the object's outline, in output pixels
MOVES = ("push-in", "orbit", "pan", "dolly-zoom", "handheld")
# Plan strengths a 0.5-strength preset gets at job strength 1.0 and 1.8 (variants.py multiplies
# them and caps at 1; camera_path caps a plan's strength at 1 as well).
STRENGTHS = (0.5, 0.9)


@dataclass(frozen=True)
class TrueScene:
    """The layers a synthetic photo was made from, at working size, float32."""

    photo: np.ndarray  # uint8 HxWx3: mask * obj + (1 - mask) * plane
    plane: np.ndarray  # HxWx3 background, known everywhere (also behind the object)
    obj: np.ndarray  # HxWx3 object texture, defined everywhere
    mask: np.ndarray  # HxW object coverage, 2-px antialiased edge
    outline: np.ndarray  # HxW signed distance to the object's outline (px, negative inside)
    hair: np.ndarray  # HxW coverage of the hair-thin strands, also in mask
    d_plane: float
    d_obj: float


class FixedDepth(DepthSource):
    """A depth source that returns the depth map it was given."""

    name = "fixed"

    def __init__(self, depth: np.ndarray) -> None:
        self.depth = depth.astype(np.float32)

    def estimate(self, image: np.ndarray, subject: np.ndarray | None = None) -> np.ndarray:
        assert image.shape[:2] == self.depth.shape
        return self.depth


def _noise(rng: np.random.Generator, cells: tuple[int, int]) -> np.ndarray:
    grid = rng.random(cells).astype(np.float32)
    up = cv2.resize(grid, (PHOTO_W, PHOTO_H), interpolation=cv2.INTER_CUBIC)
    return (up - up.mean()) / (up.std() + 1e-6)


def _coverage(signed_distance: np.ndarray) -> np.ndarray:
    """Antialiased coverage of the region where the signed distance is negative: a 2-px ramp."""
    return np.clip(0.5 - signed_distance / 2.0, 0.0, 1.0).astype(np.float32)


def _strands(rng: np.random.Generator, cx: float, cy: float, r: float, n: int) -> np.ndarray:
    """Coverage of n hair-thin strands (about 1 px wide) standing out of a circle's top half."""
    up = 4
    canvas = np.zeros((PHOTO_H * up, PHOTO_W * up), np.uint8)
    for ang in rng.uniform(np.pi * 1.1, np.pi * 1.9, n):
        length = rng.uniform(8, 16)
        p0 = (cx + (r - 3) * np.cos(ang), cy + (r - 3) * np.sin(ang))
        p1 = (cx + (r + length) * np.cos(ang + 0.15), cy + (r + length) * np.sin(ang + 0.15))
        pts = [(int(round(x * up + up / 2)), int(round(y * up + up / 2))) for x, y in (p0, p1)]
        cv2.line(canvas, pts[0], pts[1], 255, thickness=up, lineType=cv2.LINE_AA)
    return cv2.resize(canvas.astype(np.float32) / 255.0, (PHOTO_W, PHOTO_H), cv2.INTER_AREA)


@functools.cache
def true_scene(kind: str) -> TrueScene:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:PHOTO_H, 0:PHOTO_W].astype(np.float32)
    if kind == "figure":
        # A cool grey-blue wall with soft blotches and a fine weave, and a warm striped
        # figure (a body disc under a head disc) standing in front of it.
        plane = np.array([112, 128, 158], np.float32) + 22 * _noise(rng, (5, 8))[..., None]
        plane += 7 * (np.sin(xx / 2.3) * np.sin(yy / 3.1))[..., None]
        body = np.hypot(xx - 208, yy - 160) - 62
        head = np.hypot(xx - 214, yy - 78) - 34
        sd = np.minimum(body, head)
        hair = _strands(rng, 214, 78, 34, 14)
        obj = np.array([228, 122, 52], np.float32) + 18 * _noise(rng, (9, 14))[..., None]
        obj += (26 * np.sin((xx + 0.6 * yy) / 4.0))[..., None] * np.array([1.0, 0.8, 0.4])
    elif kind == "blobs":
        # Small bright blobs (stars, lamps) over a dark textured ground.
        plane = np.array([24, 26, 36], np.float32) + 6 * _noise(rng, (8, 12))[..., None]
        plane += 4 * (np.sin(xx / 1.9) * np.sin(yy / 2.7))[..., None]
        sd = np.full((PHOTO_H, PHOTO_W), np.inf, np.float32)
        for _ in range(14):
            cx, cy = rng.uniform(120, 300), rng.uniform(60, 180)
            sd = np.minimum(sd, np.hypot(xx - cx, yy - cy) - rng.uniform(3.0, 6.0))
        hair = np.zeros_like(sd)
        obj = np.array([250, 236, 196], np.float32) + 5 * _noise(rng, (20, 30))[..., None]
    else:
        raise ValueError(kind)
    mask = np.maximum(_coverage(sd), hair)
    plane = np.clip(plane, 0, 255).astype(np.float32)
    obj = np.clip(obj, 0, 255).astype(np.float32)
    m = mask[..., None]
    photo = np.clip(m * obj + (1.0 - m) * plane + 0.5, 0, 255).astype(np.uint8)
    return TrueScene(photo, plane, obj, mask, sd, hair, d_plane=0.3, d_obj=0.8)


def make_plan(move: str, strength: float) -> VariantPlan:
    return VariantPlan(
        index=0,
        seed=5,
        width=OUT_W,
        height=OUT_H,
        frames=FRAMES,
        fps=24,
        camera=CameraMove(move=move, strength=strength, direction=20.0),
    )


@functools.cache
def engine_scene(kind: str, shrink: float = 0.0) -> Scene:
    """The engine's scene for the synthetic photo, given the true depth and the true matte,
    or one drawn shrink px inside the object's outline (outside when negative)."""
    t = true_scene(kind)
    depth = np.where(t.mask > 0.5, t.d_obj, t.d_plane).astype(np.float32)
    matte = np.maximum(_coverage(t.outline + shrink), t.hair) if shrink else t.mask
    subject = Subject(alpha=matte, source="given")
    scene = build_scene(
        t.photo, [make_plan("push-in", 1.0)], FixedDepth(depth), vision=None, subject=subject
    )
    assert scene.image.shape[:2] == (PHOTO_H, PHOTO_W)
    return scene


def true_frame(t: TrueScene, rig: PlanRig, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i as the camera model says it should look, and the object's coverage in it.

    Each layer is sampled with the rig's own path and framing at its own constant parallax
    weight; the object is composited with its true coverage over the whole true plane.
    """
    h, w = rig.H, rig.W
    mx, my = np.empty((h, w), np.float32), np.empty((h, w), np.float32)

    def sample(img: np.ndarray, depth: float, border: int) -> np.ndarray:
        weight = np.full((h, w), depth - rig.d_ref, np.float32)
        rig._maps(i, rig.x, rig.y, weight, mx, my)
        return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=border)

    plane = sample(t.plane, t.d_plane, cv2.BORDER_REFLECT_101)
    layer = np.dstack([t.obj * t.mask[..., None], t.mask])
    fg = sample(layer, t.d_obj, cv2.BORDER_REPLICATE)
    cover = fg[..., 3]
    out = fg[..., :3] + (1.0 - cover[..., None]) * plane
    return np.clip(out, 0, 255), cover


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    d = a.astype(np.float64) - b.astype(np.float64)
    sq = (d * d).mean(axis=-1)
    mse = float(sq[where].mean()) if where is not None else float(sq.mean())
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-10))


def edge_band(cover: np.ndarray) -> np.ndarray:
    inside = (cover > 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BAND + 1, 2 * BAND + 1))
    return (cv2.dilate(inside, k) > 0) & ~(cv2.erode(inside, k) > 0)


@functools.cache
def measure(
    kind: str, move: str, strength: float, shrink: float = 0.0
) -> tuple[list[float], list[float]]:
    """Per-frame PSNR (dB) of the engine against the truth: whole frame, and the edge band."""
    t = true_scene(kind)
    rig = PlanRig(engine_scene(kind, shrink), make_plan(move, strength))
    overall, band = [], []
    for i in range(rig.F):
        got = rig.frame(i)
        want, cover = true_frame(t, rig, i)
        overall.append(psnr(got, want))
        band.append(psnr(got, want, edge_band(cover)))
    return overall, band


# The engine's worst frame of each clip, dB, per camera move: edge band and whole frame,
# each 1.3-2.5 dB under what it measures. Before premultiplied layers, solved edge colours
# and a plate inpainted under the whole soft edge, the band fell to 18-32 dB: the old
# background's colour rode along the edge, the subject's soft edge stayed in the plate as a
# ghost, small blobs got dark rims.
MIN_BAND = {
    "figure": {"push-in": 36.5, "orbit": 36.0, "pan": 39.5, "dolly-zoom": 32.0, "handheld": 51.5},
    "blobs": {"push-in": 39.0, "orbit": 39.5, "pan": 42.0, "dolly-zoom": 37.5, "handheld": 49.5},
}
MIN_OVERALL = {"figure": 40.0, "blobs": 46.0}
SCENES = [("figure", 0.0), ("figure", 1.5), ("blobs", 0.0)]


@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize("move", MOVES)
@pytest.mark.parametrize(("kind", "shrink"), SCENES, ids=["figure", "tight-matte", "blobs"])
def test_engine_frames_match_the_true_frames(kind, shrink, move, strength):
    overall, band = measure(kind, move, strength, shrink)
    assert min(band) >= MIN_BAND[kind][move], (move, strength, [round(b, 1) for b in band])
    assert min(overall) >= MIN_OVERALL[kind], (move, strength, [round(o, 1) for o in overall])


@pytest.mark.parametrize(("kind", "shrink"), SCENES, ids=["figure", "tight-matte", "blobs"])
def test_first_frame_of_a_push_in_is_the_photo_along_the_edge(kind, shrink):
    # A push-in starts as the plain framed photo: the object's edge composites back to it.
    overall, band = measure(kind, "push-in", STRENGTHS[-1], shrink)
    assert band[0] >= 48.0 and overall[0] >= 54.0, (band[0], overall[0])


@pytest.mark.parametrize(("kind", "shrink"), SCENES, ids=["figure", "tight-matte", "blobs"])
def test_plate_keeps_no_subject_colour_where_the_subject_was(kind, shrink):
    # Whatever the camera reveals behind the subject must not hold its colours: that is the
    # ghost arc a creator sees. Measured as the share of the object's colour, between the
    # true plane and the object, left in the plate over the object's whole soft edge.
    t = true_scene(kind)
    plate = engine_scene(kind, shrink).plate.astype(np.float32)
    towards = t.obj - t.plane
    left = ((plate - t.plane) * towards).sum(axis=2) / (towards * towards).sum(axis=2)
    edge = (t.mask > 0.05) & (t.mask < 0.95)
    assert np.percentile(left[edge], 99) < 0.09, np.percentile(left[edge], [50, 90, 99])


def test_a_depth_step_inside_the_subject_moves_it_as_one_piece():
    # A cap over a face: the top of the figure is much nearer than the rest. The subject
    # layer must still move as one piece in a strong dolly-zoom: no row or column of it
    # stretched or squeezed against its neighbours (that is what a tear looks like).
    t = true_scene("figure")
    depth = np.where(t.mask > 0.5, t.d_obj, t.d_plane).astype(np.float32)
    depth[(t.mask > 0.5) & (np.mgrid[0:PHOTO_H, 0:PHOTO_W][0] < 100)] += 0.25
    scene = build_scene(
        t.photo,
        [make_plan("dolly-zoom", 1.0)],
        FixedDepth(depth),
        vision=None,
        subject=Subject(alpha=t.mask, source="given"),
    )
    rig = PlanRig(scene, make_plan("dolly-zoom", 1.0))
    rig.frame(rig.F - 1)
    x0, y0, x1, y1 = rig.roi
    fmx, fmy = rig.fmx[rig.layer_window], rig.fmy[rig.layer_window]
    covered = cv2.remap(scene.alpha, fmx, fmy, cv2.INTER_LINEAR) > 0.5
    step_x = np.diff(fmx, axis=1)[covered[:, 1:] & covered[:, :-1]]
    step_y = np.diff(fmy, axis=0)[covered[1:] & covered[:-1]]
    for step in (step_x, step_y):
        spread = np.abs(step / np.median(step) - 1.0).max()
        assert spread < 0.05, spread
    assert (x1 - x0) * (y1 - y0) > 0
