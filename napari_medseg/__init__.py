"""napari-medseg: curate medical image segmentations in napari."""

__version__ = "0.1.0"
