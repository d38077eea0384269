"""The studio's event handlers: plain functions of the app's state (a Studio) and the form."""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
from gradio.processing_utils import hash_bytes
from gradio.route_utils import API_PREFIX
from gradio.utils import get_upload_folder
from gradio_client.utils import encode_file_path

from studio import batch, models, userpresets
from studio.backends import get_backend, list_backends
from studio.backends.base import RenderContext
from studio.cluster import cell_runner
from studio.encode import stage_bytes
from studio.errors import StudioError, failure_message
from studio.images import load_photo
from studio.inspect import PREVIEW_SIDE, describe, overlay, preview_beliefs
from studio.jobs import form_job, prepare_job
from studio.motion.edits import SubjectEdit, parse_edits
from studio.motion.framing import FRAMING_PARAM, explicit_point
from studio.presets import Preset, PresetLibrary, load_library
from studio.scoring import explain
from studio.serve import ownership, queueing, security, webguard
from studio.settings import Settings
from studio.shootout.results import TABLE_HEADER, results_table
from studio.shootout.run import run_shootout
from studio.ui.components import not_in_list, refuse

log = logging.getLogger(__name__)

N_SLOTS = 4
HISTORY_PAGE = 24


@dataclass(frozen=True)
class Studio:
    """What every handler works with: the settings, the presets and the job line (with History)."""

    settings: Settings
    library: PresetLibrary
    runner: queueing.JobRunner

    @classmethod
    def open(cls, settings: Settings, library: PresetLibrary | None = None) -> Studio:
        library = library or load_library(user_dir=settings.user_presets_dir)
        return cls(settings, library, queueing.JobRunner(settings))

    @property
    def default_preset(self) -> str:
        """The preset the form starts on: the library's first (presets are data, in order)."""
        return next(iter(self.library.presets))

    def presets(self, who: str) -> PresetLibrary:
        """The presets `who` sees: the library plus the presets they saved (read now)."""
        return userpresets.library_for(self.library, self.settings.user_presets_dir, who)


def bind(handler: Callable, *args: Any) -> Callable:
    """The handler with its first arguments filled in, as Gradio should see it.

    Gradio injects gr.Request, gr.Progress and gr.SelectData by each parameter's annotation or
    default, which functools.partial hides; this keeps the remaining parameters, their
    annotations and defaults visible, and a generator stays a generator (so it streams).
    """
    if inspect.isgeneratorfunction(handler):

        def bound(*rest, **kwargs):
            yield from handler(*args, *rest, **kwargs)
    else:

        def bound(*rest, **kwargs):
            return handler(*args, *rest, **kwargs)

    functools.update_wrapper(bound, handler)
    signature = inspect.signature(handler)
    bound.__signature__ = signature.replace(
        parameters=list(signature.parameters.values())[len(args) :]
    )
    return bound


def owner(request: gr.Request | None) -> str:
    """The owner id of whoever sent the request (LOCAL without logins)."""
    return ownership.owner_id(getattr(request, "username", None))


def file_url(path: str | Path) -> str:
    """Where the web server serves a file of an allowed folder (Gradio's /file= route)."""
    return f"{API_PREFIX}/file={encode_file_path(path)}"


def pick_preset(library: PresetLibrary, preset_id: Any) -> Preset:
    """One of the library's presets, or the picker's refusal in one sentence."""
    if not isinstance(preset_id, str) or preset_id not in library.presets:
        raise refuse(not_in_list("Motion preset", preset_id))
    return library.presets[preset_id]


def preset_choices(library: PresetLibrary) -> list[tuple[str, str]]:
    return [(f"{p.family.title()} · {p.title}", p.id) for p in library]


def preset_info(studio: Studio, preset_id: str, request: gr.Request = None) -> str:
    """The chosen preset in two lines: what it does, then its moves, length, fps and aspect."""
    try:
        return _describe(studio.presets(owner(request)).get(preset_id))
    except StudioError as exc:
        return str(exc)


def _describe(p: Preset) -> str:
    moves = p.camera.move + "".join(f" + {a.kind}" for a in p.ambient)
    return f"{p.description}  \n*{moves} · {p.duration:g} s · {p.fps} fps · {p.aspect}*"


# --- the prompt and saved presets --------------------------------------------------------------

# The form's sliders (layout.py): a preset's own values are shown within them.
DURATION_RANGE = (1, 10)
FPS_RANGE = (8, 30)
STRENGTH_RANGE = (0, 2)

ENGINE_NO_PROMPT = (
    "The motion engine reads no prompt: the preset's camera move and ambient motion drive it. "
    "Choose a text-guided model as the backend to edit the preset's prompt."
)


