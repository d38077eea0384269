"""Time every catalog checkpoint on a CUDA GPU at its default settings, with and without the step cache.

How to run (on a machine with an NVIDIA GPU, the CUDA build of torch, and network or a
populated Hugging Face cache):

    python -m studio models --download svd-xt ltx-video        # once, or let it download
    .venv/bin/python benchmarks/bench_gpu.py                      # every checkpoint
    .venv/bin/python benchmarks/bench_gpu.py --only ltx-video --cache fbc --offload model

Prints, per checkpoint and cache mode: s/step, total seconds for one clip at the native
size and frame count, and peak VRAM. Replace vram_gb in presets/models.yaml with what it
reports. Refuses to run without CUDA (CPU numbers would be meaningless).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="checkpoint ids (default: all)")
    parser.add_argument("--cache", default="fbc", help="step cache to compare against none")
    parser.add_argument("--offload", default=None, help="memory mode (default: each checkpoint's)")
    args = parser.parse_args()

    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("error: bench_gpu.py needs a CUDA GPU; this machine has none.", file=sys.stderr)
        return 2

    from studio.backends import get_backend
    from studio.backends.base import RenderContext
    from studio.errors import StudioError
    from studio.models import ModelManager, load_catalog, set_manager
    from studio.plan import CameraMove, VariantPlan

    manager = ModelManager()
    set_manager(manager)
    photo = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"{'checkpoint':<22} {'cache':<10} {'s/step':>8} {'total s':>8} {'peak GB':>8}")
    for ckpt in load_catalog().values():
        if args.only and ckpt.id not in args.only:
            continue
        backend = get_backend(ckpt.id)
        for cache in ("none", args.cache):
            params = {"cache": cache, "batch": 1}
            if args.offload:
                params["offload"] = args.offload
            w, h = ckpt.resolution
            plan = VariantPlan(index=0, seed=0, width=w, height=h, frames=ckpt.frames.default,
                               fps=ckpt.fps, camera=CameraMove(strength=0.5),
                               prompt="a slow cinematic push-in", params=params)  # fmt: skip
            try:
                manager.get(ckpt, params)  # load outside the timing
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                t = time.perf_counter()
                list(backend.render(photo, plan, RenderContext()))
                torch.cuda.synchronize()
                total = time.perf_counter() - t
            except StudioError as exc:
                print(f"{ckpt.id:<22} {cache:<10} skipped: {exc}")
                continue
            peak = torch.cuda.max_memory_allocated() / 1024**3
            print(f"{ckpt.id:<22} {cache:<10} {total / ckpt.steps:8.2f} {total:8.1f} {peak:8.1f}")
            manager.evict()
    return 0


if __name__ == "__main__":
    sys.exit(main())
