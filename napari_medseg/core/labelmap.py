"""Labelmaps: ordered labels with integer id, name and RGB colour.

Id 0 is background. Colours default to a fixed, distinct palette so the same id looks the
same in napari, in exports and in reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from napari_medseg.core.errors import MedsegError

# Distinct, saturated colours (Slicer/ITK-SNAP style) for ids 1..N; id 0 is black.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)  # fmt: skip
BACKGROUND_COLOR = (0, 0, 0)


def default_color(label_id: int) -> tuple[int, int, int]:
    """The palette colour of an id (black for background)."""
    if label_id == 0:
        return BACKGROUND_COLOR
    base = PALETTE[(label_id - 1) % len(PALETTE)]
    cycle = (label_id - 1) // len(PALETTE)
    if cycle == 0:
        return base
    # Beyond the palette, shift the hue deterministically so colours stay distinct.
    return tuple((c + 37 * cycle * (i + 1)) % 256 for i, c in enumerate(base))  # type: ignore[return-value]


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    color: tuple[int, int, int]
    attributes: dict = field(default_factory=dict, compare=False, hash=False)


class LabelMap:
    """An ordered set of :class:`Label`, unique by id."""

    def __init__(self, labels: Iterable[Label] = ()):
        self._labels: dict[int, Label] = {}
        for label in labels:
            if label.id in self._labels:
                raise MedsegError(f"label id {label.id} appears twice in the labelmap")
            self._labels[label.id] = label

    @classmethod
    def from_names(cls, names: Mapping[int, str], background: bool = True) -> LabelMap:
        """Build from ``{id: name}``, adding ``0: background`` when missing."""
        items = {int(k): str(v) for k, v in names.items()}
        if background and 0 not in items:
            items[0] = "background"
        return cls(Label(i, items[i], default_color(i)) for i in sorted(items))

    def __iter__(self) -> Iterator[Label]:
        return iter(self._labels.values())

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, label_id: object) -> bool:
        return label_id in self._labels

    def __getitem__(self, label_id: int) -> Label:
        return self._labels[label_id]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"LabelMap({list(self._labels.values())!r})"

    @property
    def ids(self) -> list[int]:
        return list(self._labels)

    def names(self) -> dict[int, str]:
        return {i: lab.name for i, lab in self._labels.items()}

    def colors(self) -> dict[int, tuple[int, int, int]]:
        return {i: lab.color for i, lab in self._labels.items()}

    def foreground(self) -> list[Label]:
        return [lab for lab in self if lab.id != 0]

    def with_label(self, label: Label) -> LabelMap:
        """A copy with ``label`` added or replaced (same position when replaced)."""
        labels = dict(self._labels)
        labels[label.id] = label
        return LabelMap(labels.values())

    def ensure(self, ids: Iterable[int]) -> LabelMap:
        """A copy that also declares every id in ``ids`` (named ``label_<id>``), each new label
        in a colour no other label has (its palette colour when free)."""
        out = self
        for i in sorted({int(i) for i in ids} - set(self._labels)):
            used = {lab.color for lab in out} | {BACKGROUND_COLOR}
            candidates = (default_color(k) for k in range(i, i + 10 * len(PALETTE)))
            color = BACKGROUND_COLOR if i == 0 else next(c for c in candidates if c not in used)
            out = out.with_label(Label(i, "background" if i == 0 else f"label_{i}", color))
        return out

    def renamed(self, label_id: int, name: str) -> LabelMap:
        return self.with_label(replace(self._labels[label_id], name=name))

    def to_json(self) -> list[dict]:
        return [
            {
                "id": lab.id,
                "name": lab.name,
                "color": list(lab.color),
                **({"attributes": lab.attributes} if lab.attributes else {}),
            }
            for lab in self
        ]

    @classmethod
    def from_json(cls, items: list[dict]) -> LabelMap:
        return cls(
            Label(
                int(d["id"]),
                str(d["name"]),
                tuple(int(c) for c in d.get("color") or default_color(int(d["id"]))),
                dict(d.get("attributes") or {}),
            )  # type: ignore[arg-type]
            for d in items
        )
