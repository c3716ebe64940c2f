"""The accuracy widget: score a prediction Labels layer against a ground-truth one."""

from __future__ import annotations

from typing import Any

import napari.layers
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, Table
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QApplication

from napari_useg.viewer.scoring import score_layers

__all__ = ["AccuracyWidget", "format_value"]


def format_value(value: Any) -> str:
    """How a score is shown in the table (and copied)."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


class AccuracyWidget(Container):
    """Hungarian, many-to-one, covering, PRI, VOI and ARI of two Labels layers.

    The numbers come from :func:`napari_useg.metrics.score_all`; "Copy table" puts them on
    the clipboard as tab-separated text (pastes into a spreadsheet).

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari when the widget is docked).

    Attributes
    ----------
    scores : dict
        The last scores computed.
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(labels=True)
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.scores: dict[str, Any] = {}
        self.prediction = ComboBox(label="prediction", choices=self._labels_choices,
                                   tooltip="Labels layer to score (e.g. a segmentation)")
        self.ground_truth = ComboBox(label="ground truth", choices=self._labels_choices,
                                     tooltip="annotated Labels layer (e.g. from a BSDS .mat)")
        self.zero_unannotated = CheckBox(
            text="GT label 0 = unannotated", value=False,
            tooltip="do not score pixels whose ground-truth label is 0",
        )
        self.add_matched = CheckBox(
            text='add "matched" layer', value=False,
            tooltip="prediction recoloured into ground-truth ids (Hungarian matching)",
        )
        self.add_errors = CheckBox(text="add error mask layer", value=False,
                                   tooltip="1 where the matched prediction is wrong")
        self.compute_button = PushButton(text="Compute")
        self.table = Table(value={"data": [], "columns": ["value"]}, label="")
        self.table.read_only = True
        self.table.native.setMinimumHeight(240)
        self.copy_button = PushButton(text="Copy table")
        self.status = Label(label="", value="")
        self.status.native.setWordWrap(True)
        self.extend([
            self.prediction, self.ground_truth, self.zero_unannotated, self.add_matched,
            self.add_errors, self.compute_button, self.table, self.copy_button, self.status,
        ])
        self.compute_button.changed.connect(self.compute)
        self.copy_button.changed.connect(self.copy)
        events = self.viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            getattr(events, name).connect(self.reset_choices)
        labels = self._labels_choices()
        if len(labels) >= 2:  # a sensible start: the last two Labels layers
            self.prediction.value = labels[-1][1]
            self.ground_truth.value = labels[-2][1]

    def _labels_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(lay.name, lay) for lay in self.viewer.layers
                if isinstance(lay, napari.layers.Labels)]

    def compute(self, *_: Any) -> dict[str, Any]:
        """Score the chosen layers, fill the table, add the optional layers."""
        pred, gt = self.prediction.value, self.ground_truth.value
        try:
            if pred is None or gt is None:
                raise ValueError("choose a prediction and a ground-truth Labels layer")
            scores = score_layers(
                self.viewer, pred, gt, zero_unannotated=self.zero_unannotated.value,
                add_matched=self.add_matched.value, add_errors=self.add_errors.value,
            )
        except (ValueError, TypeError) as exc:
            self.status.value = f"napari-useg: {exc}"
            show_error(self.status.value)
            return {}
        self.scores = dict(scores)
        self.table.value = {
            "data": [[format_value(v)] for v in self.scores.values()],
            "index": list(self.scores),
            "columns": ["value"],
        }
        self.table.native.resizeColumnsToContents()
        self.status.value = f"{pred.name} vs {gt.name}"
        return self.scores

    def table_text(self) -> str:
        """The table as tab-separated text with a header line."""
        head = f"metric\t{self.prediction.value.name if self.prediction.value else 'value'}"
        return "\n".join([head] + [f"{k}\t{format_value(v)}" for k, v in self.scores.items()])

    def copy(self, *_: Any) -> str:
        """Copy the table to the clipboard (tab-separated); returns the text."""
        text = self.table_text()
        QApplication.clipboard().setText(text)
        return text
