"""The one small interface every way of making motion implements."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.errors import Cancelled
from studio.plan import VariantPlan

if TYPE_CHECKING:
    from studio.audio import Audio
    from studio.motion.edits import SubjectEdit

# progress(fraction_done_of_this_variant 0..1)
ProgressFn = Callable[[float], None]


@dataclass
class RenderContext:
    """What a backend may use while rendering: progress reporting and a cancel flag."""

    cancel: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[int, float], None] | None = None  # (variant index, fraction)

    def report(self, index: int, fraction: float) -> None:
        if self.progress is not None:
            self.progress(index, min(1.0, max(0.0, fraction)))

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("Generation was cancelled.")


@dataclass
class Rendered:
    """One variant from render_many: its frames, facts about how they were made, its sound.

    The facts (the model's own size, frame count, steps, device...) go into the clip's
    manifest beside its plan, under plan.params.rendered. audio, from the models that make
    sound, lasts as long as the frames do and is muxed into the clip's MP4.
    """

    frames: Iterable[np.ndarray]
    facts: dict[str, Any] = field(default_factory=dict)
    audio: Audio | None = None


class Backend(ABC):
    """A way of turning one photo into clips.

    Backends are cheap to construct; heavy work (depth estimation, model loading) goes
    in prepare(), whose result is shared by all variants of one job.
    """

    id: str = ""  # its title and description are in the registry (studio.backends)
    # Plans whose variants may be rendered concurrently in threads (CPU backends).
    parallel_variants: bool = False

    def prepare(
        self,
        image: np.ndarray,
        plans: list[VariantPlan],
        ctx: RenderContext,
        edits: tuple[SubjectEdit, ...] = (),
    ) -> object:
        """Do the per-photo work shared by every variant (returns an opaque object).

        edits are the user's corrections to the subject matte; a backend without a matte
        (a video model sees the whole photo) ignores them.
        """
        return image

    @abstractmethod
    def render(
        self, prepared: object, plan: VariantPlan, ctx: RenderContext
    ) -> Iterable[np.ndarray]:
        """Yield plan.frames RGB uint8 frames of shape (plan.height, plan.width, 3)."""

    def render_many(
        self, prepared: object, plans: list[VariantPlan], ctx: RenderContext
    ) -> Iterator[tuple[int, Rendered]]:
        """Yield (position in plans, Rendered) as each variant becomes available.

        The default renders one plan after another; model backends override this to
        batch variants into one pipeline call when memory allows.
        """
        for pos, plan in enumerate(plans):
            ctx.check_cancel()
            yield pos, Rendered(self.render(prepared, plan, ctx))
