"""The Gradio studio: Blocks layout and event wiring only; the work happens in studio functions."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.exceptions import InvalidPathError
from gradio.utils import get_upload_folder
from pydantic import ValidationError

from studio.backends import list_backends
from studio.backends.base import RenderContext
from studio.errors import StudioError, clip_text, failure_message
from studio.jobs import form_job, prepare_job
from studio.presets import ASPECTS, PresetLibrary, load_library
from studio.scoring import explain
from studio.serve import ownership, queueing, retention, security, webguard
from studio.settings import Settings
from studio.shootout.run import run_shootout

log = logging.getLogger(__name__)

N_SLOTS = 4
HISTORY_PAGE = 24
ASPECT_CHOICES = [("Preset default", "preset")] + [(a.label, key) for key, a in ASPECTS.items()]
ASSETS = Path(__file__).resolve().parent.parent / "assets"
CSS = (ASSETS / "studio.css").read_text(encoding="utf-8")


class StudioBlocks(gr.Blocks):
    """Blocks whose refusal of a file path is the studio's own sentence.

    Gradio refuses a marked file outside its upload folder itself, in a message that quotes
    the path and sometimes the server's blocked folders; the studio says one plain sentence.
    """

    async def preprocess_data(self, *args, **kwargs):
        try:
            return await super().preprocess_data(*args, **kwargs)
        except InvalidPathError:
            raise _refuse(security.NOT_UPLOADED) from None
        except ValidationError as exc:  # a malformed input, quoted whole by pydantic
            if exc.title in ("FileData", "ListFiles", "ImageData"):
                raise _refuse(security.NOT_UPLOADED) from None
            raise _refuse("One of the inputs is not in a form the studio accepts.") from None


def _refuse(sentence: str) -> gr.Error:
    return gr.Error(sentence, print_exception=False)


class PhotoUpload(gr.Image):
    """An image upload that hands our code the original file, undecoded.

    gr.Image would open and maybe convert the file with PIL before we see it; the
    studio's own loader does that safely (bomb check before decoding, clear refusals).
    Only a file Gradio itself received (its upload folder) or inline data is accepted.
    """

    is_template = True  # render with the stock Image component in the browser
    max_bytes = 50 * 1024 * 1024  # build_ui sets the studio's upload cap

    def preprocess(self, payload: Any) -> str | None:
        if payload is None:
            return None
        url = getattr(payload, "url", None) or ""
        if isinstance(url, str) and url.startswith("data:"):
            if len(url) > self.max_bytes * 4 // 3 + 1024:  # base64 is 4/3 of the bytes
                raise _refuse(f"This photo is larger than the {self.max_bytes >> 20} MB limit.")
            return super().preprocess(payload)  # decoded into Gradio's upload folder
        try:
            return str(security.uploaded_file(getattr(payload, "path", None), get_upload_folder()))
        except StudioError as exc:
            raise _refuse(str(exc)) from None


class UploadedFiles(gr.File):
    """A multi-file upload that accepts only files Gradio itself received (its upload folder)."""

    is_template = True  # render with the stock File component in the browser

    def preprocess(self, payload: Any) -> list[str] | None:
        if payload is None:
            return None
        items = payload.root if hasattr(payload, "root") else [payload]
        try:
            return [
                str(security.uploaded_file(getattr(f, "path", None), get_upload_folder()))
                for f in items
            ]
        except StudioError as exc:
            raise _refuse(str(exc)) from None


class ChoiceDropdown(gr.Dropdown):
    """A dropdown that refuses a value it does not offer (sent through the API) in one short
    sentence, instead of Gradio's message that echoes the value and every choice."""

    is_template = True  # render with the stock Dropdown component in the browser

    def preprocess(self, payload: Any) -> Any:
        choices = [value for _, value in self.choices]
        name = self.label or "Choice"
        if isinstance(payload, list | tuple | dict) and not self.multiselect:
            raise _refuse(f"{name}: send one choice from the list, not several.")
        values = payload if isinstance(payload, list) else [payload]
        for value in values:
            if value is not None and (
                not isinstance(value, str | int | float) or value not in choices
            ):
                raise _refuse(
                    f"{name}: {clip_text(value)} is not in the list of choices; "
                    "pick one from the list."
                )
        return super().preprocess(payload)


