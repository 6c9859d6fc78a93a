"""LSS lumbar-spine MRI (AISSLab, Mendeley rgb77xm3jf): foraminal stenosis boxes and a middle-slice
segmentation. Three layouts are read:

* v4 (V0.2 archive): ``DICOM/<patient>/IM*.dcm``,
  ``Foramina_Detection/<patient>/IM*.png + IM*.xml``,
  ``Segmentation/Masks/*.png(+.xml)``, ``Segmentation/Middle_Slice/*.png``;
* v1: ``Foramina_Detection/{Images,Annotations}/`` (flat), plus the same ``Segmentation/``;
  the patient of a flat file is its name up to the last ``_`` (``1001_IM0003`` -> ``1001``);
* the authors' scripts: ``<patient>/Sagittal/*.dcm`` with the XML files alongside.

One case per patient. The image is the sagittal DICOM series in its acquired layout
(slice, row, column), so boxes drawn on a slice's PNG land on that slice (the PNG and DICOM
share the stem ``IM0003``; boxes are rescaled when the PNG size differs from the DICOM
matrix). Without DICOM the PNG slices are stacked in natural name order.

Boxes: PASCAL VOC ``object/name`` = ``RFS``/``LFS`` + grade 0-3 (Normal, Mild, Moderate,
Severe) and the custom ``object/level`` (L1-L2 ... L5-S1).

Segmentation masks (the palette is undocumented): the distinct grey values or RGB colours of
the PNG are sorted and numbered 1..K; value 0 / black is background (0). When there is no
black and exactly six values, the lowest is taken as background. When exactly five
foreground classes result, they are named in the README's order (vertebral body, IVD,
sacrum, posterior A, posterior B): a guess by count, recorded in ``metadata["palette"]``;
otherwise they are ``class_<k>``. The mask lies on the slice its ``Masks/<name>.xml``
``filename`` (or the ``Middle_Slice`` PNG name) points to, else on the middle slice.

XML documents with ``<!DOCTYPE``/``<!ENTITY`` declarations are refused (entity tricks).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_medseg.core.errors import ReadError
from napari_medseg.core.geometry import DisplayTransform
from napari_medseg.core.labelmap import LabelMap
from napari_medseg.core.model import Box, Case, Dataset, Source, Volume
from napari_medseg.io.datasets._common import natural_key
from napari_medseg.io.listing import list_visible
from napari_medseg.io.volumes import read_image_file, read_image_stack

DETECTION = "Foramina_Detection"
BOX_NAME = re.compile(r"^(?P<side>[RL])FS\s*(?P<grade>[0-3])?$", re.IGNORECASE)
GRADES = {0: "Normal", 1: "Mild", 2: "Moderate", 3: "Severe"}
SIDES = {"R": "right", "L": "left"}
SEG_CLASSES = ("vertebral body", "IVD", "sacrum", "posterior A", "posterior B")


def parse_xml(path: Path) -> ET.Element:
    """Parse an annotation file with defusedxml, refusing DTDs and entity declarations.

    The parser decodes first (any encoding expat detects, UTF-16 without a byte-order mark
    included), so no declaration slips past a byte-level check.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read ({exc})", path) from exc
    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise ReadError("XML with <!DOCTYPE>/<!ENTITY> declarations is refused", path) from None
    except ET.ParseError as exc:
        raise ReadError(f"not valid XML ({exc})", path) from exc


@dataclass
class VocAnnotation:
    filename: str
    width: int
    height: int
    objects: list[dict]


def read_voc(path: Path) -> VocAnnotation:
    """The fields of a PASCAL VOC file: filename, size and objects (name, level, box)."""
    root = parse_xml(path)

    def number(el, tag, default=None):
        txt = el.findtext(tag)
        if txt is None or not txt.strip():
            if default is not None:
                return default
            raise ReadError(f"<{tag}> is missing", path)
        try:
            return float(txt)
        except ValueError as exc:
            raise ReadError(f"<{tag}> is not a number: {txt!r}", path) from exc

    objects = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            raise ReadError("<object> without <bndbox>", path)
        box = tuple(number(bb, t) for t in ("xmin", "ymin", "xmax", "ymax"))
        objects.append(
            {
                "name": (obj.findtext("name") or "").strip(),
                "level": (obj.findtext("level") or "").strip(),
                "box": box,
            }
        )
    size = root.find("size")
    w = int(number(size, "width", 0)) if size is not None else 0
    h = int(number(size, "height", 0)) if size is not None else 0
    return VocAnnotation((root.findtext("filename") or "").strip(), w, h, objects)


