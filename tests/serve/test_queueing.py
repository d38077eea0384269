"""Many users at once: the real studio under 8 concurrent API clients, and the job line behind it."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from studio.errors import JobError
from studio.serve.queueing import ENGINE_LANE, JobQueue, client_key, lane_for
from tests.appserver import running_app
from tests.studio_api import FAST, client, clip_files, rss_mb, server_pid, statuses, submit

N_CLIENTS = 8


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load")
    # Two engine jobs at a time (as on a 2-core box) so most of the 8 clients wait in line.
    env = {**FAST, "STUDIO_ENGINE_JOBS": "2", "STUDIO_MAX_JOBS_PER_CLIENT": "2"}
    with running_app(tmp, env=env) as url:
        yield url, tmp / "outputs"


def _clip_on_disk(outputs: Path, name: str) -> Path:
    (path,) = outputs.glob(f"*/{name}")
    return path


def test_eight_clients_each_get_their_own_four_clips_in_line_with_bounded_memory(app, samples):
    url, outputs = app
    pid = server_pid(url)
    peak = [rss_mb(pid)]
    done = threading.Event()

    def watch_memory():
        while not done.wait(0.1):
            peak.append(rss_mb(pid))

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    photos = [samples["product"], samples["portrait"], samples["scenic"]]
    rounds = []
    for round_no in range(2):  # a second round shows memory does not grow job after job
        clients = [client(url) for _ in range(N_CLIENTS)]
        seeds = [1000 * (round_no + 1) + i for i in range(N_CLIENTS)]
        jobs = [submit(c, photos[i % 3], seed=seeds[i], duration=3) for i, c in enumerate(clients)]
        results = [job.result(timeout=180) for job in jobs]
        rounds.append(rss_mb(pid))
        for seed, job, result in zip(seeds, jobs, results, strict=True):
            names = clip_files(result)
            assert len(names) == 4 and len(set(names)) == 4
            variants = set()
            for name in names:
                path = _clip_on_disk(outputs, name)
                manifest = json.loads(path.with_suffix(".json").read_text())
                # No cross-talk: every clip this client got was made from its own request.
                assert manifest["job_seed"] == seed
                variants.add(manifest["variant"])
                served = next(v["value"] for v in result[:4] if v["value"]["path"].endswith(name))
                with urllib.request.urlopen(served["url"], timeout=10) as r:
                    assert r.read() == path.read_bytes()
            assert variants == {1, 2, 3, 4}
            lines = statuses(job)
            assert any("Rendered 4 of 4" in s or "Done" in s for s in lines), lines
        # Queue position is reported to those who wait: with 2 slots, most of the 8 wait.
        waited = [s for job in jobs for s in statuses(job) if "ahead of yours" in s]
        assert waited, "nobody was told their place in line"
        positions = {int(s.split("Queued: ")[1].split()[0]) for s in waited}
        assert max(positions) >= 3
    done.set()
    watcher.join()
    # Bounded: 16 jobs of 4 clips stay within a few hundred MB, and round two adds little.
    assert max(peak) < peak[0] + 700, (peak[0], max(peak))
    assert rounds[1] < rounds[0] + 150, rounds


def test_a_client_over_its_job_limit_gets_a_clear_error_and_others_are_unaffected(app, samples):
    url, _ = app
    mine, other = client(url), client(url)
    jobs = [submit(mine, samples["product"], seed=s, duration=6, fps=24) for s in (1, 2, 3)]
    theirs = submit(other, samples["product"], seed=4)
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(clip_files(job.result(timeout=120)))
        except AppError as exc:
            outcomes.append(str(exc))
    refusals = [o for o in outcomes if isinstance(o, str)]
    assert len(refusals) == 1, outcomes
    assert "You already have 2 jobs queued or running (the limit is 2)" in refusals[0]
    assert len(clip_files(theirs.result(timeout=120))) == 4
    # Once a job finishes the same client may queue again.
    assert len(clip_files(submit(mine, samples["product"], seed=5).result(timeout=120))) == 4


# --- the job line itself ----------------------------------------------------------------------


@pytest.fixture
def a_gpu_machine(monkeypatch):
    """This machine as one with a CUDA GPU: a model job with no device asked for goes there."""
    from studio.models import device

    monkeypatch.setattr(device, "default_device", lambda: "cuda")


def test_gpu_jobs_take_turns_while_engine_jobs_share_the_cores(a_gpu_machine):
    line = JobQueue({ENGINE_LANE: 2}, max_per_client=0)
    gpu = [line.join(f"c{i}", lane_for("svd-xt", {})) for i in range(3)]
    cpu = [line.join(f"e{i}", lane_for("engine")) for i in range(3)]
    assert [line.wait(t, 0) for t in gpu] == [True, False, False]
    assert [line.wait(t, 0) for t in cpu] == [True, True, False]
    assert [line.ahead(t) for t in gpu] == [0, 0, 1]
    line.leave(gpu[0])
    assert [line.wait(t, 0) for t in gpu[1:]] == [True, False]
    assert line.load()["cuda:0"] == (1, 1)
    # A second GPU is a separate line.
    other = line.join("x", lane_for("svd-xt", {"device": "cuda:1"}))
    assert line.wait(other, 0)


def test_job_line_is_first_come_first_served_and_a_cancelled_wait_frees_its_place():
    line = JobQueue({}, max_per_client=0)
    first, second, third = (line.join(c, "cuda:0") for c in "abc")
    assert line.ahead(third) == 1
    line.leave(second)  # cancelled while waiting
    assert line.ahead(third) == 0
    started = []
    waiter = threading.Thread(target=lambda: started.append(line.wait(third, 5)))
    waiter.start()
    time.sleep(0.1)
    assert not started
    line.leave(first)
    waiter.join()
    assert started == [True]


def test_per_client_limit_counts_queued_and_running_jobs():
    line = JobQueue({}, max_per_client=2)
    a, b = line.join("alice", "cuda:0"), line.join("alice", "cuda:0")
    with pytest.raises(JobError, match="You already have 2 jobs queued or running"):
        line.join("alice", "cuda:0")
    line.join("bob", "cuda:0")  # others are not affected
    line.leave(b)
    line.join("alice", "cuda:0")
    assert line.wait(a, 0)


def test_lanes_and_client_keys(a_gpu_machine):
    assert lane_for("engine") == ENGINE_LANE
    assert lane_for("ltx-video", {}) == lane_for("ltx-video", {"device": "cuda:0"}) == "cuda:0"
    assert lane_for("wan", {"device": "mps"}) == "mps"

    class Req:
        username = None
        session_hash = "abc"

    assert client_key(Req()) == "session:abc"
    Req.username = "alice"
    assert client_key(Req()) == "user:alice"
    assert client_key(None) == "local"
