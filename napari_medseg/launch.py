"""``python -m napari_medseg.launch [PATH]``: napari with the MedSeg panels docked and a case open.

Without PATH it opens the sample PET/CT case. ``--screenshot FILE`` saves the window and exits
(used to check what a user sees).

The layout is made for reading images: one column on the right holds the panels (tabbed, the
case browser in front) above napari's layer list and layer controls (tabbed), so at 1280x1024
the canvas gets well over 60 % of the width. Tabs show their whole (short) titles. The SAM and
pre-segmentation panels open from Plugins > MedSeg (they are wide).
"""

from __future__ import annotations

import argparse

# (widget display name in napari.yaml, tab title), in tab order; the first is in front.
DOCKED = (("Cases", "Cases"), ("Review", "Review"), ("QA", "QA"), ("Export", "Export"),
          ("Labelmap", "Labels"))  # fmt: skip
WINDOW = (1280, 1024)
COLUMN_WIDTH = 400  # px: the canvas keeps about two thirds of 1280


def arrange(viewer) -> list:
    """Dock the panels as described above and return their dock widgets."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QDockWidget, QTabBar

    docks = []
    for name, title in DOCKED:
        dock = viewer.window.add_plugin_dock_widget("napari-medseg", name, tabify=bool(docks))[0]
        dock.setWindowTitle(title)  # the tab text; napari's own "Name (plugin)" is long
        docks.append(dock)
    main = docks[0].parentWidget()
    napari_docks = [d for d in main.findChildren(QDockWidget) if d not in docks and d.isVisible()]
    for dock in napari_docks:  # layer list and controls: below the panels, in the same column
        main.addDockWidget(Qt.RightDockWidgetArea, dock, Qt.Vertical)
    for dock in napari_docks[1:]:
        main.tabifyDockWidget(napari_docks[0], dock)
    main.resizeDocks([docks[0]], [COLUMN_WIDTH], Qt.Horizontal)
    if napari_docks:
        main.resizeDocks([docks[0], napari_docks[0]], [600, 380], Qt.Vertical)
    for bar in main.findChildren(QTabBar):  # whole titles, with scroll arrows when needed
        bar.setElideMode(Qt.ElideNone)
        bar.setUsesScrollButtons(True)
    docks[0].raise_()  # the case browser is the tab users start from
    if napari_docks:
        napari_docks[-1].raise_()
    return docks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="napari-medseg-launch")
    parser.add_argument(
        "path", nargs="?", help="dataset folder or file (default: sample PET/CT case)"
    )
    parser.add_argument(
        "--screenshot", metavar="PNG", help="save a screenshot of the window and exit"
    )
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_medseg._sample_data import sample_path

    viewer = napari.Viewer(title="napari-medseg")
    viewer.window.resize(*WINDOW)
    docks = arrange(viewer)
    viewer.open(args.path or str(sample_path("petct")), plugin="napari-medseg")
    for _ in range(20):
        QApplication.processEvents()
    docks[0].raise_()
    docks[0].parentWidget().resizeDocks([docks[0]], [COLUMN_WIDTH], Qt.Horizontal)
    if args.screenshot:
        viewer.screenshot(path=args.screenshot, canvas_only=False)
        viewer.close()
        return
    napari.run()


if __name__ == "__main__":
    main()
