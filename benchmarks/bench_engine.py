"""Benchmark the embedded engine against ffmpeg's zoompan push-in, in the same run, on the same photos.

What it measures (four variants at 1024x576, 48 frames, encoding included):
  * the wall time of one whole `python -m studio generate` process making four variants (start-up,
    imports, photo decode, people/face models, matte, depth, render, H.264 encode, manifests) vs
    four whole ffmpeg processes running the classic Ken Burns command (zoompan push-in, same size
    and frame count, x264 defaults), and vs zoompan with the studio's own encoder settings, on
    every sample photo and test photo;
  * what the subject costs per photo, in-process: the person/face models (BlazeFace, selfie
    segmentation, face mesh) and the matte as the engine runs them on its working image;
  * camera-path smoothness of both: jitter = RMS of the second difference of the tracked frame
    centre in px (studio.scoring, the same tracker for both), for every camera preset.

Usage: .venv/bin/python benchmarks/bench_engine.py [--repeats 3] [--no-jitter]
Targets: ratio <= 1.0 against four zoompan processes, whole-process, on every photo; jitter <= 0.05 px on every camera preset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import imageio_ffmpeg  # noqa: E402
import numpy as np  # noqa: E402

from studio.backends import get_backend  # noqa: E402
from studio.backends.base import RenderContext  # noqa: E402
from studio.clips import run_job  # noqa: E402
from studio.images import load_photo  # noqa: E402
from studio.jobs import Job, prepare_job  # noqa: E402
from studio.motion.render import PlanRig  # noqa: E402
from studio.presets import load_library  # noqa: E402
from studio.scoring import score_clip  # noqa: E402
from studio.settings import Settings  # noqa: E402

W, H, FRAMES, FPS = 1024, 576, 48, 24
EXAMPLES = ROOT / "assets" / "examples"
TEST_PHOTOS = ROOT / "tests" / "photos"
CASES = [
    (EXAMPLES / "coffee.png", "product/slow-push-in"),
    (EXAMPLES / "astronaut.png", "portrait/slow-push-in"),
    (EXAMPLES / "rocket.jpg", "scenic/water-shimmer"),
    (TEST_PHOTOS / "chelsea.png", "product/slow-push-in"),
    (TEST_PHOTOS / "camera.png", "portrait/slow-push-in"),
    (TEST_PHOTOS / "hubble_deep_field.jpg", "scenic/water-shimmer"),
]


def zoompan(photo: Path, out: Path, encoder: list[str]) -> None:
    """The classic Ken Burns one-liner: crop to 16:9, push in to 1.3x about the centre."""
    vf = (
        "crop=w='min(iw,ih*16/9)':h='min(ih,iw*9/16)',"
        f"zoompan=z='1+0.3*on/{FRAMES - 1}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
        f":d={FRAMES}:s={W}x{H}:fps={FPS}"
    )
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-loop", "1", "-i", str(photo),
           "-vf", vf, "-frames:v", str(FRAMES), "-c:v", "libx264", "-pix_fmt", "yuv420p",
           *encoder, str(out)]  # fmt: skip
    subprocess.run(cmd, check=True)


def time_zoompan(photo: Path, tmp: Path, encoder: list[str]) -> float:
    t = time.perf_counter()
    for i in range(4):
        zoompan(photo, tmp / f"zp{i}.mp4", encoder)
    return time.perf_counter() - t


def time_cli(
    photo: Path, preset: str, out: Path, seed: int = 1, pycache: Path | None = None
) -> float:
    """One whole `python -m studio generate` process: what a user waits for at the command line.

    pycache: where Python keeps the studio's compiled modules, as it does on a user's machine
    (a machine that sets PYTHONDONTWRITEBYTECODE, as this project's sandboxes do, would make
    every process compile all of them again: about 0.2 s a process, measured).
    """
    cmd = [sys.executable, "-m", "studio", "generate", str(photo), "--preset", preset,
           "--seed", str(seed), "--size", f"{W}x{H}", "--frames", str(FRAMES), "--fps", str(FPS),
           "--out", str(out), "-q"]  # fmt: skip
    t = time.perf_counter()
    # Making clips, as zoompan does; ranking them is measured on its own below.
    env = {**os.environ, "STUDIO_SCORE": "false"}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t


def subject_costs(photo: Path, preset: str, repeats: int) -> dict[str, float]:
    """Milliseconds of each subject step on the image the engine analyses for this photo and
    size: the working image, or the photo itself when the clip enlarges it."""
    from studio.motion.filters import resize_to
    from studio.motion.matte import people_matte, shared_vision, subject_matte
    from studio.motion.scene import analysed_at_own_size, working_scale

    settings = Settings.from_env(score=False)
    job = Job(image=str(photo), preset=preset, seed=1, size=(W, H), frames=FRAMES, fps=FPS)
    prepared = prepare_job(job, settings)
    rgb = prepared.photo.rgb
    scale = working_scale(rgb.shape[:2], prepared.plans)
    scale = 1.0 if analysed_at_own_size(rgb.shape[:2], scale) else scale
    h, w = rgb.shape[:2]
    work = np.ascontiguousarray(resize_to(rgb, max(2, round(w * scale)), max(2, round(h * scale))))
    vision = shared_vision()
    out: dict[str, float] = {}

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return 1000 * min(times)

    faces = vision.faces(work) if vision is not None else []
    out["faces"] = best(lambda: vision.faces(work)) if vision is not None else float("nan")
    out["person"] = best(lambda: vision.person_matte(work)) if vision is not None else float("nan")
    out["mesh"] = best(lambda: [vision.mesh(work, f) for f in faces]) if faces else 0.0
    out["people matte"] = best(lambda: people_matte(work, vision, faces)) if faces else 0.0
    out["auto matte"] = best(lambda: subject_matte(work))
    out["work px"] = float(work.shape[0] * work.shape[1])
    return out


def time_studio(
    photo: Path, preset: str, out: Path, settings: Settings, seed: int = 1, frames: int = FRAMES
) -> float:
    t = time.perf_counter()
    job = Job(image=str(photo), preset=preset, seed=seed, size=(W, H), frames=frames, fps=FPS)
    for _ in run_job(prepare_job(job, settings), out, settings):
        pass
    return time.perf_counter() - t


def exact_path_accel(photo: Path, plan) -> float:
    """RMS 2nd difference of where the frame centre samples the photo, from the engine's own maps."""
    engine = get_backend("engine")
    rig = PlanRig(
        engine.prepare(load_photo(photo, max_side=2 * W).rgb, [plan], RenderContext()), plan
    )
    cy, cx = plan.height // 2, plan.width // 2
    track = []
    for i in range(plan.frames):
        rig.frame(i)
        track.append((rig.mx[cy, cx] / rig.sc, rig.my[cy, cx] / rig.sc))
    second = np.diff(np.asarray(track, np.float64), n=2, axis=0)
    return float(np.sqrt((second**2).sum(axis=1).mean()))


