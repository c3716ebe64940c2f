"""Segmenting a collection of image files: :func:`run` (the Python API of ``napari-useg batch``).

A run goes in named steps: check the options (:class:`~napari_useg.core.options.RunOptions`
and the output settings), configure the method or load the saved model, plan one job per
image (keeping the outputs an earlier run completed), submit the rest to the cluster,
collect each image's record as it arrives, and write the summary.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distributed import as_completed
from tqdm import tqdm

from napari_useg.api import segment
from napari_useg.batch.engine import (
    ClientInfo,
    Outcome,
    check_target,
    future_outcome,
    open_client,
    submit_task,
    task_environment,
)
from napari_useg.batch.large import (
    TileGrid,
    finish_tiled,
    image_geometry,
    place_model,
    plan_tiles,
    predict_tile,
    prepare_tiled,
    write_labels_zarr,
)
from napari_useg.batch.outputs import (
    DEFAULT_TILE_TASKS_ABOVE,
    LABELS_SUFFIX,
    OUTPUT_FORMATS,
    WRITER,
    BatchJob,
    now,
    output_paths,
    partial_path,
    remove_other_format,
)
from napari_useg.batch.records import (
    RECORD_FORMAT,
    Check,
    check_outputs,
    file_sha256,
    foreign_outputs,
    input_fingerprint,
    is_batch_output,
    labels_sha256,
    warning_texts,
    write_record,
)
from napari_useg.core.model import WEIGHTS_NAME, Model, load_model
from napari_useg.core.options import RunOptions
from napari_useg.core.params import params_to_dict
from napari_useg.core.registry import get_method
from napari_useg.io.collections import find_images
from napari_useg.io.images import read_image, write_labels

__all__ = ["ImageResult", "Summary", "run", "segment_file", "SUMMARY_NAME"]

#: Summary of the last run, written in the output folder.
SUMMARY_NAME = "batch_summary.json"


def _error(exc: BaseException, tb: str | None = None) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback": tb if tb is not None else traceback.format_exc()}


def segment_file(job: BatchJob, model: Any = None) -> dict[str, Any]:
    """Segment one image file and write its labels and record (runs on a worker).

    The labels are written first (a TIFF, or a zarr array when ``job.fmt`` says
    so), then the record, each atomically, so a record with ``"status": "ok"``
    always describes a complete labels output. Any error
    (unreadable file, bad image, a method failing) is caught and written as a
    record with ``"status": "error"``; the warnings given meanwhile (e.g. a 4th channel
    kept as data) are kept in its ``"warnings"`` (one task at a time per worker process,
    as on the local cluster, keeps them apart).

    Parameters
    ----------
    job : BatchJob
    model : napari_useg.Model, optional
        A fitted dataset-level model (``job.config["model"]`` set): labels come
        from :meth:`~napari_useg.Model.predict` instead of :func:`~napari_useg.segment`.

    Returns
    -------
    dict
        The record written.
    """
    cfg = job.config
    started, t_start = now(), time.perf_counter()
    record: dict[str, Any] = {"format": RECORD_FORMAT, "status": "ok", "config": cfg,
                              "input": {"path": str(Path(job.image).resolve())}}
    timings: dict[str, float] = {}
    # a local worker runs one task at a time, so what is caught here is this image's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            record["input"] = input_fingerprint(job.image)
            t = time.perf_counter()
            image = read_image(job.image)
            timings["read_s"] = time.perf_counter() - t
            t = time.perf_counter()
            if cfg.get("model") is None:
                labels = segment(image, cfg["method"], preset=cfg["preset"],
                                 channel_axis=cfg["channel_axis"], seed=cfg["seed"],
                                 device=cfg["device"], **cfg["params"])
            else:
                place_model(model, cfg["device"])
                labels = model.predict(image, channel_axis=cfg["channel_axis"],
                                       output=cfg["model"]["output"],
                                       tile_size=cfg["model"]["tile_size"])
            timings["runtime_s"] = time.perf_counter() - t
            t = time.perf_counter()
            meta = {"writer": WRITER, "method": cfg["method"], "preset": cfg["preset"],
                    "params": cfg["params"],
                    "seed": cfg["seed"], "source": str(job.image),
                    "model": (cfg.get("model") or {}).get("path")}
            if job.fmt == "zarr":
                write_labels_zarr(job.labels, labels, chunk=job.chunk, overwrite=job.replace,
                                  metadata=meta)
            else:
                write_labels(job.labels, labels, overwrite=job.replace, metadata=meta)
            record["labels"] = {"file": Path(job.labels).name, "format": job.fmt,
                                "sha256": labels_sha256(job.labels), "shape": list(labels.shape),
                                "n_labels": int(labels.max(initial=0))}
            if job.fmt == "zarr":
                record["labels"]["chunks"] = [job.chunk, job.chunk]
            record["tiles"] = None  # one task for the whole image
            remove_other_format(job)
            timings["write_s"] = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 - one bad image must not stop the batch
            record["status"] = "error"
            record["error"] = _error(exc)
    found = warning_texts(caught)
    if found:
        record["warnings"] = found
    record.update({k: round(v, 4) for k, v in timings.items()})
    record["total_s"] = round(time.perf_counter() - t_start, 4)
    record["started"], record["finished"] = started, now()
    record["environment"] = task_environment()
    write_record(job.record, record, overwrite=True)
    return record


@dataclass
class ImageResult:
    """What happened to one image.

    Attributes
    ----------
    image : pathlib.Path
        Input file.
    status : {"succeeded", "failed", "skipped"}
        ``skipped``: trusted outputs from an earlier run were kept.
    labels, record : pathlib.Path
        Output files (``labels``, a ``.tif`` file or a ``.zarr`` folder, does not
        exist for a failed image).
    error : str or None
        ``"ExceptionType: message"`` of a failed image.
    runtime_s : float or None
        Seconds of segmentation (from the record).
    warnings : list of str
        The warnings given while the image was read and segmented (from the record; an
        image may have labels and warnings, e.g. a 4th channel kept as data).
    """

    image: Path
    status: str
    labels: Path
    record: Path
    error: str | None = None
    runtime_s: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """Outcome of :func:`run`.

    Attributes
    ----------
    results : list of ImageResult
        One per input image, in input order.
    out_dir : pathlib.Path
    elapsed_s : float
        Wall time of the run (including starting a local cluster).
    config : dict
        Settings of the run.
    """

    results: list[ImageResult]
    out_dir: Path
    elapsed_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def succeeded(self) -> int:
        """Images segmented by this run."""
        return self._count("succeeded")

    @property
    def failed(self) -> int:
        """Images that failed (their records hold the error)."""
        return self._count("failed")

    @property
    def skipped(self) -> int:
        """Images whose outputs from an earlier run were complete and kept."""
        return self._count("skipped")

    @property
    def ok(self) -> bool:
        """True when no image failed."""
        return self.failed == 0

    @property
    def exit_code(self) -> int:
        """0 when every image has labels, 1 when some failed."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (written as ``batch_summary.json``)."""
        return {
            "n_images": len(self.results), "succeeded": self.succeeded, "failed": self.failed,
            "skipped": self.skipped, "elapsed_s": round(self.elapsed_s, 3),
            "out_dir": str(self.out_dir), "config": self.config,
            "images": [{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(r).items()}
                       for r in self.results],
        }

    def __str__(self) -> str:
        text = (f"{len(self.results)} image(s): {self.succeeded} succeeded, {self.failed} "
                f"failed, {self.skipped} skipped (already done) in {self.elapsed_s:.1f} s; "
                f"outputs in {self.out_dir}")
        for r in self.results:
            if r.status == "failed":
                first = (r.error or "").splitlines()[0] if r.error else ""
                text += f"\n  failed: {r.image}: {first}"
            for w in r.warnings:
                text += f"\n  warning: {r.image}: {w}"
        return text


