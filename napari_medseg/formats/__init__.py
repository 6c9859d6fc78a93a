"""File-format knowledge shared by the readers (:mod:`napari_medseg.io`) and the writers
(:mod:`napari_medseg.export`): names, colour maps, slice naming and detection.

It depends on :mod:`napari_medseg.core` only, so a reader and a writer of one format never
import each other (import-linter contracts in ``pyproject.toml``).
"""
