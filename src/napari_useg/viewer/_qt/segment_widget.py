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
    Slider,
)
from napari.utils.notifications import show_error, show_info, show_warning

from napari_useg.core.device import resolve_device
from napari_useg.core.options import RunOptions
from napari_useg.core.registry import Method, all_methods
from napari_useg.viewer._qt.layout import (
    Collapsible,
    ParamPanel,
    ScrollingDock,
    compact,
    wrapping,
)
from napari_useg.viewer._qt.overwrite_dialog import ask_overwrite_dialog
from napari_useg.viewer._qt.run_controls import (
    NO_PRESET,
    RunControls,
    axis_choices,
    preset_choices,
)
from napari_useg.viewer._qt.worker import JobWorker
from napari_useg.viewer.granularity import granularity_range, recut
from napari_useg.viewer.jobs import JobProgress
from napari_useg.viewer.output import LabelsWriter, choose_output, put_agreement_layer
from napari_useg.viewer.segment_job import SegmentationJob, make_job
from napari_useg.viewer.sources import describe_reading, guess_channel_axis, source_from_layers
from napari_useg.viewer.timing import estimate_seconds, estimate_text, eta_text

__all__ = ["SegmentWidget"]

_PROGRESS_MAX = 1000
_MIN_REDRAW = 0.2  # seconds between two live updates of the Labels layer
_LAYER_TYPES = {"image": napari.layers.Image, "labels": napari.layers.Labels}


def _position(p: JobProgress | None) -> str:
    """Where a run is: ``"step 16/150"``, ``"slice 2/3, step 4/150"`` (no loss, no labels)."""
    if p is None or p.snap is None:
        return "before the first step"
    step = f"step {p.snap.step}/{p.snap.total}"
    return f"slice {p.slice_index + 1}/{p.n_slices}, {step}" if p.n_slices > 1 else step


def _which_step(p: JobProgress | None) -> str:
    """Which labels a layer shows: ``"the labels of step 15"``..."""
    if p is None or p.snap is None:
        return "no labels yet"
    step = "its final labels" if p.snap.done else f"the labels of step {p.snap.step}"
    if p.n_slices == 1:
        return step
    done = f"slices 1-{p.slice_index} and " if p.slice_index else ""
    return f"{done}slice {p.slice_index + 1}/{p.n_slices} at {step.replace('its ', '')}"


