"""LSS lumbar-spine MRI (Mendeley rgb77xm3jf) laid out like its releases.

``layout="v4"``: ``DICOM/<patient>/IM*.dcm``, ``Foramina_Detection/<patient>/IM*.png + IM*.xml``,
``Segmentation/Masks/<patient>.png + .xml``, ``Segmentation/Middle_Slice/<patient>.png``.
``layout="v1"``: ``Foramina_Detection/{Images,Annotations}/<patient>_IM*.{png,xml}`` and the
segmentation folders, no DICOM. ``layout="authors"``: ``<patient>/Sagittal/*.dcm`` with the
XML files alongside. Sagittal slices are (slice, row, column): slices from the patient's left
to right, rows superior to inferior, columns anterior to posterior. The detection PNGs are
twice the DICOM matrix (the released 512x512 PNGs can differ from the scanner matrix), so
boxes must be rescaled.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from napari_medseg.io.dicom_write import SAGITTAL, write_dicom_series

LEVELS = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
# RGB colours of the 5 foreground classes in the synthetic colour masks (background is black).
MASK_COLOURS = {
    1: (230, 25, 75),
    2: (60, 180, 75),
    3: (255, 225, 25),
    4: (0, 130, 200),
    5: (245, 130, 48),
}
PNG_SCALE = 2


def spine(size: int, n_slices: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """Sagittal T2-like slices (uint16), the middle-slice classes (1 vertebral body, 2 IVD,
    3 sacrum, 4 posterior A, 5 posterior B) and per-level foramen boxes (row0, col0, row1, col1)."""
    rng = np.random.default_rng(seed)
    s = size
    seg = np.zeros((s, s), np.uint8)
    top, body, disc = int(0.04 * s), int(0.12 * s), int(0.045 * s)
    a0, a1 = int(0.28 * s), int(0.55 * s)
    boxes = []
    row = top
    for _level in LEVELS:
        seg[row : row + body, a0:a1] = 1
        seg[row + body : row + body + disc, a0:a1] = 2
        mid = row + body + disc // 2
        boxes.append((mid - int(0.06 * s), int(0.57 * s), mid + int(0.06 * s), int(0.69 * s)))
        row += body + disc
    seg[row : s - 1, a0 : int(0.6 * s)] = 3
    seg[top:row, int(0.57 * s) : int(0.66 * s)][
        seg[top:row, int(0.57 * s) : int(0.66 * s)] == 0
    ] = 4
    seg[top:row:2, int(0.7 * s) : int(0.85 * s)] = 5
    intensity = {0: 150, 1: 500, 2: 1400, 3: 550, 4: 900, 5: 700}
    base = np.vectorize(intensity.get)(seg).astype(np.float32)
    slices = []
    for k in range(n_slices):
        img = base + rng.normal(0, 30, base.shape)
        lateral = abs(k - (n_slices - 1) / 2) >= (n_slices - 1) / 2 - 0.5
        if lateral:  # foramina: dark ovals behind each disc on the outer slices
            for r0, c0, r1, c1 in boxes:
                img[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1] = 60
        slices.append(np.clip(img, 0, 4000))
    return np.stack(slices).astype(np.uint16), seg, boxes


def voc_xml(filename: str, width: int, height: int, objects: list[dict], folder: str = "") -> str:
    """A PASCAL VOC annotation with the dataset's custom ``level`` element."""
    objs = "".join(
        f"<object><name>{escape(o['name'])}</name><level>{o['level']}</level><pose>Unspecified</pose>"
        f"<truncated>0</truncated><difficult>0</difficult><bndbox><xmin>{o['box'][0]}</xmin>"
        f"<ymin>{o['box'][1]}</ymin><xmax>{o['box'][2]}</xmax><ymax>{o['box'][3]}</ymax></bndbox></object>"
        for o in objects
    )
    return (
        f"<annotation><folder>{escape(folder)}</folder><filename>{escape(filename)}</filename>"
        f"<size><width>{width}</width><height>{height}</height><depth>1</depth></size>"
        f"<segmented>0</segmented>{objs}</annotation>\n"
    )


