"""The studio's own Gradio components: inputs that refuse what the studio would not accept."""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.exceptions import ComponentProcessingError, InvalidPathError
from gradio.utils import get_upload_folder
from pydantic import ValidationError

from studio.errors import StudioError, clip_text
from studio.serve import security


def refuse(sentence: str) -> gr.Error:
    """The error Gradio shows the user as this one sentence (no traceback in the log)."""
    return gr.Error(sentence, print_exception=False)


class StudioBlocks(gr.Blocks):
    """Blocks whose refusal of a file path is the studio's own sentence, and whose endpoints
    take the defaults of inputs a client left off the end.

    Gradio refuses a marked file outside its upload folder itself, in a message that quotes
    the path and sometimes the server's blocked folders; the studio says one plain sentence.
    """

    async def preprocess_data(self, block_fn, inputs, *args, **kwargs):
        # New inputs go at the end of an endpoint with a default (as the subject corrections
        # of /generate did): a client written before them sends fewer values and gets the
        # defaults, as gradio_client fills them in itself.
        if isinstance(inputs, list) and len(inputs) < len(block_fn.inputs):
            inputs = [*inputs, *(getattr(b, "value", None) for b in block_fn.inputs[len(inputs) :])]
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except InvalidPathError:
            raise refuse(security.NOT_UPLOADED) from None
        except ValidationError as exc:  # a malformed input, quoted whole by pydantic
            if exc.title in ("FileData", "ListFiles", "ImageData"):
                raise refuse(security.NOT_UPLOADED) from None
            raise refuse("One of the inputs is not in a form the studio accepts.") from None
        except ComponentProcessingError:  # e.g. a word for a slider; Gradio's text is a report
            raise refuse("One of the inputs is not in a form the studio accepts.") from None


class PhotoUpload(gr.Image):
    """An image upload that hands our code the original file, undecoded.

    gr.Image would open and maybe convert the file with PIL before we see it; the
    studio's own loader does that safely (bomb check before decoding, clear refusals).
    Only a file Gradio itself received (its upload folder) or inline data is accepted.
    """

    is_template = True  # render with the stock Image component in the browser
    max_bytes = 50 * 1024 * 1024  # the cap on a photo sent inline (a data: URL); build_ui sets it

    def preprocess(self, payload: Any) -> str | None:
        if payload is None:
            return None
        url = getattr(payload, "url", None) or ""
        if isinstance(url, str) and url.startswith("data:"):
            if len(url) > self.max_bytes * 4 // 3 + 1024:  # base64 is 4/3 of the bytes
                raise refuse(f"This photo is larger than the {self.max_bytes >> 20} MB limit.")
            return super().preprocess(payload)  # decoded into Gradio's upload folder
        try:
            return str(security.uploaded_file(getattr(payload, "path", None), get_upload_folder()))
        except StudioError as exc:
            raise refuse(str(exc)) from None


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
            raise refuse(str(exc)) from None


def not_in_list(name: str, value: Any) -> str:
    """The sentence for a value a list does not offer (quoted short, whatever its size)."""
    return f"{name}: {clip_text(value)} is not in the list of choices; pick one from the list."


class ChoiceDropdown(gr.Dropdown):
    """A dropdown that refuses a value it does not offer (sent through the API) in one short
    sentence, instead of Gradio's message that echoes the value and every choice."""

    is_template = True  # render with the stock Dropdown component in the browser

    def preprocess(self, payload: Any) -> Any:
        choices = [value for _, value in self.choices]
        name = self.label or "Choice"
        if isinstance(payload, list | tuple | dict) and not self.multiselect:
            raise refuse(f"{name}: send one choice from the list, not several.")
        values = payload if isinstance(payload, list) else [payload]
        for value in values:
            if value is not None and (
                not isinstance(value, str | int | float) or value not in choices
            ):
                raise refuse(not_in_list(name, value))
        return super().preprocess(payload)


class ChoiceRadio(gr.Radio):
    """Radio buttons that refuse a value they do not offer (sent through the API) in one short
    sentence, instead of Gradio's message that echoes the value and every choice."""

    is_template = True  # render with the stock Radio component in the browser

    def preprocess(self, payload: Any) -> Any:
        choices = [value for _, value in self.choices]
        if payload is not None and (
            not isinstance(payload, str | int | float) or payload not in choices
        ):
            raise refuse(not_in_list(self.label or "Choice", payload))
        return super().preprocess(payload)


class PresetPicker(gr.Dropdown):
    """The preset dropdown, whose list differs per login (each sees its own saved presets).

    It checks only that one preset id came in; the handler checks the id against the
    presets of whoever sent it (a fixed list here would refuse a preset saved a moment ago
    by an API client, and a per-browser one would miss it after a reload).
    """

    is_template = True  # render with the stock Dropdown component in the browser

    def preprocess(self, payload: Any) -> Any:
        name = self.label or "Preset"
        if isinstance(payload, list | tuple | dict):
            raise refuse(f"{name}: send one choice from the list, not several.")
        if payload is not None and not isinstance(payload, str):
            raise refuse(not_in_list(name, payload))
        return payload
