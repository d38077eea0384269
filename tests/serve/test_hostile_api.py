"""Hostile requests against the real app: no server file is read, no login sees another's work,
password guessing is slowed, and every refusal is one sentence while the studio keeps serving."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from tests.appserver import running_app
from tests.studio_api import (
    FAST,
    call_raw,
    client,
    clip_files,
    history_clips,
    rss_mb,
    server_pid,
    submit,
    upload,
)

NOT_UPLOADED = "That file was not uploaded to the studio; please upload it again."


def _generate(url: str, image, **kw) -> tuple[str, str]:
    args = [image, kw.pop("preset", "product/slow-push-in"), kw.pop("backend", "engine"),
            "preset", 2, kw.pop("fps", 12), 7, 1.0, kw.pop("model_path", "")]  # fmt: skip
    return call_raw(url, "generate", args)


def _error(data: str) -> str:
    return json.loads(data)["error"] if data and data != "null" else ""


def _clips(tmp: Path) -> set[Path]:
    return set((tmp / "outputs").rglob("*.mp4"))


@pytest.fixture(scope="module")
def open_app(tmp_path_factory):
    """A studio on loopback without logins, with a private photo elsewhere on its disk."""
    tmp = tmp_path_factory.mktemp("hostile")
    private = tmp / "private"
    private.mkdir()
    Image.new("RGB", (320, 240), (200, 30, 30)).save(private / "photo.png")
    cache = tmp / "gradio-cache"
    cache.mkdir()
    (cache / "planted").mkdir()
    (cache / "planted" / "link.png").symlink_to(private / "photo.png")  # inside, points out
    env = {**FAST, "GRADIO_TEMP_DIR": str(cache)}
    with running_app(tmp, env=env) as url:
        yield url, tmp


def test_a_path_the_client_did_not_upload_is_refused_without_saying_what_exists(open_app):
    url, tmp = open_app
    secret, cache = tmp / "private" / "photo.png", tmp / "gradio-cache"
    before = _clips(tmp)
    payloads = [
        {"path": str(secret)},
        {"path": str(secret), "meta": {"_type": "other"}},
        {"path": str(secret), "meta": {"_type": "gradio.FileData"}},
        {"path": f"{cache}/../private/photo.png"},
        {"path": str(cache / "planted" / "link.png")},
        {"path": "/root"},
        {"path": "/nonexistent/photo.png"},
        {"path": str(cache)},
        {"path": "x" * 5000},
    ]
    messages = set()
    for image in payloads:
        event, data = _generate(url, image)
        assert event == "error", (image, data)
        message = _error(data)
        assert str(tmp) not in message and "/root" not in message, message
        messages.add(message)
    # One sentence for all of them (Gradio's own check words the marked FileData case itself),
    # so an error never tells a stranger whether a path exists or is a folder.
    assert NOT_UPLOADED in messages and len(messages) <= 2, messages
    assert _clips(tmp) == before  # the private photo was never animated


def test_a_device_path_is_refused_at_once_and_memory_stays_flat(open_app):
    url, _ = open_app
    pid = server_pid(url)
    before = rss_mb(pid)
    started = time.monotonic()
    for image in ({"path": "/dev/zero"}, {"path": "/dev/urandom", "meta": {"_type": "other"}}):
        event, data = _generate(url, image)
        assert event == "error" and _error(data) == NOT_UPLOADED
    assert time.monotonic() - started < 10
    assert rss_mb(pid) - before < 50


def test_the_shootout_takes_only_files_it_received(open_app):
    url, tmp = open_app
    secret = {"path": str(tmp / "private" / "photo.png")}
    event, data = call_raw(url, "shootout", [[secret], ["product/slow-push-in"], ["engine"], 1, 7])
    assert event == "error" and _error(data) == NOT_UPLOADED
    assert not list((tmp / "outputs").glob("*shootout*"))


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"preset": ["product/slow-push-in", "scenic/gentle-wind"]}, "one choice"),
        ({"preset": {"id": "product/slow-push-in"}}, "one choice"),
        ({"backend": ["engine"]}, "one choice"),
        ({"fps": math.nan}, "FPS must be a whole number between 1 and 60"),
        ({"fps": math.inf}, "greater than maximum value 30"),  # the slider's own sentence
        ({"model_path": "m" * 5000}, "model folder name is too long"),
    ],
)
def test_hostile_values_get_one_plain_sentence(open_app, samples, override, needle):
    url, tmp = open_app
    photo = upload(url, samples["product"].read_bytes(), "coffee.png")
    event, data = _generate(url, photo, **override)
    assert event == "error", data
    message = _error(data)
    assert needle in message and "problem in the studio" not in message, message
    assert "\n" not in message and len(message) < 300 and str(tmp) not in message


def test_after_the_attacks_an_honest_upload_still_works(open_app, samples):
    url, _ = open_app
    result = submit(client(url), samples["product"], seed=5).result(timeout=60)
    assert len(clip_files(result)) == 4


# --- two logins -------------------------------------------------------------------------------


def _login(url: str, user: str, password: str) -> tuple[int, str]:
    """POST the login form as the browser does; (status, Cookie header to send back)."""
    body = urllib.parse.urlencode({"username": user, "password": password}).encode()
    request = urllib.request.Request(f"{url}/login", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            cookies = [c.split(";")[0] for c in r.headers.get_all("set-cookie") or []]
            return r.status, "; ".join(cookies)
    except urllib.error.HTTPError as err:
        return err.code, ""


def _get(url: str, path: str, cookie: str) -> int:
    request = urllib.request.Request(url + urllib.parse.quote(path, safe="/=:"),
                                     headers={"Cookie": cookie})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def team_app(tmp_path_factory, samples):
    tmp = tmp_path_factory.mktemp("team")
    env = {**FAST, "GRADIO_TEMP_DIR": str(tmp / "gradio-cache"),
           "STUDIO_AUTH": "alice:pw-alice,bob:pw-bob", "STUDIO_MODELS_DIR": str(tmp / "models"),
           "STUDIO_LOGIN_FREE_ATTEMPTS": "3", "STUDIO_LOGIN_BACKOFF_S": "2"}  # fmt: skip
    with running_app(tmp, env=env) as url:
        alice = client(url, auth=("alice", "pw-alice"))
        result = submit(alice, samples["product"], seed=3).result(timeout=60)
        shootout = alice.predict(
            [{"path": upload_as(url, "alice", "pw-alice", samples["scenic"]),
              "meta": {"_type": "gradio.FileData"}}],
            ["scenic/gentle-wind"], ["engine"], 1, 4, api_name="/shootout",
        )  # fmt: skip
        yield url, tmp, result, shootout


def upload_as(url: str, user: str, password: str, photo: Path) -> str:
    """Upload a photo with a login's cookie (uploads need the login too)."""
    _, cookie = _login(url, user, password)
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="p.jpg"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + photo.read_bytes() + (
            f"\r\n--{boundary}--\r\n").encode()  # fmt: skip
    request = urllib.request.Request(f"{url}/gradio_api/upload", data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())[0]