def _owner(request: gr.Request | None) -> str:
    """The owner id of whoever sent the request (LOCAL without logins)."""
    return ownership.owner_id(getattr(request, "username", None))


def _preset_choices(library: PresetLibrary) -> list[tuple[str, str]]:
    return [(f"{p.family.title()} · {p.title}", p.id) for p in library]


def _preset_info(library: PresetLibrary, preset_id: str) -> str:
    try:
        p = library.get(preset_id)
    except StudioError as exc:
        return str(exc)
    moves = p.camera.move + "".join(f" + {a.kind}" for a in p.ambient)
    return f"{p.description}  \n*{moves} · {p.duration:g} s · {p.fps} fps · {p.aspect}*"


def build_ui(settings: Settings, library: PresetLibrary | None = None) -> gr.Blocks:
    library = library or load_library(user_dir=settings.user_presets_dir)
    examples = sorted(
        p for p in settings.examples_dir.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )
    default_preset = (
        "product/slow-push-in"
        if "product/slow-push-in" in library.presets
        else next(iter(library.presets))
    )

    def generate(
        image: str | None,
        preset_id: str,
        backend: str = "engine",
        aspect: str = "preset",
        duration: float = 3.0,
        fps: float = 24,
        seed: float = -1,
        strength: float = 1.0,
        model_path: str = "",
        request: gr.Request = None,  # Gradio injects it: who is asking (per-client job limit)
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects it
    ):
        """Render four variants of the photo with the preset; streams each clip as it finishes."""
        if not image:
            raise gr.Error(
                "Upload a photo first (or click one of the samples).", print_exception=False
            )
        owner = _owner(request)
        out_dir = ownership.job_dir(settings.outputs_dir, owner)
        ctx = RenderContext()
        try:
            job = form_job(
                image=image, preset=preset_id, backend=backend, variants=N_SLOTS, aspect=aspect,
                duration=duration, fps=fps, seed=seed, strength=strength,
                model_path=security.model_folder(model_path, settings),
            )  # fmt: skip
            prepared = prepare_job(job, settings, library)
            progress(0.0, desc="Analysing the photo…")
            # Waits its turn on the device, then streams run_job and records clips in History.
            for update in runner.run(prepared, out_dir, ctx, queueing.client_key(request)):
                progress(update.progress, desc=update.message)
                pct = "" if update.done else f" · {update.progress:.0%}"
                note = f"**{update.message}**{pct} · seed {update.seed}"
                if update.warnings:
                    note += "  \n" + "  \n".join(f"⚠ {w}" for w in update.warnings)
                if update.new_clip is not None:
                    webguard.hand_out(runner.history, [update.new_clip.path], owner)
                yield _slots(update, note, prepared.plans[0].fps)
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # a bug or out of memory: fail this job only, keep serving
            log.exception("Generation failed")
            raise gr.Error(failure_message(exc), print_exception=False) from None
        finally:
            ctx.cancel.set()  # the client went away or pressed Cancel: stop the workers

    def _slots(update, note: str, fps: int) -> tuple:
        """Outputs for one update: clips by variant while rendering, best-first once ranked.

        A slot's take is named in the same words on its label, its Select button and the
        Selected panel: by rank once ranked ("#2 · variant 4", "Select #2", "#2 (variant 4)"),
        by variant before (slot k holds variant k while rendering).
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

    def select(clips: list[str | None], index: int, names: list[str | None] | None = None):
        """Pick the take in slot `index` (0-based), named as its slot names it."""
        path = clips[index] if clips and index < len(clips) else None
        if not path:
            raise gr.Error("That variant is not ready yet.", print_exception=False)
        runner.history.select(path)  # a selected clip is kept by the retention sweep
        name = (names[index] if names and index < len(names) else None) or f"#{index + 1}"
        return (
            gr.update(value=path, label=f"Selected: {name}"),
            gr.update(value=path, visible=True, label=f"Download {Path(path).name}"),
            index + 1,
        )

    # --- running for a team (issue 5): the job line + History, uploads deleted after a while
    runner = queueing.JobRunner(settings)
    uploads = retention.upload_cache_policy(settings)
    with StudioBlocks(title="Motion Studio", delete_cache=uploads) as demo:
        gr.Markdown(
            "# Motion Studio\nOne photo in, four short motion clips out. Pick the best take and download it."
        )
        with gr.Tabs():
            with gr.Tab("Studio", id="studio"):
                clips_state = gr.State([None] * N_SLOTS)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        photo = PhotoUpload(
                            label="Photo",
                            type="filepath",
                            image_mode=None,
                            sources=["upload", "clipboard"],
                            height=300,
                            elem_id="photo",
                        )
                        if examples:
                            gr.Examples(
                                examples=[[str(p)] for p in examples],
                                inputs=[photo],
                                label="Sample photos",
                            )
                        preset = ChoiceDropdown(
                            choices=_preset_choices(library),
                            value=default_preset,
                            label="Motion preset",
                            elem_id="preset",
                        )
                        preset_info = gr.Markdown(
                            _preset_info(library, default_preset), elem_id="preset-info"
                        )
                        # --- model backends (issue 3): the text comes from studio.models; this only wires.
                        from studio import models as model_manager

                        backend = ChoiceDropdown(
                            choices=model_manager.backend_choices(),
                            value=settings.backend,
                            label="Backend",
                            elem_id="backend",
                        )
                        model_info = gr.Markdown(
                            model_manager.backend_markdown(settings.backend), elem_id="model-info"
                        )
                        with gr.Row():
                            model_folder = gr.Textbox("", label="Model folder (optional local copy)", scale=3,
                                                      placeholder="/path/to/diffusers/folder", elem_id="model-folder")  # fmt: skip
                            fetch = gr.Button(
                                "Download model", size="sm", scale=1, elem_id="download-model"
                            )
                        # --- end model backends
                        with gr.Accordion("Advanced settings", open=False):
                            aspect = ChoiceDropdown(
                                choices=ASPECT_CHOICES, value="preset", label="Aspect"
                            )
                            duration = gr.Slider(1, 10, value=3, step=0.5, label="Duration (s)")
                            fps = gr.Slider(8, 30, value=24, step=1, label="Frames per second")
                            seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)")
                            strength = gr.Slider(
                                0, 2, value=1.0, step=0.05, label="Motion strength"
                            )
                        with gr.Row():
                            go = gr.Button(
                                "Generate 4 variants", variant="primary", elem_id="generate"
                            )
                            cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                        # A broken user preset file is named here (the other presets still load).
                        status = gr.Markdown(
                            "  \n".join(f"⚠ {w}" for w in library.warnings),
                            elem_id="status",
                            min_height=64,  # room for the progress bar that runs here
                        )
                    with gr.Column(scale=3, min_width=480):
                        videos, selects = [], []
                        for row in range(2):
                            with gr.Row():
                                for col in range(2):
                                    i = row * 2 + col
                                    with gr.Column(elem_classes=["variant"], min_width=200):
                                        videos.append(
                                            gr.Video(
                                                label=f"Variant {i + 1}",
                                                autoplay=True,
                                                loop=True,
                                                interactive=False,
                                                buttons=[],
                                                elem_id=f"variant-{i + 1}",
                                            )
                                        )
                                        selects.append(
                                            gr.Button(
                                                f"Select variant {i + 1}",
                                                size="sm",
                                                elem_id=f"select-{i + 1}",
                                            )
                                        )
                        # How the Selected panel names each slot's take (set with the labels).
                        slot_names = gr.State([None] * N_SLOTS)
                        compare = gr.HTML(
                            24,  # the clips' fps; compare.js reads it (the template does not)
                            html_template=(ASSETS / "compare.html").read_text(encoding="utf-8"),
                            js_on_load=(ASSETS / "compare.js").read_text(encoding="utf-8"),
                            elem_id="compare",
                        )
                        with gr.Accordion("Why this order? Scores for each take", open=False):
                            scores = gr.HTML("<p>Scores appear when all four variants are done.</p>",
                                             elem_id="scores")  # fmt: skip
                        with gr.Group():
                            chosen = gr.Video(label="Selected clip", autoplay=True, loop=True, interactive=False,
                                              buttons=[], elem_id="selected")  # fmt: skip
                            download = gr.DownloadButton(
                                "Download MP4", visible=False, variant="primary", elem_id="download"
                            )
                            chosen_index = gr.Number(visible=False, precision=0)

                # Past clips, kept across restarts (studio/serve/history.py), a page at a time.
                with gr.Accordion("History", open=False, elem_id="history-panel"):
                    history = gr.Gallery(label="Past clips (★ = selected, kept by the retention sweep); click one to open it",
                                         columns=6, height="auto", interactive=False, allow_preview=False,
                                         elem_id="history")  # fmt: skip
                    with gr.Row():
                        newer = gr.Button(
                            "◀ Newer", size="sm", interactive=False, elem_id="history-newer"
                        )
                        history_note = gr.Markdown(elem_id="history-page")
                        older = gr.Button("Older ▶", size="sm", interactive=False, elem_id="history-older")  # fmt: skip
                    history_page = gr.State(0)
                    history_paths = gr.State([])
            with gr.Tab("Shootout", id="shootout"):
                gr.Markdown(
                    "Run the same photos through several presets and backends with the same seeds, "
                    "score every clip and get one report: clips side by side, a sortable metrics "
                    "table and a winner per photo. Try one product photo, one portrait and one busy scene."
                )
                with gr.Row():
                    sh_photos = UploadedFiles(label="Photos", file_count="multiple", file_types=["image"],
                                        type="filepath", elem_id="shootout-photos")  # fmt: skip
                    with gr.Column():
                        sh_presets = ChoiceDropdown(choices=_preset_choices(library), multiselect=True,
                                                 value=[default_preset], label="Presets",
                                                 elem_id="shootout-presets")  # fmt: skip
                        sh_backends = ChoiceDropdown(choices=[(b.title, b.id) for b in list_backends()],
                                                  multiselect=True, value=["engine"], label="Backends",
                                                  elem_id="shootout-backends")  # fmt: skip
                        with gr.Row():
                            sh_variants = gr.Slider(
                                1, 4, value=2, step=1, label="Variants per cell"
                            )
                            sh_seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)")
                        sh_go = gr.Button("Run shootout", variant="primary", elem_id="shootout-run")
                sh_status = gr.Markdown(elem_id="shootout-status")
                sh_table = gr.Dataframe(label="Results (best first per photo)", interactive=False,
                                        elem_id="shootout-table")  # fmt: skip
                sh_files = gr.File(label="Report, CSV and JSON", file_count="multiple",
                                   interactive=False, elem_id="shootout-files")  # fmt: skip

        history_outputs = [history, history_paths, history_page, history_note, newer, older]

        def history_view(page: int, request: gr.Request | None):
            """One page of finished clips (this login's only), newest first, as posters."""
            owner = _owner(request) if settings.auth else None  # None: one local user sees all
            total = runner.history.count(owner=owner)
            pages = max(1, math.ceil(total / HISTORY_PAGE))
            page = min(max(0, int(page or 0)), pages - 1)
            entries = runner.history.recent(HISTORY_PAGE, owner=owner, offset=page * HISTORY_PAGE)
            items = [(str(e.poster or e.path), e.caption) for e in entries]
            webguard.hand_out(runner.history, [i for i, _ in items], _owner(request))
            note = f"Page {page + 1} of {pages} · {total} clips" if total else "No clips yet."
            return (items, [str(e.path) for e in entries], page, note,
                    gr.update(interactive=page > 0), gr.update(interactive=page < pages - 1))  # fmt: skip

        def history_items(request: gr.Request = None):
            """The newest page of History (after a job or a Select)."""
            return history_view(0, request)

        def on_page_load(request: gr.Request = None):
            for w in library.warnings:  # a broken user preset file, named (also in the status)
                gr.Warning(w)
            return history_view(0, request)

        def open_past(paths: list[str], evt: gr.SelectData, request: gr.Request = None):
            """A History item clicked: show that clip in the Selected panel, ready to download."""
            # The index into this page's own list: the browser's idea of the path is not trusted.
            index = evt.index if isinstance(evt.index, int) else -1
            if not paths or not 0 <= index < len(paths) or not Path(paths[index]).is_file():
                raise gr.Error("That clip is no longer available.", print_exception=False)
            path = paths[index]
            webguard.hand_out(runner.history, [path], _owner(request))
            return (gr.update(value=path, label=f"Selected from History: {Path(path).name}"),
                    gr.update(value=path, visible=True, label=f"Download {Path(path).name}"))  # fmt: skip

        def newer_page(page: int, request: gr.Request = None):
            return history_view(page - 1, request)

        def older_page(page: int, request: gr.Request = None):
            return history_view(page + 1, request)

        demo.load(on_page_load, outputs=history_outputs, api_name="history")
        newer.click(newer_page, [history_page], history_outputs, api_name=False)
        older.click(older_page, [history_page], history_outputs, api_name=False)
        history.select(open_past, [history_paths], [chosen, download], api_name=False)
        preset.change(
            lambda pid: _preset_info(library, pid),
            inputs=preset,
            outputs=preset_info,
            api_name=False,
        )
        run = go.click(
            generate,
            inputs=[photo, preset, backend, aspect, duration, fps, seed, strength, model_folder],
            # New outputs go at the end: API clients read the clips as the first four.
            outputs=[*videos, clips_state, status, chosen, download, scores, compare]
            + [*selects, slot_names],
            api_name="generate",
            # One progress bar (and, on failure, one error badge) on the status line, instead of
            # an overlay on each of the seven outputs.
            show_progress_on=[status],
            # Admission only: studio.serve.queueing runs one job per GPU, engine jobs up to the cores.
            concurrency_limit=settings.max_queue,
        )
        run.then(history_items, outputs=history_outputs, api_name=False)

        def cancelled(request: gr.Request = None) -> str:
            """After Cancel: say that the job stopped and how many takes were kept."""
            return runner.cancelled_note(queueing.client_key(request))

        cancel.click(
            cancelled,
            outputs=status,
            cancels=[run],
            api_name=False,
        )

        # --- shootout (issue 4): photos x presets x backends into one scored report
        def shootout(
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
                raise gr.Error("Add at least one photo.", print_exception=False)
            owner = _owner(request)
            out_dir = ownership.job_dir(settings.outputs_dir, owner, kind="shootout")
            try:
                result = run_shootout(
                    files, presets or [], backends or [], out_dir, settings,
                    seed=None if seed is None or seed == -1 else seed, variants=variants,
                    progress=lambda f, m: progress(f, desc=m),
                )  # fmt: skip
            except StudioError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            rows = sorted(result.rows, key=lambda r: (r.photo_index, -(r.score or -1)))
            table = [
                [Path(r.photo).name, r.preset, r.backend, r.variant,
                 None if r.score is None else round(r.score, 1), "winner" if r.winner else "", r.error or ""]
                for r in rows
            ]  # fmt: skip
            header = ["photo", "preset", "backend", "variant", "score", "", "error"]
            failed = sum(1 for r in rows if r.error)
            report_url = f"/gradio_api/file={result.report}"
            note = (
                f"**Done in {result.elapsed_s:.0f} s**: {len(rows) - failed} clips, {failed} failed. "
                f"[Open the report]({report_url}) (clips side by side, sortable table)."
            )
            files_out = [str(p) for p in (result.report, result.csv, result.json) if p]
            webguard.hand_out(runner.history, files_out, owner)
            return note, gr.update(value=table, headers=header), files_out

        sh_go.click(
            shootout,
            inputs=[sh_photos, sh_presets, sh_backends, sh_variants, sh_seed],
            outputs=[sh_status, sh_table, sh_files],
            api_name="shootout",
            concurrency_limit=1,
        )
        # --- end shootout

        # --- model backends (issue 3)
        def download_model(backend_id: str, progress: gr.Progress = gr.Progress(track_tqdm=True)):  # noqa: B008
            """Download the chosen checkpoint into the Hugging Face cache (resumable)."""
            try:
                note = model_manager.download_checkpoint(backend_id)
            except StudioError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            return f"{note}  \n{model_manager.backend_markdown(backend_id)}", refresh_backends()

        def refresh_backends():
            """The picker's labels carry each checkpoint's state (not downloaded/on disk/loaded)."""
            return gr.update(choices=model_manager.backend_choices())

        backend.change(
            model_manager.backend_markdown, inputs=backend, outputs=model_info, api_name=False
        )
        fetch.click(download_model, inputs=backend, outputs=[model_info, backend],
                    api_name="download_model", concurrency_limit=1)  # fmt: skip
        # A generation may have loaded (or evicted) a checkpoint: refresh the picker's states.
        run.then(refresh_backends, outputs=backend, api_name=False)
        # --- end model backends
        for i, button in enumerate(selects):
            button.click(
                lambda clips, names=None, i=i: select(clips, i, names),
                inputs=[clips_state, slot_names],
                outputs=[chosen, download, chosen_index],
                api_name=False,
            ).then(history_items, outputs=history_outputs, api_name=False)  # the star, at once
    demo.studio_css = CSS  # launch() takes css in Gradio 6
    return demo
