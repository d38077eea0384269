"""Keep the outputs folder in bounds: drop old clips, then the oldest beyond a quota, never starred ones."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.serve.history import STATE_DIR, History, open_history
from studio.settings import Settings

log = logging.getLogger(__name__)

# A temp file this old belongs to no running job (the longest render is minutes), so the
# periodic sweep may remove it; at start-up every temp file is stray.
STRAY_TEMP_AGE_S = 6 * 3600


@dataclass(frozen=True)
class Item:
    """One clip on disk: its MP4 plus the manifest beside it, deleted together."""

    clip: Path
    files: tuple[Path, ...]
    mtime: float
    size: int


@dataclass(frozen=True)
class Policy:
    max_age_s: float | None  # None: keep forever
    quota_bytes: int | None  # None: no size limit
    grace_s: float = 3600.0  # clips younger than this are never removed: someone may be using them


def policy_from(settings: Settings) -> Policy:
    days, gb = settings.retention_days, settings.outputs_quota_gb
    return Policy(
        max_age_s=days * 86400 if days > 0 else None,
        quota_bytes=int(gb * 1024**3) if gb > 0 else None,
        grace_s=max(0.0, settings.retention_grace_minutes * 60),
    )


def upload_cache_policy(settings: Settings) -> tuple[int, int] | None:
    """Blocks(delete_cache=(every, age)) in seconds: uploaded photos (and Gradio's copies of
    served clips) are deleted once older than the upload retention; None keeps them."""
    age = int(round(settings.upload_retention_minutes * 60))
    if age <= 0:
        return None
    return max(1, min(age // 2, 300)), age


def plan_cleanup(
    items: Iterable[Item], *, now: float, policy: Policy, protected: Iterable[Path] = ()
) -> list[Item]:
    """Pure: which clips to delete, oldest first.

    First every clip older than the retention period, then the oldest remaining ones
    until the total is within the quota. Protected clips (starred, in use) and clips
    inside the grace period are never chosen, even if the quota stays exceeded.
    """
    items = list(items)
    keep = {Path(p) for p in protected}
    candidates = sorted(
        (i for i in items if i.clip not in keep and now - i.mtime >= policy.grace_s),
        key=lambda i: (i.mtime, str(i.clip)),
    )
    doomed = [
        i for i in candidates if policy.max_age_s is not None and now - i.mtime > policy.max_age_s
    ]
    total = sum(i.size for i in items) - sum(i.size for i in doomed)
    if policy.quota_bytes is not None:
        chosen = {i.clip for i in doomed}
        for item in candidates:
            if total <= policy.quota_bytes:
                break
            if item.clip not in chosen:
                doomed.append(item)
                total -= item.size
    return sorted(doomed, key=lambda i: (i.mtime, str(i.clip)))


def scan(outputs_dir: Path) -> list[Item]:
    """Every finished clip in the job folders (hidden files and folders are not clips)."""
    items = []
    for clip in outputs_dir.glob("*/*.mp4"):
        if clip.name.startswith(".") or clip.parent.name.startswith("."):
            continue
        files = [clip] + [
            m for m in (clip.with_suffix(".json"), clip.with_suffix(".jpg")) if m.is_file()
        ]
        try:
            stats = [f.lstat() for f in files]
        except FileNotFoundError:
            continue  # removed while we looked
        items.append(Item(clip, tuple(files), stats[0].st_mtime, sum(s.st_size for s in stats)))
    return items


def remove_stray_temp_files(outputs_dir: Path, older_than_s: float = 0.0) -> list[Path]:
    """Delete half-written files ('.name.partXXX') that a crash or kill left behind."""
    removed = []
    now = time.time()
    for path in outputs_dir.rglob(".*.part*"):
        if STATE_DIR in path.relative_to(outputs_dir).parts or not path.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):
            if now - path.lstat().st_mtime >= older_than_s:
                path.unlink()
                removed.append(path)
    return removed


def remove_orphans(outputs_dir: Path) -> list[Path]:
    """After a crash: a clip and its manifest appear together or not at all, so a clip
    manifest without its MP4 (the crash came between the two renames) or an MP4 without
    its manifest is removed, and so is a job folder left empty."""
    removed = []
    for folder in _job_folders(outputs_dir):
        for path in list(folder.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix == ".mp4":
                partner = path.with_suffix(".json")
            elif path.suffix == ".jpg" and path.name != "photo.jpg":  # a clip's poster
                partner = path.with_suffix(".mp4")
            elif path.suffix == ".json" and path.name != "manifest.json":
                partner = path.with_suffix(".mp4")
                if not _is_clip_manifest(path):
                    continue  # a shootout's results.json and the like have no clip
            else:
                continue
            if not partner.exists():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    remove_empty_folders(outputs_dir)
    return removed


def _is_clip_manifest(path: Path) -> bool:
    # Clip manifests record the clip they belong to; other JSON files (results.json) do not.
    with contextlib.suppress(OSError, ValueError):
        return '"video"' in path.read_text(encoding="utf-8")[:65536]
    return False


def _job_folders(outputs_dir: Path) -> list[Path]:
    """Every folder under the outputs that holds clips (jobs and shootout cells), not ours."""
    found = []
    for folder in outputs_dir.rglob("*"):
        rel = folder.relative_to(outputs_dir).parts
        if folder.is_dir() and not any(p.startswith(".") for p in rel):
            found.append(folder)
    return found


def remove_empty_folders(outputs_dir: Path) -> None:
    """Job folders that hold nothing (a cancelled or crashed job) are removed, deepest first."""
    for folder in sorted(_job_folders(outputs_dir), key=lambda f: len(f.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty


def sweep(
    settings: Settings, history: History | None = None, *, now: float | None = None
) -> list[Path]:
    """One pass: stray temp files, then clips the policy says to drop. Returns deleted clips."""
    outputs = settings.outputs_dir
    if not outputs.is_dir():
        return []
    history = history or open_history(outputs)
    remove_stray_temp_files(outputs, STRAY_TEMP_AGE_S)
    now = time.time() if now is None else now
    doomed = plan_cleanup(
        scan(outputs), now=now, policy=policy_from(settings), protected=history.selected()
    )
    for item in doomed:
        for f in item.files:  # the MP4 first: a manifest without its clip is never listed
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
    history.forget(i.clip for i in doomed)
    for folder in {i.clip.parent for i in doomed}:
        _remove_if_only_summary(folder)
    if doomed:
        freed = sum(i.size for i in doomed) / 1e6
        log.info("Retention: removed %d old clips (%.1f MB).", len(doomed), freed)
    return [i.clip for i in doomed]


def _remove_if_only_summary(folder: Path) -> None:
    # A job folder whose clips are all gone keeps only its summary manifest: drop both.
    with contextlib.suppress(OSError):
        rest = list(folder.iterdir())
        if all(p.name == "manifest.json" for p in rest):
            for p in rest:
                p.unlink()
            folder.rmdir()


class Janitor(threading.Thread):
    """The periodic sweep, in a daemon thread so it never holds the server up."""

    def __init__(self, settings: Settings, history: History):
        super().__init__(name="studio-retention", daemon=True)
        self.settings, self.history = settings, history
        self.stop = threading.Event()

    def run(self) -> None:
        interval = max(1.0, self.settings.sweep_interval_minutes * 60)
        while not self.stop.wait(interval):
            try:
                sweep(self.settings, self.history)
            except Exception:  # a full disk or odd file must not end the sweeps
                log.exception("Retention sweep failed; will retry.")


def start(settings: Settings) -> Janitor:
    """At start-up: remove stray temp files, lone halves of clips and empty job folders, bring
    History in line with the disk, sweep once, then keep sweeping in the background."""
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    stray = remove_stray_temp_files(settings.outputs_dir)
    stray += remove_orphans(settings.outputs_dir)
    if stray:
        log.info("Removed %d half-written files left by an earlier crash.", len(stray))
    history = open_history(settings.outputs_dir)
    added, dropped = history.reconcile()
    if added or dropped:
        log.info("History: %d clips recovered, %d missing clips dropped.", added, dropped)
    sweep(settings, history)
    janitor = Janitor(settings, history)
    janitor.start()
    return janitor
