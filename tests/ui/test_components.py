"""The studio's own inputs: a file must be one Gradio received, a choice one the list offers."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pytest
from gradio.data_classes import FileData, ImageData, ListFiles

from studio.serve.security import NOT_UPLOADED
from studio.ui.components import ChoiceDropdown, PhotoUpload, UploadedFiles


@pytest.fixture
def upload_folder(tmp_path, monkeypatch) -> Path:
    """Gradio's upload folder for this test (where it puts what a browser uploads)."""
    folder = tmp_path / "gradio-uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def uploaded(folder: Path, photo: Path) -> Path:
    """The photo as if a browser had uploaded it: a copy inside the upload folder."""
    (folder / "abc123").mkdir()
    return Path(shutil.copy(photo, folder / "abc123" / photo.name))


def test_photo_upload_hands_over_an_uploaded_photo_undecoded(upload_folder, samples):
    photo = uploaded(upload_folder, samples["product"])
    got = PhotoUpload(type="filepath").preprocess(ImageData(path=str(photo)))
    assert (
        Path(got) == photo.resolve() and Path(got).read_bytes() == samples["product"].read_bytes()
    )


@pytest.mark.parametrize("where", ["sample", "folder", "traversal", "missing"])
def test_photo_upload_refuses_a_path_outside_the_upload_folder_in_one_sentence(
    upload_folder, samples, where
):
    photo = uploaded(upload_folder, samples["product"])
    path = {
        "sample": str(samples["product"]),  # a real photo, but not one that was uploaded
        "folder": str(photo.parent),
        "traversal": f"{upload_folder}/../{samples['product'].name}",
        "missing": str(upload_folder / "abc123" / "gone.png"),
    }[where]
    with pytest.raises(gr.Error) as info:
        PhotoUpload(type="filepath").preprocess(ImageData(path=path))
    assert info.value.message == NOT_UPLOADED


def test_shootout_photos_refuse_the_whole_list_if_one_was_not_uploaded(upload_folder, samples):
    photo = uploaded(upload_folder, samples["product"])
    files = UploadedFiles(file_count="multiple", type="filepath")
    assert files.preprocess(ListFiles(root=[FileData(path=str(photo))])) == [str(photo.resolve())]
    with pytest.raises(gr.Error) as info:
        files.preprocess(ListFiles(root=[FileData(path=str(photo)), FileData(path="/etc/passwd")]))
    assert info.value.message == NOT_UPLOADED


def test_a_choice_the_list_does_not_offer_is_refused_in_one_short_sentence():
    preset = ChoiceDropdown(choices=[("Slow push-in", "product/slow-push-in")],
                            value="product/slow-push-in", label="Motion preset")  # fmt: skip
    assert preset.preprocess("product/slow-push-in") == "product/slow-push-in"
    with pytest.raises(gr.Error) as info:
        preset.preprocess("scenic/nope")
    assert info.value.message == (
        "Motion preset: scenic/nope is not in the list of choices; pick one from the list."
    )
    with pytest.raises(gr.Error, match="send one choice from the list, not several"):
        preset.preprocess(["product/slow-push-in", "product/slow-push-in"])


def test_a_photo_sent_inline_is_held_to_the_studios_upload_cap(tmp_path):
    import base64

    from studio.settings import Settings
    from studio.ui import build_ui

    demo = build_ui(Settings(outputs_dir=tmp_path / "outputs", max_upload_mb=1))
    (photo,) = [b for b in demo.blocks.values() if isinstance(b, PhotoUpload)]
    assert photo.max_bytes == 1024 * 1024
    too_big = "data:image/png;base64," + base64.b64encode(b"\0" * (2 * 1024 * 1024)).decode()
    with pytest.raises(gr.Error, match="larger than the 1 MB limit"):
        photo.preprocess(ImageData(url=too_big, path="x.png"))
