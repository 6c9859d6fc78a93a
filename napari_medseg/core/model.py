"""Volumes, cases and datasets: the model every reader fills and every command consumes.

Arrays are in display order, (z, y, x[, c]) for volumes and (y, x[, c]) for single images.
Voxel data is read lazily: building a :class:`Case` reads headers only, and
:attr:`Volume.array` loads (and caches) the voxels on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.geometry import DisplayTransform, Geometry
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.limits import check_array

T = TypeVar("T")
INSTANCES = "instances"  # the name of a mask (and its Labels layer) of instance ids, not classes


@dataclass
class Source:
    """Where a volume came from and how to put display-order voxels back onto that file's grid.

    ``kind`` is ``"nifti"`` (``affine`` is the file's RAS affine, ``header`` its nibabel
    header), ``"itk"`` (MHA/MHD/NRRD/DICOM geometry in LPS: ``affine`` is index (i, j, k) to
    LPS) or ``"pixels"`` (no geometry: PNG/TIF/NPZ).
    """

    path: Path
    kind: str
    transform: DisplayTransform
    affine: np.ndarray | None = None
    header: Any = None


@dataclass(eq=False)
class Volume:
    """An image channel or a mask, with its geometry and a lazy loader.

    ``spacing``/``origin``/``direction`` (in :attr:`geometry`) follow the spatial axes of
    ``shape``. ``rgb`` marks a trailing colour axis. A mask carries a ``labelmap``.
    ``metadata["visible"] = False`` asks the viewer to add the layer hidden (a duplicate view).
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    geometry: Geometry
    loader: Callable[[], np.ndarray]
    modality: str = ""
    channel: str = ""
    rgb: bool = False
    labelmap: LabelMap | None = None
    source: Source | None = None
    metadata: dict = field(default_factory=dict)
    _array: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_array(cls, name: str, array: np.ndarray, geometry: Geometry | None = None, **kw):
        """Wrap an in-memory array (already in display order)."""
        nsp = array.ndim - (1 if kw.get("rgb") else 0)
        vol = cls(
            name, array.shape, array.dtype, geometry or Geometry.pixels(nsp), lambda: array, **kw
        )
        vol._array = array
        return vol

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.geometry.spacing

    @property
    def spatial_ndim(self) -> int:
        return len(self.shape) - (1 if self.rgb else 0)

    @property
    def is_mask(self) -> bool:
        return self.labelmap is not None

    @property
    def loaded(self) -> bool:
        return self._array is not None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            where = self.source.path if self.source else self.name
            check_array(self.shape, self.dtype, f"image {self.name!r}", where)  # header sizes
            arr = self.loader()
            if tuple(arr.shape) != tuple(self.shape):
                raise ReadError(f"expected shape {self.shape}, file holds {arr.shape}", where)
            self._array = arr
        return self._array

    def unload(self) -> None:
        """Drop cached voxels (they are read again on next use)."""
        self._array = None


@dataclass
class Box:
    """A 2D rectangle on one slice: display pixel coordinates, inclusive of the edges."""

    slice_index: int | None
    y0: float
    x0: float
    y1: float
    x1: float
    label: str
    properties: dict = field(default_factory=dict)


@dataclass
class Case:
    """One reviewable unit: the images of a patient/study, its masks, boxes and metadata."""

    id: str
    images: list[Volume] = field(default_factory=list)
    masks: list[Volume] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def labelmap(self) -> LabelMap | None:
        return next((m.labelmap for m in self.masks if m.labelmap is not None), None)

    def reference_image(self) -> Volume:
        """The image a new mask should share its grid with: the first mask's grid if any."""
        if self.masks:
            for img in self.images:
                if img.shape[: img.spatial_ndim] == self.masks[0].shape:
                    return img
        if not self.images:
            raise ReadError(f"case {self.id!r} has no image")
        return self.images[0]


class Dataset:
    """A folder (or file) of cases. Listing cases never reads voxel data.

    Subclasses set ``format`` and implement :meth:`detect`, :meth:`case_ids` and
    :meth:`load_case`.
    """

    format: str = ""
    description: str = ""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def detect(cls, path: Path) -> bool:  # pragma: no cover - overridden
        """Whether ``path`` has this layout. Cheap; may raise OSError or ValueError on an
        unreadable file, which :func:`~napari_medseg.io.detect.sniff_format` takes as no."""
        raise NotImplementedError

    def case_ids(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def load_case(self, case_id: str) -> Case:  # pragma: no cover - overridden
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.case_ids())

    def __iter__(self) -> Iterator[Case]:
        for cid in self.case_ids():
            yield self.load_case(cid)

    def _unknown_case(self, case_id: str) -> ReadError:
        return ReadError(f"no case {case_id!r} in this {self.format} dataset", self.root)

    def _entry(self, table: Mapping[str, T], case_id: str) -> T:
        """``table[case_id]``, or the "no such case" error naming this dataset."""
        if case_id not in table:
            raise self._unknown_case(case_id)
        return table[case_id]
