"""The studio's page: Gradio Blocks layout and event wiring only; handlers.py does the work."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio import models
from studio.backends import list_backends
from studio.presets import ASPECTS, MAX_PROMPT_CHARS, PresetLibrary
from studio.serve import retention
from studio.settings import Settings
from studio.ui import handlers as h
from studio.ui.components import (
    ChoiceDropdown,
    ChoiceRadio,
    PhotoUpload,
    PresetPicker,
    StudioBlocks,
    UploadedFiles,
)
from studio.ui.handlers import N_SLOTS, Studio, bind

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
ASPECT_CHOICES = [("Preset default", "preset")] + [(a.label, key) for key, a in ASPECTS.items()]


def css() -> str:
    """The studio's stylesheet, for launch(css=...) (Gradio 6 takes css there, not in Blocks)."""
    return (ASSETS / "studio.css").read_text(encoding="utf-8")


def build_ui(settings: Settings, library: PresetLibrary | None = None) -> gr.Blocks:
    studio = Studio.open(settings, library)
    library = studio.library
    default_preset = studio.default_preset
    examples = sorted(
        p for p in settings.examples_dir.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )
    uploads = retention.upload_cache_policy(settings)  # uploads are deleted after a while
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
                        photo.max_bytes = settings.max_upload_mb * 1024 * 1024
                        if examples:
                            gr.Examples(
                                examples=[[str(p)] for p in examples],
                                inputs=[photo],
                                label="Sample photos",
                            )
                        # What the engine takes as the subject (it moves over the background),
                        # and the user's corrections to it, which go into the job.
                        with gr.Accordion("Subject: what moves in front", open=False,
                                          elem_id="subject-panel"):  # fmt: skip
                            subject_image = gr.Image(
                                label="The subject as the engine sees it: click to correct",
                                show_label=False,  # a label box would cover the picture's corner
                                type="filepath",
                                interactive=False,
                                buttons=[],
                                height=300,
                                elem_id="subject-overlay",
                            )
                            subject_note = gr.Markdown(
                                "Upload a photo to see what the engine takes as its subject.",
                                elem_id="subject-note",
                            )
                            gr.Markdown(
                                "Tinted and outlined: what moves in front of the background. "
                                "Click the picture to add or remove a round area.",
                                elem_classes=["subject-help"],
                            )
                            with gr.Row():
                                subject_mode = gr.Radio(
                                    [(label, mode) for mode, label in h.MODES.items()],
                                    value="add",
                                    label="A click on the picture will",
                                    elem_id="subject-mode",
                                )
                                low, high, start = h.BRUSH_PERCENT
                                subject_brush = gr.Slider(low, high, value=start, step=1,
                                                          label="Brush size (% of the photo)",
                                                          elem_id="subject-brush")  # fmt: skip
                            with gr.Row():
                                subject_undo = gr.Button("Undo", size="sm", elem_id="subject-undo")
                                subject_reset = gr.Button(
                                    "Reset", size="sm", elem_id="subject-reset"
                                )
                            # The corrections as plain data: an input of /generate and /subject.
                            subject_edits = gr.JSON([], visible="hidden", elem_id="subject-edits")
                            # The point the frame is pinned to ([x, y] in 0..1), or None.
                            framing_pin = gr.JSON(None, visible="hidden", elem_id="framing-pin")
                        preset = PresetPicker(
                            choices=h.preset_choices(library),
                            value=default_preset,
                            label="Motion preset",
                            elem_id="preset",
                        )
                        preset_info = gr.Markdown(
                            h.preset_info(studio, default_preset), elem_id="preset-info"
                        )
                        loop = ChoiceRadio([(label, key) for key, label in h.LOOP_CHOICES.items()],
                                           value="once", label="Loop", elem_id="loop")  # fmt: skip
                        # The backends' text comes from studio.models; this only wires.
                        backend = ChoiceDropdown(
                            choices=models.backend_choices(list_backends(settings)),
                            value=settings.backend,
                            label="Backend",
                            elem_id="backend",
                        )
                        model_info = gr.Markdown(
                            models.backend_markdown(settings.backend), elem_id="model-info"
                        )
                        with gr.Row():
                            model_folder = gr.Textbox("", label="Model folder (optional local copy)", scale=3,
                                                      placeholder="/path/to/diffusers/folder", elem_id="model-folder")  # fmt: skip
                            fetch = gr.Button(
                                "Download model", size="sm", scale=1, elem_id="download-model"
                            )
                        # The preset's wording, for models that read a prompt. The boxes start
                        # as None, so an API client that leaves them off keeps the preset's;
                        # they are filled when the page loads and whenever a preset is picked.
                        panel, no_prompt = h.prompt_controls(studio, settings.backend)
                        with gr.Column(visible=panel["visible"], elem_id="prompt-panel") as prompt_panel:  # fmt: skip
                            prompt = gr.Textbox(None, label="Prompt", lines=2, max_lines=6,
                                                max_length=MAX_PROMPT_CHARS, elem_id="prompt")  # fmt: skip
                            negative = gr.Textbox(None, label="Negative prompt (what to avoid)",
                                                  lines=1, max_lines=4, max_length=MAX_PROMPT_CHARS,
                                                  elem_id="negative-prompt")  # fmt: skip
                            phrasings = gr.Markdown(elem_id="prompt-note")
                        prompt_off = gr.Markdown(no_prompt.get("value", ""), visible=no_prompt["visible"],
                                                 elem_id="prompt-off")  # fmt: skip
                        with gr.Accordion("Advanced settings", open=False):
                            aspect = ChoiceDropdown(
                                choices=ASPECT_CHOICES, value="preset", label="Aspect"
                            )
                            duration = gr.Slider(*h.DURATION_RANGE, value=3, step=0.5,
                                                 label="Duration (s)", elem_id="duration")  # fmt: skip
                            fps = gr.Slider(*h.FPS_RANGE, value=24, step=1, label="Frames per second",
                                            elem_id="fps")  # fmt: skip
                            seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)")
                            strength = gr.Slider(
                                *h.STRENGTH_RANGE, value=1.0, step=0.05, label="Motion strength",
                                elem_id="strength",
                            )  # fmt: skip
                        # These settings, the prompt and the preset's moves as a preset of one's own.
                        with gr.Row(elem_id="save-preset-row"):
                            preset_name = gr.Textbox("", label="Save these settings as my preset",
                                                     placeholder="Name, e.g. Warm push-in", max_length=60,
                                                     scale=3, elem_id="preset-name")  # fmt: skip
                            save = gr.Button("Save as my preset", size="sm", scale=1,
                                             elem_id="save-preset")  # fmt: skip
                        saved_note = gr.Markdown(elem_id="save-note")
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
                        # The same preset and settings for several photos, four takes each.
                        with gr.Accordion(
                            "Several photos in one go", open=False, elem_id="batch-panel"
                        ):
                            batch_files = UploadedFiles(label="Photos", file_count="multiple",
                                                        file_types=["image"], type="filepath",
                                                        elem_id="batch-photos")  # fmt: skip
                            batch_go = gr.Button("Generate for every photo", variant="primary",
                                                 elem_id="batch-generate")  # fmt: skip
                            batch_status = gr.Markdown(elem_id="batch-status")
                            batch_gallery = gr.Gallery(label="Takes: click one per photo to select it",
                                                       columns=4, height="auto", interactive=False,
                                                       allow_preview=False, elem_id="batch-takes")  # fmt: skip
                            zip_btn = gr.Button(
                                "Download all selected", size="sm", elem_id="batch-zip"
                            )
                            zip_file = gr.DownloadButton("Download ZIP", visible=False,
                                                         elem_id="batch-zip-file")  # fmt: skip
                            batch_paths = gr.State([])
                            batch_jobs = gr.State([])
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
                            selected_clip = gr.State(None)  # the take exports are made from
                        with gr.Group(elem_id="export-panel"):
                            with gr.Row():
                                export_format = ChoiceRadio(
                                    [(label, key) for key, label in h.FORMAT_CHOICES.items()],
                                    value="mp4", label="Format", elem_id="export-format",
                                )  # fmt: skip
                                export_platform = ChoiceDropdown(choices=h.platform_choices(), value="clip",
                                                                 label="Frame", elem_id="export-platform")  # fmt: skip
                            low, high = h.batch.GIF_CAP_RANGE
                            gif_cap = gr.Slider(low, high, value=8, step=0.5, label="GIF size cap (MB)",
                                                elem_id="gif-cap")  # fmt: skip
                            export_btn = gr.Button("Export", elem_id="export")
                            export_file = gr.DownloadButton("Download export", visible=False,
                                                            variant="primary", elem_id="export-file")  # fmt: skip
                            export_note = gr.Markdown(elem_id="export-note")

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
                        sh_presets = ChoiceDropdown(choices=h.preset_choices(library), multiselect=True,
                                                 value=[default_preset], label="Presets",
                                                 elem_id="shootout-presets")  # fmt: skip
                        sh_backends = ChoiceDropdown(choices=[(b.title, b.id) for b in list_backends(settings)],
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
        latest_history = bind(h.history_latest, studio)
        demo.load(bind(h.page_load, studio), outputs=history_outputs, api_name="history")
        newer.click(bind(h.newer_page, studio), [history_page], history_outputs, api_name=False)
        older.click(bind(h.older_page, studio), [history_page], history_outputs, api_name=False)
        history.select(bind(h.open_past_take, studio), [history_paths],
                       [chosen, download, selected_clip], api_name=False)  # fmt: skip
        preset.change(
            bind(h.preset_form, studio),
            inputs=preset,
            outputs=[preset_info, prompt, negative, phrasings, duration, fps, strength],
            api_name=False,
        )
        demo.load(bind(h.preset_list, studio), inputs=preset,
                  outputs=[preset, prompt, negative, phrasings], api_name=False)  # fmt: skip
        backend.change(bind(h.prompt_controls, studio), inputs=backend,
                       outputs=[prompt_panel, prompt_off], api_name=False)  # fmt: skip
        save.click(
            bind(h.save_preset, studio),
            inputs=[preset_name, preset, aspect, duration, fps, strength, prompt, negative],
            outputs=[preset, saved_note],
            api_name="save_preset",
            concurrency_limit=1,  # one save at a time: the name check and the write go together
        )
        run = go.click(
            bind(h.generate, studio),
            inputs=[photo, preset, backend, aspect, duration, fps, seed, strength, model_folder]
            + [subject_edits, prompt, negative, loop, framing_pin],
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
        run.then(latest_history, outputs=history_outputs, api_name=False)
        run.then(h.best_take, [clips_state], [selected_clip], api_name=False)
        export_btn.click(bind(h.export_take, studio), [selected_clip, export_format, export_platform, gif_cap],
                         [export_file, export_note], api_name="export",
                         concurrency_id="export", concurrency_limit=1)  # fmt: skip
        batch_run = batch_go.click(
            bind(h.batch_generate, studio),
            inputs=[
                batch_files,
                preset,
                backend,
                aspect,
                duration,
                fps,
                seed,
                strength,
                model_folder,
            ]
            + [prompt, negative, loop],
            outputs=[batch_status, batch_gallery, batch_paths, batch_jobs],
            api_name="generate_batch",
            show_progress_on=[batch_status],
            concurrency_limit=settings.max_queue,
        )
        batch_run.then(latest_history, outputs=history_outputs, api_name=False)
        cancel.click(bind(h.cancelled, studio), outputs=status, cancels=[batch_run], api_name=False)
        batch_gallery.select(bind(h.batch_pick, studio), [batch_paths, batch_jobs],
                             [chosen, download, selected_clip, batch_gallery], api_name=False)  # fmt: skip
        zip_btn.click(bind(h.batch_zip, studio), [batch_jobs], [zip_file], api_name=False)
        cancel.click(bind(h.cancelled, studio), outputs=status, cancels=[run], api_name=False)

        # The Subject view: one preview at a time per two cores' worth of work, quietly.
        subject_outputs = [subject_image, subject_edits, subject_note]
        quick = {"concurrency_id": "subject", "concurrency_limit": 2, "show_progress": "minimal"}
        show = bind(h.subject_view, studio)
        photo.change(bind(h.subject_new_photo, studio), [photo, aspect, preset], subject_outputs, api_name=False,
                     **quick).then(h.subject_reset_all, None, [subject_edits, framing_pin],
                                   api_name=False)  # fmt: skip
        view_inputs = [photo, subject_edits, framing_pin, aspect, preset]
        subject_image.select(bind(h.subject_pick, studio),
                             [photo, subject_edits, subject_mode, subject_brush, framing_pin, aspect, preset],
                             [*subject_outputs, framing_pin], api_name=False, **quick)  # fmt: skip
        subject_undo.click(h.subject_undo, [subject_edits], [subject_edits], api_name=False).then(
            show, view_inputs, subject_outputs, api_name="subject", **quick
        )
        subject_reset.click(h.subject_reset_all, None, [subject_edits, framing_pin], api_name=False).then(
            show, view_inputs, subject_outputs, api_name=False, **quick
        )  # fmt: skip

        sh_go.click(
            bind(h.shootout, studio),
            inputs=[sh_photos, sh_presets, sh_backends, sh_variants, sh_seed],
            outputs=[sh_status, sh_table, sh_files],
            api_name="shootout",
            concurrency_limit=1,
        )

        backend.change(models.backend_markdown, inputs=backend, outputs=model_info, api_name=False)
        fetch.click(bind(h.download_model, studio), inputs=backend, outputs=[model_info, backend],
                    api_name="download_model", concurrency_limit=1)  # fmt: skip
        # A generation may have loaded (or evicted) a checkpoint: refresh the picker's states.
        run.then(bind(h.refresh_backends, studio), outputs=backend, api_name=False)
        for i, button in enumerate(selects):
            button.click(
                bind(h.select_take, studio, i),
                inputs=[clips_state, slot_names],
                outputs=[chosen, download, chosen_index, selected_clip],
                api_name=False,
            ).then(latest_history, outputs=history_outputs, api_name=False)  # the star, at once
    return demo
