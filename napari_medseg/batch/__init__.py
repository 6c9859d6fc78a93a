"""Batch work over whole datasets (pre-segmentation), inline or on dask.distributed."""

from napari_medseg.batch.runner import presegment_dataset

__all__ = ["presegment_dataset"]
