"""Run every tiny pipeline through every memory mode, VAE tiling and step cache on a GPU; print a table.

The one prepared GPU check (scripts/gpu_check.sh runs it under a timeout). Each catalog
entry's tiny random-weight pipeline (tests/tiny_pipelines.py, built offline) is loaded
through the studio's real loading code (ModelManager: from_pretrained, per-component
dtypes, memory mode, VAE features, step cache) and rendered through its real backend, once:

  - in each memory mode (none, model, group, sequential), no step cache;
  - with the weights on the GPU and VAE tiling/slicing forced on ("tiled"), where the VAE
    implements them (offloaded modes turn them on by themselves);
  - with each step cache (fbc, taylorseer, faster, magcache), weights on the GPU.

Each row says ok, refused (the studio says no on purpose, in one sentence: FasterCache where
it cannot work, MagCache without calibrated ratios) or error (a bug to fix), with the load
and render seconds and the peak VRAM. Timings of tiny models say nothing about real ones:
the check is whether each path runs on CUDA in bf16 at all.

    python benchmarks/bench_gpu.py                      # CUDA, bf16, everything (~5 min on an H200)
    python benchmarks/bench_gpu.py --device cpu         # the same sweep as a dry run on the CPU
    python benchmarks/bench_gpu.py --only ltx-2 --modes none model --caches fbc
    python benchmarks/bench_gpu.py --real               # the real checkpoints (downloads them)

On the CPU the offloading modes cannot run (they move weights to an accelerator): those rows
say "skipped". --real times the real checkpoints at their native size instead (it needs
their weights and a CUDA GPU); use what it reports for vram_gb in presets/models.yaml.
Exit status: 0 when no row is an error, 1 otherwise, 2 when the device is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tiny sweep never needs the hub

MODES = ("none", "tiled", "model", "group", "sequential")  # "tiled": none + VAE tiling/slicing
CACHES = ("fbc", "taylorseer", "faster", "magcache")
OFFLOADED = ("model", "group", "sequential")


@dataclass
class Row:
    checkpoint: str
    mode: str
    cache: str
    status: str  # "ok", "refused", "skipped" or "error"
    detail: str = ""  # the refusal or error sentence, or what was enabled
    load_s: float | None = None
    render_s: float | None = None
    peak_gb: float | None = None


class _RunTimeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int):
    """Raise _RunTimeout in the main thread after seconds (between Python bytecodes)."""

    def expire(signum, frame):
        raise _RunTimeout(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def plan_runs(ids: list[str], modes: list[str], caches: list[str], full: bool):
    """(checkpoint, mode, cache) in the order they run: every mode without a cache, then every
    cache with the weights on the GPU; full: every cache in every mode."""
    for cid in ids:
        for mode in modes:
            for cache in ("none", *caches) if full else ("none",):
                yield cid, mode, cache
        if not full:
            for cache in caches:
                yield cid, "none", cache


def run_one(catalog, cid: str, mode: str, cache: str, device: str, dtype: str, args) -> Row:
    """Load one tiny pipeline in one mode with one cache, render one take, measure it."""
    import numpy as np
    import torch

    from studio.backends import family_backend
    from studio.backends.base import RenderContext
    from studio.errors import StudioError
    from studio.models import GIB, ModelManager
    from studio.models.placement import enable_vae_features
    from studio.plan import VariantPlan
    from tests.tiny_pipelines import FOR_CHECKPOINT, tiny_folder

    row = Row(cid, mode, cache, "error")
    if mode in OFFLOADED and not device.startswith("cuda"):
        row.status, row.detail = "skipped", "needs CUDA (offloading moves weights to a GPU)"
        return row
    ckpt = catalog[cid]
    cuda = device.startswith("cuda")
    manager = ModelManager(catalog, budget_bytes=64 * GIB)
    params = {"device": device, "dtype": dtype, "offload": "none" if mode == "tiled" else mode,
              "cache": cache, "model_path": str(tiny_folder(FOR_CHECKPOINT[cid])),
              "steps": args.steps, "batch": 1}  # fmt: skip
    plan = VariantPlan(index=0, seed=1, width=64, height=64, frames=args.frames, fps=8,
                       prompt="a slow push in on the product", negative_prompt="blurry",
                       params=params)  # fmt: skip
    photo = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    try:
        with _time_limit(args.run_timeout):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            loaded = manager.get(ckpt, params)
            notes = list(loaded.notes)
            if mode == "tiled":
                notes += enable_vae_features(loaded.pipe.vae) or ["the VAE has no tiling"]
            row.load_s = time.perf_counter() - t
            t = time.perf_counter()
            backend = family_backend(ckpt.family)(ckpt, models=manager)
            [(_, rendered)] = list(backend.render_many(photo, [plan], RenderContext()))
            frames = list(rendered.frames)
            if cuda:
                torch.cuda.synchronize()
            row.render_s = time.perf_counter() - t
        if cuda:
            row.peak_gb = torch.cuda.max_memory_allocated() / GIB
        if len(frames) != plan.frames or not all(np.isfinite(f).all() for f in frames):
            raise RuntimeError(f"{len(frames)} frames, or frames that are not finite")
        if ckpt.audio and rendered.audio is None:
            raise RuntimeError("the model makes sound but none came back")
        row.status = "ok"
        row.detail = ", ".join(notes + (["sound"] if rendered.audio is not None else []))
    except StudioError as exc:
        row.status, row.detail = "refused", str(exc)
    except Exception as exc:  # a row's failure is the finding; the sweep goes on
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        row.status, row.detail = "error", f"{type(exc).__name__}: {first}"
    finally:
        manager.evict()
        del manager
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return row


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_row(row: Row) -> None:
    print(f"{row.checkpoint:<26} {row.mode:<10} {row.cache:<10} {row.status:<8} "
          f"{_cell(row.load_s, '7.2f'):>7} {_cell(row.render_s, '8.2f'):>8} "
          f"{_cell(row.peak_gb, '7.3f'):>7}  {row.detail}", flush=True)  # fmt: skip


def tiny_sweep(args) -> int:
    import torch

    from studio.models import DTYPES
    from tests.tiny_pipelines import tiny_catalog

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA GPU here; use --device cpu for the dry run.", file=sys.stderr)
        return 2
    dtype = args.dtype or ("bf16" if device.startswith("cuda") else "fp32")
    if dtype not in DTYPES:
        print(f"error: --dtype must be one of {', '.join(DTYPES)}.", file=sys.stderr)
        return 2
    catalog = tiny_catalog()
    ids = args.only or list(catalog)
    unknown = [cid for cid in ids if cid not in catalog]
    if unknown:
        print(f"error: not in the catalog: {', '.join(unknown)}", file=sys.stderr)
        return 2

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU (dry run)"
    print(f"{gpu} · torch {torch.__version__} · {dtype} · {args.steps} steps, "
          f"{args.frames} frames at 64x64 · tiny random-weight pipelines", flush=True)  # fmt: skip
    print(f"{'checkpoint':<26} {'mode':<10} {'cache':<10} {'status':<8} {'load s':>7} "
          f"{'render s':>8} {'peak GB':>7}  detail", flush=True)  # fmt: skip
    rows = []
    for cid, mode, cache in plan_runs(ids, args.modes, args.caches, args.full):
        row = run_one(catalog, cid, mode, cache, device, dtype, args)
        print_row(row)
        rows.append(row)
        if args.json:  # rewritten after every row: a run stopped by its timeout keeps its rows
            Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "refused", "skipped", "error")}
    print(" · ".join(f"{n} {s}" for s, n in counts.items()), flush=True)
    return 1 if counts["error"] else 0


def real_checkpoints(args) -> int:
    """Each real checkpoint at its native size and frame count, with and without fbc."""
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("error: --real needs a CUDA GPU; this machine has none.", file=sys.stderr)
        return 2
    os.environ.pop("HF_HUB_OFFLINE", None)
    from studio.backends import family_backend
    from studio.backends.base import RenderContext
    from studio.errors import StudioError
    from studio.models import ModelManager, load_catalog
    from studio.plan import CameraMove, VariantPlan

    manager = ModelManager()
    photo = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"{'checkpoint':<26} {'cache':<10} {'s/step':>8} {'total s':>8} {'peak GB':>8}")
    for ckpt in load_catalog().values():
        if args.only and ckpt.id not in args.only:
            continue
        backend = family_backend(ckpt.family)(ckpt, models=manager)
        for cache in ("none", "fbc"):
            params = {"cache": cache, "batch": 1}
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
                print(f"{ckpt.id:<26} {cache:<10} skipped: {exc}")
                continue
            peak = torch.cuda.max_memory_allocated() / 1024**3
            print(f"{ckpt.id:<26} {cache:<10} {total / ckpt.steps:8.2f} {total:8.1f} {peak:8.1f}")
            manager.evict()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument("--dtype", help="fp32, fp16 or bf16 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--only", nargs="*", help="checkpoint ids (default: every catalog entry)")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    parser.add_argument("--caches", nargs="*", default=list(CACHES), choices=CACHES)
    parser.add_argument("--full", action="store_true", help="every cache in every mode")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--run-timeout", type=int, default=90, help="seconds for one row")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--real", action="store_true", help="time the real checkpoints instead")
    args = parser.parse_args(argv)
    return real_checkpoints(args) if args.real else tiny_sweep(args)


if __name__ == "__main__":
    sys.exit(main())