def takes_prompt(studio: Studio, backend_id: str) -> bool:
    """Whether a backend reads the prompt (a text-conditioned checkpoint, as the catalog says)."""
    try:
        backend = get_backend(backend_id, studio.settings)
    except StudioError:
        return False
    return bool(getattr(getattr(backend, "checkpoint", None), "text_prompt", False))


def prompt_controls(studio: Studio, backend_id: str):
    """Show the prompt boxes for a backend that reads them, else one line saying why not.

    In the layout's order: the prompt panel, the note shown in its place.
    """
    if takes_prompt(studio, backend_id):
        return gr.update(visible=True), gr.update(visible=False)
    if backend_id == "engine":
        note = ENGINE_NO_PROMPT
    else:
        try:
            name = get_backend(backend_id, studio.settings).checkpoint.name
        except (StudioError, AttributeError):
            name = "This backend"
        note = f"{name} reads no prompt: the photo and the motion strength drive it."
    return gr.update(visible=False), gr.update(value=note, visible=True)


def phrasing_note(preset: Preset) -> str:
    """What the prompt box holds when the preset words its takes in several ways."""
    others = len(preset.prompts)
    if not others:
        return ""
    return (
        f"*The takes alternate between this wording and {others} other"
        f"{'s' if others > 1 else ''} from the preset; a prompt of your own goes to every take.*"
    )


def preset_form(studio: Studio, preset_id: str, request: gr.Request = None):
    """A preset picked: its description, its prompt and negative prompt in their boxes, and
    its length, fps and strength on the sliders.

    In the layout's order: preset info, prompt, negative prompt, phrasing note, duration,
    fps, strength.
    """
    try:
        p = studio.presets(owner(request)).get(preset_id)
    except StudioError as exc:
        return (str(exc), *(gr.update() for _ in range(6)))

    def within(value: float, bounds: tuple[float, float]) -> float:
        return min(max(value, bounds[0]), bounds[1])

    return (_describe(p), p.prompt, p.negative_prompt,
            phrasing_note(p), within(p.duration, DURATION_RANGE), within(p.fps, FPS_RANGE),
            within(p.strength, STRENGTH_RANGE))  # fmt: skip


def preset_list(studio: Studio, preset_id: str, request: gr.Request = None):
    """On page load: this login's presets in the picker (its saved ones too), and the chosen
    preset's prompt in the boxes. In the layout's order: picker, prompt, negative prompt,
    phrasing note."""
    library = studio.presets(owner(request))
    value = preset_id if preset_id in library.presets else studio.default_preset
    p = library.presets[value]
    picker = gr.update(choices=preset_choices(library), value=value)
    return picker, p.prompt, p.negative_prompt, phrasing_note(p)


def _own_text(text: Any, preset_text: str, *, blank: str | None = None) -> Any:
    """A prompt box's text as the job takes it: None (the preset's) when it was left off or
    still holds the preset's own text, `blank` when it was emptied.

    Runs of whitespace (line breaks from a multi-line box) become one space; any other
    control character is left for the job's check to refuse.
    """
    if not isinstance(text, str):
        return text
    text = " ".join(text.split())
    if text == " ".join(preset_text.split()):
        return None
    return text or blank


def save_preset(
    studio: Studio,
    name: str,
    preset_id: str,
    aspect: str = "preset",
    duration: float = 3.0,
    fps: float = 24,
    strength: float = 1.0,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    request: gr.Request = None,
):
    """Save the form as your own preset named `name` (starting from preset_id, with its camera
    and ambient motion); returns the preset picker showing it, and a note. Saving under the
    same name again replaces your earlier one."""
    who = owner(request)
    before = studio.presets(who)
    origin = pick_preset(before, preset_id)
    form = userpresets.Form(
        aspect=None if aspect in (None, "", "preset") else aspect,
        duration=duration or None,
        fps=int(fps) if fps else None,
        strength=strength,
        prompt=_own_text(prompt, origin.prompt),
        negative_prompt=_own_text(negative_prompt, origin.negative_prompt, blank=""),
    )
    folder = userpresets.saved_dir(studio.settings.user_presets_dir, who)
    try:
        saved = userpresets.save_preset(before, folder, name, origin.id, form)
    except StudioError as exc:
        raise refuse(str(exc)) from None
    except OSError as exc:
        log.error("Could not save a preset into %s: %s", folder, exc)
        raise refuse("The preset could not be saved: the presets folder is not writable.") from None
    library = studio.presets(who)
    verb = "Replaced" if saved.id in before.presets else "Saved"
    note = f"{verb} **{saved.title}** ({saved.id}); it is selected in the preset list."
    return gr.update(choices=preset_choices(library), value=saved.id), note