def _model_config(model_path: Path, model: Model, output: str | None,
                  tile_size: int) -> dict[str, Any]:
    folder = model_path.parent if model_path.is_file() else model_path
    return {"path": str(folder.resolve()), "weights_sha256": file_sha256(folder / WEIGHTS_NAME),
            "output": model.check_output(output), "tile_size": int(tile_size)}


def _result_from_record(job: BatchJob, rec: dict[str, Any] | None, status: str,
                        labels: Path | None = None) -> ImageResult:
    err = None
    if rec is not None and rec.get("status") == "error":
        e = rec.get("error") or {}
        err = f"{e.get('type', 'Error')}: {e.get('message', '')}"
        status = "failed"
    return ImageResult(Path(job.image), status, Path(labels or job.labels), Path(job.record),
                       err, None if rec is None else rec.get("runtime_s"),
                       [] if rec is None else list(rec.get("warnings", [])))


def run(paths, *, method: str | None = None, out_dir: str | os.PathLike,
        client: Any = None, scheduler: str | None = None, workers: int | None = None,
        threads_per_worker: int | None = None, model: str | os.PathLike | None = None,
        seed: int = 0, preset: str | None = None, overwrite: bool = False,
        channel_axis: int | None = None, device: str = "auto",
        model_output: str | None = None, tile_size: int = 512,
        output_format: str = "auto", tile_tasks_above: int = DEFAULT_TILE_TASKS_ABOVE,
        progress: bool = False, quiet: bool = True, options: RunOptions | None = None,
        **params: Any) -> Summary:
    """Segment every image of a folder (or glob, or list) with one Dask task per image.

    Images larger than ``tile_tasks_above`` pixels are written as zarr arrays and,
    with a saved ``model``, predicted with one task per tile (see
    :mod:`napari_useg.batch.large`).

    Parameters
    ----------
    paths : path-like, glob pattern, or sequence of them
        Folders (their image files), glob patterns (``**`` recurses) or files.
    method : str
        A name from :func:`napari_useg.list_methods`; optional with ``model``.
    out_dir : path-like
        Output folder (created): ``<stem>_labels.tif`` (or ``<stem>_labels.zarr``)
        and ``<stem>_labels.json`` per image, and ``batch_summary.json``.
    client : distributed.Client, optional
        Run on this client's cluster (e.g. one opened in a notebook); left open.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).
    workers, threads_per_worker : int, optional
        Without ``client``/``scheduler`` a local cluster of ``workers`` processes is
        started, each running one image at a time with ``threads_per_worker``
        compute threads; by default sized so that workers x threads = cores.
        With an existing cluster, ``threads_per_worker`` sets the threads per task.
    model : path-like, optional
        A model folder saved by ``napari-useg fit`` / :meth:`napari_useg.Model.save`:
        loaded once here and sent to each worker once; images are labelled with
        :meth:`~napari_useg.Model.predict` (consistent classes over the collection).
    seed : int
        Seed of every image's run: same seed, input and device give the same labels.
    preset : str, optional
        Named parameter set of the method.
    overwrite : bool
        Replace outputs made with other settings or from an input that changed
        since, and files at output names that no batch run wrote. Outputs of this
        very configuration are always kept (resume); an input is never replaced.
    channel_axis : int, optional
        Axis of each image holding channels (RGB is detected).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``, resolved on each worker.
    model_output, tile_size
        Output and tile side of :meth:`~napari_useg.Model.predict` (with ``model``);
        ``tile_size`` is also the chunk side of zarr outputs.
    output_format : {"auto", "tif", "zarr"}
        Labels as compressed TIFF or as a chunked, compressed zarr array;
        ``"auto"``: zarr for images of more than ``tile_tasks_above`` pixels, TIFF
        for the others (and either is accepted from an earlier run).
    tile_tasks_above : int
        Pixels (height x width) above which an image is large: with ``model`` it
        is predicted in one task per tile (its labels never held whole in memory;
        they equal the whole-image prediction) and written as zarr. Images whose
        header cannot be read count as small. Default 64 megapixels.
    progress : bool
        Progress bar over the images (stderr).
    quiet : bool
        Do not print the dashboard address when a local cluster starts.
    options : RunOptions, optional
        ``seed``, ``preset``, ``channel_axis`` and ``device`` as one
        :class:`~napari_useg.core.options.RunOptions` (then leave those keywords out).
    **params
        Method parameters (override the preset); validated before anything runs.

    Returns
    -------
    Summary
        Counts of succeeded, failed and skipped images, and one
        :class:`ImageResult` each. Failed images do not raise.

    Raises
    ------
    ValueError, TypeError
        For unknown methods, bad parameters, a bad seed, no images, or colliding
        output names, before any computation.
    FileExistsError
        When outputs made with other settings exist and ``overwrite`` is false.

    Examples
    --------
    >>> from napari_useg import batch
    >>> s = batch.run("images/", method="kmeans", out_dir="out", n_clusters=4)  # doctest: +SKIP
    >>> print(s)  # doctest: +SKIP
    12 image(s): 12 succeeded, 0 failed, 0 skipped (already done) in 9.8 s; outputs in out
    """
    t0 = time.perf_counter()
    check_target(client, scheduler, workers, threads_per_worker)
    opts = _run_options(options, seed=seed, preset=preset, channel_axis=channel_axis,
                        device=device)
    _check_output_settings(output_format, tile_size, tile_tasks_above)
    if model is not None:
        config, loaded = _configure_model(Path(model), method, opts, params, model_output,
                                          tile_size)
    else:
        config, loaded = _configure_method(method, opts, params, model_output), None
    out = Path(out_dir)
    plan = _plan(_find_inputs(paths, out), out, config, loaded, output_format=output_format,
                 tile_size=tile_size, tile_tasks_above=tile_tasks_above, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    results, todo = _resume(plan)
    if todo:
        with open_client(client, scheduler=scheduler, workers=workers,
                         threads_per_worker=threads_per_worker, quiet=quiet) as info:
            _run_todo(info, config["method"], plan.jobs, todo, results, loaded, progress,
                      plan.grids)
    return _summarise(results, out, time.perf_counter() - t0, config)


# ---------------------------------------------------------------------------- run: steps


def _run_options(options: RunOptions | None, **given: Any) -> RunOptions:
    """The run's options: ``options``, or built (and so checked) from the keywords."""
    if options is None:
        return RunOptions(**given)
    if not isinstance(options, RunOptions):
        raise TypeError(f"options must be RunOptions, got {options!r}")
    defaults = {"seed": 0, "preset": None, "channel_axis": None, "device": "auto"}
    clash = sorted(k for k, v in given.items() if v != defaults[k])
    if clash:
        raise ValueError(f"give {clash} either in options or as keywords, not both")
    return options


def _check_output_settings(output_format: str, tile_size: int, tile_tasks_above: int) -> None:
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {list(OUTPUT_FORMATS)}, "
                         f"got {output_format!r}")
    for name, v in (("tile_size", tile_size), ("tile_tasks_above", tile_tasks_above)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _config(method: str, preset: str | None, params: dict[str, Any], opts: RunOptions,
            device: str, model: dict[str, Any] | None) -> dict[str, Any]:
    """Settings of the run, as stored in every record (JSON round trip: tuples become lists)."""
    return json.loads(json.dumps({
        "method": method, "preset": preset, "params": params, "seed": opts.seed,
        "channel_axis": opts.channel_axis, "device": device, "model": model,
    }))


def _configure_model(model_path: Path, method: str | None, opts: RunOptions,
                     params: dict[str, Any], model_output: str | None,
                     tile_size: int) -> tuple[dict[str, Any], Model]:
    """Load a saved model (once, here) and the run's settings from it."""
    if params or opts.preset is not None:
        raise ValueError("with a model, the method's parameters come from the model; "
                         "drop the parameters/preset (or run without --model)")
    loaded = load_model(model_path, device="cpu")
    m = get_method(loaded.method)
    if method is not None and get_method(method).name != m.name:
        raise ValueError(f"the model was trained with {m.name!r}, not {method!r}")
    model_cfg = _model_config(model_path, loaded, model_output, tile_size)
    loaded.receptive_radius()  # measured once here; the workers get the cached value
    config = _config(m.name, None, params_to_dict(loaded.params), opts, opts.device, model_cfg)
    return config, loaded


def _configure_method(method: str | None, opts: RunOptions, params: dict[str, Any],
                      model_output: str | None) -> dict[str, Any]:
    """Validate the method and its parameters; the run's settings."""
    if method is None:
        raise ValueError("give a method (or a saved model)")
    if model_output is not None:
        raise ValueError("model_output needs a model")
    m = get_method(method)
    required = [i.name for i in m.inputs if i.required]
    if required:
        raise ValueError(f"method {m.name!r} needs per-image input(s) {required}, which "
                         "a batch run cannot supply")
    bad = sorted(set(params) & {i.name for i in m.inputs})
    if bad:
        raise TypeError(f"batch runs take no array inputs ({bad})")
    param_dict = params_to_dict(m.build(opts.preset, params))
    preset = opts.preset if opts.preset is not None else m.default_preset
    opts.torch_device()  # reject a device this machine lacks, before starting
    # a method without torch runs on the CPU whatever was asked: no reason to recompute
    device = opts.device if m.uses_torch else "cpu"
    return _config(m.name, preset, param_dict, opts, device, None)


def _find_inputs(paths: Any, out: Path) -> list[Path]:
    """The input images (without the outputs of batch runs, when reading from ``out``).

    Only labels a batch run wrote (:func:`~napari_useg.batch.records.is_batch_output`)
    are left out: a user's ``x_labels.tif`` stays an input, so no output may replace it.
    """
    files = [f for f in find_images(paths)
             if not (f.name.endswith(LABELS_SUFFIX) and out.is_dir()
                     and f.parent.resolve() == out.resolve()
                     and is_batch_output(f, f.with_suffix(".json")))]
    if not files:
        raise ValueError(f"no input images besides the outputs in {out}")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir {out} is not a folder")
    return files


@dataclass
class _Plan:
    """One job per input image, the verdict on its existing outputs, and tilings by job."""

    jobs: list[BatchJob] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    grids: dict[int, TileGrid] = field(default_factory=dict)


def _plan(files: list[Path], out: Path, config: dict[str, Any], model: Model | None, *,
          output_format: str, tile_size: int, tile_tasks_above: int,
          overwrite: bool) -> _Plan:
    """Plan every image: its output format, whether its outputs can be kept, its tiles.

    Raises
    ------
    ValueError
        When an output would replace an input.
    FileExistsError
        When outputs made with other settings, or files at output names that no batch
        run wrote, exist and ``overwrite`` is false.
    """
    inputs = {f.resolve() for f in files}
    plan = _Plan()
    stale: list[tuple[Path, str]] = []
    foreign: list[Path] = []
    auto = output_format == "auto"
    for f in files:
        # absolute paths: workers may run in another folder (or on another machine)
        f = Path(os.path.abspath(f))  # (not resolve(): a symlink keeps its own name)
        paths_by_fmt = {fmt: output_paths(os.path.abspath(out), f, fmt)
                        for fmt in ("tif", "zarr")}
        record = paths_by_fmt["tif"][1]
        clash = [p for p in (record, *(v[0] for v in paths_by_fmt.values()))
                 if p.resolve() in inputs]
        if clash:
            raise ValueError(f"output {clash[0]} (of {f.name}) would replace an input; "
                             "choose another out_dir")
        foreign += foreign_outputs([*(v[0] for v in paths_by_fmt.values()),
                                    partial_path(paths_by_fmt["zarr"][0])], record)
        fmt = "zarr" if output_format == "zarr" else "tif"
        chk = check_outputs(f, paths_by_fmt[fmt][0], record, config, any_format=auto)
        hw = None
        if chk.state != "complete" and (auto or (fmt == "zarr" and model is not None)):
            try:
                hw = image_geometry(f, config["channel_axis"])
            except (ValueError, TypeError, OSError):
                hw = None  # the task reads it, fails and records why
        large = hw is not None and hw[0] * hw[1] > tile_tasks_above
        if auto and large:
            fmt = "zarr"
            chk = check_outputs(f, paths_by_fmt[fmt][0], record, config, any_format=True)
        if chk.state == "stale" and not overwrite:
            stale.append((f, chk.reason))
        i = len(plan.jobs)
        if large and fmt == "zarr" and model is not None and chk.state != "complete":
            assert config["model"] is not None and hw is not None
            plan.grids[i] = plan_tiles(model, config["model"]["output"], tile_size, hw)
        plan.checks.append(chk)
        plan.jobs.append(BatchJob(str(f), str(paths_by_fmt[fmt][0]), str(record), config,
                                  replace=chk.state in ("incomplete", "stale"), fmt=fmt,
                                  chunk=plan.grids[i].tile if i in plan.grids else tile_size))
    summary = out / SUMMARY_NAME
    if summary.exists() and not _is_batch_summary(summary):
        foreign.append(summary)
    if foreign and not overwrite:
        raise FileExistsError(
            f"{len(foreign)} file(s) at output names in {out} were not written by napari-useg "
            f"batch (e.g. {foreign[0]}); move them away, use another out_dir or pass "
            "overwrite=True (CLI: --overwrite) to replace them")
    if stale:
        f, why = stale[0]
        raise FileExistsError(
            f"{len(stale)} image(s) already have outputs in {out} that this run would replace "
            f"(e.g. {f.name}: {why}); use another out_dir or pass overwrite=True "
            "(CLI: --overwrite)")
    return plan


def _is_batch_summary(path: Path) -> bool:
    """Whether ``path`` is a ``batch_summary.json`` written by a batch run."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"n_images", "images", "config"} <= set(data)


def _resume(plan: _Plan) -> tuple[list[ImageResult | None], list[int]]:
    """Results of the images whose outputs are kept, and the indices of the others."""
    results: list[ImageResult | None] = [None] * len(plan.jobs)
    todo: list[int] = []
    for i, (job, chk) in enumerate(zip(plan.jobs, plan.checks, strict=True)):
        if chk.state == "complete":
            results[i] = _result_from_record(job, chk.record, "skipped", chk.labels)
        else:
            todo.append(i)
    return results, todo


def _summarise(results: list[ImageResult | None], out: Path, elapsed: float,
               config: dict[str, Any]) -> Summary:
    """The run's :class:`Summary`, also written as ``batch_summary.json``."""
    assert all(r is not None for r in results)
    summary = Summary(results, out, elapsed, config)  # type: ignore[arg-type]
    write_record(out / SUMMARY_NAME, summary.to_dict(), overwrite=True)
    return summary


# ---------------------------------------------------------------------------- run: on the cluster


def _submit_image(info: ClientInfo, job: BatchJob, grid: TileGrid | None, model_f: Any,
                  key: str) -> tuple[Any, list[Any]]:
    """Submit one image: one task, or (tiled) prepare -> one task per tile -> finish.

    Returns the future whose result is the image's record, and the tile futures.
    """
    shared = () if model_f is None else (model_f,)
    if grid is None:
        return submit_task(info, segment_file, job, *shared, key=key), []
    prep = submit_task(info, prepare_tiled, job, grid, model_f, key=f"{key}-prepare")
    tiles = [submit_task(info, predict_tile, (job, win), prep, model_f, key=f"{key}-tile-{k}")
             for k, win in enumerate(grid.windows)]
    return submit_task(info, finish_tiled, job, grid, prep, *tiles, key=f"{key}-finish"), tiles


def _submit(info: ClientInfo, name: str, jobs: list[BatchJob], todo: list[int],
            grids: dict[int, TileGrid], model_f: Any) -> tuple[list[Any], dict[str, int]]:
    """Submit the images to do: all their futures, and the key of each image's last one."""
    run_id = uuid.uuid4().hex[:8]
    final: dict[str, int] = {}  # key of an image's last future -> its index in jobs
    futures: list[Any] = []
    for i in todo:
        fut, tiles = _submit_image(info, jobs[i], grids.get(i), model_f,
                                   f"useg-{name}-{run_id}-{i}")
        final[fut.key] = i
        futures += [fut, *tiles]
    return futures, final


def _run_todo(info: ClientInfo, name: str, jobs: list[BatchJob], todo: list[int],
              results: list[ImageResult | None], model: Model | None, progress: bool,
              grids: dict[int, TileGrid] | None = None) -> None:
    """Submit the images to do and fill in their results as they finish."""
    grids = grids or {}
    c = info.client
    model_f = c.scatter([model], broadcast=True, hash=False)[0] if model is not None else None
    futures, final = _submit(info, name, jobs, todo, grids, model_f)
    n_tiles = sum(len(grids[i].windows) for i in todo if i in grids)
    bar = None
    if progress:
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=name, unit="img",
                   file=sys.stderr)
    try:
        _collect_all(futures, final, jobs, results, bar, n_tiles)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            c.cancel(pending)
        if model_f is not None:
            model_f.release()
        if bar is not None:
            bar.close()


