"""What the engine believes about a photo (inspect), and the user's corrections to it travelling with the job."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.clips import run_job
from studio.errors import JobError
from studio.inspect import FILES, inspect_photo
from studio.jobs import Job, prepare_job, validate_job
from studio.motion.edits import SubjectEdit
from tests.test_cli import assert_one_error_line, studio

# A dab on the astronaut's suit (inside the person matte) and one on the coffee cup's handle,
# which the automatic matte leaves out.
SUIT = {"mode": "remove", "points": [[0.3, 0.75]], "radius": 0.08}
HANDLE = {"mode": "add", "points": [[0.375, 0.65]], "radius": 0.05}


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def at(image: np.ndarray, point: list[float]) -> int:
    h, w = image.shape[:2]
    return int(image[int(point[1] * h), int(point[0] * w)])


def disc(shape: tuple[int, int], point: list[float], radius: float) -> np.ndarray:
    """Pixels within radius (a share of the longer side) of the point."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    return np.hypot(xs - point[0] * w, ys - point[1] * h) <= radius * max(h, w)


# --- python -m studio inspect ------------------------------------------------------------------


@pytest.fixture(scope="module")
def inspected(tmp_path_factory, samples):
    """The astronaut and the coffee cup inspected on the command line, the astronaut also with
    a correction from a file."""
    tmp = tmp_path_factory.mktemp("inspect")
    edits = tmp / "edits.json"
    edits.write_text(json.dumps([SUIT]))
    runs = {}
    for name, photo, extra in (
        ("portrait", samples["portrait"], ()),
        ("product", samples["product"], ()),
        ("corrected", samples["portrait"], ("--edits", str(edits))),
    ):
        out = tmp / name
        result = studio("inspect", str(photo), "--out", str(out), *extra, tmp=tmp)
        assert result.returncode == 0, result.stderr
        runs[name] = (out, result)
    return runs


def test_inspect_writes_matte_depth_faces_and_overlay_at_the_photos_size(inspected):
    for name, size in (("portrait", (512, 512)), ("product", (600, 400))):
        out, result = inspected[name]
        assert result.stdout.split() == [str(out / f) for f in FILES]
        assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temp files left
        matte, depth, overlay = (read(out / f) for f in ("matte.png", "depth.png", "overlay.png"))
        assert matte.dtype == np.uint8 and matte.ndim == 2
        assert depth.dtype == np.uint16 and depth.ndim == 2
        assert overlay.dtype == np.uint8 and overlay.shape[2] == 3
        for image in (matte, depth, overlay):
            assert image.shape[1::-1] == size
        record = json.loads((out / "faces.json").read_text())
        assert record["photo"] == {"width": size[0], "height": size[1]}
        # The subject the engine moves is nearer than what is around it (1 = near = 65535).
        inside = matte > 128
        assert depth[inside].mean() > depth[~inside].mean() + 2000
        assert depth.max() > 40000  # the whole 16-bit range is used, not 8 bits in 16


def test_faces_json_has_the_astronauts_face_in_photo_pixels_and_none_for_the_coffee(inspected):
    portrait = json.loads((inspected["portrait"][0] / "faces.json").read_text())
    assert portrait["matte"]["source"] == "people" and portrait["matte"]["subject_layer"]
    (face,) = portrait["faces"]
    x0, y0, x1, y1 = face["box"]
    assert 150 < x0 < x1 < 300 and 60 < y0 < y1 < 200  # her face, in the 512x512 photo
    assert face["score"] > 0.5
    assert list(face["keypoints"]) == ["right_eye", "left_eye", "nose_tip", "mouth",
                                       "right_ear", "left_ear"]  # fmt: skip
    assert len(face["landmarks"]) == 468 and all(len(p) == 3 for p in face["landmarks"])
    xs = [p[0] for p in face["landmarks"]]
    assert x0 - 20 < np.median(xs) < x1 + 20  # the mesh sits on the face, in the same pixels
    matte = read(inspected["portrait"][0] / "matte.png")
    assert matte[int((y0 + y1) / 2), int((x0 + x1) / 2)] > 200  # the face is in the subject

    product = json.loads((inspected["product"][0] / "faces.json").read_text())
    assert product["faces"] == [] and product["matte"]["source"] == "automatic"


def test_a_correction_from_a_file_removes_that_area_and_nothing_else(inspected):
    before = read(inspected["portrait"][0] / "matte.png").astype(int)
    after = read(inspected["corrected"][0] / "matte.png").astype(int)
    assert at(before, SUIT["points"][0]) > 200 and at(after, SUIT["points"][0]) < 30
    changed = np.abs(after - before) > 16
    assert changed.sum() > 0.5 * disc(before.shape, SUIT["points"][0], SUIT["radius"]).sum()
    # Only in and just around the dab (its rim follows the photo's own edges).
    assert not (changed & ~disc(before.shape, SUIT["points"][0], 1.3 * SUIT["radius"])).any()
    record = json.loads((inspected["corrected"][0] / "faces.json").read_text())
    assert record["matte"]["source"] == "people+edits" and record["edits"] == [SUIT]
    assert len(record["faces"]) == 1  # a correction changes the matte, not the faces


def test_a_correction_adds_what_the_automatic_matte_left_out(tmp_path, samples, settings):
    table = (0.12, 0.2)  # the wooden table top, left of the saucer: background to the matte
    plain = inspect_photo(samples["product"], tmp_path / "plain", settings)
    added = inspect_photo(samples["product"], tmp_path / "added", settings,
                          (SubjectEdit("add", (table,), 0.05),))  # fmt: skip
    before, after = read(plain[0]), read(added[0])
    assert at(before, table) < 60 and at(after, table) > 200
    assert json.loads(added[2].read_text())["matte"]["source"] == "automatic+edits"


