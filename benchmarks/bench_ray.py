"""A shootout here vs on a two-node Ray cluster on loopback: the ratio, Ray's cost per job, and scaling with cells.

Run: .venv/bin/python benchmarks/bench_ray.py [--cells 24] [--nodes 2] [--reps 5]
Starts its own cluster inside this process (ray.cluster_utils.Cluster, every node on 127.0.0.1
with one CPU) and shuts it down at the end; nothing else on the machine is touched. Prints:
the shootout's wall time here and on the cluster (cold: actors starting; warm: a second run),
their ratio, the cost of one studio job round trip through Ray in ms (a tiny job there minus
the same job here), and both runners at a quarter, half and all of the cells. On a machine with
as many cores as nodes the best ratio is 1/nodes; the cluster pays for its actors and transfers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = [ROOT / "assets/examples/coffee.png", ROOT / "assets/examples/astronaut.png",
          ROOT / "assets/examples/rocket.jpg", ROOT / "tests/photos/chelsea.png"]  # fmt: skip
PRESETS = ["product/slow-push-in", "product/orbit-reveal", "portrait/gentle-breath",
           "portrait/documentary", "scenic/drifting-clouds", "scenic/water-shimmer"]  # fmt: skip
CELL = {"seed": 3, "variants": 1, "size": (384, 216), "frames": 24}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=24, help="a multiple of 4 (photos), <= 24")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5, help="tiny jobs timed for the overhead")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ray-"))
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_memory_monitor_refresh_ms="0",
                      RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=str(tmp), TMPDIR=str(tmp))  # fmt: skip
    import ray
    from ray.cluster_utils import Cluster

    from studio.clips import run_job
    from studio.cluster.ray_jobs import ray_runner
    from studio.cluster.ray_shootout import RayCells
    from studio.jobs import Job, prepare_job
    from studio.settings import Settings
    from studio.shootout.run import run_shootout

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})  # fmt: skip
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    here = Settings(outputs_dir=tmp / "out", user_presets_dir=tmp / "none", workers=1)
    there = Settings(outputs_dir=tmp / "out", user_presets_dir=tmp / "none", workers=1,
                     ray_address=cluster.address)  # fmt: skip
    try:
        runner = RayCells(there)

        def shootout(cells: int, settings: Settings, name: str) -> float:
            presets = PRESETS[: max(1, cells // len(PHOTOS))]
            started = time.perf_counter()
            result = run_shootout(PHOTOS, presets, ["engine"], tmp / name, settings,
                                  runner=runner if settings.ray_address else None, **CELL)  # fmt: skip
            assert not result.failed, result.failed[0].error
            return time.perf_counter() - started

        # 1. The whole shootout, here and on the cluster (cold, then warm).
        local = shootout(args.cells, here, "here")
        cold = shootout(args.cells, there, "cold")
        warm = shootout(args.cells, there, "warm")
        print(f"{args.cells}-cell shootout, {CELL['size'][0]}x{CELL['size'][1]}, "
              f"{CELL['frames']} frames, 1 take per cell:")  # fmt: skip
        print(f"  here (one cell at a time)       {local:7.2f} s")
        print(
            f"  Ray, {args.nodes} nodes x 1 CPU, cold     {cold:7.2f} s   ratio {cold / local:.2f}"
        )
        print(
            f"  Ray, {args.nodes} nodes x 1 CPU, warm     {warm:7.2f} s   ratio {warm / local:.2f}"
        )
        print(f"  per cell: here {1000 * local / args.cells:.0f} ms, "
              f"Ray warm {1000 * warm / args.cells:.0f} ms")  # fmt: skip

        # 2. One studio job's round trip through Ray (task, transfer, publish) vs here.
        job = Job(image=str(PHOTOS[0]), preset=PRESETS[0], seed=1, variants=1, size=(64, 64),
                  frames=2)  # fmt: skip
        jobs = ray_runner(there)

        def timed(run, name: str) -> list[float]:
            out = []
            for i in range(args.reps + 1):  # the first warms up (imports, a worker)
                started = time.perf_counter()
                for _ in run(prepare_job(job, here), tmp / f"{name}{i}", here):
                    pass
                out.append(time.perf_counter() - started)
            return out[1:]

        t_here, t_ray = timed(run_job, "jh"), timed(jobs.run_job, "jr")
        extra = statistics.median(t_ray) - statistics.median(t_here)
        print(f"one tiny job (64x64, 2 frames), median of {args.reps}: here "
              f"{1000 * statistics.median(t_here):.0f} ms, Ray {1000 * statistics.median(t_ray):.0f}"
              f" ms: {1000 * extra:.0f} ms of Ray per job")  # fmt: skip

        # 3. Scaling: a quarter, half and all of the cells (warm cluster).
        print("scaling (warm):   cells   here     Ray    ratio")
        n = args.cells // len(PHOTOS)
        for cells in sorted({len(PHOTOS) * k for k in (1, max(1, n // 2), n)}):
            a, b = shootout(cells, here, f"h{cells}"), shootout(cells, there, f"r{cells}")
            print(f"                  {cells:5d} {a:7.2f} s {b:6.2f} s  {b / a:5.2f}")
        print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
