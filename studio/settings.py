"""Every setting in one place: defaults, overridden by STUDIO_* environment variables, then by flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from studio.errors import StudioError

ROOT = Path(__file__).resolve().parent.parent


def hub_cache_dir(env: Mapping[str, str]) -> Path:
    """The Hugging Face cache folder, found the way huggingface_hub finds it."""
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME", os.path.join(Path.home(), ".cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _default_workers() -> int:
    # Variants of a CPU job render in parallel threads; more than the cores only adds contention.
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    outputs_dir: Path = ROOT / "outputs"
    user_presets_dir: Path = field(
        default_factory=lambda: Path.home() / ".motion-studio" / "presets"
    )
    examples_dir: Path = ROOT / "assets" / "examples"
    # With logins, the only place a web user's "model folder" may point into.
    models_dir: Path = field(default_factory=lambda: Path.home() / ".motion-studio" / "models")
    # Output size: the long side of the clip in pixels when no explicit size is given.
    long_side: int = 768
    workers: int = field(default_factory=_default_workers)
    # H.264 quality: lower CRF is better; "veryfast" keeps encoding a small share of the render.
    crf: int = 18
    x264_preset: str = "veryfast"
    # x264's sub-pixel refinement at its fastest: measured 22% less encoding CPU at the same
    # PSNR (-0.01 dB) for 13% larger files, on the studio's smooth camera moves.
    x264_params: str = "subme=1"
    # Score every clip (flicker, shake, likeness...) while it encodes, to rank the variants.
    score: bool = True
    max_upload_mb: int = 50
    backend: str = "engine"
    depth: str = "auto"  # "auto" (learned model if cached, else heuristic) or "heuristic"
    # The learned depth model (Depth Anything V2 Small), used only from the local HF cache.
    depth_model: str = "depth-anything/Depth-Anything-V2-Small-hf"
    # The learned subject matte for photos without people (Segment Anything), used only from
    # the local HF cache; "none" keeps the automatic matte.
    matte_model: str = "facebook/sam-vit-base"
    # GB of model weights kept loaded at once (0: 90% of the GPU's memory, else half the RAM).
    model_budget_gb: float = 0.0
    # Hugging Face access, under the hub's own variable names: a token for gated or private
    # models, offline mode, and the cache that downloads go into (HF_HUB_CACHE, else HF_HOME/hub).
    hf_token: str = field(default="", repr=False, metadata={"env": "HF_TOKEN"})
    hub_offline: bool = field(default=False, metadata={"env": "HF_HUB_OFFLINE"})
    hub_cache: Path = field(default_factory=lambda: hub_cache_dir({}))
    # Running for a team: logins, queue, retention. See studio/serve/security.py,
    # studio/serve/queueing.py and studio/serve/retention.py for what each one does.
    auth: str = ""  # "user:password" or "alice:pw1,bob:pw2"; required off loopback / with --share
    insecure_no_auth: bool = False  # serve publicly without a login, on purpose
    max_jobs_per_client: int = 2  # queued + running jobs one browser session (or login) may hold
    max_queue: int = 16  # jobs accepted at once over all clients; more wait in Gradio's queue
    engine_jobs: int = field(default_factory=lambda: os.cpu_count() or 1)  # CPU-engine jobs at once
    retention_days: float = 7.0  # clips older than this are removed (0 = keep forever)
    outputs_quota_gb: float = 10.0  # then the oldest beyond this total are removed (0 = no limit)
    retention_grace_minutes: float = 60.0  # clips younger than this are never removed
    sweep_interval_minutes: float = 10.0  # how often the retention sweep runs
    upload_retention_minutes: float = 60.0  # uploads (Gradio's cache) are deleted after this
    login_free_attempts: int = 5  # failed logins per client before each try must wait
    login_backoff_s: float = 2.0  # the first wait; it doubles with each further failure (max 5 min)
    # Running on a Ray cluster (studio/cluster/): its address ("" = everything runs here), the
    # CPUs each engine job takes there, how often a job lost with its worker or machine is run
    # again, and how many model actors hold GPUs (0: one per GPU the cluster has).
    ray_address: str = ""
    ray_job_cpus: int = 1
    ray_retries: int = 3
    ray_gpu_actors: int = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> Settings:
        """Defaults, then STUDIO_<NAME> environment variables, then keyword overrides."""
        env = os.environ if env is None else env
        values: dict[str, object] = {"hub_cache": hub_cache_dir(env)}
        for f in fields(cls):
            name = f.metadata.get("env", f"STUDIO_{f.name.upper()}")
            raw = env.get(name)
            if raw is None:
                continue
            default = getattr(cls(), f.name)
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, (int, float)):
                kind = type(default)
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    what = "a whole number" if kind is int else "a number"
                    raise StudioError(f"{name} must be {what}, got '{raw}'.") from None
            elif isinstance(default, Path):
                values[f.name] = Path(raw).expanduser()
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)