def box_properties(name: str, level: str) -> dict:
    """``RFS2`` -> side right, grade 2 (Moderate), plus the level."""
    props = {"level": level} if level else {}
    m = BOX_NAME.match(name)
    if m:
        props["side"] = SIDES[m["side"].upper()]
        if m["grade"] is not None:
            props["grade"] = int(m["grade"])
            props["grade_name"] = GRADES[int(m["grade"])]
    return props


def palette_labels(arr: np.ndarray) -> tuple[np.ndarray, LabelMap, dict]:
    """Number the distinct values/colours of a mask image 1..K (see the module docstring)."""
    flat = arr[..., :3].reshape(-1, 3) if arr.ndim == 3 else arr.reshape(-1, 1)
    values, inverse = np.unique(flat, axis=0, return_inverse=True)
    inverse = inverse.reshape(arr.shape[:2])
    is_zero = ~values.any(axis=1)
    first = 1
    if is_zero.any() or len(values) == 6:
        first = 0  # unique() sorts, so black / the lowest value comes first
    ids = np.arange(len(values)) + first
    labels = ids[inverse].astype(np.uint8 if ids.max(initial=0) < 256 else np.uint16)
    fg = [int(i) for i in ids if i]
    names = (
        dict(zip(fg, SEG_CLASSES, strict=True))
        if len(fg) == len(SEG_CLASSES)
        else {i: f"class_{i}" for i in fg}
    )
    palette = {
        int(i): [int(c) for c in v] if arr.ndim == 3 else int(v[0])
        for i, v in zip(ids, values, strict=True)
    }
    return labels, LabelMap.from_names(names), palette


@dataclass
class _Patient:
    dicom: Path | None = None
    pngs: list[Path] = field(default_factory=list)
    xmls: list[Path] = field(default_factory=list)
    masks: list[Path] = field(default_factory=list)
    middle: list[Path] = field(default_factory=list)


def _dirs(folder: Path) -> list[Path]:
    return [p for p in list_visible(folder) if p.is_dir()]


def _has_lss_xml(folder: Path, limit: int = 20) -> bool:
    """A few XML files whose objects are named RFS*/LFS* (cheap: stops at the first match)."""
    for n, xml in enumerate(
        p
        for pattern in ("*.xml", "*/Sagittal/*.xml", "Sagittal/*.xml")
        for p in folder.glob(pattern)
    ):
        if n >= limit:
            return False
        try:
            if any(BOX_NAME.match(o["name"]) for o in read_voc(xml).objects):
                return True
        except ReadError:
            continue
    return False


