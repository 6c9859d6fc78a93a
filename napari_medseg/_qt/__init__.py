"""Dock widgets: thin Qt wiring of the Qt-free core to napari."""
