"""The README's framing example: photos framed at 9:16, 1:1 and 16:9, with the subject and face drawn.

Usage: .venv/bin/python scripts/framing_example.py [PHOTO ...] [--preset portrait/orbit]
       [--out assets/framing.jpg] [--height 280]

One row per photo (by default the astronaut and the cameraman): first the photo with each
frame's mid-clip outline on it, then one panel per aspect, the clip's middle frame, with the
subject box (green) and the face box (orange) where the camera puts them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from studio.images import load_photo  # noqa: E402
from studio.motion.framing import project_box  # noqa: E402
from studio.motion.render import PlanRig  # noqa: E402
from studio.motion.scene import build_scene  # noqa: E402
from studio.presets import load_library  # noqa: E402
from studio.variants import plan_variants  # noqa: E402

ASPECTS = {"9:16": (9, 16), "1:1": (1, 1), "16:9": (16, 9)}
COLOURS = {"9:16": (80, 170, 255), "1:1": (255, 90, 200), "16:9": (255, 230, 60)}  # RGB
SUBJECT, FACE = (70, 220, 90), (255, 140, 30)


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 9 * len(text) + 12), 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def outline(img: np.ndarray, box, colour, scale: float = 1.0, width: int = 2) -> None:
    x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, width, cv2.LINE_AA)


def framed_row(path: Path, preset, h: int) -> np.ndarray:
    """The photo with the frames' outlines, then each aspect's middle frame, side by side."""
    photo = load_photo(str(path)).rgb
    frames = int(round(preset.duration * preset.fps))
    plans = {}
    for name, (a, b) in ASPECTS.items():
        w = int(round(h * a / b / 2)) * 2
        plans[name] = plan_variants(
            preset, seed=3, n=1, width=w, height=h, frames=frames, fps=preset.fps
        )[0]
    scene = build_scene(photo, list(plans.values()))

    # 1. The photo, with each frame's outline at mid-clip.
    ph, pw = scene.image.shape[:2]
    k = h / ph
    overview = cv2.resize(scene.image, (int(round(pw * k)), h), interpolation=cv2.INTER_AREA)
    panels = []
    for name, plan in plans.items():
        rig = PlanRig(scene, plan)
        mid = plan.frames // 2
        p = rig.path
        half_w, half_h = rig.W / 2 / p.zoom[mid], rig.H / 2 / p.zoom[mid]
        window = (
            rig.X0 + rig.sc * (p.cx[mid] - half_w),
            rig.Y0 + rig.sc * (p.cy[mid] - half_h),
            rig.X0 + rig.sc * (p.cx[mid] + half_w),
            rig.Y0 + rig.sc * (p.cy[mid] + half_h),
        )
        outline(overview, window, COLOURS[name], k)

        # 2. The clip's middle frame, with where the subject and the face landed in it.
        frame = rig.frame(mid).copy()
        origin = (rig.X0, rig.Y0)
        if scene.has_subject:
            box = project_box(p, rig.sc, origin, (rig.W, rig.H), scene.subject_box)[mid]
            outline(frame, box, SUBJECT)
        for face in scene.faces:
            outline(frame, project_box(p, rig.sc, origin, (rig.W, rig.H), face.box)[mid], FACE)
        cv2.rectangle(frame, (0, 0), (rig.W - 1, rig.H - 1), COLOURS[name], 3)
        panels.append(label(frame, f"{name}  {rig.framing.kind}"))
    if scene.has_subject:
        outline(overview, scene.subject_box, SUBJECT, k)
    for face in scene.faces:
        outline(overview, face.box, FACE, k)
    panels.insert(0, label(overview, "photo"))

    gap = np.full((h, 10, 3), 255, np.uint8)
    row = [gap]
    for panel in panels:
        row += [panel, gap]
    sheet = np.concatenate(row, axis=1)
    return cv2.copyMakeBorder(sheet, 10, 0, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "photos",
        nargs="*",
        type=Path,
        default=[ROOT / "assets/examples/astronaut.png", ROOT / "tests/photos/camera.png"],
    )
    parser.add_argument("--preset", default="portrait/orbit")
    parser.add_argument("--out", type=Path, default=ROOT / "assets/framing.jpg")
    parser.add_argument("--height", type=int, default=280, help="panel height, px")
    args = parser.parse_args()

    preset = load_library().get(args.preset)
    rows = [framed_row(path, preset, args.height) for path in args.photos]
    width = max(r.shape[1] for r in rows)
    rows = [
        cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255,) * 3)
        for r in rows
    ]
    legend = np.full((28, width, 3), 255, np.uint8)
    text = (
        "green: subject box    orange: face    outlines on the photo: where each frame sits "
        f"at mid-clip ({args.preset})"
    )
    cv2.putText(legend, text, (12, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    sheet = np.concatenate([*rows, legend], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
