"""The checkpoint catalog: presets/models.yaml validated into Checkpoint dataclasses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio import yamlio
from studio.errors import CatalogError
from studio.fields import FieldReader
from studio.models.options import DTYPES, OFFLOAD_MODES

CATALOG_PATH = Path(__file__).resolve().parents[2] / "presets" / "models.yaml"
# The pipeline families the studio can render: family "svd" is rendered by studio/backends/svd.py.
FAMILIES = ("svd", "ltx", "ltx2", "cogvideox", "wan", "skyreels", "hunyuan15")
# How a transformer lays out the video it returns, as diffusers' FasterCacheConfig names it.
CACHE_FORMATS = ("BCFHW", "BFCHW", "BCHW")


@dataclass(frozen=True)
class Licence:
    name: str
    commercial: str  # one-line summary for creators, not legal advice
    url: str  # the licence text, or the model card that carries it
    regions: str = ""  # where the licence does not apply (HunyuanVideo: the EU, UK, South Korea)

    def line(self) -> str:
        """The licence as the model picker states it: name, commercial terms, then where it does not apply."""
        text = f"{self.name}: {self.commercial}"
        return f"{text} {self.regions}" if self.regions else text


@dataclass(frozen=True)
class LowVram:
    """What a checkpoint also does whenever a memory mode other than "none" is chosen."""

    forward_chunking: bool = False  # chunk the feed-forward layers of components that can
    decode_chunk_size: int | None = None  # frames the VAE decodes at once


@dataclass(frozen=True)
class FrameRule:
    """Valid frame counts are step * k + offset, at most max."""

    default: int
    step: int = 1
    offset: int = 0
    max: int = 1000

    def snap(self, frames: int) -> int:
        """The valid count nearest to frames (ties go up), within 1..max."""
        k = max(0, math.floor((frames - self.offset) / self.step + 0.5))
        n = self.step * k + self.offset
        if n < 1:
            n += self.step
        while n > self.max:
            n -= self.step
        return n


@dataclass(frozen=True)
class Checkpoint:
    """One catalog entry: where a model lives, what it needs and what it accepts."""

    id: str
    name: str
    family: str
    repo: str
    revision: str
    pipeline: str
    licence: Licence
    vram_gb: tuple[float, float]  # (plain, with offload)
    resolution: tuple[int, int]  # native (width, height)
    multiple: int
    frames: FrameRule
    fps: int
    text_prompt: bool
    steps: int
    guidance: float
    offload: str = "model"  # default memory mode on CUDA
    variant: str | None = None  # weight files named *.<variant>.safetensors (e.g. fp16)
    # Components held at a fixed precision ("vae": "fp32"); the rest load in the compute dtype.
    dtypes: dict[str, str] = field(default_factory=dict)
    cache_format: str | None = None  # FasterCache tensor_format; None: FasterCache is refused
    low_vram: LowVram = field(default_factory=LowVram)
    scheduler: dict[str, Any] = field(default_factory=dict)  # scheduler config overrides
    fixed_size: bool = False
    audio: bool = False  # the pipeline returns a sound track with the video (LTX-2)
    strength: dict[str, tuple[float, float]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()  # where the facts in this entry come from
    source: str = ""  # the catalog file and entry this was read from

    def summary(self, licence: bool = True) -> str:
        """One line of facts for the model picker and the CLI: size, length, sound, VRAM, licence."""
        w, h = self.resolution
        clip = f"{w}x{h}, {self.frames.default} frames @ {self.fps} fps"
        if self.audio:
            clip += ", with sound"
        vram = f"VRAM {self.vram_gb[0]:g} GB ({self.vram_gb[1]:g} GB with offload)"
        return " · ".join([clip, vram, self.licence.line()] if licence else [clip, vram])

    def render_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the model renders at for a requested output size.

        The plan's aspect at no more than the model's native pixel count, both sides a
        multiple of the model's; the result is resized to the plan's size afterwards.
        """
        nw, nh = self.resolution
        scale = min(1.0, ((nw * nh) / (width * height)) ** 0.5)
        m = self.multiple
        return max(m, round(width * scale / m) * m), max(m, round(height * scale / m) * m)


class _Entry(FieldReader):
    """Reads typed fields from one catalog entry; every error names the file and field."""

    error = CatalogError

    def positive_int(self, name: str, default: Any = ...) -> int:
        value = self.get(name, int, default)
        if value is not None and value < 1:
            raise self.fail(name, f"must be at least 1, got {value}.")
        return value

    def pair(self, name: str, kind: type) -> tuple:
        value = self.get(name, list)
        if len(value) != 2 or not all(isinstance(v, (int, float)) and v > 0 for v in value):
            raise self.fail(name, f"must be a list of two positive numbers, got {value!r}.")
        return tuple(kind(v) for v in value)


