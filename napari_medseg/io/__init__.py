"""Readers: dataset layouts and single files, each producing :mod:`napari_medseg.core` objects."""

from napari_medseg.io.detect import open_dataset, sniff_format

__all__ = ["open_dataset", "sniff_format"]
