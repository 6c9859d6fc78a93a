"""Qt-free data model: volumes, cases, datasets and labelmaps."""

from napari_medseg.core.errors import MedsegError
from napari_medseg.core.labelmap import Label, LabelMap
from napari_medseg.core.model import Box, Case, Dataset, Volume

__all__ = ["Box", "Case", "Dataset", "Label", "LabelMap", "MedsegError", "Volume"]
