"""``python -m napari_medseg.launch [PATH]``: napari with the MedSeg panels docked and a case open.

Without PATH it opens the sample PET/CT case. ``--screenshot FILE`` saves the window and exits
(used to check what a user sees).
"""

from __future__ import annotations

import argparse

DOCKED = (("Case browser", "right"), ("Review session", "right"), ("SAM segmentation", "left"))


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

    from napari_medseg._sample_data import sample_path

    viewer = napari.Viewer(title="napari-medseg")
    docks = [
        viewer.window.add_plugin_dock_widget("napari-medseg", name, tabify=area == "right")[0]
        for name, area in DOCKED
    ]
    docks[0].raise_()  # the case browser is the tab users start from
    viewer.open(args.path or str(sample_path("petct")), plugin="napari-medseg")
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        for _ in range(20):
            QApplication.processEvents()
        viewer.screenshot(path=args.screenshot, canvas_only=False)
        viewer.close()
        return
    napari.run()


if __name__ == "__main__":
    main()
