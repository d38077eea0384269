"""A real two-node Ray cluster on loopback: the same clips as here, Cancel stops the work, faults lose no cell.

Both nodes run inside this test process (ray.cluster_utils.Cluster), on 127.0.0.1 with one
CPU each. The tests share the cluster and run in file order: the last one removes a node.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from studio.backends.base import RenderContext
from studio.clips import run_job
from studio.encode import probe_mp4
from studio.jobs import Job, prepare_job
from studio.serve.queueing import JobRunner
from studio.settings import Settings
from studio.shootout.run import run_shootout
from tests.conftest import EXAMPLES

# Found, not imported: Ray must be imported only once RAY_ENV is in the environment.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is optional: pip install -r requirements-ray.txt",
    ),  # fmt: skip
]

# Ray reads these when it starts a node or connects; the nodes' workers inherit them.
RAY_ENV = {
    # Without it Ray on Linux replaces 127.0.0.1 with the machine's network address.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # The memory monitor kills workers when the (shared) machine is busy elsewhere.
    "RAY_memory_monitor_refresh_ms": "0",
    "RAY_USAGE_STATS_ENABLED": "0",  # nothing leaves the machine
}
PHOTOS = [EXAMPLES / "coffee.png", EXAMPLES / "astronaut.png", EXAMPLES / "rocket.jpg"]
PRESETS = ["product/slow-push-in", "portrait/gentle-breath"]
SMALL = {"seed": 11, "variants": 1, "size": (256, 144), "frames": 16}


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on 127.0.0.1 with one CPU each; shut down (only ours) afterwards."""
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER is read when ray is first imported.
    assert "ray" not in sys.modules, "something imported ray before this test set its environment"
    tmp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths must fit 107 bytes
    saved = {k: os.environ.get(k) for k in [*RAY_ENV, "RAY_TMPDIR", "TMPDIR"]}
    # TMPDIR: the workers' scratch folders, left behind by the workers this test kills, go too.
    os.environ.update(RAY_ENV, RAY_TMPDIR=str(tmp), TMPDIR=str(tmp))
    import ray
    from ray.cluster_utils import Cluster

    from studio.cluster import ray_jobs

    nodes = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})  # fmt: skip
    worker = nodes.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    nodes.wait_for_nodes()
    nodes.worker = worker
    nodes.tmp = tmp
    try:
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()
        ray_jobs._RUNNERS.clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def settings(cluster, tmp_path) -> Settings:
    return Settings(outputs_dir=tmp_path / "outputs", user_presets_dir=tmp_path / "none",
                    long_side=128, workers=1, ray_address=cluster.address)  # fmt: skip


def frames_of(path: Path) -> np.ndarray:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def same_clip(here: Path, there: Path) -> None:
    """The same clip: identical decoded frames, and (the encoder being deterministic) bytes."""
    assert np.array_equal(frames_of(here), frames_of(there)), f"{there.name} differs"
    assert here.read_bytes() == there.read_bytes()


def test_a_job_on_the_cluster_makes_the_clips_this_machine_makes(settings, tmp_path):
    from studio.cluster.ray_jobs import ray_runner

    job = Job(image=str(PHOTOS[0]), preset=PRESETS[0], seed=7, variants=2, frames=12)
    for _ in run_job(prepare_job(job, settings), tmp_path / "here", settings):
        pass
    updates = list(ray_runner(settings).run_job(prepare_job(job, settings), tmp_path / "ray"))

    done = updates[-1]
    assert done.done and [c.index for c in done.clips] == [0, 1] and done.ranking is not None
    assert [u.new_clip.path.name for u in updates if u.new_clip] == [
        c.path.name for c in done.clips
    ]
    here = sorted(p.name for p in (tmp_path / "here").iterdir())
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == here  # no temp files left
    for clip in done.clips:
        same_clip(tmp_path / "here" / clip.path.name, clip.path)
        poster = clip.path.with_suffix(".jpg")
        assert poster.read_bytes() == (tmp_path / "here" / poster.name).read_bytes()
        ours = json.loads((tmp_path / "here" / clip.manifest.name).read_text())
        theirs = json.loads(clip.manifest.read_text())
        assert {k for k in ours if ours[k] != theirs[k]} == {"timings", "created"}
        assert theirs["job"]["image"] == str(PHOTOS[0])  # not the worker's scratch copy


