"""Studio overhead over a bare diffusers call, and loads per session, with the tiny SVD pipeline on CPU.

Run: .venv/bin/python benchmarks/bench_models.py [--reps 5]
Prints the median ratio (target <= 1.05) and how many times each checkpoint was loaded
(target 1). The tiny random-weight pipeline is built offline; nothing touches the hub.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch
    from diffusers import StableVideoDiffusionPipeline

    from studio.backends import get_backend
    from studio.backends.base import RenderContext
    from studio.models import ModelManager, set_manager
    from studio.plan import CameraMove, VariantPlan
    from tests.tiny_pipelines import tiny_folder

    folder = tiny_folder("svd")
    manager = ModelManager()
    set_manager(manager)
    backend = get_backend("svd-xt")
    ckpt = backend.checkpoint
    photo = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    plan = VariantPlan(index=0, seed=1, width=64, height=64, frames=args.frames, fps=8,
                       camera=CameraMove(strength=0.5),
                       params={"model_path": str(folder), "steps": args.steps})  # fmt: skip

    bare = StableVideoDiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    bare.set_progress_bar_config(disable=True)
    from PIL import Image

    image = Image.fromarray(photo)
    motion = 0.5
    lo, hi = ckpt.strength["motion_bucket_id"]
    nlo, nhi = ckpt.strength["noise_aug_strength"]

    def run_bare() -> None:
        bare(image=image, height=64, width=64, num_frames=args.frames, num_inference_steps=args.steps,
             fps=ckpt.fps, motion_bucket_id=int(round(lo + (hi - lo) * motion)),
             noise_aug_strength=nlo + (nhi - nlo) * motion, min_guidance_scale=1.0,
             max_guidance_scale=ckpt.guidance, decode_chunk_size=ckpt.options["decode_chunk_size"],
             generator=[torch.Generator("cpu").manual_seed(1)], output_type="np")  # fmt: skip

    def run_studio() -> None:
        list(backend.render(photo, plan, RenderContext()))

    run_bare(), run_studio()  # warm up both (first calls pay one-off allocations)
    ratios, bare_s, studio_s = [], [], []
    for _ in range(args.reps):
        # Interleaved so background load on the machine hits both sides alike.
        t = time.perf_counter()
        run_bare()
        b = time.perf_counter() - t
        t = time.perf_counter()
        run_studio()
        s = time.perf_counter() - t
        bare_s.append(b), studio_s.append(s), ratios.append(s / b)
    print(f"bare diffusers: median {statistics.median(bare_s):.3f} s")
    print(f"studio backend: median {statistics.median(studio_s):.3f} s")
    print(f"overhead ratio: median {statistics.median(ratios):.3f}x (target <= 1.05)")
    print(
        f"loads per session: {manager.loads} for 1 checkpoint over {args.reps + 1} renders (target 1)"
    )


if __name__ == "__main__":
    main()