def generate(
    studio: Studio,
    image: str | None,
    preset_id: str,
    backend: str = "engine",
    aspect: str = "preset",
    duration: float = 3.0,
    fps: float = 24,
    seed: float = -1,
    strength: float = 1.0,
    model_path: str = "",
    subject_edits: list | None = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    loop: str | None = "once",
    framing: list | None = None,
    request: gr.Request = None,  # Gradio injects it: who is asking (per-client job limit)
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects it
):
    """Render four variants of the photo with the preset; streams each clip as it finishes.
    loop: "once" (or left off), "seamless" or "boomerang". framing: [x, y] in 0..1 of the
    photo, the point the frame centres on (left off: placed on the subject).
    subject_edits: corrections to the subject, a list of {"mode": "add" or "remove",
    "points": [[x, y], ...] in 0..1 of the photo, "radius": share of its longer side}.
    prompt, negative_prompt: your own wording for a model that reads prompts, for every
    take. Left off (or the preset's own text): the preset's, whose takes alternate between
    its phrasings; an empty negative prompt is none at all."""
    if not image:
        raise refuse("Upload a photo first (or click one of the samples).")
    who = owner(request)
    out_dir = ownership.job_dir(studio.settings.outputs_dir, who)
    ctx = RenderContext()
    library = studio.presets(who)
    chosen = pick_preset(library, preset_id)
    try:
        job = form_job(
            image=image, preset=preset_id, backend=backend, variants=N_SLOTS, aspect=aspect,
            duration=duration, fps=fps, seed=seed, strength=strength,
            model_path=security.model_folder(model_path, studio.settings),
            subject_edits=subject_edits, prompt=_own_text(prompt, chosen.prompt),
            negative_prompt=_own_text(negative_prompt, chosen.negative_prompt, blank=""),
            loop=loop_value(loop),
        )  # fmt: skip
        if framing is not None:  # the point the user pinned in the Subject view
            job = replace(job, params={**job.params, FRAMING_PARAM: framing})
        prepared = prepare_job(job, studio.settings, library)
        progress(0.0, desc="Analysing the photo…")
        # Waits its turn on the device, then streams run_job and records clips in History.
        for update in studio.runner.run(prepared, out_dir, ctx, queueing.client_key(request)):
            progress(update.progress, desc=update.message)
            pct = "" if update.done else f" · {update.progress:.0%}"
            note = f"**{update.message}**{pct} · seed {update.seed}"
            if update.warnings:
                note += "  \n" + "  \n".join(f"⚠ {w}" for w in update.warnings)
            if update.new_clip is not None:
                webguard.hand_out(studio.runner.history, [update.new_clip.path], who)
            yield slot_outputs(update, note, prepared.plans[0].fps)
    except StudioError as exc:
        raise refuse(str(exc)) from None
    except Exception as exc:  # a bug or out of memory: fail this job only, keep serving
        log.exception("Generation failed")
        raise refuse(failure_message(exc)) from None
    # Cancel or a client gone away closes this generator, which closes the job (run_job stops
    # its workers and keeps only published takes).


LOOP_CHOICES = {"once": "Plays once", "seamless": "Seamless loop", "boomerang": "Boomerang"}


def loop_value(loop: Any) -> Any:
    """The job's loop for the form's choice: None plays once; anything else is checked by the job."""
    return None if loop in (None, "", "once") else loop


# --- the Subject view --------------------------------------------------------------------------

MODES = {"add": "Add to subject", "remove": "Remove from subject", "frame": "Move the frame"}
BRUSH_PERCENT = (1, 25, 5)  # the brush slider: radius in % of the photo's longer side


def private_image(studio: Studio, rgb: np.ndarray, who: str) -> str:
    """Put an image the handler made where Gradio serves it from, handed to this owner only.

    The file is written straight into Gradio's upload folder under the name Gradio gives its
    copies (a keyed hash of the bytes), so Gradio serves it as is, and the web guard lets
    only this login read it.
    """
    ok, data = cv2.imencode(".webp", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_WEBP_QUALITY, 92])  # fmt: skip
    if not ok:
        raise ValueError("could not encode the overlay")
    data = data.tobytes()
    path = Path(get_upload_folder()) / hash_bytes(data) / "subject.webp"
    if not path.is_file():
        stage_bytes(data, path).commit()
    webguard.hand_out(studio.runner.history, [path], who)
    return str(path)


def _subject_outputs(
    studio: Studio, image: str, edits: tuple[SubjectEdit, ...], who: str, frame: Any = None
):
    """The Subject view's outputs: the overlay, the corrections (plain data), the note.
    frame: (aspect w/h, pinned point or None) draws the frame that aspect will show."""
    photo = load_photo(image, max_side=PREVIEW_SIDE,
                       max_bytes=studio.settings.max_upload_mb * 1024 * 1024)  # fmt: skip
    beliefs = preview_beliefs(photo.rgb, edits)
    drawn = overlay(photo.rgb, beliefs, edits)
    note = describe(beliefs, edits)
    if frame is not None:
        ratio, pin = frame
        h, w = drawn.shape[:2]
        x, y, cw, ch = frame_rect(beliefs, (w, h), ratio, pin)
        t = max(2, round(max(h, w) / 200))
        cv2.rectangle(drawn, (x, y), (x + cw - 1, y + ch - 1), FRAME_COLOUR, t, cv2.LINE_AA)
        note += " The white frame is what the clip shows" + (
            " (moved by you; Reset puts it back)." if pin else "."
        )
    shown = private_image(studio, drawn, who)
    return shown, [e.to_dict() for e in edits], note