def _listening(pids: set[int]) -> list[tuple[str, str, int]]:
    import psutil

    found = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((proc.name(), conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_every_ray_port_listens_on_loopback_only(cluster):
    import psutil

    # The nodes' processes (GCS, raylets, agents, workers) are this process's descendants,
    # or name the cluster's temp folder on their command line.
    pids = {p.pid for p in psutil.Process().children(recursive=True)}
    for proc in psutil.process_iter(["cmdline"]):
        if str(cluster.tmp) in " ".join(proc.info["cmdline"] or []):
            pids.add(proc.pid)
    ports = _listening(pids)
    names = {name for name, _, _ in ports}
    assert {"gcs_server", "raylet"} <= names, names
    outside = [p for p in ports if not _is_loopback(p[1])]
    assert not outside, f"listening outside 127.0.0.0/8: {outside}"


def test_cancel_in_the_studio_cancels_the_ray_work(settings, tmp_path):
    import ray

    runner = JobRunner(settings)
    assert runner.cluster() is not None  # joined: settings.ray_address names the cluster
    # About two minutes of work for one CPU: only a cancelled job gives it back within seconds.
    job = Job(image=str(PHOTOS[2]), preset="scenic/drifting-clouds", seed=3, variants=4,
              size=(1280, 720), frames=720)  # fmt: skip
    prepared = prepare_job(job, settings)
    out = settings.outputs_dir / "job"
    ctx = RenderContext()
    total = ray.cluster_resources()["CPU"]
    updates = runner.run(prepared, out, ctx, client="alice", poll_s=0.1)
    for update in updates:
        if "Ray cluster (" in update.message and ray.available_resources().get("CPU", 0) < total:
            break  # the job is running on a worker
    updates.close()  # what Gradio's Cancel does to the handler
    deadline = time.monotonic() + 10
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == total, "the cancelled job still runs"
    assert runner.cancelled_note("alice") == "**Cancelled.** 0 finished takes were kept."
    assert not out.exists()
    assert runner.history.count() == 0


def test_model_jobs_run_in_an_actor_that_keeps_the_checkpoint_loaded(settings, tmp_path):
    from studio.cluster.ray_jobs import ray_runner
    from tests.tiny_pipelines import tiny_folder

    # No GPU here: the one model actor holds a CPU, as a model job would run here.
    params = {"model_path": str(tiny_folder("svd")), "steps": 1}
    job = Job(image=str(PHOTOS[0]), preset=PRESETS[0], backend="svd-xt", seed=7, variants=1,
              size=(64, 64), frames=4, fps=8, params=params)  # fmt: skip
    runner = ray_runner(settings)
    try:
        for n in (1, 2):
            done = list(runner.run_job(prepare_job(job, settings), tmp_path / f"ray{n}"))[-1]
            assert [c.plan["params"]["rendered"]["checkpoint"] for c in done.clips] == ["svd-xt"]
            info = probe_mp4(done.clips[0].path)
            assert (info["frames"], info["width"], info["height"]) == (done.clips[0].frames, 64, 64)
        assert runner.model_loads() == [1]  # the second job found the pipeline loaded
        # The same seed gives the same model clip here and on the cluster.
        local = list(run_job(prepare_job(job, settings), tmp_path / "local", settings))[-1]
        same_clip(local.clips[0].path, done.clips[0].path)
    finally:
        runner.close()  # its CPU is the shootout's below


def test_the_cli_generates_many_photos_and_runs_a_shootout_on_the_cluster(
    cluster, tmp_path, capsys
):
    from studio.__main__ import main

    common = ["--variants", "1", "--size", "128x72", "--frames", "8", "--seed", "5", "--ray",
              cluster.address]  # fmt: skip
    code = main(["generate", *map(str, PHOTOS[:2]), "--preset", PRESETS[0],
                 "--out", str(tmp_path / "many"), *common])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for photo in PHOTOS[:2]:
        assert len(list((tmp_path / "many" / photo.stem).glob("*.mp4"))) == 1
        assert f"{photo}: 1 clips in {tmp_path / 'many' / photo.stem}" in captured.err
    code = main(["shootout", str(PHOTOS[0]), "--presets", PRESETS[0],
                 "--out", str(tmp_path / "shoot"), *common])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("winner coffee.png: product/slow-push-in on engine, variant 1")
    assert (tmp_path / "shoot" / "report.html").is_file()


def test_a_shootout_survives_a_killed_worker_and_a_removed_node(cluster, settings, tmp_path):
    from studio.cluster.ray_shootout import RayCells

    broken = tmp_path / "broken.jpg"  # a cell that fails on the worker keeps its sentence
    broken.write_bytes(PHOTOS[2].read_bytes()[:2000])
    photos = [*PHOTOS, broken]
    here = run_shootout(
        photos, PRESETS, ["engine"], tmp_path / "here", replace(settings, ray_address=""), **SMALL
    )

    cells = RayCells(settings)
    events: list[str] = []
    killed_at: list[float] = []

    def faults(fraction: float, label: str) -> None:
        done = list(cells.done_by.values())
        # Each actor takes its next cell as it hands one back: the first cell's actor is busy.
        if len(done) == 1 and not events:
            killed_at.append(time.time())
            os.kill(done[0][1], signal.SIGKILL)
            events.append("killed")
        elif len(done) == 3 and len(events) == 1:
            cluster.remove_node(cluster.worker)
            events.append("removed")

    ray_result = run_shootout(photos, PRESETS, ["engine"], tmp_path / "ray", settings,
                              progress=faults, runner=cells, **SMALL)  # fmt: skip

    assert events == ["killed", "removed"]
    nodes = {node for node, _, _ in cells.done_by.values()}
    assert cluster.worker.node_id in nodes and cluster.head_node.node_id in nodes
    killed = next(iter(cells.done_by.values()))[1]
    # Ray Data may hand results back late: the killed process can have finished another cell
    # before the kill, but none after it (what it was working on was redone by another).
    after = [t for _, pid, t in cells.done_by.values() if pid == killed and t >= killed_at[0]]
    assert not after
    assert len(ray_result.rows) == len(here.rows) == 8
    for ours, theirs in zip(here.rows, ray_result.rows, strict=True):
        assert (theirs.photo, theirs.preset, theirs.path, theirs.error) == (
            ours.photo, ours.preset, ours.path, ours.error)  # fmt: skip
        assert theirs.score == ours.score and theirs.winner == ours.winner
        if ours.error is None:
            same_clip(tmp_path / "here" / ours.path, tmp_path / "ray" / theirs.path)
    errors = [r.error for r in ray_result.rows if r.error]
    assert len(errors) == 2 and "damaged or incomplete" in errors[0]
    assert ray_result.report.is_file() and ray_result.thumbnails == here.thumbnails
    leftovers = [p for p in (tmp_path / "ray").rglob(".*") if p.is_file()]
    assert not leftovers  # every file came in through the staging helpers, renamed
