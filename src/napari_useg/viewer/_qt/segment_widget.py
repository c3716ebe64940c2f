"""The segmentation widget: one method selector, controls generated from the method's declaration.

Run starts a :class:`~napari_useg.viewer._qt.worker.JobWorker` over
:meth:`napari_useg.viewer.segment_job.SegmentationJob.iter`; each snapshot updates the
progress bar and (every few steps) the output Labels layer in the main thread. Cancel
stops the job before its next method step; the layer keeps the last labels written.
Everything that is not Qt (resolving layers, stacks, metadata, choosing and writing the
output layer) lives in :mod:`napari_useg.viewer.segment_job` and
:mod:`napari_useg.viewer.output`.
"""

from __future__ import annotations

import time
from typing import Any

import napari.layers
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    Label,
    ProgressBar,
    PushButton,
    Select,
)
from napari.utils.notifications import show_error, show_info

from napari_useg.core.options import RunOptions
from napari_useg.core.registry import Method, all_methods
from napari_useg.viewer._qt.overwrite_dialog import ask_overwrite_dialog
from napari_useg.viewer._qt.param_controls import control_for
from napari_useg.viewer._qt.run_controls import NO_PRESET, RunControls, axis_choices
from napari_useg.viewer._qt.worker import JobWorker
from napari_useg.viewer.jobs import JobProgress
from napari_useg.viewer.output import LabelsWriter, choose_output
from napari_useg.viewer.segment_job import SegmentationJob, make_job

__all__ = ["SegmentWidget"]

_PROGRESS_MAX = 1000
_MIN_REDRAW = 0.2  # seconds between two live updates of the Labels layer
_LAYER_TYPES = {"image": napari.layers.Image, "labels": napari.layers.Labels}


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
    worker : napari_useg.viewer._qt.worker.JobWorker or None
        The running worker.
    writer : napari_useg.viewer.output.LabelsWriter or None
        Writes into the output layer of the current (or last) run.
    run_controls : napari_useg.viewer._qt.run_controls.RunControls
        The run-option controls (``channel_axis``, ``preset``, ``seed``, ``device``,
        ``preview_every``), also reachable as attributes of the same names.
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(labels=True)
        # napari passes a proxy that warns on private access; the layer helpers need the viewer
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.worker: JobWorker | None = None
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
        names = sorted(self._methods)
        self.method = ComboBox(
            label="method", choices=[(f"{n} - {self._methods[n].title}", n) for n in names],
            value="kanezaki" if "kanezaki" in names else names[0],
        )
        self.run_controls = RunControls(
            RunOptions, ["channel_axis", "preset", "seed", "device", "preview_every"],
            choices={"channel_axis": self._axis_choices, "preset": self._preset_choices},
            labels={"preview_every": "live update"},
            tooltips={
                "channel_axis": "axis of a multichannel (non-RGB) layer holding the channels; "
                                "every other axis before the last two is a stack segmented "
                                "slice by slice",
                "preset": "fill the parameters with a named set of values",
                "preview_every": "update the Labels layer every this many steps (0: only the "
                                 "result); Cancel keeps the last update",
            },
            values={"preview_every": 5},
        )
        self.mode_controls = RunControls(
            RunOptions, ["spatial_dims"], labels={"spatial_dims": "mode (2: slices, 3: volume)"},
            tooltips={"spatial_dims": "2: every 2-D slice alone; 3: a 3-D layer as one volume "
                                      "(kmeans, otsu, kanezaki; the layer's scale is the "
                                      "voxel spacing)"},
        )
        self.mode = self.mode_controls["spatial_dims"]
        self.channel_axis = self.run_controls["channel_axis"]
        self.preset = self.run_controls["preset"]
        self.seed = self.run_controls["seed"]
        self.device = self.run_controls["device"]
        self.preview_every = self.run_controls["preview_every"]
        self.summary = Label(label="")
        self.summary.native.setWordWrap(True)
        self.params = Container(name="params", label="", labels=True)
        self.inputs = Container(name="inputs", label="", labels=True)
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
            self.image, self.extra_channels, self.channel_axis, self.mode, self.method,
            self.summary,
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
        cls = _LAYER_TYPES[kind]
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
        return axis_choices(self.image.value if hasattr(self, "image") else None)

    def _preset_choices(self, _widget: Any = None) -> list[str]:
        m = self.current_method
        return list(m.presets) if m.presets else [NO_PRESET]

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
        values = self.current_method.defaults(self.run_controls.values()["preset"])
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
        inputs = {w.name: w.value for w in self.inputs if w.value is not None}
        return make_job(layers if len(layers) > 1 else image, self.method.value,
                        options=self.run_controls.options(**self.mode_controls.values()),
                        inputs=inputs,
                        **self.param_values())

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
        self.worker = JobWorker(job, on_progress=self._on_progress, on_done=self._on_done,
                                on_error=self._on_errored, on_finished=self._on_finished)
        self._set_running(True)
        self.worker.start()

    def cancel(self, *_: Any) -> None:
        """Stop the run before its next step, keeping the labels so far (the Cancel button)."""
        if self.worker is not None:
            self.status.value = "cancelling..."
            self.worker.stop()

    def _on_progress(self, p: JobProgress) -> None:
        self.last_progress = p
        self.progress.value = round(p.fraction * _PROGRESS_MAX)
        self.status.value = p.describe()
        if self.writer is None:
            return
        now = time.perf_counter()
        if p.labels is not None and (p.snap.done or now - self._last_draw >= _MIN_REDRAW):
            self.writer.update(p)
            self._pending = None
            self._last_draw = now
        else:
            self.writer.track(p)
            if p.labels is not None:
                self._pending = p  # drawn later, or when the run ends

    def _flush(self) -> None:
        if self.writer is not None and self._pending is not None:
            self.writer.update(self._pending)
        self._pending = None

    def _on_done(self, p: JobProgress) -> None:
        self.last_progress = p
        if self.writer is None:
            return
        self._pending = None
        self.writer.track(p)
        if p.stopped:
            where = p.describe() or "before the first step"
            layer = self.writer.finish("cancelled", f"cancelled at {where}", labels=p.result)
            self.status.value = f"cancelled at {where}; {layer.name!r} keeps the last labels"
            show_info(f"napari-useg: {self.status.value}")
            return
        layer = self.writer.finish("done", labels=p.result)
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

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
