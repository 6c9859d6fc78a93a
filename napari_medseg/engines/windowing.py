"""Turn medical images of any dtype and range into SAM's 8-bit, three-channel input.

The user maps source channels (the images of a case, or the colour channels of an RGB
image) onto SAM's three input channels, e.g. CT, CT, PET or FLAIR, T1c, T2. Each channel is
windowed for its modality before the 8-bit conversion:

- ``ct``: soft-tissue window -160..240 HU;
- ``suv``: PET SUV 0..6;
- ``pct``: 0.5-99.5 percentiles of the non-zero voxels (MRI and anything unknown);
- ``minmax``: the full range (8-bit RGB photographs);
- ``LO:HI``: explicit limits.

``auto`` picks one from the modality, the channel name and the value range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.intensity import CT_WINDOW, PET_SUV_RANGE, robust_limits
from napari_medseg.core.model import Volume

PRESETS = ("auto", "ct", "suv", "pct", "minmax")


@dataclass(frozen=True)
class SourceChannel:
    """One scalar channel a case offers: a volume, or one colour channel of an RGB volume."""

    name: str
    volume: Volume
    index: int | None = None  # colour channel of an RGB volume

    @property
    def array(self) -> np.ndarray:
        arr = self.volume.array
        return arr if self.index is None else arr[..., self.index]


@dataclass(frozen=True)
class ChannelSpec:
    """Which source channel feeds one of SAM's input channels, and its window."""

    source: str  # SourceChannel.name
    window: str = "auto"


def source_channels(images: list[Volume]) -> list[SourceChannel]:
    """Every scalar channel of ``images``, with unique names."""
    out: list[SourceChannel] = []
    for vol in images:
        base = vol.channel or vol.name
        if vol.rgb:
            out += [
                SourceChannel(f"{base}[{c}]", vol, i) for i, c in enumerate("RGB"[: vol.shape[-1]])
            ]
        else:
            out.append(SourceChannel(base, vol))
    names = [s.name for s in out]
    return [
        SourceChannel(f"{s.name}#{i}", s.volume, s.index) if names.count(s.name) > 1 else s
        for i, s in enumerate(out)
    ]


def default_mapping(sources: list[SourceChannel]) -> list[ChannelSpec]:
    """One channel: grey (x3); two: first, first, second (CT, CT, PET); more: the first three."""
    if not sources:
        raise MedsegError("no image channel to feed SAM")
    names = [s.name for s in sources]
    if len(names) == 1:
        names = names * 3
    elif len(names) == 2:
        names = [names[0], names[0], names[1]]
    return [ChannelSpec(n) for n in names[:3]]


def resolve_window(source: SourceChannel, window: str = "auto") -> tuple[float, float]:
    """Numeric (lo, hi) limits for ``window`` on ``source``."""
    arr = source.array
    if window == "auto":
        window = _auto_preset(source, arr)
    if window == "ct":
        return CT_WINDOW
    if window == "suv":
        return PET_SUV_RANGE
    if window == "pct":
        return robust_limits(arr)
    if window == "minmax":
        lo, hi = float(np.min(arr)), float(np.max(arr))
        return lo, hi if hi > lo else lo + 1.0
    try:
        lo, hi = (float(v) for v in window.split(":"))
    except ValueError:
        raise MedsegError(f"unknown window {window!r}; use {', '.join(PRESETS)} or LO:HI") from None
    if hi <= lo:
        raise MedsegError(f"window {window!r}: the upper limit must exceed the lower one")
    return lo, hi


def _auto_preset(source: SourceChannel, arr: np.ndarray) -> str:
    vol = source.volume
    if vol.rgb or arr.dtype == np.uint8:
        return "minmax"
    kind = vol.modality.upper()
    is_suv = "SUV" in (vol.channel.upper(), vol.name.upper())
    if kind == "CT":
        # AutoPET names both channels "CT"; an SUV image never goes below 0.
        lo, hi = robust_limits(arr, 0.0, 100.0)
        return "suv" if lo >= 0 and hi <= 100 else "ct"
    if kind in ("PET", "SUV"):
        return "suv" if is_suv or kind == "SUV" else "pct"
    return "pct"


def to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Clip to [lo, hi] and scale to 0..255 (float32 maths whatever the input dtype)."""
    scaled = (np.asarray(arr, np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def sam_stack(
    sources: list[SourceChannel], mapping: list[ChannelSpec]
) -> tuple[np.ndarray, list[dict]]:
    """The (z, y, x, 3) uint8 stack SAM sees (z = 1 for a 2D image) and the windows used."""
    if len(mapping) != 3:
        raise MedsegError(f"SAM takes exactly 3 input channels, {len(mapping)} were mapped")
    by_name = {s.name: s for s in sources}
    planes, used = [], []
    for spec in mapping:
        if spec.source not in by_name:
            raise MedsegError(f"no channel {spec.source!r}; the case has {', '.join(by_name)}")
        src = by_name[spec.source]
        lo, hi = resolve_window(src, spec.window)
        planes.append(to_uint8(src.array, lo, hi))
        used.append({"source": spec.source, "window": spec.window, "limits": [lo, hi]})
    shapes = {p.shape for p in planes}
    if len(shapes) > 1:
        raise MedsegError(
            f"mapped channels lie on different grids {sorted(shapes)}; pick channels on one grid"
        )
    stack = np.stack(planes, axis=-1)
    if stack.ndim == 3:  # a single 2D image
        stack = stack[None]
    if stack.ndim != 4:
        raise MedsegError(f"SAM needs 2D or 3D images, got shape {planes[0].shape}")
    return stack, used


def parse_mapping(text: str) -> list[ChannelSpec]:
    """``"CT,CT,SUV:suv"`` or ``"FLAIR,t1gd:pct,T2w"`` -> three channel specs (CLI syntax)."""
    specs = []
    for item in text.split(","):
        name, _, window = item.strip().partition(":")
        specs.append(ChannelSpec(name, window or "auto"))
    if len(specs) != 3 or not all(s.source for s in specs):
        raise MedsegError(f"--channels {text!r}: give three channel names, e.g. CT,CT,SUV:suv")
    return specs
