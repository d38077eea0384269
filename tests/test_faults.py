"""Crashes and failures: a killed server loses no finished clip, a failing job fails alone, Cancel cleans up."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from gradio_client.exceptions import AppError

from studio import backends
from studio.backends import BackendInfo
from studio.backends.base import Backend
from studio.encode import probe_mp4
from studio.serve.history import open_history
from studio.settings import Settings
from tests.appserver import free_port, running_app
from tests.studio_api import FAST, client, clip_files, history_clips, raw_get, server_pid, submit


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.part*") if ".studio" not in p.parts]


def wait_for(predicate, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(step)
    return None


def test_killed_mid_generation_restart_lists_every_finished_clip_and_no_half_written_one(
    tmp_path, samples
):
    outputs = tmp_path / "outputs"
    with running_app(tmp_path, env=FAST) as url:
        finished = clip_files(submit(client(url), samples["product"], seed=1).result(timeout=60))
        assert len(finished) == 4
        # A long job: kill the server while its clips are being encoded.
        submit(client(url), samples["scenic"], seed=2, duration=10, fps=30)
        assert wait_for(lambda: temp_files(outputs), timeout=60), "the job never started encoding"
        os.kill(server_pid(url), signal.SIGKILL)
        time.sleep(0.5)
    half_written = temp_files(outputs)
    assert half_written, "the kill came too late to leave a half-written file"

    with running_app(tmp_path, env=FAST) as url:
        assert temp_files(outputs) == []  # start-up removed them
        names = set(history_clips(client(url).predict(api_name="/history")))
        on_disk = {p.name: p for p in outputs.glob("*/*.mp4") if p.with_suffix(".json").exists()}
        assert set(finished) <= names  # every clip finished before the kill...
        assert names == set(on_disk)  # ...and nothing that is not a complete clip
        for name in names:
            status, body = raw_get(url, f"/gradio_api/file={on_disk[name]}")
            assert status == 200 and body == on_disk[name].read_bytes()
            assert probe_mp4(on_disk[name])["frames"] > 0


# --- in-process: a backend that fails, and Cancel --------------------------------------------


class FailingBackend(Backend):
    id = "failing"
    title = "Fails on purpose (test)"
    parallel_variants = True
    error: BaseException = RuntimeError("boom")

    def render(self, prepared, plan, ctx):
        for i in range(plan.frames):
            if plan.index == 2 and i == 3:  # mid-clip, with a temp file open
                raise type(self).error
            yield np.full((plan.height, plan.width, 3), 40 * plan.index, np.uint8)


@pytest.fixture
def studio(tmp_path, monkeypatch):
    """The studio's Blocks launched in this process, with a test backend registered."""
    from studio.ui import build_ui

    backends.register(BackendInfo("failing", "Fails on purpose", "test", FailingBackend))
    settings = Settings(
        outputs_dir=tmp_path / "outputs",
        user_presets_dir=tmp_path / "none",
        long_side=128,
        workers=2,
        score=False,
    )
    demo = build_ui(settings)
    demo.queue()
    demo.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url.rstrip("/"), settings.outputs_dir
    finally:
        demo.close()
        backends.unregister("failing")


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (MemoryError(), "ran out of memory"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "ran out of memory"),
        (ZeroDivisionError("division by zero"), "problem in the studio (ZeroDivisionError"),
    ],
)
def test_a_failing_job_fails_alone_with_a_readable_message_and_the_next_job_works(
    studio, samples, monkeypatch, error, needle
):
    url, outputs = studio
    monkeypatch.setattr(FailingBackend, "error", error)
    c = client(url)
    with pytest.raises(AppError) as info:
        submit(c, samples["product"], backend="failing").result(timeout=60)
    message = str(info.value)
    assert needle in message and "Other jobs are not affected" in message
    assert "Traceback" not in message and "\n" not in message.strip()
    assert temp_files(outputs) == []
    assert len(clip_files(submit(c, samples["product"], seed=3).result(timeout=60))) == 4


def test_cancel_stops_the_job_promptly_and_removes_its_temporary_files(studio, samples):
    url, outputs = studio
    c = client(url)
    job = submit(c, samples["scenic"], seed=4, duration=10, fps=30)
    assert wait_for(lambda: temp_files(outputs), timeout=60), "the job never started encoding"
    cancelled_at = time.monotonic()
    job.cancel()
    assert wait_for(lambda: not temp_files(outputs), timeout=5), temp_files(outputs)
    assert time.monotonic() - cancelled_at < 5
    clips_then = sorted(outputs.glob("*/*.mp4"))
    time.sleep(1.0)
    # Nothing more is written for the cancelled job, and it never completes.
    assert sorted(outputs.glob("*/*.mp4")) == clips_then
    assert not list(outputs.glob("*/manifest.json"))
    # The clips that did finish are complete and recorded; the studio keeps serving.
    assert {p for p in clips_then} == {e.path for e in open_history(outputs).recent()}
    assert len(clip_files(submit(c, samples["product"], seed=5).result(timeout=60))) == 4