def _collect_all(futures: list[Any], final: dict[str, int], jobs: list[BatchJob],
                 results: list[ImageResult | None], bar: Any, n_tiles: int) -> None:
    """Fill in each image's result as its last future finishes; count tiles on the way."""
    n_failed = tiles_done = 0
    for fut in as_completed(futures):
        i = final.get(fut.key)
        if i is None:  # a tile: progress only (the finishing task keeps it alive)
            tiles_done += 1
            if bar is not None:
                bar.set_postfix(_postfix(n_failed, tiles_done, n_tiles))
            continue
        o = future_outcome(fut, i, jobs[i])
        fut.release()
        results[i] = res = _collect(jobs[i], o)
        n_failed += res.status == "failed"
        if bar is not None:
            bar.set_postfix(_postfix(n_failed, tiles_done, n_tiles), refresh=False)
            bar.update(1)


def _postfix(failed: int, tiles_done: int, n_tiles: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if failed:
        out["failed"] = failed
    if n_tiles:
        out["tiles"] = f"{tiles_done}/{n_tiles}"
    return out


def _collect(job: BatchJob, o: Outcome) -> ImageResult:
    """Turn a task's outcome into a result; record errors the task could not record itself."""
    if o.ok:
        return _result_from_record(job, o.value, "succeeded")
    rec = {"format": RECORD_FORMAT, "status": "error", "config": job.config,
           "input": {"path": str(Path(job.image).resolve())},
           "error": _error(o.exception or RuntimeError(o.error), o.traceback or ""),
           "finished": now(), "environment": {"worker": None, "note": "recorded by the client"}}
    try:
        write_record(job.record, rec, overwrite=True)
    except Exception as exc:  # noqa: BLE001 - still report the image as failed
        rec["error"]["message"] += f" (and its record could not be written: {exc})"
    return ImageResult(Path(job.image), "failed", Path(job.labels), Path(job.record),
                       o.error, None)