class LSSDataset(Dataset):
    format = "lss"
    description = (
        "LSS lumbar spine MRI (AISSLab): sagittal DICOM/PNG, foraminal boxes, middle-slice masks"
    )

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        return path.name == DETECTION or (path / DETECTION).is_dir() or _has_lss_xml(path)

    def __init__(self, root):
        super().__init__(root)
        base = self.root.parent if self.root.name == DETECTION else self.root
        self.base = base
        self._patients: dict[str, _Patient] = {}
        get = lambda pid: self._patients.setdefault(pid, _Patient())  # noqa: E731
        for d in _dirs(base / "DICOM"):
            get(d.name).dicom = d
        det = base / DETECTION
        for d in _dirs(det):
            if d.name in ("Images", "Annotations"):  # v1: flat folders, patient from the file name
                for f in list_visible(d, "*.png") + list_visible(d, "*.xml"):
                    rec = get(f.stem.rsplit("_", 1)[0])
                    (rec.pngs if f.suffix.lower() == ".png" else rec.xmls).append(f)
            else:
                get(d.name).pngs += list_visible(d, "*.png")
                get(d.name).xmls += list_visible(d, "*.xml")
        for d in [base, *_dirs(base)]:
            if (d / "Sagittal").is_dir():  # the authors' layout
                rec = get(d.name)
                rec.dicom = d / "Sagittal"
                rec.xmls += list_visible(d / "Sagittal", "*.xml")
        if not self._patients and any(
            list_visible(base, "*.xml")
        ):  # one patient's slice folder opened
            rec = get(base.parent.name if base.name == "Sagittal" else base.name)
            rec.dicom, rec.xmls = base, list_visible(base, "*.xml")
            rec.pngs = list_visible(base, "*.png")
        seg = base / "Segmentation"
        for f in list_visible(seg / "Masks", "*.png"):
            get(self._owner(f.stem)).masks.append(f)
        for f in list_visible(seg / "Middle_Slice", "*.png"):
            get(self._owner(f.stem)).middle.append(f)
        self._patients = dict(
            sorted(self._patients.items(), key=lambda kv: natural_key(Path(kv[0])))
        )

    def _owner(self, stem: str) -> str:
        """The patient a segmentation file belongs to: the longest id that prefixes its name."""
        hits = [p for p in self._patients if stem == p or re.match(re.escape(p) + r"[_\-. ]", stem)]
        return max(hits, key=len) if hits else stem

    def case_ids(self) -> list[str]:
        return list(self._patients)

    def load_case(self, case_id: str) -> Case:
        rec = self._entry(self._patients, case_id)
        case = Case(case_id, metadata={"patient": case_id})
        image, stems = self._image(case_id, rec)
        case.images.append(image)
        for xml in rec.xmls:
            case.boxes += self._boxes(xml, image, stems, case)
        if rec.masks:
            case.masks.append(self._mask(rec, image, stems, case))
            if len(rec.masks) > 1:
                case.problems.append(f"{len(rec.masks)} mask files; showing {rec.masks[0].name}")
        return case

    def _image(self, case_id: str, rec: _Patient) -> tuple[Volume, list[str]]:
        """The sagittal series (acquired layout) or the stacked PNGs, and each slice's stem."""
        if rec.dicom is not None:
            from napari_medseg.io.dicom import find_series, read_series

            series = find_series(rec.dicom)
            if not series:
                raise ReadError("no DICOM images for this patient", rec.dicom)
            wanted = {p.stem for p in rec.pngs} | {x.stem for x in rec.xmls}
            best = max(
                series, key=lambda s: (len(wanted & {f.stem for f in s.files}), len(s.files))
            )
            vol = read_series(best, native=True)
            vol.name = case_id
            return vol, [f.stem for f in best.files]
        pngs = sorted(rec.pngs or rec.middle, key=natural_key)
        if not pngs:
            raise ReadError(f"patient {case_id}: no DICOM series and no PNG slices", self.base)
        vol = read_image_stack(pngs, name=case_id, modality="MR", channel=0)
        return vol, [p.stem for p in pngs]

    def _slice_of(self, names: list[str], stems: list[str], case_id: str) -> int | None:
        """Index of the slice named by any of ``names`` (with or without the patient prefix)."""
        for name in names:
            stem = Path(name).stem
            for cand in (stem, stem[len(case_id) + 1 :] if stem.startswith(case_id) else None):
                if cand and cand in stems:
                    return stems.index(cand)
        return None

    def _boxes(self, xml: Path, image: Volume, stems: list[str], case: Case) -> list[Box]:
        ann = read_voc(xml)
        three_d = image.spatial_ndim == 3
        index = self._slice_of([ann.filename, xml.stem], stems, case.id) if three_d else None
        if three_d and index is None:
            case.problems.append(
                f"{xml.name}: no slice named {ann.filename or xml.stem}; its boxes are skipped"
            )
            return []
        rows, cols = image.shape[image.spatial_ndim - 2 : image.spatial_ndim]
        sy = rows / ann.height if ann.height else 1.0
        sx = cols / ann.width if ann.width else 1.0
        return [
            Box(
                index,
                o["box"][1] * sy,
                o["box"][0] * sx,
                o["box"][3] * sy,
                o["box"][2] * sx,
                o["name"],
                box_properties(o["name"], o["level"]),
            )
            for o in ann.objects
        ]

    def _mask(self, rec: _Patient, image: Volume, stems: list[str], case: Case) -> Volume:
        """The middle-slice segmentation, numbered by its palette, placed on its slice."""
        path = rec.masks[0]
        pixels = read_image_file(path)  # one small 2D PNG: the palette must be known to name labels
        labels, labelmap, palette = palette_labels(pixels)
        case.metadata["palette"] = {str(k): v for k, v in palette.items()}
        nsp = image.spatial_ndim
        rows, cols = image.shape[nsp - 2 : nsp]
        if labels.shape != (rows, cols):  # nearest neighbour onto the image matrix
            case.problems.append(
                f"{path.name} is {labels.shape}, the slices {(rows, cols)}: resampled"
            )
            labels = labels[
                (np.arange(rows) * labels.shape[0] // rows)[:, None],
                np.arange(cols) * labels.shape[1] // cols,
            ]
        if nsp == 3:
            xml = path.with_suffix(".xml")
            names = [read_voc(xml).filename] if xml.is_file() else []
            names += [m.name for m in rec.middle]
            index = self._slice_of(names, stems, case.id)
            if index is None:
                index = image.shape[0] // 2
                case.problems.append(
                    f"{path.name}: slice not named; placed on the middle slice {index}"
                )
            case.metadata["mask_slice"] = index
            volume = np.zeros(image.shape[:3], labels.dtype)
            volume[index] = labels
            labels = volume
        return Volume(
            "segmentation",
            labels.shape,
            labels.dtype,
            image.geometry,
            lambda: labels,
            labelmap=labelmap,
            source=Source(path, "pixels", DisplayTransform.identity(nsp)),
        )
