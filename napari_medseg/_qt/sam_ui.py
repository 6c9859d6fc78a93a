"""The SAM panel's controls (no behaviour: :mod:`napari_medseg._qt.sam_widget` wires them)."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_medseg.engines.sam_open import MODEL_CHOICES
from napari_medseg.engines.windowing import PRESETS

# (button text, panel method); the keys are bound viewer-wide while the panel is open.
MODE_BUTTONS = (("point", "Point (,)"), ("negative", "Negative (.)"), ("box", "Box (/)"))
ACTION_BUTTONS = (
    ("Accept (K)", "accept"),
    ("Clear prompts (Q)", "clear_prompts"),
    ("Next label (N)", "next_label"),
    ("Propagate (G)", "propagate"),
    ("Undo (U)", "undo"),
    ("Redo (Shift+U)", "redo"),
    ("Segment all boxes", "segment_boxes"),
)


def build_ui(w: QWidget, checkpoint: str, device: str, background: bool = True) -> None:
    """Create the panel's controls as attributes of ``w`` and lay them out."""
    w.checkpoint = QLineEdit(checkpoint, placeholderText="sam_vit_b_01ec64.pth")
    w.browse = QPushButton("Browse…")
    w.device = QComboBox()
    w.device.addItems(["auto", "cpu", "cuda", "mps"])
    w.device.setCurrentText(device)
    w.variant = QComboBox()  # a fine-tune that looks like its base model in the file
    for text, variant in MODEL_CHOICES:
        w.variant.addItem(text, variant)
    ckpt_row = QHBoxLayout()
    ckpt_row.addWidget(w.checkpoint)
    ckpt_row.addWidget(w.browse)

    w.mode_group = QButtonGroup(w)
    w.mode_buttons = {}
    mode_row = QHBoxLayout()
    for mode, text in MODE_BUTTONS:
        button = QPushButton(text, checkable=True)
        w.mode_group.addButton(button)
        w.mode_buttons[mode] = button
        mode_row.addWidget(button)

    w.label_id = QSpinBox(minimum=1, maximum=65535, value=1)
    w.label_name = QLabel()
    label_row = QHBoxLayout()
    label_row.addWidget(w.label_id)
    label_row.addWidget(w.label_name, 1)
    w.target = QComboBox()
    w.overwrite = QCheckBox("overwrite other labels")
    w.min_score = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, value=0.5)

    grid = QGridLayout()
    w.channel_boxes, w.window_boxes = [], []
    for i, name in enumerate(("R", "G", "B")):
        src, win = QComboBox(), QComboBox()
        win.addItems(PRESETS)
        win.setEditable(True)  # LO:HI limits
        grid.addWidget(QLabel(f"SAM {name}"), i, 0)
        grid.addWidget(src, i, 1)
        grid.addWidget(win, i, 2)
        w.channel_boxes.append(src)
        w.window_boxes.append(win)
    w.follow_view = QCheckBox("channels follow the visible layers")
    w.follow_view.setChecked(True)
    w.channels_label = QLabel()
    w.channels_label.setWordWrap(True)

    w.embed_button = QPushButton("Embed this case")
    w.cancel_button = QPushButton("Cancel")
    w.cancel_button.setEnabled(False)
    w.background_embed = QCheckBox("Embed neighbours in the background")
    w.background_embed.setChecked(bool(background))
    w.background_embed.setToolTip(
        "After a prompt, embed the slices around it (nearest first) while you work"
    )
    w.progress = QProgressBar()
    w.progress.setTextVisible(True)
    w.status = QLabel("Choose a checkpoint; then click on the image (or embed the case first).")
    w.status.setWordWrap(True)
    w.cache_label = QLabel()
    w.clear_cache_button = QPushButton("Clear cache")

    buttons = QGridLayout()
    w.action_buttons = {}
    for i, (text, method) in enumerate(ACTION_BUTTONS):
        w.action_buttons[method] = button = QPushButton(text)
        buttons.addWidget(button, i // 2, i % 2)

    form = QFormLayout()
    form.addRow("Checkpoint", ckpt_row)
    form.addRow("Model", w.variant)
    form.addRow("Device", w.device)
    form.addRow("Prompt", mode_row)
    form.addRow("Label id", label_row)
    form.addRow("Target labels", w.target)
    form.addRow("", w.overwrite)
    form.addRow("Propagation min score", w.min_score)
    run_row = QHBoxLayout()
    run_row.addWidget(w.embed_button)
    run_row.addWidget(w.cancel_button)
    cache_row = QHBoxLayout()
    cache_row.addWidget(w.cache_label)
    cache_row.addWidget(w.clear_cache_button)
    layout = QVBoxLayout(w)
    layout.addLayout(form)
    layout.addWidget(w.follow_view)
    layout.addLayout(grid)
    layout.addWidget(w.channels_label)
    layout.addLayout(run_row)
    layout.addWidget(w.background_embed)
    layout.addWidget(w.progress)
    layout.addWidget(w.status)
    layout.addLayout(buttons)
    layout.addLayout(cache_row)
    layout.addStretch()
