"""The segmentation widget: one method selector, controls generated from the method's declaration.

Run starts a :func:`napari.qt.threading.create_worker` generator worker over
:meth:`napari_useg.viewer.layers.SegmentationJob.iter`; each yielded snapshot updates the progress
bar and (every few steps) the output Labels layer in the main thread. Cancel asks the
worker to stop, which it does before the next method step; the layer keeps the last
labels written. Everything that is not Qt (resolving layers, stacks, metadata, choosing
and writing the output layer) lives in :mod:`napari_useg.viewer.layers`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    Label,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from napari_useg.core.device import available_devices
from napari_useg.core.registry import Method, all_methods
from napari_useg.viewer._qt.param_controls import control_for
from napari_useg.viewer.layers import (
    JobProgress,
    LabelsWriter,
    SegmentationJob,
    choose_target,
    make_job,
)

__all__ = ["SegmentWidget"]

_NO_AXIS = "none"
_NO_PRESET = "(defaults)"
_PROGRESS_MAX = 1000
_MIN_REDRAW = 0.2  # seconds between two live updates of the Labels layer


def _iterate(job: SegmentationJob) -> Iterator[JobProgress]:
    """The worker's generator (runs in the worker thread)."""
    yield from job.iter()


def ask_overwrite_dialog(parent: Any, layer: Any) -> str:
    """Ask before overwriting an edited Labels layer: ``"overwrite"``, ``"new"`` or ``"cancel"``."""
    from qtpy.QtWidgets import QMessageBox

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


def choose_output(viewer: Any, job: Any, *, keep_both: bool,
                  ask: Callable[[Any], str]) -> tuple[bool, Any | None]:
    """Where a widget's result goes: ``(go on, layer to write into or None for a new one)``.

    :func:`napari_useg.viewer.layers.choose_target` finds the layer; ``ask(layer)`` decides
    (``"overwrite"``, ``"new"`` or ``"cancel"``) when the user edited it. When the layer is
    reused with the job's shape, its labels become ``job.reference`` so ids (colours) stay.
    """
    target, edited = choose_target(viewer, job.output_name, keep_both=keep_both,
                                   on_edited="overwrite")
    if edited:
        answer = ask(target)
        if answer == "cancel":
            return False, None
        if answer not in ("overwrite", "new"):
            raise ValueError(f"ask_overwrite returned {answer!r}")
        if answer == "new":
            target = None
    if target is not None and tuple(target.data.shape) == job.out_shape:
        job.reference = np.array(target.data, copy=True)
    return True, target


