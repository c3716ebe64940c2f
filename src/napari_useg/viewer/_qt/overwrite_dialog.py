"""The question both widgets ask before writing over a Labels layer the user edited."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QMessageBox

__all__ = ["ask_overwrite_dialog"]


def ask_overwrite_dialog(parent: Any, layer: Any) -> str:
    """Ask before overwriting an edited Labels layer: ``"overwrite"``, ``"new"`` or ``"cancel"``."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("napari-useg")
    box.setText(
        f"The Labels layer {layer.name!r} was edited (or was not made by napari-useg)."
    )
    box.setInformativeText("Overwrite it with the new result, or add a new layer?")
    overwrite = box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole)
    new = box.addButton("Add new layer", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(new)
    box.exec()
    clicked = box.clickedButton()
    if clicked is overwrite:
        return "overwrite"
    if clicked is new:
        return "new"
    return "cancel"
