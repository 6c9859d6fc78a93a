"""Dock widgets: thin Qt wiring of the Qt-free core to napari.

Importing any panel makes later torch / segment-anything / sam2 imports safe beside
napari's OpenGL canvas (see :mod:`napari_medseg.engines.safe_import`): napari imports this
package before it builds a panel, so every panel is covered, whatever it imports later.
"""

from napari_medseg.engines.safe_import import make_ml_imports_safe

make_ml_imports_safe()
