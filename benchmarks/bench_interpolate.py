"""Benchmark frame-rate interpolation (studio.interpolate) against its baselines and ffmpeg's minterpolate, in one run.

What it measures:
  * smoothness against a same-rate render: the embedded engine renders one camera path at
    6 fps and, as the truth, at 24 fps (it renders any rate natively, and 6 fps frame i is
    24 fps frame 4i); each method raises the 6 fps take to 24 fps and every interpolated
    frame (3 of each 4) is compared with the truth: PSNR (dB) and SSIM of the grey images.
    Methods: repeat (nearest source frame), blend (linear cross-fade), flow (studio.interpolate,
    what the studio uses) and mci (ffmpeg's minterpolate from imageio-ffmpeg, mi_mode=mci with
    its default block settings, scene-change detection off, in yuv444p so it loses no chroma).
    Cases: the three sample photos, each with its family's orbit and push-in presets (camera
    only, the preset's 3 s), and the same two moves at full strength over 1.5 s, whose motion
    per 6 fps frame is closer to what a video model makes;
  * time per output frame for flow and mci at 512x320 and 1024x576, 6 -> 24 fps, the whole
    take (source frames passed through included), best of --repeats; also per in-between frame.

Usage: .venv/bin/python benchmarks/bench_interpolate.py [--repeats 3] [--sizes 512x320,1024x576]
Targets: flow ahead of blend, repeat and mci on every case (mean PSNR and SSIM).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import imageio_ffmpeg  # noqa: E402
import numpy as np  # noqa: E402

from studio.backends.base import RenderContext  # noqa: E402
from studio.backends.engine import EngineBackend  # noqa: E402
from studio.interpolate import interpolate, output_count  # noqa: E402
from studio.plan import CameraMove, VariantPlan  # noqa: E402
from studio.presets import load_library  # noqa: E402
from studio.scoring.fidelity import psnr, ssim  # noqa: E402

EXAMPLES = ROOT / "assets" / "examples"
SRC, DST = 6, 24
PHOTOS = {  # photo, its family's orbit preset, its family's push-in preset
    "astronaut": ("astronaut.png", "portrait/orbit", "portrait/slow-push-in"),
    "coffee": ("coffee.png", "product/orbit-reveal", "product/slow-push-in"),
    "rocket": ("rocket.jpg", "scenic/parallax-orbit", "scenic/water-shimmer"),
}
METHODS = ("repeat", "blend", "mci", "flow")
ENGINE = EngineBackend(depth="heuristic")


def minterpolate(frames: list[np.ndarray], src: int, dst: int) -> list[np.ndarray]:
    """ffmpeg's motion-compensated interpolation of RGB frames, on the same time grid as ours."""
    n = len(frames)
    h, w = frames[0].shape[:2]
    # minterpolate holds back its last frames; padding lets every one we compare come out.
    padded = [*frames, frames[-1], frames[-1], frames[-1]]
    vf = f"format=yuv444p,minterpolate=fps={dst}:mi_mode=mci:scd=none,format=rgb24"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(src), "-i", "-", "-vf", vf,
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]  # fmt: skip
    data = b"".join(np.ascontiguousarray(f).tobytes() for f in padded)
    out = subprocess.run(cmd, input=data, capture_output=True, check=True).stdout
    video = np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)
    return list(video[: output_count(n, src, dst)])