def ideal_pan(photo: Path, out: Path, settings: Settings) -> Path:
    """A perfectly linear sub-pixel pan (cv2.warpAffine): the tracker's noise floor on this photo."""
    import cv2

    from studio.encode import write_mp4

    rgb = load_photo(photo).rgb
    scale = 1.4 * max(W / rgb.shape[1], H / rgb.shape[0])
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    x0, y0 = (big.shape[1] - W) / 2 - 30, (big.shape[0] - H) / 2
    frames = (
        cv2.warpAffine(
            big, np.float32([[1, 0, -(x0 + 60 * i / (FRAMES - 1))], [0, 1, -y0]]), (W, H)
        )
        for i in range(FRAMES)
    )
    write_mp4(frames, out, fps=FPS, crf=settings.crf, preset=settings.x264_preset)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-jitter", action="store_true", help="skip the smoothness part")
    args = parser.parse_args()
    examples = EXAMPLES
    # The zoompan comparison is about making clips; ranking them is measured on its own below.
    settings = Settings.from_env(score=False)
    matched = ["-preset", settings.x264_preset, "-crf", str(settings.crf)]
    matched += ["-x264-params", settings.x264_params] if settings.x264_params else []
    print(
        f"# Whole processes: one `python -m studio generate` (4 variants, {W}x{H}, {FRAMES} frames)"
        f" vs four ffmpeg zoompan processes; median of {args.repeats}"
    )
    print(
        f"# studio encoder: libx264 -preset {settings.x264_preset} -crf {settings.crf}"
        f" -x264-params {settings.x264_params or '-'}; workers={settings.workers}"
    )
    print(
        f"{'photo':<22} {'preset':<24} {'studio s':>9} {'zoompan s':>10} {'ratio':>6} {'zp-matched s':>13} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pycache = tmp / "pycache"
        time_cli(CASES[0][0], CASES[0][1], tmp / "warm-up", pycache=pycache)  # compiles once
        for photo, preset in CASES:
            studio_t, zp_t, zpm_t = [], [], []
            for r in range(args.repeats):
                zp_t.append(time_zoompan(photo, tmp, []))
                zpm_t.append(time_zoompan(photo, tmp, matched))
                out = tmp / f"cli-{photo.stem}-{r}"
                studio_t.append(time_cli(photo, preset, out, pycache=pycache))
            s, z, zm = (statistics.median(x) for x in (studio_t, zp_t, zpm_t))
            print(
                f"{photo.name:<22} {preset:<24} {s:9.2f} {z:10.2f} {s / z:6.2f} {zm:13.2f} {s / zm:6.2f}"
            )

        print(
            f"\n# Subject cost per photo on the image the engine analyses (ms, best of {args.repeats + 2})"
        )
        print(
            f"{'photo':<22} {'work Mpx':>8} {'faces':>7} {'person':>7} {'mesh':>7} {'people':>7} {'auto':>7}"
        )
        for photo, preset in CASES:
            c = subject_costs(photo, preset, args.repeats + 2)
            print(
                f"{photo.name:<22} {c['work px'] / 1e6:8.2f} {c['faces']:7.1f} {c['person']:7.1f}"
                f" {c['mesh']:7.1f} {c['people matte']:7.1f} {c['auto matte']:7.1f}"
            )

        print(
            f"\n# Scoring overhead: 4 variants, {W}x{H}, 72 frames (3 s), scored while encoding vs not"
        )
        print(f"{'photo':<14} {'preset':<24} {'plain s':>8} {'scored s':>9} {'overhead':>9}")
        scored = Settings.from_env(score=True)
        for photo, preset in CASES[:3]:
            name = photo.name
            plain_t, scored_t = [], []
            for r in range(args.repeats):
                plain_t.append(time_studio(photo, preset, tmp / f"plain-{r}", settings, frames=72))
                scored_t.append(time_studio(photo, preset, tmp / f"scored-{r}", scored, frames=72))
            a, b = statistics.median(plain_t), statistics.median(scored_t)
            print(f"{name:<14} {preset:<24} {a:8.2f} {b:9.2f} {100 * (b / a - 1):8.1f}%")

        if args.no_jitter:
            return
        print(
            f"\n# Camera path smoothness, {W}x{H}, {FRAMES} frames, one variant per preset (seed 7)."
        )
        print(
            "#   jitter: rough part of the tracked centre's 2nd difference (studio.scoring; the target)"
        )
        print(
            "#   accel:  the whole 2nd difference, intended easing included (tracked / exact from the maps)"
        )
        zoompan(examples / "coffee.png", tmp / "zp-jitter.mp4", [])
        zp = score_clip(tmp / "zp-jitter.mp4").metrics
        print(f"{'':<32} {'jitter':>8} {'accel':>8} {'exact accel':>12}")
        print(
            f"{'ffmpeg zoompan push-in':<32} {zp['camera_jitter']:8.3f} {zp['camera_accel']:8.3f} {'-':>12}"
        )
        photos = {"product": "coffee.png", "portrait": "astronaut.png", "scenic": "rocket.jpg"}
        for name in photos.values():
            m = score_clip(ideal_pan(examples / name, tmp / f"ideal-{name}.mp4", settings)).metrics
            label = f"ideal linear pan, {name}"
            print(
                f"{label:<32} {m['camera_jitter']:8.3f} {m['camera_accel']:8.3f} {0.0:12.3f}   (tracker floor)"
            )
        worst = 0.0
        for p in load_library():
            if p.camera.move == "locked-off":
                continue
            out = tmp / p.id.replace("/", "_")
            photo = examples / photos.get(p.family, "coffee.png")
            job = Job(
                image=str(photo),
                preset=p.id,
                seed=7,
                variants=1,
                size=(W, H),
                frames=FRAMES,
                fps=FPS,
            )
            prepared = prepare_job(job, settings)
            *_, final = run_job(prepared, out, settings)
            m = score_clip(final.clips[0].path).metrics
            exact = exact_path_accel(photo, prepared.plans[0])
            worst = max(worst, m["camera_jitter"])
            print(
                f"{p.id:<32} {m['camera_jitter']:8.3f} {m['camera_accel']:8.3f} {exact:12.3f}   ({p.camera.move})"
            )
        print(f"worst studio jitter: {worst:.3f} px vs zoompan {zp['camera_jitter']:.3f} px "
              f"(ratio {worst / zp['camera_jitter']:.3f}); target <= 0.05 px")  # fmt: skip


if __name__ == "__main__":
    main()