class SegmentWidget(ScrollingDock):
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
    params : napari_useg.viewer._qt.layout.ParamPanel
        The method's parameter controls by name (``params["n_clusters"]``), in declaration
        order; the key ones are on top, the others in the collapsed ``advanced`` section
        (a :class:`~napari_useg.viewer._qt.layout.Collapsible`).
    run_controls : napari_useg.viewer._qt.run_controls.RunControls
        The run-option controls (``channel_axis``, ``preset``, ``seed``, ``device``,
        ``preview_every``), also reachable as attributes of the same names.
    segments : magicgui.widgets.Slider
        Granularity of the last result: segments per slice (or per volume), re-cut from the
        method's hierarchy without rerunning (:func:`napari_useg.viewer.granularity.recut`).
        Shown once a run of a method that builds a hierarchy finished; disabled during a
        run.
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        # napari passes a proxy that warns on private access; the layer helpers need the viewer
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.worker: JobWorker | None = None
        self.writer: LabelsWriter | None = None
        self.last_progress: JobProgress | None = None
        self._pending: JobProgress | None = None
        self._shown: JobProgress | None = None
        self._last_draw = 0.0
        self._t0 = 0.0
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
                "channel_axis": "axis of a multichannel (non-RGB) layer holding the channels "
                                "(guessed from the layer); every other axis before the last "
                                "two is a stack segmented slice by slice",
                "preset": "fill the parameters with a named set of values",
                "preview_every": "update the Labels layer every this many steps (0: only the "
                                 "result); Cancel keeps the last update",
            },
            values={"preview_every": 5},
        )
        volume_methods = sorted(n for n, m in all_methods().items() if m.volumes)
        self.mode_controls = RunControls(
            RunOptions, ["spatial_dims", "runs", "combine"],
            labels={"spatial_dims": "mode (2: slices, 3: volume)", "runs": "runs",
                    "combine": "combine runs"},
            tooltips={"spatial_dims": "2: every 2-D slice (z-slice or time frame) alone, ids "
                                      "aligned from one to the next; 3: a 3-D layer as one "
                                      f"volume ({', '.join(volume_methods)}; the layer's scale "
                                      "is the voxel spacing), a 4-D layer as one volume per "
                                      "time point, ids aligned over time",
                      "runs": "1: one run. K > 1: K runs with seeds seed..seed+K-1 made one "
                              "(see 'combine runs'), and an 'agreement' Image layer shows where "
                              "they agree (1) or not: K times the time",
                      "combine": "with runs > 1: 'consensus', the segments most runs agree "
                                 "on; 'contrast', one run: of those whose foreground stands "
                                 "out most from its background in intensity, the one "
                                 "agreeing best with the others (objects on a background, "
                                 "e.g. nuclei)"},
        )
        self.mode = self.mode_controls["spatial_dims"]
        self.runs = self.mode_controls["runs"]
        self.combine = self.mode_controls["combine"]
        self.channel_axis = self.run_controls["channel_axis"]
        self.preset = self.run_controls["preset"]
        self.seed = self.run_controls["seed"]
        self.device = self.run_controls["device"]
        self.preview_every = self.run_controls["preview_every"]
        self.reading = wrapping(Label(label="", value=""))
        self.reading.tooltip = "how the image will be read: channels or slices (change the "\
                               "channel axis if this is wrong)"
        self.summary = wrapping(Label(label=""))
        self.estimate = wrapping(Label(label="", value=""))
        self.inputs = Container(label="", labels=True)
        self.keep_both = CheckBox(
            text="keep previous result", value=False,
            tooltip="on: add a new layer; off: re-running updates the layer '<image> <method>'",
        )
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="", min=0, max=_PROGRESS_MAX, value=0)
        self.status = wrapping(Label(label="", value=""))
        self.segments = Slider(
            label="segments", min=1, max=2, value=1,
            tooltip="segments per slice (per volume in volume mode): coarser or finer cuts "
                    "of the result's hierarchy, instantly, without rerunning",
        )
        self.segments.visible = False
        self._recut_job: SegmentationJob | None = None
        self._recut_layer: Any = None
        self.top = Container(labels=True)
        self.advanced = Collapsible("advanced")
        self.params = ParamPanel(self.top, self.preset, self.advanced.body)
        self._place_controls()

        self.image.changed.connect(self._on_image_changed)
        self.extra_channels.changed.connect(self._update_reading)
        self.channel_axis.changed.connect(self._update_reading)
        self.mode.changed.connect(self._update_reading)
        self.method.changed.connect(self._on_method_changed)
        self.preset.changed.connect(self._apply_preset)
        self.device.changed.connect(self._update_estimate)
        self.runs.changed.connect(self._update_estimate)
        self.runs.changed.connect(self._on_runs_changed)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.segments.changed.connect(self._on_segments)
        events = self.viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            getattr(events, name).connect(self.reset_choices)
        self.native.destroyed.connect(self._on_destroyed)
        self._select_active_image()
        self._on_runs_changed()
        self._on_method_changed()
        self._on_image_changed()

    def _on_runs_changed(self, *_: Any) -> None:
        """How runs combine matters only for more than one run."""
        self.combine.enabled = int(self.runs.value) > 1

    def _place_controls(self) -> None:
        """Place the controls: what users set first, Run, then the collapsed advanced part.

        Everything above Run fits a 1366x768 screen with napari's default layout; the
        paper's other parameters and the run options live in the ``advanced`` section.
        """
        buttons = Container(layout="horizontal", labels=False, label="",
                            widgets=[self.run_button, self.cancel_button])
        buttons.margins = (0, 0, 0, 0)
        self.top.extend([self.image, self.extra_channels, self.channel_axis, self.reading,
                         self.method, self.summary, self.preset])  # key parameters follow
        # after the other parameters
        self.advanced.body.extend([self.mode, self.runs, self.combine, self.seed, self.device,
                                   self.preview_every, self.keep_both])
        self.body.extend([self.top, self.inputs, self.estimate, buttons, self.progress,
                          self.status, self.segments, self.advanced])
        for w in (self.image, self.method, self.preset, self.channel_axis, self.mode,
                  self.combine, self.device):
            compact(w)
        self.end_body()
        self.fit_width()

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
        return preset_choices(m)

    @property
    def current_method(self) -> Method:
        """The selected method's declaration."""
        return self._methods[self.method.value]

    # ----------------------------------------------------------------- reactions
    def _select_active_image(self) -> None:
        active = self.viewer.layers.selection.active
        if active is not None and any(active is lay for _, lay in self._image_choices()):
            self.image.value = active

    def _on_image_changed(self, *_: Any) -> None:
        self.channel_axis.reset_choices()
        guess = guess_channel_axis(self.image.value)
        if guess is not None:
            self.channel_axis.value = guess
        self.extra_channels.reset_choices()
        self._update_reading()

    def reset_choices(self, *_: Any) -> None:
        """Refresh every choice from the viewer's layers (on insertion, removal...)."""
        before = self.image.value
        super().reset_choices()
        if self.image.value is not before:
            self._on_image_changed()
        else:
            self._update_reading()

    def _source_layers(self) -> list[Any]:
        image = self.image.value
        return [] if image is None else [image, *list(self.extra_channels.value or [])]

    def _spatial_dims(self) -> int:
        """The mode control's value: 2 (slice by slice) or 3 (volumes)."""
        return int(self.mode.value)

    def _update_reading(self, *_: Any) -> None:
        """Say how the image will be read (channels or slices), before Run."""
        self.extra_channels.visible = bool(self.extra_channels.choices)
        layers = self._source_layers()
        if not layers:
            self.reading.value = "no Image layer: open or add one"
        else:
            axis = self.run_controls.values()["channel_axis"]
            self.reading.value = describe_reading(layers if len(layers) > 1 else layers[0],
                                                  axis, self._spatial_dims())
        self._update_estimate()

    def _update_estimate(self, *_: Any) -> None:
        """Warn before Run when the chosen preset will run long on the chosen device."""
        self.estimate.value = ""
        self.estimate.visible = False
        layers = self._source_layers()
        if not layers or not hasattr(self, "params") or self._spatial_dims() == 3:
            return  # the rates are of 2-D images; volume mode has no estimate
        m = self.current_method
        device = resolve_device(str(self.device.value)).type
        try:
            src = source_from_layers(layers if len(layers) > 1 else layers[0],
                                     self.run_controls.values()["channel_axis"])
        except (ValueError, TypeError):
            return
        preset = self.run_controls.values()["preset"] or m.default_preset
        seconds = estimate_seconds(m.name, preset, self.param_values(), src.out_shape,
                                   device=device, n_slices=src.n_slices)
        if seconds is not None:
            seconds *= int(self.runs.value)
        self.estimate.value = estimate_text(seconds, device)
        self.estimate.visible = bool(self.estimate.value)

    def _on_method_changed(self, *_: Any) -> None:
        m = self.current_method
        self.summary.value = m.summary
        self.summary.tooltip = m.reference
        with self.preset.changed.blocked():
            self.preset.reset_choices()
            self.preset.value = m.default_preset or NO_PRESET
        self.preset.enabled = bool(m.presets)
        self.device.enabled = m.uses_torch
        values = m.defaults(m.default_preset)
        self.params.set(m.param_infos, values)
        for w in self.params:
            w.changed.connect(self._update_estimate)
        self.inputs.clear()
        for info in m.inputs:
            self.inputs.append(ComboBox(
                name=info.name, label=info.name, tooltip=info.help,
                choices=self._input_choices(info.layer_type), nullable=not info.required,
            ))
        self.inputs.visible = bool(m.inputs)
        self._update_estimate()

    def _input_choices(self, kind: str):
        def choices(_widget: Any = None) -> list[tuple[str, Any]]:
            return [(lay.name, lay) for lay in self._layers(kind)]

        return choices

    def _apply_preset(self, *_: Any) -> None:
        values = self.current_method.defaults(self.run_controls.values()["preset"])
        for w in self.params:
            w.value = values[w.name]
        self._update_estimate()

    # ----------------------------------------------------------------- values
    def param_values(self) -> dict[str, Any]:
        """Current values of the method's parameter controls."""
        return self.params.values()

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
        self.segments.enabled = not running

    def _error(self, message: str) -> None:
        self.progress.value = 0  # a bar left full next to an error reads as success
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
        self._shown = None
        self._last_draw = 0.0
        self._t0 = time.perf_counter()
        self.progress.value = 0
        self.status.value = f"running {job.method} on {job.source.name}..."
        if self.estimate.value:
            show_warning(f"napari-useg: {self.estimate.value}")
        self.worker = JobWorker(job, on_progress=self._on_progress, on_done=self._on_done,
                                on_error=self._on_errored, on_finished=self._on_finished)
        self._set_running(True)
        self.worker.start()

    def cancel(self, *_: Any) -> None:
        """Stop the run before its next step, keeping the labels so far (the Cancel button)."""
        if self.worker is not None:
            self.status.value = "cancelling..."
            self.worker.stop()

    def _on_destroyed(self, *_: Any) -> None:
        """The dock was closed (or napari quit): stop the run and touch no Qt object again."""
        if self.worker is not None:
            self.worker.detach()
        self.worker = None
        self.writer = None

    def _on_progress(self, p: JobProgress) -> None:
        self.last_progress = p
        self.progress.value = round(p.fraction * _PROGRESS_MAX)
        if self.worker is None or not self.worker.job.stopping:
            timing = eta_text(time.perf_counter() - self._t0, p.fraction)
            self.status.value = f"{p.describe()} ({timing})"
        if self.writer is None:
            return
        now = time.perf_counter()
        if p.labels is not None and (p.snap.done or now - self._last_draw >= _MIN_REDRAW):
            self.writer.update(p)
            self._shown = p
            self._pending = None
            self._last_draw = now
        else:
            self.writer.track(p)
            if p.labels is not None:
                self._pending = p  # drawn later, or when the run ends

    def _on_done(self, p: JobProgress) -> None:
        self.last_progress = p
        if self.writer is None:
            return
        if self._pending is not None:
            self._shown = self._pending  # the result written below includes it
        self._pending = None
        self.writer.track(p)
        elapsed = eta_text(time.perf_counter() - self._t0, 1.0)
        if p.stopped:
            where = _position(p)
            layer = self.writer.finish("cancelled", f"cancelled at {where}", labels=p.result)
            self._offer_granularity(self.writer.job, layer)  # none: the result is partial
            n = layer.metadata["napari_useg"].get("n_labels", 0)
            self.status.value = (
                f"cancelled at {where} ({elapsed}); {layer.name!r} holds "
                f"{_which_step(self._shown)}: {n} labels"
            )
            show_info(f"napari-useg: {self.status.value}")
            return
        layer = self.writer.finish("done", labels=p.result)
        self._offer_granularity(self.writer.job, layer)
        agreement = put_agreement_layer(self.viewer, self.writer.job, layer)
        meta = layer.metadata["napari_useg"]
        self.progress.value = _PROGRESS_MAX
        text = f"done in {meta['runtime']:.1f} s: {meta.get('n_labels', 0)} labels in " \
               f"{layer.name!r}"
        snap = p.snap
        if snap is not None and 0 < snap.step < snap.total:
            why = snap.message.removeprefix("stopped: ") or "the method stopped"
            text += f"; stopped early at step {snap.step} of {snap.total}: {why}"
        elif meta["message"]:
            text += f". {meta['message']}"
        if agreement is not None:
            text += f"; agreement of the runs in {agreement.name!r}"
        self.status.value = text

    def _offer_granularity(self, job: SegmentationJob, layer: Any) -> None:
        """Show the segments slider over ``job``'s hierarchy (hide it when there is none)."""
        span = granularity_range(job)
        self._recut_job, self._recut_layer = (job, layer) if span is not None else (None, None)
        self.segments.visible = span is not None
        if span is None:
            return
        low, high, current = span
        with self.segments.changed.blocked():
            self.segments.min = low
            self.segments.max = max(high, low + 1)
            self.segments.value = current

    def _on_segments(self, value: int) -> None:
        """Re-cut the last result at ``value`` segments per slice (the slider moved)."""
        job, layer = self._recut_job, self._recut_layer
        if job is None or self.running:
            return
        if layer not in self.viewer.layers:
            self.status.value = f"the layer {layer.name!r} is gone: run again to re-cut"
            return
        try:
            recut(job, layer, int(value))
        except ValueError as exc:
            self.status.value = f"napari-useg: {exc}"
            return
        n = layer.metadata["napari_useg"]["n_labels"]
        self.status.value = f"{n} segments in {layer.name!r} (cut of the hierarchy, no rerun)"

    def _on_errored(self, exc: BaseException) -> None:
        if self.writer is not None and self._pending is not None:
            self.writer.update(self._pending)
        self._pending = None
        if self.writer is not None:
            layer = self.writer.finish("error", f"{type(exc).__name__}: {exc}")
            self._offer_granularity(self.writer.job, layer)  # none: the run failed
        self._error(f"napari-useg: {self.method.value} failed: {type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
