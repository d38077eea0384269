"""The record of finished clips: a small SQLite file (WAL) that survives crashes and restarts."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from studio.serve import ownership

log = logging.getLogger(__name__)

# Kept in a hidden folder of the outputs so it travels with the clips, and blocked from
# the web server (see studio.serve.security.blocked_paths): other users must not download it.
STATE_DIR = ".studio"
DB_NAME = "history.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    path     TEXT PRIMARY KEY,  -- the MP4, relative to the outputs folder
    job      TEXT NOT NULL,     -- the job folder it belongs to
    preset   TEXT NOT NULL,
    backend  TEXT NOT NULL,
    variant  INTEGER NOT NULL,
    seed     INTEGER NOT NULL,
    width    INTEGER, height INTEGER, frames INTEGER, fps REAL,
    bytes    INTEGER NOT NULL,
    created  REAL NOT NULL,     -- unix time the clip was finished
    selected INTEGER NOT NULL DEFAULT 0,
    manifest TEXT NOT NULL,     -- the clip's manifest JSON, as written beside it
    owner    TEXT NOT NULL DEFAULT ''  -- studio.serve.ownership id of the login ('' without logins)
);
CREATE INDEX IF NOT EXISTS clips_created ON clips(created);
-- Gradio's cached copies handed to each login (by the copy's folder name), so the web guard
-- serves a copy only to whoever it was shown to.
CREATE TABLE IF NOT EXISTS grants (
    key   TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (key, owner)
);
"""
# Databases written before logins had owners lack the column; added in place on open.
_MIGRATIONS = ("ALTER TABLE clips ADD COLUMN owner TEXT NOT NULL DEFAULT ''",)


@dataclass(frozen=True)
class Entry:
    """One finished clip as the History list shows it."""

    path: Path
    job: str
    preset: str
    backend: str
    variant: int
    seed: int
    width: int | None
    height: int | None
    frames: int | None
    fps: float | None
    bytes: int
    created: float
    selected: bool
    owner: str = ""

    @property
    def poster(self) -> Path | None:
        """The clip's thumbnail (written beside it), if it has one."""
        poster = self.path.with_suffix(".jpg")
        return poster if poster.is_file() else None

    @property
    def caption(self) -> str:
        star = " · ★ selected" if self.selected else ""
        when = datetime.fromtimestamp(self.created).strftime("%d %b %H:%M")
        return f"{self.preset} · v{self.variant} · seed {self.seed} · {when}{star}"


