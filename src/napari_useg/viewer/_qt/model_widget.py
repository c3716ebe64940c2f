"""The model widget: train a dataset-level method (IIC, InMARS) on layers, save/load, apply.

Three parts, top to bottom:

* **Train**: pick one or more Image layers (a stack layer counts as one image per
  slice), a dataset-level method, its preset and parameters (generated from the
  method's declaration, as in the segmentation widget), and the run options (generated
  from :class:`~napari_useg.core.options.FitOptions`). Train runs
  :meth:`napari_useg.viewer.model_jobs.TrainingJob.iter` in a
  :class:`~napari_useg.viewer._qt.worker.JobWorker`; Stop ends training between two
  steps and **keeps the model trained so far** (rebuilt from the checkpoint written
  every ``checkpoint every`` steps).
* **Model**: what the widget holds (trained or loaded), Save to a folder, Load a folder.
* **Apply**: predict the model on an Image layer in a worker (tiled, dask read tile by
  tile) into the Labels layer ``"<image> <method> labels"``; a layer the user edited is
  never overwritten without asking. Stop ends a prediction after its current tile,
  writing nothing.

Everything that is not Qt lives in :mod:`napari_useg.viewer.model_jobs`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import napari.layers
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)
from napari.utils.notifications import show_error, show_info, show_warning

from napari_useg.core.model import is_model_folder, load_model
from napari_useg.core.options import FitOptions, RunOptions
from napari_useg.core.registry import Method
from napari_useg.viewer._qt.layout import (
    Collapsible,
    ParamPanel,
    ScrollingDock,
    compact,
    heading,
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
from napari_useg.viewer.jobs import Job, JobProgress
from napari_useg.viewer.model_jobs import (
    CHECKPOINT_EVERY,
    PredictionJob,
    TrainingJob,
    dataset_methods,
    describe_fit,
    make_prediction,
    make_training,
    write_prediction,
)
from napari_useg.viewer.output import choose_output
from napari_useg.viewer.sources import guess_channel_axis, layer_channels
from napari_useg.viewer.timing import eta_text

__all__ = ["ModelWidget"]

_PROGRESS_MAX = 1000


class ModelWidget(ScrollingDock):
    """Train, save, load and apply dataset-level segmentation models (IIC, InMARS).

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari when the widget is docked).

    Attributes
    ----------
    model : napari_useg.core.model.Model or None
        The model trained or loaded last.
    model_path : str or None
        Folder the model was saved to or loaded from.
    worker : napari_useg.viewer._qt.worker.JobWorker or None
        The running training or prediction worker.
    ask_overwrite : callable
        ``ask_overwrite(layer) -> "overwrite" | "new" | "cancel"`` before writing over a
        Labels layer the user edited (a dialog by default; replace it in scripts/tests).
    params : napari_useg.viewer._qt.layout.ParamPanel
        The method's parameter controls by name (``params["n_clusters"]``), in declaration
        order; the key ones are on top, the others in the collapsed ``advanced`` section
        (a :class:`~napari_useg.viewer._qt.layout.Collapsible`).
    run_controls : napari_useg.viewer._qt.run_controls.RunControls
        The training options (``channel_axis``, ``preset``, ``seed``, ``device``,
        ``normalisation``, ``checkpoint_every``), also attributes of the same names.
    apply_controls : napari_useg.viewer._qt.run_controls.RunControls
        The channel axis of the layer to apply the model to (``apply_axis``).
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.model: Any = None
        self.model_path: str | None = None
        self.worker: JobWorker | None = None
        self.training: TrainingJob | None = None
        self.prediction: PredictionJob | None = None
        self.last_progress: JobProgress | None = None
        self._target: Any = None
        self._t0 = 0.0
        self.ask_overwrite = lambda layer: ask_overwrite_dialog(self.native, layer)
        self._methods: dict[str, Method] = dataset_methods()

        # ---- train
        self.train_layers = Select(
            label="train on", choices=self._image_choices,
            tooltip="Image layers to train on (ctrl-click for several); every 2-D slice of "
                    "a stack layer is one training image",
        )
        names = sorted(self._methods)
        self.method = ComboBox(
            label="method", choices=[(f"{n} - {self._methods[n].title}", n) for n in names],
            value=names[0] if names else None,
        )
        self.run_controls = RunControls(
            FitOptions,
            ["channel_axis", "preset", "seed", "device", "normalisation", "checkpoint_every"],
            choices={"channel_axis": self._train_axis_choices, "preset": self._preset_choices},
            labels={"checkpoint_every": "checkpoint"},
            tooltips={
                "channel_axis": "axis of multichannel (non-RGB) layers holding the channels "
                                "(guessed from the layer); other axes before the last two "
                                "index images",
                "preset": "fill the parameters with a named set of values",
                "checkpoint_every": "steps between checkpoints: Stop keeps the model of the "
                                    "last one (1: exactly the steps done; larger saves time "
                                    "with big networks)",
            },
            values={"checkpoint_every": CHECKPOINT_EVERY},
        )
        self.channel_axis = self.run_controls["channel_axis"]
        self.preset = self.run_controls["preset"]
        self.seed = self.run_controls["seed"]
        self.device = self.run_controls["device"]
        self.normalisation = self.run_controls["normalisation"]
        self.checkpoint_every = self.run_controls["checkpoint_every"]
        self.summary = wrapping(Label(label=""))
        self.top = Container(labels=True)
        self.advanced = Collapsible("advanced training")
        self.params = ParamPanel(self.top, self.preset, self.advanced.body)
        self.train_button = PushButton(text="Train")
        self.stop_button = PushButton(text="Stop", enabled=False)

        # ---- model
        self.model_info = wrapping(Label(label="model",
                                         value="none: train one or load a saved model"))
        self.save_path = FileEdit(
            label="save to", mode="d", nullable=True,
            tooltip="the model folder to write (config.json + weights.pt); choosing a folder "
                    "that holds other things writes the model folder '<method>-model' in it",
        )
        self.overwrite = CheckBox(text="replace an existing folder", value=False)
        self.save_button = PushButton(text="Save model", enabled=False)
        self.load_path = FileEdit(label="load from", mode="d", nullable=True,
                                  tooltip="a folder written by Save model (or napari-useg fit)")
        self.load_button = PushButton(text="Load model")

        # ---- apply
        self.apply_image = ComboBox(label="apply to", choices=self._image_choices,
                                    tooltip="Image layer to label with the model")
        self.apply_check = wrapping(Label(label="", value=""))
        self.apply_controls = RunControls(
            RunOptions, ["channel_axis"], choices={"channel_axis": self._apply_axis_choices},
            labels={"channel_axis": "channel axis "},
            tooltips={"channel_axis": "channel axis of a multichannel (non-RGB) layer"},
        )
        self.apply_axis = self.apply_controls["channel_axis"]
        self.output = ComboBox(label="output", choices=self._output_choices,
                               tooltip="model output (IIC: main head or over-clustering head)")
        self.tile_size = SpinBox(label="tile size", min=16, max=16384, value=512,
                                 tooltip="tiles of this side are labelled one at a time "
                                         "(memory bound); the result does not depend on it")
        self.keep_both = CheckBox(
            text="keep previous result", value=False,
            tooltip="on: add a new layer; off: re-applying updates the layer "
                    "'<image> <method> labels'",
        )
        self.apply_button = PushButton(text="Apply", enabled=False)

        self.progress = ProgressBar(label="", min=0, max=_PROGRESS_MAX, value=0)
        self.status = wrapping(Label(label="", value=""))
        self._place_controls()

        self.train_layers.changed.connect(self._on_train_layers_changed)
        self.apply_image.changed.connect(self._on_apply_image_changed)
        self.apply_axis.changed.connect(self._check_apply_channels)
        self.method.changed.connect(self._on_method_changed)
        self.preset.changed.connect(self._apply_preset)
        self.train_button.changed.connect(self.train)
        self.stop_button.changed.connect(self.stop)
        self.save_button.changed.connect(self.save)
        self.load_button.changed.connect(self.load)
        self.apply_button.changed.connect(self.apply)
        events = self.viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            getattr(events, name).connect(self.reset_choices)
        self.native.destroyed.connect(self._on_destroyed)
        self._select_active_image()
        self._on_method_changed()
        self._on_train_layers_changed()
        self._on_apply_image_changed()
        self._set_model(None)

    def _place_controls(self) -> None:
        """Train (what users set first, Train, progress), Model, Apply; options collapsed.

        The Train part fits a 1366x768 screen with napari's default layout; the paper's
        other parameters and the run options live in the ``advanced training`` section.
        """
        train_row = Container(layout="horizontal", labels=False, label="",
                              widgets=[self.train_button, self.stop_button])
        train_row.margins = (0, 0, 0, 0)
        self.advanced.body.extend([self.seed, self.device, self.normalisation,
                                   self.checkpoint_every])  # after the other parameters
        self.top.extend([self.train_layers, self.channel_axis, self.method, self.summary,
                         self.preset])  # key parameters follow
        model = Container(labels=True, widgets=[
            self.model_info, self.save_path, self.overwrite, self.save_button,
            self.load_path, self.load_button])
        apply = Container(labels=True, widgets=[
            self.apply_image, self.apply_check, self.apply_axis, self.output,
            self.tile_size, self.keep_both, self.apply_button])
        self.body.extend([
            heading("Train a model on layers"), self.top, train_row, self.progress,
            self.status, self.advanced, heading("Model"), model, heading("Apply to a layer"),
            apply,
        ])
        for w in (self.method, self.preset, self.channel_axis, self.device,
                  self.normalisation, self.apply_image, self.apply_axis, self.output,
                  self.save_path, self.load_path):
            compact(w)
        self.end_body()
        self.fit_width()
        self._fit_train_list()

    def _fit_train_list(self) -> None:
        """Show every layer of the 'train on' list (3 to 8 rows; more scroll)."""
        native = self.train_layers.native
        rows = min(max(len(self.train_layers.choices), 3), 8)
        row = max(native.sizeHintForRow(0), native.fontMetrics().height() + 4)
        native.setFixedHeight(rows * row + 2 * native.frameWidth() + 4)

    def _select_active_image(self) -> None:
        active = self.viewer.layers.selection.active
        if active is not None and any(active is lay for _, lay in self._image_choices()):
            self.apply_image.value = active

    def reset_choices(self, *_: Any) -> None:
        """Refresh every choice from the viewer's layers (on insertion, removal...)."""
        super().reset_choices()
        self._fit_train_list()
        self._check_apply_channels()

    def _on_destroyed(self, *_: Any) -> None:
        """The dock was closed (or napari quit): stop the run and touch no Qt object again."""
        if self.worker is not None:
            self.worker.detach()
        self.worker = None

    # ----------------------------------------------------------------- choices
    def _image_layers(self) -> list[Any]:
        return [lay for lay in self.viewer.layers if isinstance(lay, napari.layers.Image)]

    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(lay.name, lay) for lay in self._image_layers()]

    @staticmethod
    def _axes(layers: list[Any]) -> list[tuple[str, Any]]:
        # the axis applies to the multichannel layers of a selection (RGB ones ignore it);
        # a selection of RGB layers only shows "RGB (last axis)", as the segment widget does
        return axis_choices(next((lay for lay in layers if not lay.rgb),
                                 layers[0] if layers else None))

    def _train_axis_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        sel = list(self.train_layers.value or []) if hasattr(self, "train_layers") else []
        return self._axes(sel)

    def _apply_axis_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        img = self.apply_image.value if hasattr(self, "apply_image") else None
        return self._axes([img] if img is not None else [])

    def _preset_choices(self, _widget: Any = None) -> list[str]:
        m = self.current_method
        return preset_choices(m)

    def _output_choices(self, _widget: Any = None) -> list[str]:
        model = getattr(self, "model", None)
        return list(model.outputs) if model is not None else []

    @property
    def current_method(self) -> Method | None:
        """The selected method's declaration."""
        return self._methods.get(self.method.value) if hasattr(self, "method") else None

    # ----------------------------------------------------------------- reactions
    def _on_train_layers_changed(self, *_: Any) -> None:
        self.channel_axis.reset_choices()
        guess = next((g for g in map(guess_channel_axis, self.train_layers.value or [])
                      if g is not None), None)
        if guess is not None:
            self.channel_axis.value = guess

    def _on_apply_image_changed(self, *_: Any) -> None:
        self.apply_axis.reset_choices()
        guess = guess_channel_axis(self.apply_image.value)
        if guess is not None:
            self.apply_axis.value = guess
        self._check_apply_channels()

    def _on_method_changed(self, *_: Any) -> None:
        m = self.current_method
        if m is None:
            return
        self.summary.value = m.summary
        self.summary.tooltip = m.reference
        with self.preset.changed.blocked():
            self.preset.reset_choices()
            self.preset.value = m.default_preset or NO_PRESET
        self.preset.enabled = bool(m.presets)
        values = m.defaults(m.default_preset)
        self.params.set(m.param_infos, values)

    def _apply_preset(self, *_: Any) -> None:
        m = self.current_method
        preset = self.run_controls.values()["preset"]
        if m is None or (preset is not None and preset not in m.presets):
            return
        values = m.defaults(preset)
        for w in self.params:
            w.value = values[w.name]

    def param_values(self) -> dict[str, Any]:
        """Current values of the method's parameter controls."""
        return self.params.values()

    # ----------------------------------------------------------------- state
    @property
    def running(self) -> bool:
        """Whether a training or prediction worker is running."""
        return self.worker is not None

    def _set_running(self, running: bool) -> None:
        self.train_button.enabled = not running
        self.load_button.enabled = not running
        self.stop_button.enabled = running
        has_model = self.model is not None
        self.save_button.enabled = has_model and not running
        self.apply_button.enabled = has_model and not running

    def _set_model(self, model: Any, path: str | None = None) -> None:
        self.model = model
        self.model_path = path
        self.output.reset_choices()
        self.output.enabled = model is not None
        if model is None:
            self.model_info.value = "none: train one or load a saved model"
        else:
            self.output.value = model.default_output
            tr = model.training
            kind = "RGB" if model.is_rgb and model.n_channels == 3 else \
                f"{model.n_channels}-channel"
            steps = tr.get("steps")
            if tr.get("stopped_at") is not None:
                steps = f"{tr['stopped_at']} of {tr.get('planned_steps')} (stopped)"
            parts = [f"{model.method}, {kind}, {tr.get('images', '?')} image(s), "
                     f"{steps} steps"]
            if path:
                parts.append(f"folder: {path}")
            self.model_info.value = "; ".join(parts)
        self._set_running(self.running)
        self._check_apply_channels()

    def _error(self, message: str) -> None:
        self.progress.value = 0  # a bar left full next to an error reads as success
        self.status.value = message
        show_error(message)

    def _start(self, job: Job, on_progress: Any, on_done: Any) -> None:
        self.last_progress = None
        self.worker = JobWorker(job, on_progress=on_progress, on_done=on_done,
                                on_error=self._on_errored, on_finished=self._on_finished)
        self.progress.value = 0
        self._t0 = time.perf_counter()
        self._set_running(True)
        self.worker.start()

    def stop(self, *_: Any) -> None:
        """Stop the running job after its current step (the Stop button).

        Training keeps the model so far; a prediction writes nothing.
        """
        if self.worker is not None:
            self.worker.stop()
            self.stop_button.enabled = False
            self.status.value = "stopping after the current step..."

    def _on_progress(self, p: JobProgress) -> None:
        self.last_progress = p
        self.progress.value = round(p.fraction * _PROGRESS_MAX)
        if self.worker is not None and self.worker.job.stopping:
            return  # keep the "stopping..." message
        timing = eta_text(time.perf_counter() - self._t0, p.fraction)
        if p.snap is not None:
            self.status.value = f"{describe_fit(p.snap)} ({timing})"
        elif p.n_slices > 1:
            self.status.value = f"slice {p.slice_index + 1}/{p.n_slices} ({timing})"
        else:
            self.status.value = f"applying ({timing})"

    def _on_errored(self, exc: BaseException) -> None:
        what = "training" if self.training is not None else "prediction"
        self._error(f"napari-useg: {what} failed: {type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self.training = None
        self.prediction = None
        self._target = None
        self._set_running(False)

    # ----------------------------------------------------------------- train
    def make_training(self) -> TrainingJob:
        """Resolve the Train settings into a validated job (raises on bad input)."""
        layers = list(self.train_layers.value or [])
        if not layers:
            raise ValueError("no Image layer selected to train on: select one or more in "
                             "'train on'")
        m = self.current_method
        if m is None:
            raise ValueError("no dataset-level method is registered")
        return make_training(layers, m.name, options=self.run_controls.options(),
                             **self.param_values())

    def train(self, *_: Any) -> None:
        """Start training with the current settings (the Train button)."""
        if self.running:
            return
        try:
            job = self.make_training()
        except (ValueError, TypeError) as exc:
            self._error(f"napari-useg: {exc}")
            return
        self.training = job
        n = len(job.images.arrays)
        self.status.value = f"training {job.method} on {n} image(s)..."
        self._start(job, self._on_progress, self._on_trained)

    def _on_trained(self, p: JobProgress) -> None:
        self.last_progress = p
        model = p.result
        if model is None:
            self.status.value = "stopped before the first checkpoint: no model kept"
            show_info(f"napari-useg: {self.status.value}")
            return
        self._set_model(model)
        tr = model.training
        if tr.get("stopped_at") is not None:
            self.status.value = (f"stopped: kept the model after {tr['stopped_at']} of "
                                 f"{tr.get('planned_steps')} steps")
            show_info(f"napari-useg: {self.status.value}")
        else:
            self.progress.value = _PROGRESS_MAX
            self.status.value = f"trained {tr.get('steps')} steps in {tr.get('seconds')} s"

    # ----------------------------------------------------------------- save / load
    def save(self, *_: Any) -> None:
        """Write the model to the 'save to' folder (the Save model button)."""
        if self.model is None:
            self._error("napari-useg: no model to save: train or load one first")
            return
        path = self.save_path.value
        if path is None or str(path) in ("", "."):
            self._error("napari-useg: choose a folder to save the model to ('save to')")
            return
        path = Path(path)
        if path.is_dir() and not is_model_folder(path):
            # a folder picked in the dialog: the model folder goes inside it
            path = path / f"{self.model.method}-model"
        try:
            dest = self.model.save(path, overwrite=bool(self.overwrite.value))
        except FileExistsError:
            self._error(f"napari-useg: {path} exists; tick 'replace an existing folder' or "
                        "choose another name")
            return
        except OSError as exc:
            self._error(f"napari-useg: could not save the model: {exc}")
            return
        self._set_model(self.model, str(dest))
        self.status.value = f"model saved to {dest}"

    def load(self, *_: Any) -> None:
        """Load the model in the 'load from' folder (the Load model button)."""
        if self.running:
            return
        path = self.load_path.value
        if path is None or str(path) in ("", "."):
            self._error("napari-useg: choose a model folder to load ('load from')")
            return
        try:
            model = load_model(path, device=self.device.value)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            self._error(f"napari-useg: could not load a model from {path}: {exc}")
            return
        self._set_model(model, str(Path(path)))
        self.status.value = f"loaded the {model.method} model from {path}"
        problem = self._check_apply_channels()
        if problem:
            self.status.value += f"; {problem}"
            show_warning(f"napari-useg: {problem}")

    def _check_apply_channels(self, *_: Any) -> str:
        """Say next to 'apply to' when the model cannot label the chosen layer; the reason.

        Checked when a layer is chosen, a model is trained or loaded, the channel axis
        changes: the model sees a fixed number of channels.
        """
        msg = ""
        img = self.apply_image.value
        if img is not None and self.model is not None:
            try:
                c = layer_channels(img, self.apply_controls.values()["channel_axis"])
            except (ValueError, TypeError) as exc:
                msg = f"cannot read {img.name!r}: {exc}"
            else:
                if c != self.model.n_channels:
                    msg = (f"the model expects {self.model.n_channels} channel(s) but layer "
                           f"{img.name!r} has {c} channel(s): choose another layer (or "
                           "channel axis)")
        self.apply_check.value = msg
        self.apply_check.visible = bool(msg)
        return msg

    # ----------------------------------------------------------------- apply
    def make_prediction(self) -> PredictionJob:
        """Resolve the Apply settings into a validated job (raises on bad input)."""
        img = self.apply_image.value
        if img is None:
            raise ValueError("no Image layer to apply the model to")
        return make_prediction(
            img, self.model, output=self.output.value,
            channel_axis=self.apply_controls.options().channel_axis,
            tile_size=int(self.tile_size.value), model_path=self.model_path,
        )

    def apply(self, *_: Any) -> None:
        """Label the chosen layer with the model in a worker (the Apply button)."""
        if self.running:
            return
        problem = self._check_apply_channels()
        if problem:
            self._error(f"napari-useg: {problem}")
            return
        try:
            job = self.make_prediction()
        except (ValueError, TypeError) as exc:
            self._error(f"napari-useg: {exc}")
            return
        go, target = choose_output(self.viewer, job, keep_both=self.keep_both.value,
                                   ask=self.ask_overwrite)
        if not go:
            self.status.value = "not applied: the edited layer was kept"
            return
        self.prediction = job
        self._target = target
        self.status.value = f"applying the {job.model.method} model to {job.source.name}..."
        self._start(job, self._on_progress, self._on_predicted)

    def _on_predicted(self, p: JobProgress) -> None:
        self.last_progress = p
        job = self.prediction
        if job is None:  # pragma: no cover - finished already
            return
        if p.stopped:
            self.status.value = "stopped: no labels written"
            show_info(f"napari-useg: {self.status.value}")
            return
        layer = write_prediction(self.viewer, job, p.result, self._target)
        meta = layer.metadata["napari_useg"]
        self.progress.value = _PROGRESS_MAX
        self.status.value = (f"done in {meta['runtime']:.1f} s: {meta['n_labels']} labels in "
                             f"{layer.name!r}")