FRAME_COLOUR = (255, 255, 255)


def frame_rect(
    beliefs: Any, size: tuple[int, int], ratio: float, pin: tuple[float, float] | None
) -> tuple[int, int, int, int]:
    """The part of a picture of size (w, h) a clip of this w/h ratio shows: centred on the
    pinned point (0..1), else placed on the subject as the engine places it (framing)."""
    from studio.motion.framing import crop_for

    w, h = size
    if pin is None:
        return crop_for(beliefs, (w, h), ratio)
    cw, ch = (min(w, round(h * ratio)), h) if w / h > ratio else (w, min(h, round(w / ratio)))
    x = int(np.clip(round(pin[0] * w - cw / 2), 0, w - cw))
    y = int(np.clip(round(pin[1] * h - ch / 2), 0, h - ch))
    return x, y, cw, ch


def frame_of(studio: Studio, aspect: Any, preset_id: Any, image: str, who: str) -> float | None:
    """The w/h of the clip the form asks for (its aspect, else the preset's); None if unknown."""
    from studio.presets import ASPECTS

    key = aspect if aspect not in (None, "", "preset") else None
    if key is None:
        preset = studio.presets(who).presets.get(preset_id) if isinstance(preset_id, str) else None
        key = preset.aspect if preset else None
    if not isinstance(key, str) or key not in ASPECTS:
        return None
    if ASPECTS[key].ratio is None:  # "match": the photo's own shape, nothing is cut
        return None
    return float(ASPECTS[key].ratio)


def _pin(framing: Any) -> tuple[float, float] | None:
    try:
        return explicit_point({"framing": framing})
    except StudioError as exc:
        raise refuse(str(exc)) from None


def subject_view(
    studio: Studio, image: str | None, subject_edits: list | None = None,
    request: gr.Request = None,  # before the new inputs: callers pass it in this place
    framing: list | None = None, aspect: str | None = None, preset_id: str | None = None,
):  # fmt: skip
    """What the engine takes as the photo's subject, with these corrections: an overlay (the
    subject tinted and outlined, faces boxed, and the frame the aspect shows), the corrections
    as checked, and one line. framing: the pinned framing point [x, y] in 0..1, or None."""
    if not image:
        raise refuse("Upload a photo first (or click one of the samples).")
    who = owner(request)
    try:
        ratio = frame_of(studio, aspect, preset_id, image, who)
        frame = None if ratio is None else (ratio, _pin(framing))
        return _subject_outputs(studio, image, parse_edits(subject_edits), who, frame)
    except StudioError as exc:
        raise refuse(str(exc)) from None


def subject_new_photo(
    studio: Studio, image: str | None, request: gr.Request = None,
    aspect: str | None = None, preset_id: str | None = None,
):  # fmt: skip
    """A new photo: its subject, with no corrections, and the frame the form's aspect shows
    (the same picture Undo and Reset give back); a photo that cannot be used is named in the
    note (Generate says so again) instead of a pop-up on every upload."""
    if not image:
        return None, [], "Upload a photo to see what the engine takes as its subject."
    who = owner(request)
    try:
        ratio = frame_of(studio, aspect, preset_id, image, who)
        frame = None if ratio is None else (ratio, None)
        return _subject_outputs(studio, image, (), who, frame)
    except StudioError as exc:
        return None, [], str(exc)


def subject_click(
    studio: Studio,
    image: str | None,
    subject_edits: list | None,
    mode: str,
    brush: float,
    evt: gr.SelectData,
    request: gr.Request = None,
):
    """A click on the overlay adds (or removes) a round area at that pixel to the subject."""
    if not image:
        raise refuse("Upload a photo first (or click one of the samples).")
    try:
        edits = parse_edits(subject_edits)
        photo = load_photo(image, max_side=PREVIEW_SIDE,
                           max_bytes=studio.settings.max_upload_mb * 1024 * 1024)  # fmt: skip
        h, w = photo.rgb.shape[:2]
        index = evt.index if isinstance(evt.index, list | tuple) else ()
        if len(index) != 2 or not all(isinstance(v, int | float) for v in index):
            raise refuse("Click a point on the picture.")
        radius = min(max(float(brush or BRUSH_PERCENT[2]), BRUSH_PERCENT[0]), BRUSH_PERCENT[1])
        click = {"mode": mode if mode in ("add", "remove") else "add",
                 "points": [[(index[0] + 0.5) / w, (index[1] + 0.5) / h]], "radius": radius / 100}  # fmt: skip
        edits = parse_edits([*edits, click])
        return _subject_outputs(studio, image, edits, owner(request))
    except StudioError as exc:
        raise refuse(str(exc)) from None


