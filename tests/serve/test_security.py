"""Exposure: loopback by default, a login when public, only outputs and assets servable, no photo metadata kept."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client
from PIL import Image

from studio.errors import StudioError
from studio.serve.security import check_exposure, is_loopback, parse_auth
from studio.settings import Settings
from tests.appserver import ROOT, free_port, running_app
from tests.studio_api import FAST, call_raw, client, clip_files, raw_get, submit, upload

SECRET = b"TOP-SECRET-7f3a9c"
EXIF_MARKS = (b"Jane Q. Secretphotographer", b"SECRETDATUM", b"Lighthouse Road 12", b"jane-home")

# --- who may connect --------------------------------------------------------------------------


def test_login_text_is_parsed_and_malformed_logins_are_refused():
    assert parse_auth("alice:pw") == [("alice", "pw")]
    assert parse_auth(" alice:p:w , bob:x ") == [("alice", "p:w"), ("bob", "x")]
    assert parse_auth("") == []
    for bad in ("alice", ":pw", "alice:"):
        with pytest.raises(StudioError, match="user:password"):
            parse_auth(bad)


def test_only_loopback_addresses_count_as_private():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.5", "::", "studio.example.com"]))


def test_a_public_studio_needs_a_login_unless_explicitly_insecure(caplog):
    assert check_exposure(Settings()) == []  # loopback, no login: fine
    for public in (Settings(host="0.0.0.0"), Settings(share=True)):
        with pytest.raises(StudioError, match="Refusing to serve .* without a login"):
            check_exposure(public)
        assert check_exposure(Settings(**{**public.__dict__, "auth": "a:b"})) == [("a", "b")]
        assert check_exposure(Settings(**{**public.__dict__, "insecure_no_auth": True})) == []
    assert "WITHOUT a login" in caplog.text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--host", "0.0.0.0"], "Refusing to serve on address 0.0.0.0 without a login"),
        (["--share"], "Refusing to serve on a public share link without a login"),
        (["--host", "0.0.0.0", "--auth", "nocolon"], "Login must look like user:password"),
    ],
)
def test_app_refuses_to_start_exposed_without_a_login(tmp_path, args, needle):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env["STUDIO_OUTPUTS_DIR"] = str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, "app.py", "--port", str(free_port()), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: {result.stderr.split('error: ')[1].strip()}"
    )
    assert needle in result.stderr and "Traceback" not in result.stderr


def _listen_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def test_with_a_login_every_route_asks_for_it(tmp_path, samples):
    env = {**FAST, "STUDIO_AUTH": "alice:s3cret-pw"}
    with running_app(tmp_path, env=env) as url:
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do; what matters is no access
            Client(url, verbose=False)
        for path in ("/gradio_api/info", "/config", "/gradio_api/file=" + str(samples["product"])):
            status, _ = raw_get(url, path)
            assert status in (401, 403), path
        good = Client(url, verbose=False, download_files=False, auth=("alice", "s3cret-pw"))
        result = submit(good, samples["product"]).result(timeout=60)
        assert len(clip_files(result)) == 4
        video = next(v["value"] for v in result[:4] if v["value"])
        status, _ = raw_get(url, video["url"].split(url)[1])
        assert status in (401, 403)  # the clip itself needs the login too


def test_insecure_no_auth_serves_publicly_but_warns(tmp_path):
    env = {**FAST, "STUDIO_HOST": "0.0.0.0", "STUDIO_INSECURE_NO_AUTH": "1"}
    with running_app(tmp_path, env=env) as url:
        port = int(url.rsplit(":", 1)[1])
        assert _listen_addresses(port) == {"00000000"}
    assert "WITHOUT a login" in (tmp_path / "app.log").read_text()


# --- what may be served -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory, samples):
    tmp = tmp_path_factory.mktemp("security")
    secret = tmp / "secret"
    secret.mkdir()
    (secret / "secret.txt").write_bytes(SECRET)
    Image.new("RGB", (200, 200), (200, 30, 30)).save(secret / "secret.png")
    outputs = tmp / "outputs"
    (outputs / "evil").mkdir(parents=True)
    (outputs / "evil" / "link.txt").symlink_to(secret / "secret.txt")
    (outputs / "evil-dir").symlink_to(secret)
    env = {
        **FAST,
        "GRADIO_TEMP_DIR": str(tmp / "gradio-cache"),
        "STUDIO_UPLOAD_RETENTION_MINUTES": "0.05",  # 3 s, so the test can watch it happen
    }
    with running_app(tmp, env=env) as url:
        result = submit(client(url), samples["product"], seed=3).result(timeout=60)
        assert len(clip_files(result)) == 4
        yield url, tmp


def test_the_studio_listens_on_loopback_only_by_default(app):
    url, _ = app
    assert Settings().host == "127.0.0.1"
    assert _listen_addresses(int(url.rsplit(":", 1)[1])) == {"0100007F"}


def test_file_routes_serve_clips_but_nothing_outside_outputs_and_assets(app):
    url, tmp = app
    outputs = (tmp / "outputs").resolve()
    (clip,) = list(outputs.glob("*/*-v1-*.mp4"))
    status, body = raw_get(url, f"/gradio_api/file={clip}")
    assert status == 200 and body == clip.read_bytes()  # the control: clips are downloadable

    app_py = (ROOT / "app.py").read_bytes().splitlines()[0]
    s, o, r = tmp / "secret" / "secret.txt", outputs, ROOT
    attempts = [
        f"/gradio_api/file={s}",
        f"/file={s}",
        f"/gradio_api/file/{s}",
        f"/gradio_api/file={o}/../secret/secret.txt",
        f"/gradio_api/file={o}/evil/../../secret/secret.txt",
        f"/gradio_api/file={o}/%2e%2e/secret/secret.txt",
        f"/gradio_api/file={o}%2f%2e%2e%2fsecret%2fsecret.txt",
        f"/gradio_api/file={o}/%252e%252e%252fsecret%252fsecret.txt",
        f"/gradio_api/file={o}/..%5csecret%5csecret.txt",
        f"/gradio_api/file={o}/evil/link.txt",  # symlink inside outputs pointing outside
        f"/gradio_api/file={o}/evil-dir/secret.txt",
        f"/gradio_api/file={o}/.studio/history.sqlite3",  # our own database
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=%2fetc%2fpasswd",
        "/gradio_api/file=../../../../../../etc/passwd",
        "/gradio_api/file=file:///etc/passwd",
        "/gradio_api/proxy=file:///etc/passwd",
        f"/gradio_api/file={r}/app.py",
        "/gradio_api/file=app.py",
        f"/gradio_api/file={r}/assets/examples/../../app.py",
        "/static/../../app.py",
        "/assets/..%2f..%2fapp.py",
        "/gradio_api/file=" + "/..%2f" * 8 + "etc/passwd",
    ]
    for path in attempts:
        status, body = raw_get(url, path)
        leaked = [m for m in (SECRET, b"root:x:0:0", app_py, b"SQLite format") if m in body]
        assert not (status == 200 and leaked), (path, status, leaked)


def test_the_api_refuses_to_read_a_file_the_user_did_not_upload(app):
    url, tmp = app
    before = set((tmp / "outputs").glob("*/*.mp4"))
    for path in (
        tmp / "secret" / "secret.png",
        f"{tmp}/gradio-cache/../secret/secret.png",
    ):
        image = {"path": str(path), "meta": {"_type": "gradio.FileData"}}
        event, data = call_raw(url, "generate", [image, "product/slow-push-in", "engine",
                                                 "preset", 2, 12, 7, 1.0, ""])  # fmt: skip
        assert event == "error", data
    assert set((tmp / "outputs").glob("*/*.mp4")) == before  # the secret photo was not animated


def _photo_with_private_metadata() -> bytes:
    im = Image.new("RGB", (320, 240), (90, 140, 200))
    exif = Image.Exif()
    exif[0x013B] = EXIF_MARKS[0].decode()  # Artist
    exif[0x010E] = EXIF_MARKS[2].decode()  # ImageDescription
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 7.5), 3: "E", 4: (4.0, 53.0, 1.2), 18: "SECRETDATUM"})
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=90)
    return buf.getvalue()


def test_photo_metadata_and_file_name_never_reach_the_clips_or_manifests(app):
    url, tmp = app
    data = _photo_with_private_metadata()
    assert all(m in data for m in EXIF_MARKS[:2])  # the photo really carries them
    photo = tmp / "jane-home-address.jpg"
    photo.write_bytes(data)
    result = submit(client(url), photo, "scenic/drifting-clouds", seed=11).result(timeout=60)
    names = clip_files(result)
    assert len(names) == 4 and not any("jane" in n for n in names)
    (job,) = {p.parent for p in (tmp / "outputs").glob(f"*/{names[0]}")}
    written = list(job.iterdir())
    assert {p.suffix for p in written} == {".mp4", ".json", ".jpg"}  # clip, manifest, poster
    for path in written:
        content = path.read_bytes()
        assert not [m for m in EXIF_MARKS if m in content], path.name
    manifest = json.loads((job / "manifest.json").read_text())
    assert "GPS" not in json.dumps(manifest) and manifest["input"]["format"] == "JPEG"


def test_uploaded_photos_are_deleted_after_the_upload_retention(app):
    url, tmp = app
    stored = Path(upload(url, _photo_with_private_metadata(), "private.jpg")["path"])
    assert stored.is_file() and (tmp / "gradio-cache") in stored.parents
    deadline = time.monotonic() + 15
    while stored.exists() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not stored.exists(), "the upload outlived its retention"


def test_uploads_over_the_size_cap_are_refused(app):
    url, _ = app
    with pytest.raises(urllib.error.HTTPError) as info:
        upload(url, b"\0" * (51 * 1024 * 1024), "big.jpg")
    assert info.value.code == 413
