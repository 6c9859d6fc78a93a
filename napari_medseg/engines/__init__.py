"""Pre-segmentation engines behind one interface (see :mod:`napari_medseg.engines.base`)."""

from napari_medseg.engines.base import ENGINES, Engine, SegmentationResult, make_engine

__all__ = ["ENGINES", "Engine", "SegmentationResult", "make_engine"]
