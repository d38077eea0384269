"""A clip and its manifest appear together or not at all: after Cancel, and after a crash."""

from __future__ import annotations

import json
from dataclasses import replace

from studio.backends.base import RenderContext
from studio.jobs import Job, prepare_job
from studio.serve import retention
from studio.serve.history import open_history
from studio.serve.queueing import JobRunner

CLIP_MANIFEST = json.dumps({"preset": "product/glint", "variant": 1, "seed": 1, "video": {}})


def _hidden(folder):
    return [p for p in folder.rglob(".*.part*") if ".studio" not in p.parts]


def test_cancel_keeps_exactly_the_takes_it_reports_each_with_its_manifest(settings, samples):
    settings = replace(settings, score=False, workers=2)
    runner = JobRunner(settings)
    job = Job(image=str(samples["product"]), preset="product/glint", seed=9, frames=36)
    out = settings.outputs_dir / "job"
    ctx = RenderContext()
    stream = runner.run(prepare_job(job, settings), out, ctx, client="me", poll_s=0.05)
    seen = []
    for update in stream:
        if update.new_clip is not None:
            seen.append(update.new_clip.path)
            break  # the user presses Cancel as soon as the first take is shown
    stream.close()  # what Gradio does to the handler on Cancel

    on_disk = sorted(out.glob("*.mp4"))
    assert on_disk == seen  # takes that finished while cancelling were not kept
    assert all(p.with_suffix(".json").is_file() for p in on_disk)
    assert sorted(out.glob("*.json")) == [p.with_suffix(".json") for p in on_disk]
    assert _hidden(settings.outputs_dir) == []
    assert {e.path for e in runner.history.recent()} == set(on_disk)  # in History at once
    assert runner.cancelled_note("me") == (
        "**Cancelled.** 1 finished take was kept (they are in History)."
    )


def test_cancel_before_any_take_says_none_were_kept_and_leaves_no_folder(settings, samples):
    runner = JobRunner(replace(settings, score=False))
    job = Job(image=str(samples["product"]), preset="product/glint", seed=9, frames=36)
    out = settings.outputs_dir / "job"
    stream = runner.run(prepare_job(job, settings), out, RenderContext(), client="me")
    next(stream)  # the job has started
    stream.close()
    assert not out.exists()
    assert runner.cancelled_note("me") == "**Cancelled.** 0 finished takes were kept."
    assert runner.cancelled_note("someone else") == "Nothing was running to cancel."


def test_start_up_finishes_what_a_crash_left_half_done(settings):
    out = settings.outputs_dir
    job = out / "20260101-000000-aaaa"
    job.mkdir(parents=True)
    for stem in ("whole", "mp4-only", "manifest-only", "poster-only"):
        if stem in ("whole", "mp4-only"):
            (job / f"{stem}.mp4").write_bytes(b"\0\0\0 ftypisom")
        if stem in ("whole", "manifest-only"):
            (job / f"{stem}.json").write_text(CLIP_MANIFEST)
        if stem == "poster-only":
            (job / f"{stem}.jpg").write_bytes(b"\xff\xd8\xff")
    (job / "manifest.json").write_text("{}")  # the job's summary stays
    (job / ".whole.abc.part.json").write_text("{")  # a temp file from the crash
    (out / "20260101-000001-bbbb").mkdir()  # an empty job folder
    shootout = out / "shootout-20260101-000002-cccc" / "photo-1"
    shootout.mkdir(parents=True)
    (shootout.parent / "results.json").write_text("[]")  # not a clip manifest: kept
    (out / "20260101-000003-dddd" / "cell").mkdir(parents=True)  # nested and empty

    janitor = retention.start(replace(settings, retention_days=0, outputs_quota_gb=0))
    janitor.stop.set()

    assert sorted(p.name for p in job.iterdir()) == ["manifest.json", "whole.json", "whole.mp4"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "20260101-000000-aaaa",
        "shootout-20260101-000002-cccc",
    ]
    assert (shootout.parent / "results.json").is_file()
    assert [e.path.name for e in open_history(out).recent()] == ["whole.mp4"]