def test_each_login_sees_and_downloads_only_its_own_clips_and_reports(team_app):
    url, tmp, result, shootout = team_app
    outputs = (tmp / "outputs").resolve()
    alices_clips = sorted(outputs.glob("*/*.mp4"))
    assert len(alices_clips) == 4 and all(p.parent.name.startswith("u") for p in alices_clips)
    served = [v["value"]["url"].split(url, 1)[1] for v in result[:4] if v.get("value")]
    report = next(outputs.glob("*shootout*/report.html"))
    files = [urllib.parse.urlparse(f["url"]).path for f in shootout[2]]
    assert len(served) == 4 and files

    _, alice = _login(url, "alice", "pw-alice")
    _, bob = _login(url, "bob", "pw-bob")
    private = [*(f"/gradio_api/file={p}" for p in alices_clips), *(urllib.parse.unquote(s)
               for s in served), f"/gradio_api/file={report}",
               f"/gradio_api/file={alices_clips[0].with_suffix('.json')}",
               *(urllib.parse.unquote(f) for f in files)]  # fmt: skip
    for path in private:
        assert _get(url, path, alice) == 200, path  # the owner: everything
        assert _get(url, path, bob) == 404, path  # the other login: nothing

    bob_client = client(url, auth=("bob", "pw-bob"))
    assert history_clips(bob_client.predict(api_name="/history")) == []
    alice_client = client(url, auth=("alice", "pw-alice"))
    assert sorted(history_clips(alice_client.predict(api_name="/history"))) == sorted(
        p.name for p in alices_clips
    )


def test_a_remote_users_model_folder_stays_inside_the_models_folder(team_app, samples):
    url, tmp, _, _ = team_app
    alice = client(url, auth=("alice", "pw-alice"))
    for folder in ("/etc", "../../", str(tmp), "missing-model"):
        with pytest.raises(Exception) as info:  # noqa: PT011 - the sentence is what matters
            submit(alice, samples["product"], backend="svd-xt", model_path=folder).result(60)
        message = str(info.value)
        assert str(tmp) not in message and "/etc" not in message, message
        assert "models folder" in message, message


def test_repeated_wrong_passwords_are_slowed_down_and_logged(team_app):
    url, tmp, _, _ = team_app
    codes = [_login(url, "bob", f"guess-{i}")[0] for i in range(20)]
    assert codes[:3] == [400, 400, 400]  # a few honest typos are free
    assert codes.count(429) >= 16  # then each try must wait: most are not even checked
    assert _login(url, "bob", "pw-bob")[0] == 429  # the right password too, while waiting
    time.sleep(2.2)
    assert _login(url, "bob", "pw-bob")[0] == 200
    assert _login(url, "bob", "nope")[0] == 400  # a success clears the count
    assert "Failed login from 127.0.0.1" in (tmp / "app.log").read_text()
