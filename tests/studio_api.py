"""Helpers for the hardening tests: call /generate like a client does, find and measure the server."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from gradio_client import Client, handle_file

# The small, quick settings every API test runs with: a 128 px clip renders in well under a second.
FAST = {"STUDIO_LONG_SIDE": "128", "STUDIO_SCORE": "0"}


def generate_args(
    photo: str | Path | dict,
    preset: str = "product/slow-push-in",
    *,
    backend: str = "engine",
    aspect: str = "preset",
    duration: float = 2,
    fps: float = 12,
    seed: float = 7,
    strength: float = 1.0,
    model_path: str = "",
    subject_edits: Any = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
) -> list[Any]:
    """The /generate inputs in order: photo, preset, backend, aspect, duration, fps, seed,
    strength, model folder, subject corrections, then the prompt and negative prompt when
    given (left off, as by a client written before them, they are the preset's)."""
    image = photo if isinstance(photo, dict) else handle_file(str(photo))
    edits = [] if subject_edits is None else subject_edits
    args = [image, preset, backend, aspect, duration, fps, seed, strength, model_path, edits]
    if prompt is not None or negative_prompt is not None:
        args += [prompt, negative_prompt]
    return args


def submit(client: Client, photo, preset: str = "product/slow-push-in", **kw):
    return client.submit(*generate_args(photo, preset, **kw), api_name="/generate")


def client(url: str, **kw) -> Client:
    return Client(url, verbose=False, download_files=False, **kw)


def clip_files(result: tuple) -> list[str]:
    """Names of the clips in a /generate result (its video outputs)."""
    names = []
    for item in result[:4]:
        value = item.get("value") if isinstance(item, dict) and "__type__" in item else item
        if isinstance(value, dict) and value.get("path"):
            names.append(Path(value["path"]).name)
    return names


def statuses(job) -> list[str]:
    """Every status line a job streamed (the text outputs; the others are clips and updates)."""
    return [
        o
        for out in job.outputs()
        if isinstance(out, (list, tuple))
        for o in out
        if isinstance(o, str)
    ]


def server_pid(url: str) -> int:
    """The pid of our child process that listens on the URL's port (the app under test)."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and str(port).encode() in cmd:
            return int(stat.parent.name)
    raise LookupError(f"no child process serves port {port}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(pid)


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET a path byte for byte (no client-side normalising of '..' or percent-escapes)."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def call_raw(url: str, api: str, data: list, timeout: float = 60) -> tuple[str, str]:
    """POST to /gradio_api/call/<api> with hand-made JSON; returns (last event, its data)."""
    req = urllib.request.Request(
        f"{url}/gradio_api/call/{api}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        event_id = json.loads(r.read())["event_id"]
    event, payload = "", ""
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(f"{url}/gradio_api/call/{api}/{event_id}", timeout=timeout) as r:
        for line in r:
            line = line.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                payload = line.split(":", 1)[1].strip()
            if event in ("complete", "error") and payload or time.monotonic() > deadline:
                break
    return event, payload


def upload(url: str, data: bytes, name: str = "photo.jpg") -> dict:
    """POST a file to /gradio_api/upload as the browser does; returns its FileData for the API."""
    boundary = "studio-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{url}/gradio_api/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        (path,) = json.loads(r.read())
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def history_clips(history_result) -> list[str]:
    """Clip names on the newest History page (/history's gallery shows each clip's poster)."""
    gallery = history_result[0] if isinstance(history_result, tuple) else history_result
    names = []
    for item in gallery or []:
        media = item.get("image") or item.get("video") or {}
        names.append(Path(media["path"]).with_suffix(".mp4").name)
    return names


class Session:
    """One browser tab's session, spoken raw: the queue with a session hash, so the page's
    State (the selected take, the batch's jobs) carries from one event to the next, and
    events the page wires without an API name can be sent as the page sends them."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None) -> None:
        import http.cookiejar
        import secrets
        import urllib.parse

        self.url = url
        self.hash = secrets.token_hex(6)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        if auth:
            form = urllib.parse.urlencode({"username": auth[0], "password": auth[1]}).encode()
            self.opener.open(f"{url}/login", data=form, timeout=10).read()
        with self.opener.open(f"{url}/config", timeout=10) as r:
            config = json.loads(r.read())
        self.components = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
        self.dependencies = config["dependencies"]

    def fn(self, *, api_name: str | None = None, after: str | None = None,
           output: str | None = None) -> dict:  # fmt: skip
        """The dependency with this API name, or the one chained after that API, or the page-only
        event whose outputs include the component with this elem_id."""
        for d in self.dependencies:
            outs = [self.components.get(i) for i in d["outputs"]]
            if api_name is not None and d.get("api_name") == api_name:
                return d
            after_it = after is not None and d.get("trigger_after") == self.fn(api_name=after)["id"]
            if after_it and outs == [None]:  # the take kept for the export panel (a State)
                return d
            if output is not None and output in outs and d["api_visibility"] == "private":
                return d
        raise LookupError((api_name, after, output))

    def call(self, dep: dict, data: list, event_data: Any = None, timeout: float = 120):
        """Send an event; returns (True, output data) or (False, the error message)."""
        data = data + [None] * (len(dep["inputs"]) - len(data))
        body = {"data": data, "fn_index": dep["id"], "session_hash": self.hash,
                "event_data": event_data, "trigger_id": None}  # fmt: skip
        req = urllib.request.Request(f"{self.url}/gradio_api/queue/join",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        with self.opener.open(req, timeout=10) as r:
            event_id = json.loads(r.read())["event_id"]
        stream = f"{self.url}/gradio_api/queue/data?session_hash={self.hash}"
        deadline = time.monotonic() + timeout
        with self.opener.open(stream, timeout=timeout) as r:
            for line in r:
                line = line.decode().strip()
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") == event_id and msg.get("msg") == "process_completed":
                    out = msg.get("output") or {}
                    if msg.get("success"):
                        return True, out.get("data")
                    return False, out.get("error") or ""
                if time.monotonic() > deadline:
                    break
        raise TimeoutError(f"no answer to {dep.get('api_name')} in {timeout}s")
