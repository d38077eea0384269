"""Face consistency follows the face mesh: turns, blinks and camera moves keep it, a changed face loses it."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest

from studio.motion.matte import shared_vision
from studio.scoring import faces, motion, score_frames
from tests.test_scoring import another_face, photo, render

SIZE = (512, 288)  # what the studio scores: frames decoded at 512 px
FRAMES = 48
CENTRE = (256, 150)  # the astronaut's head and shoulders in a 16:9 frame

pytestmark = pytest.mark.skipif(shared_vision() is None, reason="the face models need LiteRT")


@cache
def portrait() -> np.ndarray:
    return photo("astronaut.png")


@cache
def mesh() -> np.ndarray:
    vision = shared_vision()
    return vision.mesh(portrait(), vision.faces(portrait())[0]).points


def turning(degrees: float, frames: int = FRAMES) -> np.ndarray:
    """A slow push-in while the picture turns in-plane by `degrees` about the face."""
    width, height = SIZE
    img = portrait()
    base = max(width / img.shape[1], height / img.shape[0])
    out = []
    for i in range(frames):
        m = cv2.getRotationMatrix2D(
            CENTRE, degrees * i / (frames - 1), base * (1 + 0.1 * i / (frames - 1))
        )
        m[:, 2] += (width / 2 - CENTRE[0], height / 2 - CENTRE[1])
        out.append(
            cv2.warpAffine(img, m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        )
    return np.stack(out)


def warped_face(amount: float) -> np.ndarray:
    """The portrait with nose and mouth dragged sideways and down by `amount` of the face width."""
    img, points = portrait(), mesh()
    h, w = img.shape[:2]
    xs = points[:, 0]
    face_width = float(xs.max() - xs.min())
    cx, cy = points[1, 0], (points[1, 1] + points[13, 1]) / 2  # between nose tip and lips
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fall = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.3 * face_width) ** 2)
    map_x = xx - amount * face_width * fall * 0.8
    map_y = yy - amount * face_width * fall * 0.5
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def closed_eyes() -> np.ndarray:
    """The portrait with both eyes shut: each eye opening painted over with the lid's skin."""
    out, points = portrait().copy(), mesh()
    for lids in (
        (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
        (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
    ):
        contour = points[list(lids), :2]
        opening = np.zeros(out.shape[:2], np.uint8)
        cv2.fillConvexPoly(opening, cv2.convexHull(np.round(contour).astype(np.int32)), 255)
        opening = cv2.dilate(opening, np.ones((3, 3), np.uint8))
        x0, x1 = int(contour[:, 0].min()), int(contour[:, 0].max())
        top = int(contour[:, 1].min()) - 4
        out[opening > 0] = out[top - 2 : top + 1, x0:x1].reshape(-1, 3).mean(axis=0)
        # The lower lid's line is where the lashes meet.
        cv2.polylines(out, [np.round(contour[8:]).astype(np.int32)], False, (60, 40, 40), 1)
    return out


def push_in(swap_to: np.ndarray | None = None) -> np.ndarray:
    return render(portrait(), centre=CENTRE, size=SIZE, swap_to=swap_to)


def analyse(frames: np.ndarray, vision=...):
    grey = np.stack(
        [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (256, 144), interpolation=cv2.INTER_AREA)
         for f in frames]
    )  # fmt: skip
    return faces.analyse(frames, motion.analyse(grey).camera, 256 / frames.shape[2], vision)


def test_a_steady_push_in_on_a_face_is_fully_consistent():
    stats = analyse(push_in())
    assert stats.consistency > 0.95
    assert np.nanmax(stats.residual) < 1.0  # % of the eye distance: mesh noise only


@pytest.mark.parametrize("degrees", [20, 30])
def test_a_face_turning_in_plane_stays_the_same_face(degrees):
    stats = analyse(turning(degrees))
    assert stats is not None  # the face is followed all the way round
    assert not np.isnan(stats.residual).any()
    assert stats.consistency > 0.95


def test_a_different_face_pasted_in_halfway_scores_clearly_lower():
    box = tuple(round(v) for v in shared_vision().faces(portrait())[0].box)
    other = another_face(portrait(), (box[0], box[1], box[2] - box[0], box[3] - box[1]))
    stats = analyse(push_in(swap_to=other))
    assert stats.consistency < 0.4
    assert stats.worst_frame >= FRAMES // 2
    assert np.nanmax(stats.residual[stats.checkpoints < FRAMES // 2]) < 1.0


def test_a_strong_local_warp_of_the_face_in_late_frames_scores_clearly_lower():
    steady = analyse(push_in()).consistency
    warped = analyse(push_in(swap_to=warped_face(0.18)))
    assert warped.consistency < 0.7
    assert warped.consistency < steady - 0.3
    assert warped.worst_frame >= FRAMES // 2


def test_a_blink_is_not_an_identity_change():
    frames = push_in()
    shut = push_in(swap_to=closed_eyes())
    frames[20:30] = shut[20:30]
    assert np.abs(frames[25].astype(int) - push_in()[25]).max() > 100  # the eyes did shut
    assert analyse(frames).consistency > 0.9


def test_a_clip_without_a_face_has_no_face_consistency():
    coffee = render(photo("coffee.png"), size=SIZE)
    assert analyse(coffee) is None
    assert score_frames(coffee).metrics["face_consistency"] is None


def test_without_the_face_models_face_consistency_is_none_not_an_error():
    assert analyse(push_in(), vision=None) is None


def test_a_face_cut_off_through_the_eyes_is_not_judged():
    frames = push_in()
    eyes_at = float(mesh()[[33, 133, 263, 362], 1].mean()) + SIZE[1] / 2 - CENTRE[1]
    cut = np.ascontiguousarray(frames[:, round(eyes_at) :])  # the top edge runs through the eyes
    assert analyse(frames) is not None
    assert analyse(cut) is None