def subject_pick(
    studio: Studio,
    image: str | None,
    subject_edits: list | None,
    mode: str,
    brush: float,
    framing: list | None,
    aspect: str | None,
    preset_id: str | None,
    evt: gr.SelectData,
    request: gr.Request = None,
):
    """A click on the overlay: in "Move the frame" mode it pins the framing point there
    (params["framing"]), else it corrects the subject. Outputs: the overlay, the corrections,
    the note, the framing point."""
    if not image:
        raise refuse("Upload a photo first (or click one of the samples).")
    if mode != "frame":
        shown, edits, _ = subject_click(studio, image, subject_edits, mode, brush, evt, request)
        framing = None if framing is None else list(_pin(framing))
        return (*subject_view(studio, image, edits, request, framing, aspect, preset_id), framing)
    try:
        photo = load_photo(image, max_side=PREVIEW_SIDE,
                           max_bytes=studio.settings.max_upload_mb * 1024 * 1024)  # fmt: skip
    except StudioError as exc:
        raise refuse(str(exc)) from None
    h, w = photo.rgb.shape[:2]
    index = evt.index if isinstance(evt.index, list | tuple) else ()
    if len(index) != 2 or not all(isinstance(v, int | float) for v in index):
        raise refuse("Click a point on the picture.")
    pin = [round(min(max((index[0] + 0.5) / w, 0.0), 1.0), 4),
           round(min(max((index[1] + 0.5) / h, 0.0), 1.0), 4)]  # fmt: skip
    return (*subject_view(studio, image, subject_edits, request, pin, aspect, preset_id), pin)


def subject_undo(subject_edits: list | None) -> list:
    """The corrections without the last one (subject_view then redraws)."""
    return list(subject_edits[:-1]) if isinstance(subject_edits, list) else []


def subject_reset() -> list:
    """No corrections: back to the engine's own subject (subject_view then redraws)."""
    return []


def subject_reset_all() -> tuple[list, None]:
    """Reset: no corrections and no pinned frame (subject_view then redraws)."""
    return [], None


def slot_outputs(update, note: str, fps: int) -> tuple:
    """Outputs for one update: clips by variant while rendering, best-first once ranked.

    In /generate's output order: four videos, the clips state, the status, the Selected panel,
    the download button, the scores table, the comparison bar's fps, four Select buttons and
    the slot names. A slot's take is named in the same words on its label, its Select button
    and the Selected panel: by rank once ranked ("#2 · variant 4", "Select #2", "#2 (variant
    4)"), by variant before (slot k holds variant k while rendering).
    """
    by_index = {c.index: c for c in update.clips}
    ranked = bool(update.done and update.ranking)
    badges = update.badges or {}
    videos, paths, buttons, names = [], [], [], []
    for slot in range(N_SLOTS):
        if ranked:
            clip = by_index.get(update.ranking[slot]) if slot < len(update.ranking) else None
        else:
            clip = by_index.get(slot)
        if clip is None:  # still rendering, or the take failed
            text = f"#{slot + 1} · no take" if ranked else f"Variant {slot + 1}"
            button = f"#{slot + 1}" if ranked else f"variant {slot + 1}"
            videos.append(gr.update(value=None, label=text))
            paths.append(None)
            names.append(None)
        else:
            variant = clip.index + 1
            if ranked:
                score, marks = clip.score, badges.get(clip.index, [])
                text = explain.label(slot + 1, variant, score, marks)
                button, name = f"#{slot + 1}", f"#{slot + 1} (variant {variant})"
            else:
                text, button = f"Variant {variant}", f"variant {variant}"
                name = button
            videos.append(gr.update(value=str(clip.path), label=text))
            paths.append(str(clip.path))
            names.append(name)
        buttons.append(gr.update(value=f"Select {button}"))
    if not ranked:
        return (*videos, paths, note, gr.update(), gr.update(), gr.update(), fps,
                *buttons, names)  # fmt: skip
    # Ranked: the best take is preselected in the download panel.
    best = by_index[update.ranking[0]]
    rows = [
        (f"#{k + 1} variant {i + 1}", by_index[i].score, badges.get(i, []))
        for k, i in enumerate(update.ranking)
    ]
    return (
        *videos,
        paths,
        note + " · best take preselected (keys 1–4 pick another)",
        gr.update(value=str(best.path), label=f"Selected: {names[0]}"),
        gr.update(value=str(best.path), visible=True, label=f"Download {best.path.name}"),
        explain.table_html(rows),
        fps,
        *buttons,
        names,
    )


