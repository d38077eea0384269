"""Contact sheets for looking at the engine: every preset's last frame on one photo, at two strengths.

Usage: .venv/bin/python scripts/contact_sheet.py PHOTO [PHOTO ...] --out DIR [--strengths 1.0 1.8]
       [--size 768x432] [--frames 48] [--family portrait] [--crop]

Writes DIR/<photo>-<family>.png per preset family: one row per preset, one column per strength,
each cell the clip's last frame (where layer defects are largest) with the preset id written on
it; with --crop, DIR/<photo>-<family>-edges.png holds 2x crops around the subject so its edges
can be checked at full size.
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
from studio.motion.render import PlanRig  # noqa: E402
from studio.motion.scene import build_scene  # noqa: E402
from studio.presets import load_library  # noqa: E402
from studio.variants import plan_variants  # noqa: E402


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 9 * len(text) + 10), 22), (0, 0, 0), -1)
    cv2.putText(out, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--strengths", nargs="+", type=float, default=[1.0, 1.8])
    parser.add_argument("--size", default="768x432")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--family", default=None, help="only this preset family")
    parser.add_argument("--crop", action="store_true", help="also write 2x crops of the subject")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    presets = [p for p in load_library() if args.family in (None, p.family)]
    for photo in args.photos:
        rgb = load_photo(photo).rgb
        rows, crops = [], []
        plans_by = {}
        for p in presets:
            for s in args.strengths:
                plans_by[(p.id, s)] = plan_variants(
                    p, seed=3, n=1, width=w, height=h, frames=args.frames, fps=24, strength=s
                )[0]
        scene = build_scene(rgb, list(plans_by.values()))
        for p in presets:
            cells, crop_cells = [], []
            for s in args.strengths:
                rig = PlanRig(scene, plans_by[(p.id, s)])
                last = rig.frame(rig.F - 1)
                cells.append(label(last, f"{p.id} x{s:g} ({scene.subject_source})"))
                if args.crop:
                    x0, y0, x1, y1 = rig.roi or (0, 0, w, h)
                    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
                    half_w, half_h = w // 4, h // 4
                    cx = int(np.clip(cx, half_w, w - half_w))
                    cy = int(np.clip(cy, half_h, h - half_h))
                    c = last[cy - half_h : cy + half_h, cx - half_w : cx + half_w]
                    c = cv2.resize(c, (w, h), interpolation=cv2.INTER_NEAREST)
                    crop_cells.append(label(c, f"{p.id} x{s:g} 2x"))
            rows.append(np.hstack(cells))
            if crop_cells:
                crops.append(np.hstack(crop_cells))
        families = [p.family for p in presets]
        for fam in dict.fromkeys(families):
            idx = [i for i, f in enumerate(families) if f == fam]
            for suffix, sheet in (("", rows), ("-edges", crops)):
                if sheet:
                    img = np.vstack([sheet[i] for i in idx])
                    cv2.imwrite(str(args.out / f"{photo.stem}-{fam}{suffix}.png"),
                                cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                )  # fmt: skip
        print(
            f"{photo.name}: {len(presets)} presets x {len(args.strengths)} strengths -> {args.out}"
        )


if __name__ == "__main__":
    main()
