"""The engine interface shared by ``presegment`` (CLI, batch runner) and the widgets.

An engine is built from plain options (so a dask worker can build its own copy) and turns a
:class:`~napari_medseg.core.model.Case` into a label array on the grid of
``case.reference_image()``, in display order.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Case

# name -> "module:factory"; the factory takes keyword options and returns an Engine. Its keyword
# parameters are the engine's options (see engine_options). A new engine is one line here.
ENGINES: dict[str, str] = {
    "sam": "napari_medseg.engines.sam:SamEngine.from_options",
    "sam2": "napari_medseg.engines.sam2:Sam2Engine.from_options",
    "unet": "napari_medseg.engines.unet:UNetEngine.from_options",
    "threshold": "napari_medseg.engines.threshold:ThresholdEngine.from_options",
}

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class SegmentationResult:
    mask: np.ndarray  # display order, on case.reference_image()'s grid, integer labels
    labelmap: LabelMap
    info: dict = field(default_factory=dict)  # engine details for summary.json / review history


class Engine(Protocol):
    name: str

    def segment_case(self, case: Case, progress: Progress | None = None) -> SegmentationResult: ...


def _factory(name: str) -> Callable[..., Engine]:
    if name not in ENGINES:
        raise MedsegError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}")
    module, qual = ENGINES[name].split(":")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def engine_options(name: str) -> tuple[str, ...]:
    """The options engine ``name`` declares: its factory's keyword parameters."""
    params = inspect.signature(_factory(name)).parameters.values()
    return tuple(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def make_engine(name: str, **options) -> Engine:
    """Build engine ``name`` from the options it declares; options of other engines are left
    out, so callers (CLI, batch runner, panels) may hold one pool of settings for all engines.
    Unknown engine names are a clear error."""
    own = engine_options(name)
    return _factory(name)(**{k: v for k, v in options.items() if k in own})