def select(
    studio: Studio, index: int, clips: list[str | None], names: list[str | None] | None = None
):
    """Pick the take in slot `index` (0-based), named as its slot names it."""
    path = clips[index] if clips and index < len(clips) else None
    if not path:
        raise refuse("That variant is not ready yet.")
    studio.runner.history.select(path)  # a selected clip is kept by the retention sweep
    name = (names[index] if names and index < len(names) else None) or f"#{index + 1}"
    return (
        gr.update(value=path, label=f"Selected: {name}"),
        gr.update(value=path, visible=True, label=f"Download {Path(path).name}"),
        index + 1,
    )


def cancelled(studio: Studio, request: gr.Request = None) -> str:
    """After Cancel: say that the job stopped and how many takes were kept."""
    return studio.runner.cancelled_note(queueing.client_key(request))


def history_view(studio: Studio, page: int, request: gr.Request | None):
    """One page of finished clips (this login's only), newest first, as posters.

    In the History panel's order: gallery items, their clip paths, the page shown, the page
    note, and the Newer and Older buttons.
    """
    history = studio.runner.history
    who = owner(request) if studio.settings.auth else None  # None: one local user sees all
    total = history.count(owner=who)
    pages = max(1, math.ceil(total / HISTORY_PAGE))
    page = min(max(0, int(page or 0)), pages - 1)
    entries = history.recent(HISTORY_PAGE, owner=who, offset=page * HISTORY_PAGE)
    items = [(str(e.poster or e.path), e.caption) for e in entries]
    webguard.hand_out(history, [i for i, _ in items], owner(request))
    note = f"Page {page + 1} of {pages} · {total} clips" if total else "No clips yet."
    return (items, [str(e.path) for e in entries], page, note,
            gr.update(interactive=page > 0), gr.update(interactive=page < pages - 1))  # fmt: skip


def history_latest(studio: Studio, request: gr.Request = None):
    """The newest page of History (after a job or a Select)."""
    return history_view(studio, 0, request)


def newer_page(studio: Studio, page: int, request: gr.Request = None):
    return history_view(studio, page - 1, request)


def older_page(studio: Studio, page: int, request: gr.Request = None):
    return history_view(studio, page + 1, request)


def page_load(studio: Studio, request: gr.Request = None):
    # No docstring: Gradio would publish it as the description of the /history endpoint.
    for w in studio.presets(owner(request)).warnings:  # a broken user preset file, named
        gr.Warning(w)
    return history_view(studio, 0, request)


def open_past(studio: Studio, paths: list[str], evt: gr.SelectData, request: gr.Request = None):
    """A History item clicked: show that clip in the Selected panel, ready to download."""
    # The index into this page's own list: the browser's idea of the path is not trusted.
    index = evt.index if isinstance(evt.index, int) else -1
    if not paths or not 0 <= index < len(paths) or not Path(paths[index]).is_file():
        raise refuse("That clip is no longer available.")
    path = paths[index]
    webguard.hand_out(studio.runner.history, [path], owner(request))
    return (gr.update(value=path, label=f"Selected from History: {Path(path).name}"),
            gr.update(value=path, visible=True, label=f"Download {Path(path).name}"))  # fmt: skip


def shootout(
    studio: Studio,
    files: list[str] | None,
    presets: list[str] | None,
    backends: list[str] | None,
    variants: float = 2,
    seed: float = -1,
    request: gr.Request = None,  # Gradio injects it: whose report this is
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects it
):
    """Run every photo x preset x backend with shared seeds; returns a table and the report."""
    if not files:
        raise refuse("Add at least one photo.")
    who = owner(request)
    out_dir = ownership.job_dir(studio.settings.outputs_dir, who, kind="shootout")
    try:
        result = run_shootout(
            files, presets or [], backends or [], out_dir, studio.settings,
            seed=None if seed is None or seed == -1 else seed, variants=variants,
            progress=lambda f, m: progress(f, desc=m), runner=cell_runner(studio.settings),
        )  # fmt: skip
    except StudioError as exc:
        raise refuse(str(exc)) from None
    failed = len(result.failed)
    note = (
        f"**Done in {result.elapsed_s:.0f} s**: {len(result.rows) - failed} clips, {failed} "
        f"failed. [Open the report]({file_url(result.report)}) (clips side by side, sortable table)."
    )
    files_out = [str(p) for p in (result.report, result.csv, result.json) if p]
    webguard.hand_out(studio.runner.history, files_out, who)
    return note, gr.update(value=results_table(result), headers=TABLE_HEADER), files_out


