"""One module per dataset layout; :mod:`napari_medseg.io.detect` lists them in detection order."""
