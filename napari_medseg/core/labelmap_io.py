"""Labelmaps on disk: CVAT ``labelmap.txt``, ITK-SNAP label descriptions (``.txt``),
MSD/nnU-Net ``dataset.json`` labels, our JSON.

Also the checks CVAT's importer needs (``cvat-mask-format.md`` §2): unique names and colours,
no ``:`` in a name, black only for the background.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from napari_medseg.core.atomic import write_text
from napari_medseg.core.errors import MedsegError, ReadError
from napari_medseg.core.labelmap import BACKGROUND_COLOR, Label, LabelMap, default_color

CVAT_HEADER = "# label:color_rgb:parts:actions"
# ITK-SNAP: IDX R G B A VIS MSH "LABEL" (A an opacity 0..1, VIS/MSH 0 or 1).
ITKSNAP_LINE = re.compile(
    r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.eE+-]+)\s+(\d+)\s+(\d+)\s+"(.*)"\s*$'
)
ITKSNAP_HEADER = """################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    IDX:   Label mesh visibility (0 or 1)
#  LABEL:   Label description
################################################
"""
JSON_FORMAT = "napari-medseg-labelmap"


def cvat_problems(labelmap: LabelMap) -> list[str]:
    """Everything in ``labelmap`` that CVAT's mask import would reject or silently corrupt."""
    problems = []
    for lab in labelmap:
        name = lab.name
        if not name.strip():
            problems.append(f"label {lab.id} has an empty name")
        if ":" in name:
            problems.append(
                f"label name {name!r} contains ':' (labelmap.txt fields are ':'-separated)"
            )
        if "\n" in name or "\r" in name:
            problems.append(f"label name {name!r} contains a line break")
        if name != name.lstrip() or name.lstrip().startswith("#"):
            problems.append(
                f"label name {name!r} starts with a space or '#' (CVAT strips or skips it)"
            )
        if len(lab.color) != 3 or any(not 0 <= int(c) <= 255 for c in lab.color):
            problems.append(f"label {name!r} colour {lab.color} is not 8-bit RGB")
        if lab.id != 0 and tuple(lab.color) == BACKGROUND_COLOR:
            problems.append(f"label {name!r} (id {lab.id}) is black, the background colour")
    for name, n in Counter(lab.name for lab in labelmap).items():
        if n > 1:
            problems.append(f"label name {name!r} is used {n} times")
    for color, n in Counter(tuple(lab.color) for lab in labelmap).items():
        if n > 1:
            who = ", ".join(repr(lab.name) for lab in labelmap if tuple(lab.color) == color)
            problems.append(f"colour {color} is shared by {who}")
    return problems


def check_cvat(labelmap: LabelMap) -> None:
    """Raise a :class:`MedsegError` listing every CVAT problem of ``labelmap``."""
    problems = cvat_problems(labelmap)
    if problems:
        raise MedsegError("labelmap not accepted by CVAT: " + "; ".join(problems))


def format_cvat(labelmap: LabelMap) -> str:
    """``labelmap.txt`` text: header, then ``name:r,g,b::`` per label in id order."""
    check_cvat(labelmap)
    lines = [CVAT_HEADER] + [
        f"{lab.name}:{','.join(str(int(c)) for c in lab.color)}::" for lab in labelmap
    ]
    return "\n".join(lines) + "\n"


def parse_cvat(
    text: str, path: str | Path | None = None
) -> list[tuple[str, tuple[int, int, int] | None]]:
    """``(name, colour)`` per label line in file order, parsed as CVAT/Datumaro does."""
    out = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 4:
            raise ReadError(
                f"line {lineno}: expected 'name:r,g,b:parts:actions', got {line!r}", path
            )
        name, color = fields[0], fields[1].strip()
        rgb = None
        if color:
            try:
                rgb = tuple(int(c) for c in color.split(","))
            except ValueError:
                rgb = ()
            if len(rgb) != 3 or any(not 0 <= c <= 255 for c in rgb):
                raise ReadError(
                    f"line {lineno}: colour {color!r} is not three 0-255 integers", path
                )
        out.append((name, rgb))
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ReadError(f"label names repeated: {dup}", path)
    colors = [c for _, c in out if c is not None]
    shared = next((c for c in colors if colors.count(c) > 1), None)
    if shared is not None:
        who = [n for n, c in out if c == shared]
        raise ReadError(
            f"colour {shared} is shared by labels {who}: their pixels cannot be told apart", path
        )
    return out


def labelmap_from_cvat(entries, reference: LabelMap | None = None) -> LabelMap:
    """Ids for CVAT labels: the background gets 0; names known to ``reference`` keep their id.

    The background is the first black label, else the one named ``background``. Other labels
    are numbered in file order after the reference's ids (CVAT sorts labels by name, so file
    order alone would not give the original ids back).
    """
    bg = next((n for n, c in entries if c == BACKGROUND_COLOR), None)
    if bg is None:
        bg = next((n for n, _ in entries if n.lower() == "background"), None)
    known = {lab.name: lab.id for lab in reference} if reference is not None else {}
    used = set(known.values()) | {0}
    next_id = max(used) + 1
    labels = []
    for name, color in entries:
        if name == bg:
            lid = 0
        elif name in known and known[name] != 0:
            lid = known[name]
        else:
            lid, next_id = next_id, next_id + 1
        labels.append(Label(lid, name, tuple(color) if color else default_color(lid)))
    return LabelMap(sorted(labels, key=lambda lab: lab.id))