def run(method: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    if method == "mci":
        return minterpolate(frames, SRC, DST)
    return list(interpolate(frames, SRC, DST, method))


def render(photo: str, camera: CameraMove, width: int, height: int, frames: int, fps: int):
    rgb = cv2.cvtColor(cv2.imread(str(EXAMPLES / photo)), cv2.COLOR_BGR2RGB)
    plan = VariantPlan(0, 1, width, height, frames, fps, camera=camera)
    scene = ENGINE.prepare(rgb, [plan], RenderContext())
    return list(ENGINE.render(scene, plan, RenderContext()))


def cases() -> list[tuple[str, str, CameraMove, float]]:
    """(label, photo file, camera, seconds) for every case."""
    library = load_library()
    out = []
    for name, (photo, orbit, push) in PHOTOS.items():
        for preset_id in (orbit, push):
            preset = library.get(preset_id)
            out.append((f"{name} {preset_id}", photo, preset.camera, preset.duration))
        for preset_id in (orbit, push):
            cam = replace(library.get(preset_id).camera, strength=1.0, easing="linear")
            out.append((f"{name} {cam.move} full strength", photo, cam, 1.5))
    return out


def smoothness(width: int, height: int) -> dict[str, dict[str, tuple[float, float]]]:
    print(
        f"\n## Smoothness at {width}x{height}: interpolated frames against a true {DST} fps render"
    )
    print("PSNR dB / SSIM, mean over every in-between frame (worst frame's PSNR in brackets)\n")
    print("| case | motion px/frame | " + " | ".join(METHODS) + " |")
    print("|---|---|" + "---|" * len(METHODS))
    results = {}
    for label, photo, cam, seconds in cases():
        # Frames 0..n-1 at 6 fps span the path that 4(n-1)+1 frames at 24 fps do; n odd, so
        # both renders also share their middle frame (the engine samples parallax there).
        n = 2 * round(seconds * SRC / 2) + 1
        low = render(photo, cam, width, height, n, SRC)
        truth = render(photo, cam, width, height, 4 * (n - 1) + 1, DST)
        aligned = min(psnr(low[i], truth[4 * i]) for i in range(n))
        assert aligned > 50, f"{label}: the two renders do not share one path ({aligned:.1f} dB)"
        between = [k for k in range(len(truth)) if k % 4]
        grey = [cv2.cvtColor(truth[k], cv2.COLOR_RGB2GRAY) for k in between]
        row = {}
        for method in METHODS:
            out = run(method, low)
            p = [psnr(out[k], truth[k]) for k in between]
            s = [
                ssim(cv2.cvtColor(out[k], cv2.COLOR_RGB2GRAY), g)
                for k, g in zip(between, grey, strict=True)
            ]
            row[method] = (float(np.mean(p)), float(np.mean(s)), float(np.min(p)))
        results[label] = row
        cells = " | ".join(f"{m[0]:.2f} / {m[1]:.4f} ({m[2]:.1f})" for m in row.values())
        print(f"| {label} | {_motion(low):.1f} | {cells} |", flush=True)
    print(
        "\nFlow against each baseline, same run (dB gained in mean PSNR; MSE ratio flow/other):\n"
    )
    print(
        "| against | mean dB gained | min dB gained | MSE ratio (geomean) | cases flow ahead (PSNR, SSIM) |"
    )
    print("|---|---|---|---|---|")
    for other in ("repeat", "blend", "mci"):
        gains = [r["flow"][0] - r[other][0] for r in results.values()]
        ssim_ahead = sum(r["flow"][1] > r[other][1] for r in results.values())
        ratio = 10 ** (-np.mean(gains) / 10)
        print(f"| {other} | {np.mean(gains):+.2f} | {min(gains):+.2f} | {ratio:.3f} |"
              f" {sum(g > 0 for g in gains)}/{len(gains)}, {ssim_ahead}/{len(gains)} |")  # fmt: skip
    return results


def _motion(frames: list[np.ndarray]) -> float:
    """Mean optical-flow length between neighbouring source frames (px), to say how hard a case is."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    lengths = []
    for a, b in zip(frames, frames[1:], strict=False):
        ga, gb = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (a, b))
        lengths.append(float(np.linalg.norm(dis.calc(ga, gb, None), axis=2).mean()))
    return float(np.mean(lengths))


def timing(sizes: list[tuple[int, int]], repeats: int) -> None:
    print(
        f"\n## Time, {SRC} -> {DST} fps (best of {repeats}; OpenCV threads: {cv2.getNumThreads()})\n"
    )
    print("| size | method | ms per output frame | ms per in-between frame | vs mci |")
    print("|---|---|---|---|---|")
    cam = CameraMove("orbit", 1.0, easing="linear")
    for width, height in sizes:
        low = render("coffee.png", cam, width, height, 13, SRC)
        n_out = output_count(len(low), SRC, DST)
        n_new = n_out - len(low)
        best = {}
        for method in ("mci", "flow", "blend"):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = run(method, low)
                times.append(time.perf_counter() - t0)
                assert len(out) == n_out
            best[method] = min(times)
        for method, s in best.items():
            print(f"| {width}x{height} | {method} | {1e3 * s / n_out:.1f} | {1e3 * s / n_new:.1f} |"
                  f" {s / best['mci']:.2f} |", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="512x320,1024x576")
    ap.add_argument("--quality-size", default="512x320", help="the size the smoothness table uses")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    qw, qh = (int(v) for v in args.quality_size.split("x"))
    smoothness(qw, qh)
    timing(sizes, args.repeats)


if __name__ == "__main__":
    main()