def download_model(
    studio: Studio,
    backend_id: str,
    progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - Gradio injects it
):
    """Download the chosen checkpoint into the Hugging Face cache (resumable)."""
    try:
        note = models.download_checkpoint(backend_id)
    except StudioError as exc:
        raise refuse(str(exc)) from None
    return f"{note}  \n{models.backend_markdown(backend_id)}", refresh_backends(studio)


def refresh_backends(studio: Studio):
    """The picker's labels carry each checkpoint's state (not downloaded/on disk/loaded)."""
    return gr.update(choices=models.backend_choices(list_backends(studio.settings)))


# --- the selected take: exports, and several photos in one go ------------------------------

FORMAT_CHOICES = {"mp4": "MP4", "webm": "WebM", "gif": "GIF"}


def platform_choices() -> list[tuple[str, str]]:
    """The export panel's frames: the clip's own, then each platform of presets/exports.yaml."""
    found = batch.targets()
    return [("The clip's own size", "clip")] + [
        (f"{t.title} · {t.width}x{t.height} ({t.use})" if t.use else t.title, t.id)
        for t in found.values()
    ]


def select_take(
    studio: Studio, index: int, clips: list[str | None], names: list[str | None] | None = None
):
    """select(), and the take for the export panel (kept on the server, never the browser's)."""
    return (*select(studio, index, clips, names), clips[index])


def open_past_take(
    studio: Studio, paths: list[str], evt: gr.SelectData, request: gr.Request = None
):
    """open_past(), and the take for the export panel."""
    shown = open_past(studio, paths, evt, request)
    return (*shown, paths[evt.index])


def best_take(clips: list[str | None]) -> str | None:
    """After a job: the take preselected in the download panel (the first slot, best once ranked)."""
    return next((c for c in clips or [] if c), None)


def _own_take(studio: Studio, clip: Any, who: str) -> Path:
    """The take as a path, if it is one of this login's finished clips; else one sentence."""
    if not isinstance(clip, str) or not clip:
        raise refuse("Select a take first (Select under a variant, or a clip in History).")
    path = Path(clip)
    owner_found = ownership.owner_of_path(path, Path(studio.settings.outputs_dir))
    entry = studio.runner.history.get(path) if path.is_file() else None
    if entry is None or owner_found is None or (studio.settings.auth and owner_found != who):
        raise refuse("That clip is no longer available.")
    return path


def export_take(
    studio: Studio,
    clip: str | None,
    fmt: str = "mp4",
    platform: str = "clip",
    gif_cap_mb: float = 8,
    request: gr.Request = None,
):
    """Export the selected take as MP4, WebM or GIF for a platform's frame (cropped on its
    subject, resized with lanczos), beside the take. Returns the download and a note."""
    who = owner(request)
    path = _own_take(studio, clip, who)
    try:
        fmt = batch.check_format(fmt)
        target = batch.pick_platform(None if platform == "clip" else platform)
        cap = batch.check_gif_cap(gif_cap_mb) if fmt == "gif" else None
        entry = studio.runner.history.get(path)
        poster = path.with_suffix(".jpg")
        framer = None
        if poster.is_file():  # a frame of the take: its subject places the crop
            framer = batch.Framer(cv2.cvtColor(cv2.imread(str(poster)), cv2.COLOR_BGR2RGB))
        if target is None and fmt == "mp4":
            done_path, note = path, "The take itself is the MP4."
        else:
            done = batch.export_one(path, (entry.width, entry.height), entry.fps or 24, fmt,
                                    target, framer, cap)  # fmt: skip
            done_path = done.path
            note = (f"**{FORMAT_CHOICES[fmt]}** {done.width}x{done.height}, {done.fps:g} fps, "
                    f"{done.duration:.1f} s, {done.bytes / 1e6:.1f} MB")  # fmt: skip
            if done.warning:
                note += f"  \n⚠ {done.warning}"
    except StudioError as exc:
        raise refuse(str(exc)) from None
    webguard.hand_out(studio.runner.history, [done_path], who)
    button = gr.update(value=str(done_path), visible=True, label=f"Download {done_path.name}")
    return button, note


def _batch_gallery(studio: Studio, jobs: list[dict]) -> tuple[list, list[str]]:
    """Every take of a batch as posters (captions say which photo, ★ the selected), and paths."""
    items, paths = [], []
    history = studio.runner.history
    for job in jobs:
        for e in sorted(history.in_folder(job["folder"]), key=lambda e: e.variant):
            star = " · ★ selected" if e.selected else ""
            items.append((str(e.poster or e.path), f"Photo {job['k']} · variant {e.variant}{star}"))
            paths.append(str(e.path))
    return items, paths


