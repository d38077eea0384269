"""The /generate API: gradio_client drives it with just a photo and a preset id."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from studio.encode import probe_mp4
from tests.appserver import running_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    with running_app(tmp, env={"STUDIO_LONG_SIDE": "160"}) as url:
        yield url, tmp


@pytest.fixture(scope="module")
def app_url(app):
    return app[0]


def test_generate_endpoint_needs_only_photo_and_preset(app_url, samples):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    info = client.view_api(return_format="dict", print_info=False)
    params = info["named_endpoints"]["/generate"]["parameters"]
    assert [p["parameter_name"] for p in params[:2]] == ["image", "preset_id"]
    assert all(p["parameter_has_default"] for p in params[2:])

    result = client.predict(
        handle_file(str(samples["scenic"])), "scenic/drifting-clouds", api_name="/generate"
    )
    # Video outputs arrive as update dicts ({"value": path, "label": "#1 · variant 3 · score 87"}).
    paths = [Path(v["value"] if isinstance(v, dict) else v) for v in result[:4]]
    assert all("score" in v["label"] for v in result[:4])
    assert len({p.name for p in paths}) == 4
    for p in paths:
        probe = probe_mp4(p)
        assert (probe["width"], probe["height"], probe["frames"]) == (160, 90, 72)


def test_generate_endpoint_refuses_unknown_preset_with_a_sentence(app_url, samples):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    # Gradio's own dropdown check answers first, naming the value and the valid choices.
    with pytest.raises(Exception, match="scenic/nope is not in the list of choices"):
        client.predict(handle_file(str(samples["scenic"])), "scenic/nope", api_name="/generate")
    # ...and keeps serving.
    assert client.view_api(return_format="dict", print_info=False)


def test_studio_starts_without_torch_or_diffusers(tmp_path):
    import subprocess

    code = (
        "import sys, time; t = time.time()\n"
        "from studio.settings import Settings; from studio.ui import build_ui\n"
        "build_ui(Settings(outputs_dir=__import__('pathlib').Path(sys.argv[1])))\n"
        "import json; print(json.dumps({'heavy': [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules],"
        " 'seconds': time.time() - t}))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []


def test_app_answers_within_a_few_seconds(tmp_path):
    import time

    started = time.monotonic()
    with running_app(tmp_path, timeout=20) as url:
        elapsed = time.monotonic() - started
        assert url.startswith("http://127.0.0.1:")
    # ~4 s here (gradio import 1.7 s); the limit leaves room for a slow CI machine.
    assert elapsed < 15, elapsed


def test_download_model_offline_is_one_clear_sentence(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="offline"):
        client.predict("svd-xt", api_name="/download_model")
    # The backend picker lists every checkpoint with its VRAM need, licence and state.
    info = client.view_api(return_format="dict", print_info=False)
    assert "/download_model" in info["named_endpoints"]


REMOVE_CHEST = {"mode": "remove", "points": [[0.3, 0.75]], "radius": 0.1}


def test_subject_endpoint_shows_the_engines_subject_with_the_corrections(app_url, samples):
    from gradio_client import Client, handle_file
    from PIL import Image

    client = Client(app_url, verbose=False)
    photo = handle_file(str(samples["portrait"]))
    plain, none, note = client.predict(photo, [], api_name="/subject")
    corrected, edits, note_after = client.predict(photo, [REMOVE_CHEST], api_name="/subject")
    assert none == [] and edits == [REMOVE_CHEST]
    assert "person matte (1 face found)" in note and "1 correction." in note_after
    with Image.open(plain) as a, Image.open(corrected) as b:
        assert a.size == b.size == (512, 512)  # the preview of the 512x512 portrait
        # At the dab the subject's tint is gone: that spot now reads as dimmed background.
        x, y = 0.3 * 512, 0.75 * 512
        assert sum(b.getpixel((x, y))) < sum(a.getpixel((x, y))) - 40


def test_generate_endpoint_takes_corrections_and_every_manifest_records_them(app, samples):
    from gradio_client import Client, handle_file

    url, tmp = app
    client = Client(url, verbose=False)
    result = client.predict(
        handle_file(str(samples["portrait"])), "portrait/gentle-breath", "engine", "preset", 1, 8,
        5, 1.0, "", [REMOVE_CHEST], api_name="/generate",
    )  # fmt: skip
    clip = Path(result[0]["value"] if isinstance(result[0], dict) else result[0])
    (folder,) = {p.parent for p in (tmp / "outputs").glob(f"*/{clip.name}")}
    for manifest in [folder / "manifest.json", *folder.glob("*-v[0-9]-*.json")]:
        assert json.loads(manifest.read_text())["job"]["subject_edits"] == [REMOVE_CHEST]


def test_a_logins_subject_overlay_is_not_served_to_another_login(tmp_path, samples):
    from urllib.parse import unquote, urlparse

    from gradio_client import Client, handle_file

    from tests.serve.test_hostile_api import _get, _login

    env = {"STUDIO_AUTH": "alice:pw-alice,bob:pw-bob", "STUDIO_LONG_SIDE": "128",
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio-cache")}  # fmt: skip
    with running_app(tmp_path, env=env) as url:
        alice = Client(url, verbose=False, download_files=False, auth=("alice", "pw-alice"))
        shown, _, _ = alice.predict(
            handle_file(str(samples["portrait"])), [REMOVE_CHEST], api_name="/subject"
        )
        served = unquote(urlparse(shown["url"]).path)
        assert _get(url, served, _login(url, "alice", "pw-alice")[1]) == 200
        assert _get(url, served, _login(url, "bob", "pw-bob")[1]) == 404
