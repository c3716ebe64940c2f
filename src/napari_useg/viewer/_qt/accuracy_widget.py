"""The accuracy widget: score a prediction Labels layer against a ground-truth one."""

from __future__ import annotations

from typing import Any

import napari.layers
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, Table
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QApplication

from napari_useg.viewer._qt.layout import compact, wrapping
from napari_useg.viewer.scoring import pick_pair, score_help, score_layers

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
        self.scores_for: tuple[str, str, bool] | None = None
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
        self.pair = wrapping(Label(label="", value=""))
        self.table = Table(value={"data": [], "columns": ["value"]}, label="")
        self.table.read_only = True
        self.table.native.setMinimumHeight(200)
        self.copy_button = PushButton(text="Copy table")
        self.status = wrapping(Label(label="", value=""))
        self.extend([
            self.prediction, self.ground_truth, self.zero_unannotated, self.add_matched,
            self.add_errors, self.compute_button, self.pair, self.table, self.copy_button,
            self.status,
        ])
        for w in (self.prediction, self.ground_truth):
            compact(w)
        self.compute_button.changed.connect(self.compute)
        self.copy_button.changed.connect(self.copy)
        self.prediction.changed.connect(self._on_pair_changed)
        self.ground_truth.changed.connect(self._on_pair_changed)
        self.zero_unannotated.changed.connect(self._on_pair_changed)
        events = self.viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            getattr(events, name).connect(self.reset_choices)
        self._pick_pair()

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer choices (a layer was added or removed); never keep a pair of
        one layer when there are two to choose from."""
        super().reset_choices()
        self._pick_pair()

    def _pick_pair(self) -> None:
        """Choose two different layers when the pair is incomplete or one layer twice."""
        pred, gt = self.prediction.value, self.ground_truth.value
        if pred is None or gt is None or pred is gt:
            layers = [lay for _, lay in self._labels_choices()]
            pair = pick_pair([lay.name for lay in layers])
            if pair is not None:
                with self.prediction.changed.blocked(), self.ground_truth.changed.blocked():
                    self.prediction.value = layers[pair[0]]
                    self.ground_truth.value = layers[pair[1]]
        self._on_pair_changed()

    def _on_pair_changed(self, *_: Any) -> None:
        """Scores of another pair (or setting) are stale: clear them."""
        pred, gt = self.prediction.value, self.ground_truth.value
        shown = self.scores_for
        now = (getattr(pred, "name", None), getattr(gt, "name", None),
               bool(self.zero_unannotated.value))
        if self.scores and shown != now:
            self.scores = {}
            self.scores_for = None
            self.table.value = {"data": [], "columns": ["value"]}
            self.status.value = ""
        if not self.scores:
            self.pair.value = ("prediction and ground truth are the same layer: choose two"
                               if pred is not None and pred is gt else "")

    def _labels_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(lay.name, lay) for lay in self.viewer.layers
                if isinstance(lay, napari.layers.Labels)]

    def compute(self, *_: Any) -> dict[str, Any]:
        """Score the chosen layers, fill the table, add the optional layers."""
        pred, gt = self.prediction.value, self.ground_truth.value
        try:
            if pred is None or gt is None:
                raise ValueError("choose a prediction and a ground-truth Labels layer")
            if pred is gt:
                raise ValueError(
                    f"prediction and ground truth are the same layer ({pred.name!r}); a "
                    "layer scored against itself is always perfect: choose two different "
                    "Labels layers"
                )
            scores = score_layers(
                self.viewer, pred, gt, zero_unannotated=self.zero_unannotated.value,
                add_matched=self.add_matched.value, add_errors=self.add_errors.value,
            )
        except (ValueError, TypeError) as exc:
            self.status.value = f"napari-useg: {exc}"
            show_error(self.status.value)
            return {}
        self.scores = dict(scores)
        self.scores_for = (pred.name, gt.name, bool(self.zero_unannotated.value))
        self.table.value = {
            "data": [[format_value(v)] for v in self.scores.values()],
            "index": list(self.scores),
            "columns": ["value"],
        }
        self._explain_rows()
        self.table.native.resizeColumnsToContents()
        ignored = " (GT label 0 not scored)" if self.zero_unannotated.value else ""
        self.pair.value = f"<b>{pred.name}</b> scored against <b>{gt.name}</b>{ignored}"
        self.status.value = "hover over a score for what it measures"
        return self.scores

    def _explain_rows(self) -> None:
        """Each row's tooltip: what the score measures, which way is better."""
        native = self.table.native
        for row, name in enumerate(self.scores):
            text = score_help(name)
            header = native.verticalHeaderItem(row)
            if header is not None:
                header.setToolTip(text)
            item = native.item(row, 0)
            if item is not None:
                item.setToolTip(text)

    def table_text(self) -> str:
        """The table as tab-separated text with a header line."""
        pair = f"{self.scores_for[0]} vs {self.scores_for[1]}" if self.scores_for else "value"
        head = f"metric\t{pair}"
        return "\n".join([head] + [f"{k}\t{format_value(v)}" for k, v in self.scores.items()])

    def copy(self, *_: Any) -> str:
        """Copy the table to the clipboard (tab-separated); returns the text."""
        text = self.table_text()
        QApplication.clipboard().setText(text)
        return text