def is_itksnap(text: str) -> bool:
    """True when the first label line of ``text`` is an ITK-SNAP label description."""
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return ITKSNAP_LINE.match(line) is not None
    return False


def parse_itksnap(text: str, path: str | Path | None = None) -> LabelMap:
    """An ITK-SNAP label description file: ids, colours and names (``Clear Label`` is 0)."""
    labels = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = ITKSNAP_LINE.match(line)
        if m is None:
            raise ReadError(
                f'line {lineno}: expected IDX R G B A VIS MSH "LABEL", got {line!r}', path
            )
        lid, *rgb = (int(v) for v in m.group(1, 2, 3, 4))
        if any(c > 255 for c in rgb):
            raise ReadError(f"line {lineno}: colour {rgb} is not three 0-255 integers", path)
        name = "background" if lid == 0 and m[8] == "Clear Label" else m[8]
        labels.append(Label(lid, name, tuple(rgb)))  # type: ignore[arg-type]
    try:
        return LabelMap(sorted(labels, key=lambda lab: lab.id))
    except MedsegError as exc:
        raise ReadError(exc.problem, path) from exc


def format_itksnap(labelmap: LabelMap) -> str:
    """ITK-SNAP label description text (the background is ITK-SNAP's ``Clear Label``)."""
    lines = [ITKSNAP_HEADER.rstrip("\n")]
    labels = (
        list(labelmap) if 0 in labelmap else [Label(0, "background", BACKGROUND_COLOR), *labelmap]
    )
    for lab in labels:
        name = "Clear Label" if lab.id == 0 else " ".join(lab.name.replace('"', "'").split())
        r, g, b = (int(c) for c in lab.color)
        alpha, vis = (0, 0) if lab.id == 0 else (1, 1)
        lines.append(f'{lab.id:5d} {r:5d} {g:4d} {b:4d} {alpha:8d} {vis:2d} {vis:2d}    "{name}"')
    return "\n".join(lines) + "\n"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read labelmap ({exc})", path) from exc


def read_cvat(path: str | Path, reference: LabelMap | None = None) -> LabelMap:
    path = Path(path)
    return labelmap_from_cvat(parse_cvat(_read_text(path), path), reference)


def from_dataset_json(meta: dict, path: str | Path | None = None) -> LabelMap:
    """Labels of an MSD (``{"1": "liver"}``) or nnU-Net v2 (``{"liver": 1}``) dataset.json.

    nnU-Net region entries (``{"whole tumour": [1, 2, 3]}``) are groups of labels, not labels,
    and are skipped.
    """
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        raise ReadError("dataset.json has no 'labels' object", path)
    names: dict[int, str] = {}
    for key, value in labels.items():
        if isinstance(value, list):
            continue
        try:
            lid, name = (
                (int(key), str(value))
                if str(key).strip().lstrip("-").isdigit()
                else (int(value), str(key))
            )
        except (TypeError, ValueError) as exc:
            raise ReadError(
                f"label entry {key!r}: {value!r} is not an id and a name", path
            ) from exc
        names[lid] = name
    return LabelMap.from_names(names)


def to_dataset_json(labelmap: LabelMap, style: str = "msd") -> dict:
    """The ``labels`` value: MSD ``{"id": name}`` or nnU-Net v2 ``{name: id}``."""
    if style == "nnunet":
        return {lab.name: lab.id for lab in labelmap}
    return {str(lab.id): lab.name for lab in labelmap}


def to_json_text(labelmap: LabelMap) -> str:
    return (
        json.dumps({"format": JSON_FORMAT, "version": 1, "labels": labelmap.to_json()}, indent=2)
        + "\n"
    )


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(f"not valid JSON ({exc})", path) from exc
    if not isinstance(data, dict):
        raise ReadError("expected a JSON object", path)
    return data


def read_labelmap(path: str | Path, reference: LabelMap | None = None) -> LabelMap:
    """Read ``labelmap.txt``, an ITK-SNAP ``.txt``, a ``dataset.json`` or our JSON (by content)."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        text = _read_text(path)
        if is_itksnap(text):
            return parse_itksnap(text, path)
        return labelmap_from_cvat(parse_cvat(text, path), reference)
    data = _load_json(path)
    if data.get("format") == JSON_FORMAT:
        try:
            return LabelMap.from_json(data["labels"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ReadError(f"malformed labelmap JSON ({exc})", path) from exc
    return from_dataset_json(data, path)


def write_labelmap(labelmap: LabelMap, path: str | Path, style: str = "msd") -> Path:
    """Write by suffix: ``.txt`` CVAT (ITK-SNAP with ``style="itksnap"``, or when the existing
    file is one), ``dataset.json`` (labels merged in), else our JSON.

    An existing ``dataset.json`` keeps all its other keys.
    """
    path = Path(path)
    if path.suffix.lower() == ".txt":
        if style != "itksnap" and path.is_file():
            style = "itksnap" if is_itksnap(_read_text(path)) else style
        write_text(path, format_itksnap(labelmap) if style == "itksnap" else format_cvat(labelmap))
    elif path.name == "dataset.json":
        meta = _load_json(path) if path.exists() else {}
        if "channel_names" in meta or "file_ending" in meta:
            style = "nnunet"
        meta["labels"] = to_dataset_json(labelmap, style)
        write_text(path, json.dumps(meta, indent=4) + "\n")
    else:
        write_text(path, to_json_text(labelmap))
    return path
