"""The Gradio studio: Blocks layout and event wiring only; the work happens in studio functions."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr

from studio import queueing, retention, security
from studio.backends import list_backends
from studio.backends.base import RenderContext
from studio.errors import StudioError
from studio.presets import PresetLibrary, load_library
from studio.scoring import explain
from studio.settings import Settings
from studio.shootout import run_shootout
from studio.variants import Job, prepare_job

log = logging.getLogger(__name__)

N_SLOTS = 4
ASPECT_CHOICES = [
    ("Preset default", "preset"),
    ("16:9 landscape", "16:9"),
    ("9:16 vertical", "9:16"),
    ("1:1 square", "1:1"),
    ("4:5 portrait", "4:5"),
    ("Match photo", "match"),
]
ASSETS = Path(__file__).resolve().parent.parent / "assets"
CSS = (ASSETS / "studio.css").read_text(encoding="utf-8")


class PhotoUpload(gr.Image):
    """An image upload that hands our code the original file, undecoded.

    gr.Image would open and maybe convert the file with PIL before we see it; the
    studio's own loader does that safely (bomb check before decoding, clear refusals).
    """

    is_template = True  # render with the stock Image component in the browser

    def preprocess(self, payload: Any) -> str | None:
        if (
            payload is not None
            and getattr(payload, "path", None)
            and not (payload.url or "").startswith("data:")
        ):
            return str(payload.path)
        return super().preprocess(payload)


class ChoiceDropdown(gr.Dropdown):
    """A dropdown that refuses a value it does not offer (sent through the API) in one short
    sentence, instead of Gradio's message that echoes the value and every choice."""

    is_template = True  # render with the stock Dropdown component in the browser

    def preprocess(self, payload: Any) -> Any:
        choices = [value for _, value in self.choices]
        if payload is not None and not isinstance(payload, list) and payload not in choices:
            raise gr.Error(
                f"{self.label or 'Choice'}: {security.clip_text(payload)} is not in the list "
                "of choices; pick one from the list.",
                print_exception=False,
            )
        return super().preprocess(payload)


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
        job = Job(
            image=image,
            preset=preset_id,
            backend=backend or "engine",
            seed=None if seed is None or seed < 0 else int(seed),
            variants=N_SLOTS,
            aspect=None if aspect in (None, "", "preset") else aspect,
            duration=float(duration) if duration else None,
            fps=int(fps) if fps else None,
            strength=float(strength),
            params={"model_path": model_path.strip()} if (model_path or "").strip() else {},
        )
        out_dir = settings.outputs_dir / f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
        ctx = RenderContext()
        try:
            prepared = prepare_job(job, settings, library)
            progress(0.0, desc="Analysing the photo…")
            # Waits its turn on the device, then streams run_job and records clips in History.
            for update in runner.run(prepared, out_dir, ctx, queueing.client_key(request)):
                progress(update.progress, desc=update.message)
                pct = "" if update.done else f" · {update.progress:.0%}"
                note = f"**{update.message}**{pct} · seed {update.seed}"
                if update.warnings:
                    note += "  \n" + "  \n".join(f"⚠ {w}" for w in update.warnings)
                yield _slots(update, note, prepared.plans[0].fps)
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # a bug or out of memory: fail this job only, keep serving
            log.exception("Generation failed")
            raise gr.Error(queueing.failure_message(exc), print_exception=False) from None
        finally:
            ctx.cancel.set()  # the client went away or pressed Cancel: stop the workers

    def _slots(update, note: str, fps: int) -> tuple:
        """Outputs for one update: clips by variant while rendering, best-first once ranked."""
        by_index = {c.index: c for c in update.clips}
        order = update.ranking if update.done and update.ranking else sorted(by_index)
        badges = update.badges or {}
        videos, paths = [], []
        for slot in range(N_SLOTS):
            clip = by_index.get(order[slot]) if slot < len(order) else None
            if clip is None:
                videos.append(gr.update(value=None, label=f"Variant {slot + 1}"))
                paths.append(None)
                continue
            text = (
                explain.label(slot + 1, clip.index + 1, clip.score, badges.get(clip.index, []))
                if update.ranking
                else f"Variant {clip.index + 1}"
            )
            videos.append(gr.update(value=str(clip.path), label=text))
            paths.append(str(clip.path))
        if not (update.done and update.ranking):
            return (*videos, paths, note, gr.update(), gr.update(), gr.update(), fps)
        # Ranked: the best take is preselected in the download panel.
        best = by_index[order[0]]
        rows = [
            (f"#{k + 1} variant {i + 1}", by_index[i].score, badges.get(i, []))
            for k, i in enumerate(order)
        ]
        return (
            *videos,
            paths,
            note + " · best take preselected (keys 1–4 pick another)",
            gr.update(value=str(best.path), label="Selected: #1 (best score)"),
            gr.update(value=str(best.path), visible=True, label=f"Download {best.path.name}"),
            explain.table_html(rows),
            fps,
        )

    def select(clips: list[str | None], index: int):
        path = clips[index] if clips and index < len(clips) else None
        if not path:
            raise gr.Error("That variant is not ready yet.", print_exception=False)
        runner.history.select(path)  # a selected clip is kept by the retention sweep
        name = Path(path).name
        return (
            gr.update(value=path, label=f"Selected: #{index + 1}"),
            gr.update(value=path, visible=True, label=f"Download {name}"),
            index + 1,
        )

    # --- running for a team (issue 5): the job line + History, uploads deleted after a while
    runner = queueing.JobRunner(settings)
    uploads = retention.upload_cache_policy(settings)
    with gr.Blocks(title="Motion Studio", delete_cache=uploads) as demo:
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
                                                f"Select {i + 1}",
                                                size="sm",
                                                elem_id=f"select-{i + 1}",
                                            )
                                        )
                        compare = gr.HTML(
                            24,
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

                # --- running for a team (issue 5): past clips, kept across restarts (studio/history.py)
                with gr.Accordion("History", open=False, elem_id="history-panel"):
                    history = gr.Gallery(label="Past clips (★ = selected, kept by the retention sweep)",
                                         columns=4, height="auto", interactive=False, elem_id="history")  # fmt: skip
            with gr.Tab("Shootout", id="shootout"):
                gr.Markdown(
                    "Run the same photos through several presets and backends with the same seeds, "
                    "score every clip and get one report: clips side by side, a sortable metrics "
                    "table and a winner per photo. Try one product photo, one portrait and one busy scene."
                )
                with gr.Row():
                    sh_photos = gr.File(label="Photos", file_count="multiple", file_types=["image"],
                                        type="filepath", elem_id="shootout-photos")  # fmt: skip
                    with gr.Column():
                        sh_presets = gr.Dropdown(choices=_preset_choices(library), multiselect=True,
                                                 value=[default_preset], label="Presets",
                                                 elem_id="shootout-presets")  # fmt: skip
                        sh_backends = gr.Dropdown(choices=[(b.title, b.id) for b in list_backends()],
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

        def history_items() -> list[tuple[str, str]]:
            """The newest finished clips, newest first, with preset, variant and seed."""
            return [(str(e.path), e.caption) for e in runner.history.recent(24)]

        def on_page_load() -> list[tuple[str, str]]:
            for w in library.warnings:  # a broken user preset file, named (also in the status)
                gr.Warning(w)
            return history_items()

        demo.load(on_page_load, outputs=history, api_name="history")
        # --- end running for a team
        preset.change(
            lambda pid: _preset_info(library, pid),
            inputs=preset,
            outputs=preset_info,
            api_name=False,
        )
        run = go.click(
            generate,
            inputs=[photo, preset, backend, aspect, duration, fps, seed, strength, model_folder],
            outputs=[*videos, clips_state, status, chosen, download, scores, compare],
            api_name="generate",
            # One progress bar (and, on failure, one error badge) on the status line, instead of
            # an overlay on each of the seven outputs.
            show_progress_on=[status],
            # Admission only: studio.queueing runs one job per GPU, engine jobs up to the cores.
            concurrency_limit=settings.max_queue,
        )
        run.then(history_items, outputs=history, api_name=False)
        cancel.click(None, cancels=[run], api_name=False)

        # --- shootout (issue 4): photos x presets x backends into one scored report
        def shootout(
            files: list[str] | None,
            presets: list[str] | None,
            backends: list[str] | None,
            variants: float = 2,
            seed: float = -1,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects it
        ):
            """Run every photo x preset x backend with shared seeds; returns a table and the report."""
            if not files:
                raise gr.Error("Add at least one photo.", print_exception=False)
            out_dir = (
                settings.outputs_dir
                / f"shootout-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
            )
            try:
                result = run_shootout(
                    files, presets or [], backends or [], out_dir, settings,
                    seed=None if seed is None or seed < 0 else int(seed), variants=int(variants),
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
                lambda clips, i=i: select(clips, i),
                inputs=[clips_state],
                outputs=[chosen, download, chosen_index],
                api_name=False,
            )
    demo.studio_css = CSS  # launch() takes css in Gradio 6
    return demo
