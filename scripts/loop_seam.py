"""The README's loop seam strip: a take's last three and first three frames, looped and played once.

Usage: .venv/bin/python scripts/loop_seam.py [--photo assets/examples/coffee.png]
       [--preset product/orbit-reveal] [--seed 7] [--out assets/loop-seam.png]

Renders one take of the preset with the engine twice, as a seamless loop and played once,
and writes one picture: for each, frames F-3, F-2, F-1, 0, 1, 2 side by side with the mean
absolute difference (8-bit levels) between each neighbouring pair printed under the pair,
the seam (F-1 -> 0) in its own colour, and the largest step between neighbours anywhere in
the take for comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from studio.images import load_photo  # noqa: E402
from studio.loops import with_loop  # noqa: E402
from studio.motion.render import PlanRig  # noqa: E402
from studio.motion.scene import build_scene  # noqa: E402
from studio.presets import load_library  # noqa: E402
from studio.variants import plan_variants  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CELL, GAP, MARGIN = 186, 14, 7  # 6 cells: 1200 px wide
RENDER = 384  # render larger than shown, so the strip is sharp
SEAM_COLOUR, TEXT, DIM, BG = (214, 90, 40), (30, 30, 30), (110, 110, 110), (250, 250, 248)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def font(path: str, size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=ROOT / "assets" / "examples" / "coffee.png")
    parser.add_argument("--preset", default="product/orbit-reveal")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "loop-seam.png")
    args = parser.parse_args()

    preset = load_library().get(args.preset)
    rgb = load_photo(str(args.photo)).rgb
    frames = int(round(preset.duration * preset.fps))
    plan = plan_variants(preset, seed=args.seed, n=1, width=RENDER, height=RENDER,
                         frames=frames, fps=preset.fps)[0]  # fmt: skip
    scene = build_scene(rgb, [plan])
    rows = []
    for title, loop in (("Seamless loop", "seamless"), ("Played once", None)):
        take = with_loop([plan], loop, "engine")[0]
        rig = PlanRig(scene, take)
        clip = [rig.frame(i).copy() for i in range(take.frames)]
        steps = [mad(a, b) for a, b in zip(clip[:-1], clip[1:], strict=True)]
        shown = [frames - 3, frames - 2, frames - 1, 0, 1, 2]
        rows.append((title, clip, shown, max(steps)))

    f_title, f_label, f_num = font(BOLD, 17), font(FONT, 13), font(BOLD, 15)
    row_h = 24 + CELL + 40
    width = 2 * MARGIN + 6 * CELL + 5 * GAP
    sheet = Image.new("RGB", (width, 34 + 2 * row_h), BG)
    draw = ImageDraw.Draw(sheet)
    head = f"{preset.title} ({preset.id}), {frames} frames: the last three, then the first three"
    draw.text((MARGIN, 8), head, font=f_title, fill=TEXT)
    for r, (title, clip, shown, largest) in enumerate(rows):
        top = 34 + r * row_h
        note = f"{title}   ·   largest step between neighbours anywhere in the take: {largest:.2f}"
        draw.text((MARGIN, top + 3), note, font=f_label, fill=TEXT)
        y = top + 24
        for c, i in enumerate(shown):
            x = MARGIN + c * (CELL + GAP)
            cell = Image.fromarray(clip[i]).resize((CELL, CELL), Image.LANCZOS)
            sheet.paste(cell, (x, y))
            name = f"frame {i}" if i < 3 else f"F-{frames - i}"
            draw.text((x + 5, y + 4), name, font=f_label, fill=(255, 255, 255),
                      stroke_width=2, stroke_fill=(0, 0, 0))  # fmt: skip
            if c < 5:
                j = shown[c + 1]
                d = mad(clip[i], clip[j])
                seam = c == 2
                colour = SEAM_COLOUR if seam else DIM
                text = f"seam {d:.2f}" if seam else f"{d:.2f}"
                cx = x + CELL + GAP // 2
                if seam:
                    draw.line([(cx, y - 2), (cx, y + CELL + 2)], fill=SEAM_COLOUR, width=3)
                w = draw.textlength(text, font=f_num)
                draw.text((cx - w / 2, y + CELL + 8), text, font=f_num, fill=colour)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours, dithered: a third of the bytes, and no visible difference at this size.
    sheet = sheet.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    sheet.save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