def test_a_bad_photo_is_one_error_line_and_nothing_is_written(tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_bytes(b"this is not a picture at all")
    out = tmp_path / "out"
    result = studio("inspect", str(bogus), "--out", str(out), tmp=tmp_path)
    assert_one_error_line(result, "not a photo")
    assert not out.exists()
    # An existing folder keeps what it had, and gets nothing half-written.
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = studio("inspect", str(bogus), "--out", str(out), tmp=tmp_path)
    assert_one_error_line(result, "not a photo")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "edits.json is not valid JSON"),
        (json.dumps([{"mode": "erase", "points": [[0.5, 0.5]]}]), "'add' or 'remove'"),
        (json.dumps({"subject_edits": "everything"}), "must be a list of strokes"),
    ],
)
def test_a_bad_corrections_file_is_one_error_line_and_nothing_is_written(
    tmp_path, samples, content, needle
):
    edits = tmp_path / "edits.json"
    edits.write_text(content)
    for command in (["inspect"], ["generate", "--preset", "portrait/gentle-breath"]):
        out = tmp_path / "out"
        result = studio(*command, str(samples["portrait"]), "--out", str(out), "--edits",
                        str(edits), tmp=tmp_path)  # fmt: skip
        assert_one_error_line(result, needle)
        assert not out.exists()


def test_a_missing_corrections_file_is_named_as_typed(tmp_path, samples):
    result = studio("inspect", str(samples["portrait"]), "--out", str(tmp_path / "o"),
                    "--edits", "nowhere/edits.json", tmp=tmp_path)  # fmt: skip
    assert_one_error_line(result, "no such file: nowhere/edits.json")


def test_generate_takes_corrections_from_a_file_or_a_past_clips_manifest(tmp_path, samples):
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps([SUIT]))
    common = ["--preset", "portrait/gentle-breath", "--variants", "1", "--seed", "4",
              "--size", "96x96", "--frames", "4", "-q"]  # fmt: skip
    first = studio("generate", str(samples["portrait"]), *common, "--out", str(tmp_path / "a"),
                   "--edits", str(edits), tmp=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    clip = Path(first.stdout.split()[0])
    assert json.loads(clip.with_suffix(".json").read_text())["job"]["subject_edits"] == [SUIT]
    # The clip's own manifest is a corrections file too: the same corrections again.
    again = studio("generate", str(samples["portrait"]), *common, "--out", str(tmp_path / "b"),
                   "--edits", str(clip.with_suffix(".json")), tmp=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    summary = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert summary["job"]["subject_edits"] == [SUIT]


# --- corrections as part of the job -------------------------------------------------------------


def test_a_job_with_corrections_survives_a_json_round_trip():
    job = Job(image="a.png", preset="portrait/gentle-breath", seed=3,
              subject_edits=(SubjectEdit("remove", ((0.3, 0.75), (0.32, 0.7)), 0.08),))  # fmt: skip
    data = json.loads(json.dumps(job.to_dict()))
    assert data["subject_edits"] == [
        {"mode": "remove", "points": [[0.3, 0.75], [0.32, 0.7]], "radius": 0.08}
    ]
    assert Job.from_dict(data) == job


@pytest.mark.parametrize(
    ("edits", "needle"),
    [
        ("cut the cup out", "must be a list of strokes"),
        ([{"mode": "add", "points": [[float("nan"), 0.5]]}], "(x, y) pairs between 0 and 1"),
        ([{"mode": "add", "points": [[0.5, 0.5]], "radius": 9}], "radius must be between"),
        ([{"mode": "add", "points": []}], "needs 1 to 2000 points"),
        ([["add", [0.5, 0.5]]], "must be a stroke with a mode and points"),
    ],
)
def test_impossible_corrections_are_refused_in_one_sentence(edits, needle):
    with pytest.raises(JobError) as info:
        validate_job(Job(image="a.png", preset="portrait/gentle-breath", subject_edits=edits))
    assert needle in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(JobError):
        Job.from_dict({"image": "a.png", "preset": "p/q", "subject_edits": edits})


def test_run_job_hands_the_corrections_to_the_engine_and_every_manifest_records_them(
    tmp_path, samples, settings, monkeypatch
):
    job = Job(image=str(samples["portrait"]), preset="portrait/gentle-breath", seed=5,
              variants=2, frames=4, size=(96, 96), subject_edits=[SUIT])  # fmt: skip
    prepared = prepare_job(job, replace(settings, score=False))
    assert prepared.edits == (SubjectEdit("remove", ((0.3, 0.75),), 0.08),)
    scenes = []
    engine_prepare = prepared.backend.prepare

    def watched(*args, **kwargs):
        scenes.append(engine_prepare(*args, **kwargs))
        return scenes[-1]

    monkeypatch.setattr(prepared.backend, "prepare", watched)
    *_, last = run_job(prepared, tmp_path / "job", settings)
    (scene,) = scenes
    assert scene.subject_source == "people+edits"
    assert at(scene.alpha, SUIT["points"][0]) < 0.1  # the engine moves the suit with the plate
    manifests = [last.manifest, *(c.manifest for c in last.clips)]
    for path in manifests:
        assert json.loads(path.read_text())["job"]["subject_edits"] == [SUIT]