def _png(path: Path, slice_u16: np.ndarray, scale: int) -> None:
    img = (np.clip(slice_u16 / 1500.0, 0, 1) * 255).astype(np.uint8)
    img = np.kron(img, np.ones((scale, scale), np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def make_lss(
    root: str | Path,
    layout: str = "v4",
    n_patients: int = 2,
    n_slices: int = 5,
    size: int = 64,
    seed: int = 0,
    colour_masks: bool = True,
) -> Path:
    """Write an LSS dataset in ``layout`` ("v4", "v1" or "authors"); returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for p in range(n_patients):
        pid = f"{1001 + p}"
        slices, seg, boxes = spine(size, n_slices, seed + p)
        if layout == "v4":
            dicom_dir = root / "DICOM" / pid
        elif layout == "authors":
            dicom_dir = root / pid / "Sagittal"
        else:
            dicom_dir = None
        if dicom_dir is not None:
            files = write_dicom_series(
                dicom_dir,
                slices,
                (4.0, 0.6, 0.6),
                modality="MR",
                orientation=SAGITTAL,
                patient_id=pid,
                description="T2 SAG",
                seed=seed + p,
            )
            stems = [f.stem for f in files]
        else:
            stems = [f"IM{k:04d}" for k in range(n_slices)]
        # Annotated slices: the outermost on each side (slice 0 is the patient's left).
        for k, side in ((0, "L"), (n_slices - 1, "R")):
            objects = [
                {
                    "name": f"{side}FS{int(rng.integers(0, 4))}",
                    "level": level,
                    "box": (c0 * PNG_SCALE, r0 * PNG_SCALE, c1 * PNG_SCALE, r1 * PNG_SCALE),
                }
                for level, (r0, c0, r1, c1) in zip(LEVELS, boxes, strict=True)
            ]
            if layout == "v1":
                name = f"{pid}_{stems[k]}"
                png, xml = (
                    root / "Foramina_Detection" / "Images" / f"{name}.png",
                    root / "Foramina_Detection" / "Annotations" / f"{name}.xml",
                )
            elif layout == "v4":
                name = stems[k]
                png, xml = (
                    root / "Foramina_Detection" / pid / f"{name}.png",
                    root / "Foramina_Detection" / pid / f"{name}.xml",
                )
            else:
                name, png, xml = stems[k], None, dicom_dir / f"{stems[k]}.xml"
            if png is not None:
                _png(png, slices[k], PNG_SCALE)
            xml.parent.mkdir(parents=True, exist_ok=True)
            xml.write_text(
                voc_xml(f"{name}.png", size * PNG_SCALE, size * PNG_SCALE, objects, folder=pid)
            )
        if layout == "v1":  # the v1 release has PNG slices only: write the unannotated ones too
            for k in range(1, n_slices - 1):
                _png(
                    root / "Foramina_Detection" / "Images" / f"{pid}_{stems[k]}.png",
                    slices[k],
                    PNG_SCALE,
                )
        if layout != "authors":
            mid = n_slices // 2
            masks = root / "Segmentation" / "Masks"
            masks.mkdir(parents=True, exist_ok=True)
            _png(root / "Segmentation" / "Middle_Slice" / f"{pid}.png", slices[mid], 1)
            if colour_masks:
                mask = np.zeros(seg.shape + (3,), np.uint8)
                for label, colour in MASK_COLOURS.items():
                    mask[seg == label] = colour
            else:
                mask = seg
            Image.fromarray(mask).save(masks / f"{pid}.png")
            mid_name = f"{pid}_{stems[mid]}" if layout == "v1" else stems[mid]
            (masks / f"{pid}.xml").write_text(
                voc_xml(f"{mid_name}.png", size, size, [], folder=pid)
            )
    return root
