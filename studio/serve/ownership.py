"""Who owns which output: an id per login, job folders named by their owner, and owner lookups."""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime
from pathlib import Path

# Without logins there is one local user, who owns everything (and folders carry no owner).
LOCAL = ""
_SEP = "--"


def owner_id(username: str | None) -> str:
    """A stable id for a login that is safe in a folder name (never the name itself)."""
    if not username:
        return LOCAL
    return "u" + hashlib.sha256(username.encode("utf-8")).hexdigest()[:12]


def job_dir(outputs_dir: Path, owner: str = LOCAL, kind: str = "") -> Path:
    """A new, unique folder for one job (kind "" for clips, "shootout" for a shootout)."""
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
    name = f"{kind}-{stamp}" if kind else stamp
    return Path(outputs_dir) / (f"{owner}{_SEP}{name}" if owner else name)


def owner_of_folder(name: str) -> str:
    """The owner a job folder's name records (LOCAL for folders made without logins)."""
    head, sep, _ = name.partition(_SEP)
    if sep and len(head) == 13 and head.startswith("u"):
        return head
    return LOCAL


def owner_of_path(path: str | os.PathLike[str], outputs_dir: Path) -> str | None:
    """The owner of a file inside the outputs folder, or None when it is not inside it."""
    real = Path(os.path.realpath(path))
    root = Path(os.path.realpath(outputs_dir))
    try:
        parts = real.relative_to(root).parts
    except ValueError:
        return None
    return owner_of_folder(parts[0]) if parts else LOCAL
