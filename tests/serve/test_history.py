"""History: finished clips recorded in SQLite (WAL), surviving restarts, rebuilt from manifests."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from studio.clips import run_job
from studio.jobs import Job, prepare_job
from studio.serve.history import History


@pytest.fixture
def job_clips(settings, samples):
    """Four real clips and manifests, as the studio writes them."""
    job = Job(image=str(samples["product"]), preset="product/glint", seed=9, frames=6, fps=12)
    prepared = prepare_job(job, settings)
    out = settings.outputs_dir / "20250101-120000-abcd1234"
    clips = [u.new_clip for u in run_job(prepared, out, settings) if u.new_clip is not None]
    return sorted(clips, key=lambda c: c.index)


def test_recorded_clips_survive_reopening_with_their_manifest(settings, job_clips):
    history = History(settings.outputs_dir)
    for clip in job_clips:
        history.record(clip.path, clip.manifest)
    again = History(settings.outputs_dir)  # a restarted studio
    recent = again.recent()
    assert {e.path for e in recent} == {c.path for c in job_clips}
    entry = again.get(job_clips[1].path)
    assert (entry.preset, entry.variant, entry.seed) == ("product/glint", 2, job_clips[1].seed)
    assert (entry.width, entry.height, entry.frames) == (job_clips[1].width, job_clips[1].height, 6)
    assert again.manifest(job_clips[1].path)["job_seed"] == 9
    assert "product/glint · v2" in entry.caption


def test_database_uses_wal_and_is_hidden_in_the_outputs_folder(settings):
    history = History(settings.outputs_dir)
    assert history.db_path.parent.name.startswith(".")
    with sqlite3.connect(history.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reconcile_recovers_unrecorded_clips_and_drops_missing_ones(settings, job_clips):
    history = History(settings.outputs_dir)
    history.record(job_clips[0].path)
    job_clips[0].path.unlink()  # deleted by hand
    (settings.outputs_dir / "job").mkdir()
    (settings.outputs_dir / "job" / "orphan.mp4").write_bytes(b"no manifest: not a finished clip")
    added, dropped = history.reconcile()
    assert (added, dropped) == (3, 1)
    assert {e.path for e in history.recent()} == {c.path for c in job_clips[1:]}


def test_selecting_a_clip_stars_it_even_if_it_was_not_recorded_yet(settings, job_clips):
    history = History(settings.outputs_dir)
    assert history.select(job_clips[2].path)
    assert history.selected() == {job_clips[2].path}
    assert history.get(job_clips[2].path).selected
    assert not history.select(settings.outputs_dir / "nope.mp4")
    history.forget([job_clips[2].path])
    assert history.selected() == set()


def test_recording_from_many_threads_at_once(settings, job_clips):
    from concurrent.futures import ThreadPoolExecutor

    history = History(settings.outputs_dir)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: history.record(c.path), job_clips * 5))
    assert len(history.recent()) == len(job_clips)
    assert np.all([e.bytes > 0 for e in history.recent()])
