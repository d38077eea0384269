"""The artifact figure sees layer defects planted in real engine takes, and clean takes rank above them."""

from __future__ import annotations

from functools import cache

import cv2
import pytest

from studio.scoring import METRIC_INFO, ClipScore, rank, score_frames
from studio.scoring.explain import table_html
from tests import scoring_planted as planted
from tests.test_scoring import clips, photo, render

PHOTOS = tuple(planted.JOBS)


@cache
def clean_scores(name: str) -> tuple[ClipScore, ...]:
    source = planted.photo(name)
    return tuple(score_frames(t.frames, source=source) for t in planted.takes(name))


@cache
def planted_score(name: str, kind: str) -> ClipScore:
    """Each kind of defect goes into a different take of the job."""
    take = planted.takes(name)[planted.KINDS.index(kind)]
    return score_frames(planted.PLANT[kind](take), source=planted.photo(name))


def test_clean_engine_takes_have_a_low_artifact_figure():
    # Parallax, revealed background and breathing are not defects.
    figures = {n: [s.metrics["artifacts"] for s in clean_scores(n)] for n in PHOTOS}
    assert max(max(f) for f in figures.values()) < 0.15, figures


@pytest.mark.parametrize("kind", planted.KINDS)
@pytest.mark.parametrize("name", PHOTOS)
def test_a_planted_defect_is_clearly_above_every_clean_take(name, kind):
    clean = max(s.metrics["artifacts"] for n in PHOTOS for s in clean_scores(n))
    figure = planted_score(name, kind).metrics["artifacts"]
    assert figure > 0.4 and figure > clean + 0.25, (figure, clean)


@pytest.mark.parametrize("kind", planted.KINDS)
@pytest.mark.parametrize("name", PHOTOS)
def test_a_take_with_a_planted_defect_never_ranks_first_among_clean_takes(name, kind):
    takes = list(clean_scores(name))
    slot = planted.KINDS.index(kind)
    takes[slot] = planted_score(name, kind)
    order = rank(takes)
    assert order[0] != slot, [round(t.score, 1) for t in takes]
    assert takes[slot].score < clean_scores(name)[slot].score - 10


def test_colour_and_brightness_changes_are_not_artifacts():
    for kind in ("reference", "flicker", "drift", "jitter"):
        assert score_frames(clips()[kind]).metrics["artifacts"] < 0.1, kind


def test_a_thin_line_appearing_on_a_push_in_is_an_artifact():
    frames = render(photo("coffee.png"), size=(512, 288))
    seamed = frames.copy()
    for t in range(len(frames) // 3, len(frames)):
        # A 1 px blue-grey arc round the cup that grows as the clip goes on.
        sweep = 300 * (t - len(frames) // 3) / (len(frames) - len(frames) // 3)
        cv2.ellipse(seamed[t], (250, 120), (110, 95), 0, 120, 120 + sweep, planted.SEAM_COLOUR, 1)
    clean, seam = score_frames(frames), score_frames(seamed)
    assert clean.metrics["artifacts"] < 0.1
    assert seam.metrics["artifacts"] > 0.4
    assert seam.score < clean.score - 10


def test_the_score_table_explains_edge_artifacts():
    title, sentence, unit, higher = METRIC_INFO["artifacts"]
    assert title == "Edge artifacts" and unit == "0-1" and higher is False
    page = table_html([("variant 1", clean_scores("coffee.png")[0].to_dict(), [])])
    assert "Edge artifacts" in page and "seams" in sentence and "holes" in sentence


def test_a_blink_is_life_not_an_artifact():
    from tests.test_scoring_faces import closed_eyes, push_in

    frames = push_in()
    frames[20:30] = push_in(swap_to=closed_eyes())[20:30]
    scored = score_frames(frames)
    assert scored.metrics["face_consistency"] > 0.9
    assert scored.metrics["artifacts"] < 0.1