def batch_generate(
    studio: Studio,
    files: list[str] | None,
    preset_id: str,
    backend: str = "engine",
    aspect: str = "preset",
    duration: float = 3.0,
    fps: float = 24,
    seed: float = -1,
    strength: float = 1.0,
    model_path: str = "",
    prompt: str | None = None,
    negative_prompt: str | None = None,
    loop: str | None = "once",
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects it
):
    """Four takes of every photo with the same preset and settings, one photo after another
    (each waits its turn in the device's line, so other users' jobs go in between); one
    progress line per photo. A photo that cannot be used says why; the rest go on.

    In the batch panel's order: the progress lines, the takes gallery, their paths, the jobs."""
    if not files:
        raise refuse("Add at least one photo.")
    if not isinstance(files, list) or len(files) > batch.MAX_BATCH:
        raise refuse(f"Add at most {batch.MAX_BATCH} photos at a time.")
    who = owner(request)
    library = studio.presets(who)
    chosen = pick_preset(library, preset_id)
    n = len(files)
    lines = [batch.photo_line(k, n, Path(f).name, "waiting") for k, f in enumerate(files, 1)]
    jobs: list[dict] = []

    def outputs():
        items, paths = _batch_gallery(studio, jobs)
        return "  \n".join(lines), items, paths, list(jobs)

    for k, image in enumerate(files, 1):
        name = Path(image).name
        out_dir = ownership.job_dir(studio.settings.outputs_dir, who)
        try:
            job = form_job(
                image=image, preset=preset_id, backend=backend, variants=N_SLOTS, aspect=aspect,
                duration=duration, fps=fps, seed=seed, strength=strength,
                model_path=security.model_folder(model_path, studio.settings),
                prompt=_own_text(prompt, chosen.prompt),
                negative_prompt=_own_text(negative_prompt, chosen.negative_prompt, blank=""),
                loop=loop_value(loop),
            )  # fmt: skip
            prepared = prepare_job(job, studio.settings, library)
            ctx = RenderContext()
            for update in studio.runner.run(prepared, out_dir, ctx, queueing.client_key(request)):
                progress((k - 1 + update.progress) / n, desc=f"Photo {k} of {n}: {update.message}")
                pct = "" if update.done else f" · {update.progress:.0%}"
                lines[k - 1] = batch.photo_line(k, n, name, f"{update.message}{pct}")
                if update.new_clip is not None:
                    if not jobs or jobs[-1]["folder"] != str(out_dir):
                        jobs.append({"k": k, "folder": str(out_dir)})
                    webguard.hand_out(studio.runner.history, [update.new_clip.path,
                                      update.new_clip.path.with_suffix(".jpg")], who)  # fmt: skip
                    yield outputs()
            lines[k - 1] = batch.photo_line(k, n, name, f"done · seed {prepared.seed}")
        except StudioError as exc:
            lines[k - 1] = batch.photo_line(k, n, name, f"⚠ {exc}")
        except Exception as exc:  # a bug or out of memory: this photo only
            log.exception("Generation failed for a photo of a batch")
            lines[k - 1] = batch.photo_line(k, n, name, f"⚠ {failure_message(exc)}")
        yield outputs()


def batch_pick(
    studio: Studio, paths: list[str], jobs: list[dict], evt: gr.SelectData,
    request: gr.Request = None,
):  # fmt: skip
    """A take of the batch clicked: star it (one per photo) and open it in the Selected panel.

    In the layout's order: the Selected clip, its download, the take, the gallery."""
    index = evt.index if isinstance(evt.index, int) else -1
    if not paths or not 0 <= index < len(paths) or not Path(paths[index]).is_file():
        raise refuse("That clip is no longer available.")
    path = paths[index]
    studio.runner.history.select(path)
    webguard.hand_out(studio.runner.history, [path], owner(request))
    items, _ = _batch_gallery(studio, jobs or [])
    name = Path(path).name
    return (gr.update(value=path, label=f"Selected: {name}"),
            gr.update(value=path, visible=True, label=f"Download {name}"), path, items)  # fmt: skip


def batch_zip(studio: Studio, jobs: list[dict] | None, request: gr.Request = None):
    """One ZIP of the selected take of each photo of the batch, with their manifests."""
    who = owner(request)
    members = []
    for job in jobs or []:
        chosen = [e for e in studio.runner.history.in_folder(job["folder"]) if e.selected]
        members += batch.selected_members(chosen, prefix=f"photo-{job['k']}/")
    if not members:
        raise refuse("Select a take first: click one take of each photo you want.")
    folder = ownership.job_dir(studio.settings.outputs_dir, who, kind="zip")
    try:
        path = batch.write_zip(members, folder / "selected-takes.zip")
    except StudioError as exc:
        raise refuse(str(exc)) from None
    webguard.hand_out(studio.runner.history, [path], who)
    takes = sum(1 for _, n in members if n.endswith(".mp4"))
    return gr.update(value=str(path), visible=True, label=f"Download ZIP ({takes} takes)")
