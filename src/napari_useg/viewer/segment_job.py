"""Running a per-image method on napari layers into a Labels layer (Qt-free).

What the segmentation widget does, without the widget: it works with napari layer and
viewer objects (``napari.Viewer`` or the Qt-free ``napari.components.ViewerModel``) but
imports no Qt, so it runs headless, in tests and from the napari console::

    from napari_useg import run_on_layer
    run_on_layer(viewer, "nuclei", method="kmeans", n_clusters=2)

The pieces, in the order the widget uses them:

* :func:`make_job` resolves the source layer(s) (see
  :func:`napari_useg.viewer.sources.source_from_layers`), the run options
  (:class:`~napari_useg.core.options.RunOptions`), the method parameters and extra
  inputs into a :class:`SegmentationJob`, validating everything before any compute;
* :meth:`SegmentationJob.iter` runs the method slice by slice and yields
  :class:`~napari_useg.viewer.jobs.JobProgress` snapshots, the last one carrying the
  labels (this is what the widget's thread worker iterates);
* :func:`napari_useg.viewer.output.choose_output` and
  :class:`~napari_useg.viewer.output.LabelsWriter` pick the output Labels layer
  (``"<image> <method>"``) and write labels plus metadata into it.

A 3-D layer in "volume" mode (``spatial_dims=3``) is segmented as one volume by the
methods that support volumes, with the layer's ``scale`` as the voxel spacing; the result
is a 3-D Labels layer with the same scale (any axis before the last three is a stack of
volumes). Otherwise
stacks are segmented slice by slice (every axis before the last two spatial ones),
and each slice's label ids are renamed to agree with the previous slice by Hungarian
matching on their overlap (:func:`napari_useg.align_labels`). We align rather than warm
start the network from the previous slice because alignment works for every method in
the registry (classical ones have no network), keeps each slice's result identical to
segmenting that slice alone with the same seed (reproducible, no drift or error carried
from slice to slice), and costs one contingency table per slice.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_useg.api import iter_segment_with
from napari_useg.core.hierarchy import Hierarchy
from napari_useg.core.options import RunOptions
from napari_useg.core.params import params_to_dict
from napari_useg.core.progress import Progress
from napari_useg.core.registry import get_method
from napari_useg.core.stacks import iter_stack, keep_agreement
from napari_useg.core.version import __version__
from napari_useg.viewer.jobs import Job, JobProgress, run_options
from napari_useg.viewer.output import LabelsWriter, choose_output, put_agreement_layer
from napari_useg.viewer.sources import LayerSource, resolve_layer, source_from_layers

__all__ = ["SegmentationJob", "make_job", "run_on_layer"]


@dataclass
class SegmentationJob(Job):
    """A fully validated run of one method on one source (made by :func:`make_job`).

    Attributes
    ----------
    source : LayerSource
        What to segment.
    method : str
        Registry name of the method.
    options : RunOptions
        Seed, device, preset, the source layer's channel axis, preview cadence.
    params : dict
        Every parameter value (after preset and overrides).
    device_used : str
        Device the method runs on.
    inputs : dict
        Extra array inputs (e.g. ``scribbles``), of the output's shape.
    reference : numpy.ndarray or None
        Previous result; the first slice's ids are aligned to it to keep colours.
    preset_label : str or None
        Preset as recorded in the metadata (``"fast (modified)"`` when values were changed).
    hierarchies : dict
        Filled by :meth:`iter`: the :class:`~napari_useg.core.hierarchy.Hierarchy` of each
        2-D slice's final snapshot (by slice index) when the method builds one, for
        :func:`napari_useg.viewer.granularity.recut`. Kept here, never in layer metadata.
    result : numpy.ndarray or None
        The labels of the whole source once :meth:`iter` finished (not after a stop).
    agreement : numpy.ndarray or None
        With ``options.runs > 1``: the per-pixel agreement of the runs with their
        consensus (``float32`` in ``[0, 1]``, the output's shape), filled slice by slice.
    """

    source: LayerSource
    method: str
    options: RunOptions
    params: dict[str, Any]
    device_used: str
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    reference: np.ndarray | None = None
    preset_label: str | None = None
    hierarchies: dict[tuple[int, ...], Hierarchy] = field(default_factory=dict, init=False,
                                                          repr=False)
    result: np.ndarray | None = field(default=None, init=False, repr=False)
    agreement: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def output_name(self) -> str:
        """Name of the output Labels layer: ``"<image> <method>"``."""
        return f"{self.source.name} {self.method}"

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the label map."""
        return self.source.out_shape

    def _iter_slice(self, index: tuple[int, ...]) -> Iterator[Progress]:
        extra = {k: np.asarray(v[index]) for k, v in self.inputs.items()}
        opts = self.options.replace(channel_axis=self.source.slice_channel_axis,
                                    spatial_dims=self.source.spatial_dims)
        # a method that reads a volume a window at a time gets the layer's (dask) data
        # unread: a volume larger than memory stays on disk
        lazy = self.source.spatial_dims == 3 and get_method(self.method).lazy_volumes
        image = self.source.lazy_slice(index) if lazy else self.source.slice(index)
        return iter_segment_with(image, self.method, opts, **self.params, **extra)

    def validate(self) -> None:
        """Run every check of :func:`napari_useg.iter_segment` on the first slice."""
        self._iter_slice(next(self.source.indices())).close()

    def iter(self) -> Iterator[JobProgress]:
        """Segment slice by slice, yielding a :class:`JobProgress` per method step.

        Labels of each slice are aligned to the previous slice (the first one to
        :attr:`reference`, when given; :func:`napari_useg.core.stacks.iter_stack`), so a
        cluster keeps its id and colour through the stack and across re-runs. The last
        item has ``done=True`` and the labels of the whole source in ``result``; after
        :meth:`stop`, the labels so far (``stopped``).
        """
        n = self.source.n_slices
        out = np.zeros(self.out_shape, dtype=np.int32)
        self.hierarchies = {}
        self.result = None
        self.agreement = None
        steps = iter_stack(self.source.indices(), self._iter_slice, out, self.reference)
        try:
            for st in steps:
                snap, labels, index = st.snap, st.labels, st.index
                if labels is not None and snap.done:
                    hier = snap.info.get("hierarchy")
                    if isinstance(hier, Hierarchy) and hier.shape == labels.shape:
                        self.hierarchies[index] = hier
                    self.agreement = keep_agreement(self.agreement, st, self.out_shape)
                p = JobProgress(st.fraction, st.slice_index, n, index, snap, labels)
                if snap.done and st.slice_index == n - 1:
                    p.done, p.result = True, out
                    self.result = out
                    yield p
                    return
                yield p
                if self.stopping:
                    yield p.finished(out, stopped=True)
                    return
        finally:
            steps.close()

    def metadata(self, *, runtime: float, status: str, message: str = "",
                 slices_done: int = 0, labels: np.ndarray | None = None) -> dict[str, Any]:
        """What goes into ``layer.metadata["napari_useg"]``."""
        opts = self.options
        meta: dict[str, Any] = {
            "method": self.method,
            "preset": self.preset_label if self.preset_label is not None else opts.preset,
            "params": dict(self.params),
            "seed": opts.seed,
            "device": self.device_used,
            "device_requested": opts.device,
            "version": __version__,
            "runtime": float(runtime),
            "status": status,
            "message": message,
            "source": self.source.name,
            "source_layers": list(self.source.layer_names),
            "channel_axis": self.source.channel_axis,
            "inputs": sorted(self.inputs),
            "n_slices": self.source.n_slices,
            "slices_done": int(slices_done),
            "mode": "volume" if self.source.spatial_dims == 3 else "slices",
            "spacing": list(opts.spacing) if opts.spacing is not None else None,
            "result": opts.result,
            "runs": opts.runs,
            "combine": opts.combine if opts.runs > 1 else None,
        }
        if labels is not None:
            meta["n_labels"] = int(np.unique(labels[labels > 0]).size)
        return meta


def make_job(
    layers: Any,
    method: str = "kanezaki",
    *,
    options: RunOptions | None = None,
    inputs: Mapping[str, Any] | None = None,
    viewer: Any = None,
    reference: np.ndarray | None = None,
    **kwargs: Any,
) -> SegmentationJob:
    """Resolve and validate a run of ``method`` on napari layer(s), before any compute.

    Parameters
    ----------
    layers : napari.layers.Image, str or sequence of them
        The image layer (or several single-channel layers combined as channels). Names
        need ``viewer``.
    method : str
        Registry name.
    options : RunOptions, optional
        How the run goes: ``seed``, ``device``, ``preset``, ``channel_axis`` (of a
        multichannel, non-RGB layer), ``preview_every``, ``spatial_dims`` (3: "volume"
        mode, the layer's ``scale`` is the spacing unless ``spacing`` is given),
        ``result``. Each may also be given as a keyword, which overrides ``options``.
    inputs : mapping, optional
        Extra inputs declared by the method (e.g. ``{"scribbles": labels_layer}``), as
        layers, layer names or arrays of the output's shape. They may also be passed as
        keywords.
    viewer : napari.Viewer, optional
        Needed only to resolve layer names.
    reference : numpy.ndarray, optional
        A previous result to align label ids to (keeps colours on re-runs).
    **kwargs
        Run options (see ``options``) and method parameters overriding the preset.

    Returns
    -------
    SegmentationJob

    Raises
    ------
    ValueError, TypeError
        Naming the problem (bad layer, parameter, run option, device, input...).
    """
    opts = run_options(RunOptions, options, kwargs)
    params = kwargs
    m = get_method(method)
    if isinstance(layers, (list, tuple)):
        layers = [resolve_layer(viewer, lay) for lay in layers]
    else:
        layers = resolve_layer(viewer, layers)
    source = source_from_layers(layers, opts.channel_axis)
    if opts.spatial_dims == 3:
        source = source.as_volumes()
        if opts.spacing is None:
            opts = opts.replace(spacing=source.spacing)
    elif opts.spacing is not None and len(opts.spacing) != 2:  # pragma: no cover - checked
        raise ValueError("spacing must have two values for slice-by-slice segmentation")
    input_names = {i.name for i in m.inputs}
    given = dict(inputs or {})
    for k in list(params):
        if k in input_names:
            given[k] = params.pop(k)
    unknown = sorted(set(given) - input_names)
    if unknown:
        raise TypeError(
            f"method {m.name!r} takes no input(s) {unknown}; its inputs: {sorted(input_names)}"
        )
    arrays: dict[str, np.ndarray] = {}
    for name, value in given.items():
        if value is None:
            continue
        value = resolve_layer(viewer, value)
        if not isinstance(value, np.ndarray) and hasattr(value, "data"):
            value = value.data  # a napari layer
        arr = np.asarray(value)
        if arr.shape != source.out_shape:
            raise ValueError(
                f"input {name!r} must have the shape of the segmentation {source.out_shape}, "
                f"got {arr.shape}"
            )
        arrays[name] = arr
    for info in m.inputs:
        if info.required and info.name not in arrays:
            raise ValueError(f"method {m.name!r} needs the input {info.name!r}")
    values = params_to_dict(m.build(opts.preset, params))
    device_used = str(opts.torch_device(m.uses_torch))
    preset_name = opts.preset if opts.preset is not None else m.default_preset
    if preset_name is not None and values != m.defaults(preset_name):
        preset_name = f"{preset_name} (modified)"
    job = SegmentationJob(source=source, method=m.name, options=opts, params=values,
                          device_used=device_used, inputs=arrays, reference=reference,
                          preset_label=preset_name)
    job.validate()
    return job


def run_on_layer(
    viewer: Any,
    layer: Any,
    method: str = "kanezaki",
    *,
    options: RunOptions | None = None,
    inputs: Mapping[str, Any] | None = None,
    keep_both: bool = False,
    on_edited: str = "new",
    progress: bool = False,
    **kwargs: Any,
) -> Any:
    """Segment an Image layer and write the result into a Labels layer, like the widget.

    The output layer is named ``"<image> <method>"``, has the source's scale and
    translate, and ``layer.metadata["napari_useg"]`` records method, preset, every
    parameter value, seed, device, version, runtime and a checksum of the labels.
    Re-running updates that layer (label ids aligned to the previous result, so colours
    stay) unless ``keep_both``; a layer the user has edited is never overwritten unless
    ``on_edited="overwrite"``. Stacks are segmented slice by slice with ids aligned
    from slice to slice.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
        The viewer (in the napari console: ``viewer``).
    layer : napari.layers.Image, str, or sequence of them
        Image layer or its name; several single-channel layers are combined as channels.
    method : str
        Registry name (see :func:`napari_useg.list_methods`).
    options : RunOptions, optional
        Run options; or give them as keywords: ``preset`` (``"paper"`` or ``"fast"`` for
        learning methods), ``channel_axis`` (of a multichannel, non-RGB layer), ``seed``
        (the same seed, input and device give the same labels), ``device`` (``"auto"``,
        ``"cpu"``, ``"cuda"`` or ``"mps"``).
    inputs : mapping, optional
        Extra inputs of the method (e.g. ``{"scribbles": "scribbles"}``); also accepted
        as keywords.
    keep_both : bool
        Add a new layer even when a previous result exists.
    on_edited : {"new", "overwrite", "error"}
        When the existing result layer was edited: add a new layer (default), overwrite
        it, or raise ``ValueError``.
    progress : bool
        Print one line per slice to stderr.
    **kwargs
        Run options (see ``options``) and method parameters overriding the preset;
        ``runs=K`` (``K > 1``) also adds the Image layer ``"<image> <method> agreement"``
        (:func:`napari_useg.viewer.output.put_agreement_layer`).

    Returns
    -------
    napari.layers.Labels
        The layer written.

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> from napari_useg.io.samples import sample_image
    >>> viewer = ViewerModel()
    >>> _ = viewer.add_image(sample_image("nuclei"), name="nuclei")
    >>> out = run_on_layer(viewer, "nuclei", method="kmeans", n_clusters=2, window=1)
    >>> out.name, out.data.shape, out.metadata["napari_useg"]["method"]
    ('nuclei kmeans', (256, 256), 'kmeans')
    """
    if viewer is None:
        raise ValueError("run_on_layer needs a viewer to add the Labels layer to")
    job = make_job(layer, method, options=options, inputs=inputs, viewer=viewer,
                   **{**kwargs, "preview_every": 0})
    _, target = choose_output(viewer, job, keep_both=keep_both, on_edited=on_edited)
    writer = LabelsWriter(viewer, job, target)
    for p in job.iter():
        writer.track(p)
        if progress and p.snap is not None and p.snap.done:
            print(f"[{method}] {p.describe()} {p.snap.message}", file=sys.stderr)
    out = writer.finish("done", labels=p.result)
    put_agreement_layer(viewer, job, out)
    return out