def _parse_checkpoint(raw: Any, where: str) -> Checkpoint:
    f = _Entry(raw, where)
    cid = f.get("id", str)
    f.where = f"{where} (checkpoint '{cid}')"
    family = f.get("family", str)
    if family not in FAMILIES:
        raise f.fail("family", f"must be one of {', '.join(FAMILIES)}, got '{family}'.")
    offload = f.get("offload", str, "model")
    if offload not in OFFLOAD_MODES:
        raise f.fail("offload", f"must be one of {', '.join(OFFLOAD_MODES)}, got '{offload}'.")
    cache_format = f.get("cache_format", (str, type(None)), None)
    if cache_format is not None and cache_format not in CACHE_FORMATS:
        raise f.fail(
            "cache_format", f"must be one of {', '.join(CACHE_FORMATS)}, got '{cache_format}'."
        )
    dtypes = {}
    for component, dtype in f.get("dtypes", dict, {}).items():
        if dtype not in DTYPES:
            raise f.fail(
                f"dtypes.{component}", f"must be one of {', '.join(DTYPES)}, got {dtype!r}."
            )
        dtypes[str(component)] = dtype
    sources = f.get("sources", list)
    if not sources or not all(isinstance(u, str) and u.startswith("https://") for u in sources):
        raise f.fail("sources", f"must be a list of https:// addresses, got {sources!r}.")
    low = _Entry(f.get("low_vram", dict, {}), f"{f.where} low_vram")
    unknown = set(low.data) - {"forward_chunking", "decode_chunk_size"}
    if unknown:
        raise low.fail(
            sorted(unknown)[0], "is not a low_vram setting (forward_chunking, decode_chunk_size)."
        )
    scheduler = f.get("scheduler", dict, {})
    if not all(isinstance(v, (int, float, str, bool)) for v in scheduler.values()):
        raise f.fail("scheduler", f"must map config names to plain values, got {scheduler!r}.")
    lic = _Entry(f.get("licence", dict), f"{f.where} licence")
    fr = _Entry(f.get("frames", dict), f"{f.where} frames")
    rule = FrameRule(
        default=fr.positive_int("default"),
        step=fr.positive_int("step", 1),
        offset=fr.get("offset", int, 0),
        max=fr.positive_int("max", 1000),
    )
    strength = {}
    for key, span in f.get("strength", dict, {}).items():
        if not (
            isinstance(span, list)
            and len(span) == 2
            and all(isinstance(v, (int, float)) for v in span)
        ):
            raise f.fail(f"strength.{key}", f"must be a [low, high] pair of numbers, got {span!r}.")
        strength[str(key)] = (float(span[0]), float(span[1]))
    return Checkpoint(
        id=cid,
        name=f.get("name", str),
        family=family,
        repo=f.get("repo", str),
        revision=str(f.get("revision", (str, int), "main")),
        pipeline=f.get("pipeline", str),
        licence=Licence(
            lic.get("name", str),
            lic.get("commercial", str),
            lic.get("url", str),
            lic.get("regions", str, ""),
        ),
        vram_gb=f.pair("vram_gb", float),
        resolution=f.pair("resolution", int),
        multiple=f.positive_int("multiple"),
        frames=rule,
        fps=f.positive_int("fps"),
        text_prompt=f.get("text_prompt", bool),
        steps=f.positive_int("steps"),
        guidance=f.get("guidance", float),
        offload=offload,
        variant=f.get("variant", (str, type(None)), None),
        dtypes=dtypes,
        cache_format=cache_format,
        low_vram=LowVram(
            forward_chunking=low.get("forward_chunking", bool, False),
            decode_chunk_size=low.positive_int("decode_chunk_size", None),
        ),
        scheduler=dict(scheduler),
        fixed_size=f.get("fixed_size", bool, False),
        audio=f.get("audio", bool, False),
        strength=strength,
        options=dict(f.get("options", dict, {})),
        sources=tuple(sources),
        source=where,
    )


def load_catalog(path: str | Path = CATALOG_PATH) -> dict[str, Checkpoint]:
    """The catalog as {id: Checkpoint}, in file order (a ModelManager reads it once)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise CatalogError(f"The model catalog {path} is missing.") from None
    try:
        data = yamlio.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name}: not valid YAML ({exc}).") from None
    entries = _Entry(data, path.name).get("checkpoints", list)
    catalog: dict[str, Checkpoint] = {}
    for i, raw in enumerate(entries):
        ckpt = _parse_checkpoint(raw, f"{path.name} checkpoint #{i + 1}")
        if ckpt.id in catalog or ckpt.id == "engine":
            raise CatalogError(f"{path.name}: checkpoint id '{ckpt.id}' is used twice.")
        catalog[ckpt.id] = ckpt
    return catalog
