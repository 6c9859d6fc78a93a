"""Mask QA: checks that make a mask suspect, each a pure function on arrays.

Every check returns :class:`Flag` objects that name the problem, the label and, where one
exists, the slice (display axis 0) to open the case at. :func:`qa_case` runs them all on one
case and compares the mask with a reference; :func:`run_qa` does that for a dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.labelmap_store import load_edited_case
from napari_medseg.core.model import Case, Dataset, Volume
from napari_medseg.io.masks import mask_path
from napari_medseg.io.volumes import read_volume
from napari_medseg.review.metrics import LabelMetrics, bounding_box, compare

FLAGS = (
    "missing",
    "unreadable",
    "empty",
    "undeclared_label",
    "grid_mismatch",
    "tiny_components",
    "holes",
    "slice_jump",
    "multiple_components",
    "low_dice",
    "volume_diff",
)


@dataclass
class Flag:
    """One QA finding. ``label`` is None for whole-mask findings; ``slice_index`` may be None."""

    name: str
    label: int | None = None
    slice_index: int | None = None
    detail: str = ""


@dataclass
class QAOptions:
    """Thresholds of the checks.

    ``min_component_ml``: components smaller than this (millilitres) are "tiny".
    ``jump_factor``: neighbouring slices whose areas differ by more than this factor "jump".
    ``jump_min_voxels``: slice areas below this are ignored by the jump check (an organ's tips).
    ``single``: label ids expected to form one connected component (``None`` = every label).
    ``min_dice``: against a reference, a label with a lower Dice is flagged ``low_dice``.
    ``max_volume_diff``: a label whose volume differs from the reference's by more than this
    fraction of the reference volume is flagged ``volume_diff``.
    """

    min_component_ml: float = 0.05
    jump_factor: float = 3.0
    jump_min_voxels: int = 20
    single: frozenset[int] | None = frozenset()
    min_dice: float = 0.8
    max_volume_diff: float = 0.2


def _components(binary: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage as ndi

    return ndi.label(binary, ndi.generate_binary_structure(binary.ndim, binary.ndim))


def check_empty(mask: np.ndarray) -> list[Flag]:
    return [] if mask.any() else [Flag("empty", detail="no foreground voxel")]


def check_labels(mask: np.ndarray, labelmap: LabelMap) -> list[Flag]:
    """Label values the labelmap does not declare, each at the first slice that holds it."""
    flags = []
    for value in sorted(set(np.unique(mask).tolist()) - set(labelmap.ids)):
        z = int(np.flatnonzero((mask == value).reshape(mask.shape[0], -1).any(axis=1))[0])
        flags.append(
            Flag(
                "undeclared_label",
                int(value),
                z if mask.ndim == 3 else None,
                f"value {value} is not in the labelmap",
            )
        )
    return flags


def check_grid(mask: Volume, image: Volume) -> list[Flag]:
    """Shape or world-geometry mismatch between a mask file and its image."""
    nsp = image.spatial_ndim
    shape, ref_shape = tuple(mask.shape[-nsp:]), tuple(image.shape[:nsp])
    if shape != ref_shape:
        return [Flag("grid_mismatch", detail=f"mask shape {shape}, image shape {ref_shape}")]
    if nsp == 3 and not np.allclose(mask.geometry.affine(), image.geometry.affine(), atol=1e-3):
        return [Flag("grid_mismatch", detail="mask affine differs from the image's")]
    return []


def _slice_of(labels: np.ndarray, component: int, ndim: int) -> int | None:
    if ndim != 3:
        return None
    zs = np.flatnonzero((labels == component).any(axis=(1, 2)))
    return int(zs[len(zs) // 2])


def check_components(binary: np.ndarray, label: int, spacing, options: QAOptions) -> list[Flag]:
    """Tiny connected components, and more than one where a single one is expected."""
    box = bounding_box(binary, pad=0)
    comps, n = _components(binary[box])
    if n == 0:
        return []
    z0 = box[0].start if binary.ndim == 3 else 0
    sizes = np.bincount(comps.ravel())[1:]
    min_voxels = options.min_component_ml * 1000.0 / float(np.prod(spacing))
    flags = []
    tiny = np.flatnonzero(sizes < min_voxels) + 1
    if tiny.size and n > 1:  # a lone tiny component is a small structure, not debris
        z = _slice_of(comps, int(tiny[0]), binary.ndim)
        flags.append(
            Flag(
                "tiny_components",
                label,
                None if z is None else z + z0,
                f"{tiny.size} of {n} components under {options.min_component_ml} ml",
            )
        )
    if n > 1 and (options.single is None or label in options.single):
        second = int(np.argsort(sizes)[-2]) + 1
        z = _slice_of(comps, second, binary.ndim)
        flags.append(
            Flag(
                "multiple_components",
                label,
                None if z is None else z + z0,
                f"{n} components where one is expected",
            )
        )
    return flags


def check_holes(binary: np.ndarray, label: int, background: np.ndarray | None = None) -> list[Flag]:
    """Background enclosed by the label: in 3D, or within an axial slice of a volume.

    ``background`` marks the voxels that count as holes (default: every voxel outside the
    label). :func:`check_mask` passes the mask's unlabelled voxels, so another label nested
    inside this one (a necrotic core inside an enhancing rim, a tumour inside its oedema) is
    anatomy, not a hole.
    """
    from scipy import ndimage as ndi

    box = bounding_box(binary, pad=1)
    crop = binary[box]
    empty = ~crop if background is None else background[box]
    if binary.ndim == 3:
        for z in range(crop.shape[0]):
            holes = ndi.binary_fill_holes(crop[z]) & empty[z]
            if holes.any():
                return [
                    Flag(
                        "holes",
                        label,
                        int(z + box[0].start),
                        f"{int(holes.sum())} hole voxels in slice",
                    )
                ]
    holes = ndi.binary_fill_holes(crop) & empty
    if holes.any():
        return [Flag("holes", label, None, f"{int(holes.sum())} enclosed background voxels")]
    return []


def slice_areas(binary: np.ndarray) -> np.ndarray:
    return binary.reshape(binary.shape[0], -1).sum(axis=1)


def check_slice_jump(binary: np.ndarray, label: int, options: QAOptions) -> list[Flag]:
    """Neighbouring slices whose areas differ by a large factor, or a gap inside the label.

    A label's tips change fast (the first slice through a ball may hold a third of the next
    one's area), so a jump counts between two inner slices whose smaller area is at least
    ``jump_min_voxels``, or when one slice dips below both neighbours by the factor (a
    half-drawn slice). The flag points at the slice after the jump, or at the dip. 2D masks
    have no slices to compare.
    """
    if binary.ndim != 3:
        return []
    area = slice_areas(binary).astype(float)
    present = np.flatnonzero(area)
    if present.size == 0:
        return []
    z0, inside, f = int(present[0]), area[present[0] : present[-1] + 1], options.jump_factor
    for i in range(1, inside.size):
        a, b = inside[i - 1], inside[i]
        if min(a, b) == 0:
            return [Flag("slice_jump", label, z0 + i, "empty slice inside the label")]
        inner = 1 < i < inside.size - 1
        if inner and min(a, b) >= options.jump_min_voxels and max(a, b) / min(a, b) > f:
            return [Flag("slice_jump", label, z0 + i, f"area {int(a)} -> {int(b)} voxels")]
        if i + 1 < inside.size and b * f < min(a, inside[i + 1]):
            return [
                Flag(
                    "slice_jump",
                    label,
                    z0 + i,
                    f"area dips to {int(b)} voxels between {int(a)} and {int(inside[i + 1])}",
                )
            ]
    return []


def check_mask(
    mask: np.ndarray, labelmap: LabelMap, spacing, options: QAOptions | None = None
) -> list[Flag]:
    """Every array check on one mask (the grid check needs the files: see :func:`qa_case`)."""
    options = options or QAOptions()
    flags = check_empty(mask) + check_labels(mask, labelmap)
    background = mask == 0
    for label in sorted(set(np.unique(mask).tolist()) - {0}):
        binary = mask == label
        flags += check_components(binary, label, spacing, options)
        flags += check_holes(binary, label, background)
        flags += check_slice_jump(binary, label, options)
    return flags


def _peak_slice(areas: np.ndarray | None) -> int | None:
    """The slice with the largest value of ``areas`` (None for 2D masks or all zeros)."""
    return int(np.argmax(areas)) if areas is not None and areas.any() else None


def check_agreement(
    mask: np.ndarray, reference: np.ndarray, metrics: list[LabelMetrics], options: QAOptions
) -> list[Flag]:
    """Flags from the comparison with a reference, each at the slice where it shows most.

    ``missing``: the reference has the label, the mask has none of it (at the reference's
    largest slice). ``low_dice``: Dice under ``min_dice`` (at the slice with most disagreeing
    voxels). ``volume_diff``: relative volume difference over ``max_volume_diff`` (at the
    slice whose areas differ most). 2D masks give no slice.
    """

    def areas(binary):
        return slice_areas(binary).astype(np.int64) if binary.ndim == 3 else None

    flags = []
    for m in metrics:
        a, b = mask == m.label, reference == m.label
        if b.any() and not a.any():
            flags.append(
                Flag("missing", m.label, _peak_slice(areas(b)), "in the reference, not the mask")
            )
            continue
        if a.any() and m.dice < options.min_dice:
            detail = f"Dice {m.dice:.3f} < {options.min_dice:g}"
            flags.append(Flag("low_dice", m.label, _peak_slice(areas(a ^ b)), detail))
        ref_ml = m.volume_ml_reference
        diff = abs(m.volume_ml_mask - ref_ml) / ref_ml if ref_ml > 0 else 0.0
        if diff > options.max_volume_diff:
            where = None if mask.ndim != 3 else _peak_slice(np.abs(areas(a) - areas(b)))
            detail = (
                f"{m.volume_ml_mask:.3g} ml vs reference {ref_ml:.3g} ml "
                f"({diff:.0%} > {options.max_volume_diff:.0%})"
            )
            flags.append(Flag("volume_diff", m.label, where, detail))
    return flags


@dataclass
class CaseQA:
    """QA of one case: its flags and per-label metrics against the reference (if any)."""

    case: str
    flags: list[Flag] = field(default_factory=list)
    metrics: list[LabelMetrics] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    def flags_for(self, label: int | None) -> list[Flag]:
        """The flags of a label, whole-mask flags included, the first of each name only.

        ``label=None`` gives every flag of the case (the first of each name).
        """
        first: dict[str, Flag] = {}
        for f in self.flags:
            if label is None or f.label in (None, label):
                first.setdefault(f.name, f)
        return list(first.values())

    @property
    def first_slice(self) -> int | None:
        """Where to open the case: the first flag that points at a slice."""
        return next((f.slice_index for f in self.flags if f.slice_index is not None), None)


def _read(path: Path, labelmap: LabelMap) -> Volume:
    return read_volume(path, name=path.name, labelmap=labelmap)[0]


def _on_grid(vol: Volume, image: Volume) -> np.ndarray:
    arr = np.asarray(vol.array)
    return arr[0] if image.spatial_ndim == 2 and arr.ndim == 3 else arr


def qa_case(
    case: Case,
    mask_file: Path,
    labelmap: LabelMap,
    reference: Path | Volume | None,
    options: QAOptions | None = None,
) -> CaseQA:
    """Check ``mask_file`` against ``case``'s image and compare it with ``reference``.

    ``reference`` is a mask file, a mask volume (the dataset's own) or None. Problems with
    the files become flags (``missing``, ``unreadable``, ``grid_mismatch``), never exceptions,
    so one bad case does not stop a QA run.
    """
    image = case.reference_image()
    result = CaseQA(case.id, labels=sorted(set(labelmap.ids) - {0}), names=labelmap.names())
    if not mask_file.exists():
        result.flags.append(Flag("missing", detail=f"no {mask_file.name}"))
        return result
    try:
        mask_vol = _read(mask_file, labelmap)
    except MedsegError as exc:
        result.flags.append(Flag("unreadable", detail=str(exc)))
        return result
    result.flags += check_grid(mask_vol, image)
    if result.flags:
        return result
    mask = _on_grid(mask_vol, image)
    spacing = image.spacing[: image.spatial_ndim]
    result.flags += check_mask(mask, labelmap, spacing, options)
    ref = None
    if isinstance(reference, Path) and reference.exists():
        ref_vol = _read(reference, labelmap)
        if check_grid(ref_vol, image):
            result.flags.append(
                Flag("grid_mismatch", detail=f"reference {reference.name} is on another grid")
            )
        else:
            ref = _on_grid(ref_vol, image)
    elif isinstance(reference, Volume):
        ref = np.asarray(reference.array)
    present = set(np.unique(mask).tolist()) | (
        set(np.unique(ref).tolist()) if ref is not None else set()
    )
    result.labels = sorted((set(labelmap.ids) | present) - {0})
    if ref is not None:
        result.metrics = compare(mask, ref, spacing, result.labels)
        result.flags += check_agreement(mask, ref, result.metrics, options or QAOptions())
    return result


def run_qa(
    dataset: Dataset,
    masks: str | Path,
    case_ids: list[str] | None = None,
    reference: str | Path | None = None,
    options: QAOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CaseQA]:
    """QA every ``<masks>/<case id>.nii.gz`` of ``dataset``.

    The reference is ``<reference>/<case id>.nii.gz`` when a folder is given, else the
    dataset's own mask of the case (cases without one get checks but no metrics).
    """
    ids = case_ids or dataset.case_ids()
    fallback = getattr(dataset, "labelmap", None) or LabelMap.from_names({1: "foreground"})
    results = []
    for i, cid in enumerate(ids):
        try:
            case = load_edited_case(dataset, cid)
            ref = (
                mask_path(reference, cid)
                if reference is not None
                else (case.masks[0] if case.masks else None)
            )
            result = qa_case(case, mask_path(masks, cid), case.labelmap or fallback, ref, options)
        except MedsegError as exc:  # an unreadable image or reference: report it, go on
            labels = sorted(set(fallback.ids) - {0})
            flag = Flag("unreadable", detail=str(exc))
            result = CaseQA(cid, [flag], labels=labels, names=fallback.names())
        results.append(result)
        if progress is not None:
            progress(i + 1, len(ids))
    return results