class History:
    """Finished clips of one outputs folder. Safe to use from many threads and processes.

    Every change is one SQLite transaction in WAL mode, so a crash leaves either the old
    or the new state. The manifests beside the clips stay the source of truth:
    reconcile() rebuilds anything a crash kept from being recorded.
    """

    def __init__(self, outputs_dir: str | Path):
        self.outputs_dir = Path(outputs_dir).resolve()
        self.db_path = self.outputs_dir / STATE_DIR / DB_NAME
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            columns = {r[1] for r in db.execute("PRAGMA table_info(clips)")}
            if columns and "owner" not in columns:
                for sql in _MIGRATIONS:
                    db.execute(sql)
            db.executescript(_SCHEMA)

    # -- writing

    def record(
        self, clip: str | Path, manifest: str | Path | None = None, data: dict | None = None
    ) -> Entry:
        """Record a finished clip from its manifest: the data just written, or else the file
        beside the clip (after a crash, reconcile() has only the file)."""
        clip = Path(clip).resolve()
        if data is None:
            manifest_path = Path(manifest) if manifest else clip.with_suffix(".json")
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
        video = data.get("video", {})
        row = {
            "path": self._key(clip),
            "job": clip.parent.name,
            "preset": str(data.get("preset", "")),
            "backend": str(data.get("backend", "")),
            "variant": int(data.get("variant", 0)),
            "seed": int(data.get("seed", 0)),
            "width": video.get("width"),
            "height": video.get("height"),
            "frames": video.get("frames"),
            "fps": video.get("fps"),
            "bytes": clip.stat().st_size,
            "created": clip.stat().st_mtime,
            "manifest": json.dumps(data, sort_keys=True),
            "owner": ownership.owner_of_path(clip, self.outputs_dir) or ownership.LOCAL,
        }
        with self._connect() as db:
            db.execute(
                """INSERT INTO clips (path, job, preset, backend, variant, seed, width, height,
                       frames, fps, bytes, created, manifest, owner)
                   VALUES (:path, :job, :preset, :backend, :variant, :seed, :width, :height,
                       :frames, :fps, :bytes, :created, :manifest, :owner)
                   ON CONFLICT(path) DO UPDATE SET manifest = excluded.manifest,
                       bytes = excluded.bytes""",
                row,
            )
        return self.get(clip)  # type: ignore[return-value]

    def select(self, clip: str | Path) -> bool:
        """Star the take the user picked from its job (the job's other takes lose their star):
        a starred clip is never removed by retention."""
        clip = Path(clip).resolve()
        if self.get(clip) is None:
            if not (clip.is_file() and clip.with_suffix(".json").is_file()):
                return False
            self.record(clip)
        key = self._key(clip)
        with self._connect() as db:
            db.execute(
                "UPDATE clips SET selected = (path = ?) WHERE job = ? AND (selected = 1 OR path = ?)",
                (key, clip.parent.name, key),
            )
        return True

    def grant(self, key: str, owner: str) -> None:
        """Remember that Gradio's cached copy `key` was handed to this owner."""
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO grants (key, owner) VALUES (?, ?)", (key, owner))

    def granted(self, key: str) -> set[str]:
        """The owners a cached copy was handed to (empty: not one of ours)."""
        with self._connect() as db:
            rows = db.execute("SELECT owner FROM grants WHERE key = ?", (key,)).fetchall()
        return {r[0] for r in rows}

    def forget(self, clips: Iterable[str | Path]) -> int:
        keys = [(self._key(Path(c).resolve()),) for c in clips]
        with self._connect() as db:
            return db.executemany("DELETE FROM clips WHERE path = ?", keys).rowcount

    def reconcile(self) -> tuple[int, int]:
        """Match the record to the disk after a crash: (clips added, rows dropped)."""
        known = {e.path for e in self._entries("SELECT * FROM clips", ())}
        gone = [p for p in known if not p.is_file()]
        added = 0
        for clip in sorted(self.outputs_dir.glob("*/*.mp4")):
            if clip.name.startswith(".") or clip.resolve() in known:
                continue
            if clip.with_suffix(".json").is_file():
                try:
                    self.record(clip)
                    added += 1
                except (OSError, ValueError) as exc:
                    log.warning("Could not read the manifest of %s: %s", clip, exc)
        self.forget(gone)
        return added, len(gone)

    # -- reading

    def get(self, clip: str | Path) -> Entry | None:
        rows = self._entries("SELECT * FROM clips WHERE path = ?", (self._key(Path(clip)),))
        return rows[0] if rows else None

    def recent(self, limit: int = 24, *, owner: str | None = None, offset: int = 0) -> list[Entry]:
        """Newest first, only clips still on disk; only one owner's clips when owner is given."""
        where, args = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        rows = self._entries(
            f"SELECT * FROM clips {where} ORDER BY created DESC, path LIMIT ? OFFSET ?",
            (*args, limit, max(0, offset)),
        )
        return [e for e in rows if e.path.is_file()]

    def in_folder(self, folder: str | Path) -> list[Entry]:
        """The recorded clips of one job folder."""
        key = self._key(Path(folder))
        return [e for e in self._entries("SELECT * FROM clips WHERE path LIKE ? || '/%'", (key,))
                if e.path.parent == Path(folder).resolve()]  # fmt: skip

    def count(self, *, owner: str | None = None) -> int:
        """How many clips are recorded (for one owner when given)."""
        where, args = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        with self._connect() as db:
            return db.execute(f"SELECT COUNT(*) FROM clips {where}", args).fetchone()[0]

    def selected(self) -> set[Path]:
        return {e.path for e in self._entries("SELECT * FROM clips WHERE selected = 1", ())}

    def manifest(self, clip: str | Path) -> dict | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT manifest FROM clips WHERE path = ?", (self._key(Path(clip)),)
            ).fetchone()
        return json.loads(row[0]) if row else None

    # -- plumbing

    def _key(self, clip: Path) -> str:
        clip = clip.resolve()
        with contextlib.suppress(ValueError):
            return clip.relative_to(self.outputs_dir).as_posix()
        return str(clip)

    def _entries(self, sql: str, args: tuple) -> list[Entry]:
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [
            Entry(
                path=self.outputs_dir / r["path"],
                job=r["job"],
                preset=r["preset"],
                backend=r["backend"],
                variant=r["variant"],
                seed=r["seed"],
                width=r["width"],
                height=r["height"],
                frames=r["frames"],
                fps=r["fps"],
                bytes=r["bytes"],
                created=r["created"],
                selected=bool(r["selected"]),
                owner=r["owner"],
            )
            for r in rows
        ]

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per thread, reused; "with db" makes each block one transaction.
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.db_path, timeout=10)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # with WAL: survives a process crash
            self._local.db = db
        with db:
            yield db


_OPEN: dict[Path, History] = {}
_OPEN_LOCK = threading.Lock()


def open_history(outputs_dir: str | Path) -> History:
    """The History of an outputs folder, shared by the UI handlers and the retention sweep."""
    key = Path(outputs_dir).resolve()
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = History(key)
        return _OPEN[key]
