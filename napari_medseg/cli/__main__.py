"""``python -m napari_medseg.cli``: the same as the ``napari-medseg`` command."""

import sys

from napari_medseg.cli import main

sys.exit(main())