class SegmentWidget(Container):
    """Unsupervised segmentation of an Image layer with any method of the registry.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari when the widget is docked).

    Attributes
    ----------
    ask_overwrite : callable
        ``ask_overwrite(layer) -> "overwrite" | "new" | "cancel"``, called before
        overwriting a Labels layer the user has edited. A dialog by default; replace it
        to script or test the widget.
    worker : napari.qt.threading.GeneratorWorker or None
        The running worker.
    writer : napari_useg.viewer.layers.LabelsWriter or None
        Writes into the output layer of the current (or last) run.
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(labels=True)
        # napari passes a proxy that warns on private access; the layer helpers need the viewer
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.worker: Any = None
        self.writer: LabelsWriter | None = None
        self.last_progress: JobProgress | None = None
        self._pending: JobProgress | None = None
        self._last_draw = 0.0
        self.ask_overwrite = lambda layer: ask_overwrite_dialog(self.native, layer)
        self._methods: dict[str, Method] = all_methods()

        self.image = ComboBox(label="image", choices=self._image_choices,
                              tooltip="Image layer to segment (RGB, grayscale, 16-bit, stack)")
        self.extra_channels = Select(
            label="+ channels", choices=self._channel_layer_choices,
            tooltip="other single-channel layers of the same shape, combined with the image "
                    "as channels (ctrl-click to select several)",
        )
        self.extra_channels.native.setMaximumHeight(70)
        self.channel_axis = ComboBox(
            label="channel axis", choices=self._axis_choices,
            tooltip="axis of a multichannel (non-RGB) layer holding the channels; every "
                    "other axis before the last two is a stack segmented slice by slice",
        )
        names = sorted(self._methods)
        self.method = ComboBox(
            label="method", choices=[(f"{n} - {self._methods[n].title}", n) for n in names],
            value="kanezaki" if "kanezaki" in names else names[0],
        )
        self.summary = Label(label="")
        self.summary.native.setWordWrap(True)
        self.preset = ComboBox(label="preset", choices=self._preset_choices,
                               tooltip="fill the parameters with a named set of values")
        self.params = Container(name="params", label="", labels=True)
        self.inputs = Container(name="inputs", label="", labels=True)
        self.seed = SpinBox(label="seed", min=0, max=2**31 - 1, value=0,
                            tooltip="same seed, image and device give the same labels")
        self.device = ComboBox(label="device", choices=available_devices(), value="auto",
                               tooltip="where the network runs (auto: CUDA, then MPS, else CPU)")
        self.preview_every = SpinBox(
            label="live update", min=0, max=10000, value=5,
            tooltip="update the Labels layer every this many steps (0: only the result); "
                    "Cancel keeps the last update",
        )
        self.keep_both = CheckBox(
            text="keep previous result (add a new layer)", value=False,
            tooltip="off: re-running updates the layer '<image> <method>'",
        )
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        buttons = Container(layout="horizontal", labels=False, label="",
                            widgets=[self.run_button, self.cancel_button])
        buttons.margins = (0, 0, 0, 0)
        self.progress = ProgressBar(label="progress", min=0, max=_PROGRESS_MAX, value=0)
        self.status = Label(label="", value="")
        self.status.native.setWordWrap(True)
        self.extend([
            self.image, self.extra_channels, self.channel_axis, self.method, self.summary,
            self.preset, self.params, self.inputs, self.seed, self.device,
            self.preview_every, self.keep_both, buttons, self.progress, self.status,
        ])

        self.image.changed.connect(self._on_image_changed)
        self.method.changed.connect(self._on_method_changed)
        self.preset.changed.connect(self._apply_preset)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        events = self.viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            getattr(events, name).connect(self.reset_choices)
        self._on_method_changed()
        self._on_image_changed()

    # ----------------------------------------------------------------- choices
    def _layers(self, kind: str) -> list[Any]:
        import napari.layers

        cls = {"image": napari.layers.Image, "labels": napari.layers.Labels}[kind]
        return [lay for lay in self.viewer.layers if isinstance(lay, cls)]

    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(lay.name, lay) for lay in self._layers("image")]

    def _channel_layer_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        img = self.image.value if hasattr(self, "image") else None
        if img is None or img.rgb:
            return []
        return [(lay.name, lay) for lay in self._layers("image")
                if lay is not img and not lay.rgb and lay.data.shape == img.data.shape]

    def _axis_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        img = self.image.value if hasattr(self, "image") else None
        if img is None:
            return [(_NO_AXIS, _NO_AXIS)]
        if img.rgb:
            return [("RGB (last axis)", _NO_AXIS)]
        out = [(_NO_AXIS, _NO_AXIS)]
        if img.data.ndim >= 3:
            out += [(f"{i} (size {n})", i) for i, n in enumerate(img.data.shape)]
        return out

    def _preset_choices(self, _widget: Any = None) -> list[str]:
        m = self.current_method
        return list(m.presets) if m.presets else [_NO_PRESET]

    @property
    def current_method(self) -> Method:
        """The selected method's declaration."""
        return self._methods[self.method.value]

    # ----------------------------------------------------------------- reactions
    def _on_image_changed(self, *_: Any) -> None:
        self.channel_axis.reset_choices()
        self.extra_channels.reset_choices()

    def _on_method_changed(self, *_: Any) -> None:
        m = self.current_method
        self.summary.value = m.summary
        self.summary.tooltip = m.reference
        with self.preset.changed.blocked():
            self.preset.reset_choices()
            if m.default_preset is not None:
                self.preset.value = m.default_preset
        self.preset.enabled = bool(m.presets)
        self.device.enabled = m.uses_torch
        values = m.defaults(m.default_preset)
        self.params.clear()
        self.params.extend([control_for(info, values[info.name]) for info in m.param_infos])
        self.inputs.clear()
        for info in m.inputs:
            self.inputs.append(ComboBox(
                name=info.name, label=info.name, tooltip=info.help,
                choices=self._input_choices(info.layer_type), nullable=not info.required,
            ))
        self.inputs.visible = bool(m.inputs)

    def _input_choices(self, kind: str):
        def choices(_widget: Any = None) -> list[tuple[str, Any]]:
            return [(lay.name, lay) for lay in self._layers(kind)]

        return choices

    def _apply_preset(self, *_: Any) -> None:
        preset = self.preset.value
        if preset == _NO_PRESET:
            preset = None
        values = self.current_method.defaults(preset)
        for w in self.params:
            w.value = values[w.name]

    # ----------------------------------------------------------------- values
    def param_values(self) -> dict[str, Any]:
        """Current values of the method's parameter controls."""
        return {w.name: w.value for w in self.params}

    def make_job(self) -> SegmentationJob:
        """Resolve the widget's current settings into a validated job (raises on bad input)."""
        image = self.image.value
        if image is None:
            raise ValueError("no Image layer to segment: open or select an image first")
        layers = [image, *list(self.extra_channels.value or [])]
        axis = self.channel_axis.value
        preset = self.preset.value
        inputs = {w.name: w.value for w in self.inputs if w.value is not None}
        return make_job(
            layers if len(layers) > 1 else image, self.method.value,
            preset=None if preset == _NO_PRESET else preset,
            channel_axis=None if axis == _NO_AXIS else int(axis),
            seed=int(self.seed.value), device=self.device.value,
            preview_every=int(self.preview_every.value), inputs=inputs,
            **self.param_values(),
        )

    # ----------------------------------------------------------------- run
    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.worker is not None

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running

    def _error(self, message: str) -> None:
        self.status.value = message
        show_error(message)

    def run(self, *_: Any) -> None:
        """Start a run with the current settings (what the Run button does)."""
        if self.running:
            return
        try:
            job = self.make_job()
        except (ValueError, TypeError) as exc:
            self._error(f"napari-useg: {exc}")
            return
        go, target = choose_output(self.viewer, job, keep_both=self.keep_both.value,
                                   ask=self.ask_overwrite)
        if not go:
            self.status.value = "not run: the edited layer was kept"
            return
        try:
            self.writer = LabelsWriter(self.viewer, job, target)
        except (ValueError, TypeError) as exc:
            self._error(f"napari-useg: {exc}")
            return
        self.last_progress = None
        self._pending = None
        self._last_draw = 0.0
        self.progress.value = 0
        self.status.value = f"running {job.method} on {job.source.name}..."
        worker = create_worker(
            _iterate, job, _start_thread=False,
            _connect={"yielded": self._on_yielded, "returned": self._on_returned,
                      "errored": self._on_errored, "aborted": self._on_aborted,
                      "finished": self._on_finished},
        )
        self.worker = worker
        self._set_running(True)
        worker.start()

    def cancel(self, *_: Any) -> None:
        """Ask the running worker to stop before its next step (the Cancel button)."""
        if self.worker is not None:
            self.status.value = "cancelling..."
            self.worker.quit()

    def _on_yielded(self, jp: JobProgress) -> None:
        self.last_progress = jp
        self.progress.value = round(jp.fraction * _PROGRESS_MAX)
        self.status.value = jp.describe()
        if self.writer is None:
            return
        now = time.perf_counter()
        if jp.labels is not None and (jp.snap.done or now - self._last_draw >= _MIN_REDRAW):
            self.writer.update(jp)
            self._pending = None
            self._last_draw = now
        else:
            self.writer.track(jp)
            if jp.labels is not None:
                self._pending = jp  # drawn later, or when the run ends

    def _flush(self) -> None:
        if self.writer is not None and self._pending is not None:
            self.writer.update(self._pending)
        self._pending = None

    def _on_returned(self, _result: Any = None) -> None:
        if self.writer is None:
            return
        self._flush()
        layer = self.writer.finish("done")
        meta = layer.metadata["napari_useg"]
        self.progress.value = _PROGRESS_MAX
        self.status.value = (
            f"done in {meta['runtime']:.1f} s: {meta.get('n_labels', 0)} labels "
            f"in {layer.name!r}. {meta['message']}"
        )

    def _on_errored(self, exc: BaseException) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.finish("error", f"{type(exc).__name__}: {exc}")
        self._error(f"napari-useg: {self.method.value} failed: {type(exc).__name__}: {exc}")

    def _on_aborted(self) -> None:
        if self.writer is None:
            return
        self._flush()
        jp = self.last_progress
        where = jp.describe() if jp is not None else "before the first step"
        layer = self.writer.finish("cancelled", f"cancelled at {where}")
        self.status.value = f"cancelled at {where}; {layer.name!r} keeps the last labels"
        show_info(f"napari-useg: {self.status.value}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
