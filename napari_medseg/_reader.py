"""napari reader contribution: any dataset layout or file napari-medseg knows."""

from __future__ import annotations

from pathlib import Path


def napari_get_reader(path):
    """Return a reader when ``path`` is ours, else None. Cheap, and never raises."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        from napari_medseg.io.detect import sniff_format

        if sniff_format(path) is None:
            return None
    except Exception:  # noqa: BLE001 - napari asks every plugin; a detection failure means "not ours"
        return None
    return read_path


def read_path(path):
    """Open the dataset at ``path`` and return the layers of its first case.

    The case browser picks up the dataset from the layers' metadata to list the other cases.
    """
    from napari_medseg.io.detect import open_dataset
    from napari_medseg.layers import case_layers

    if isinstance(path, list):
        path = path[0]
    dataset = open_dataset(path)
    ids = dataset.case_ids()
    if not ids:
        from napari_medseg.core.errors import LayoutError

        raise LayoutError(f"no cases found in this {dataset.format} dataset", path)
    case = dataset.load_case(ids[0])
    return case_layers(case, str(Path(path)), dataset.format)
