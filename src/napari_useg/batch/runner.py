"""Segmenting a collection of image files: :func:`run` (the Python API of ``napari-useg batch``)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from napari_useg.batch.engine import Outcome, _describe, check_target, open_client, submit_task
from napari_useg.batch.large import (
    DEFAULT_TILE_TASKS_ABOVE,
    OUTPUT_FORMATS,
    TileGrid,
    finish_tiled,
    image_geometry,
    plan_tiles,
    predict_tile,
    prepare_tiled,
)
from napari_useg.batch.records import (
    LABELS_SUFFIX,
    RECORD_FORMAT,
    check_outputs,
    file_sha256,
    input_fingerprint,
    labels_sha256,
    output_paths,
    write_record,
)
from napari_useg.io.collections import find_images

__all__ = ["BatchJob", "ImageResult", "Summary", "run", "segment_file", "SUMMARY_NAME"]

#: Summary of the last run, written in the output folder.
SUMMARY_NAME = "batch_summary.json"


@dataclass(frozen=True)
class BatchJob:
    """One image of a batch (picklable; shipped to a worker as the task's argument).

    Attributes
    ----------
    image : str
        Input file.
    labels, record : str
        Output files.
    config : dict
        Settings of the run (method, preset, validated params, seed, channel axis,
        device, model); stored verbatim in the record.
    replace : bool
        Replace existing (untrusted or stale) outputs.
    fmt : {"tif", "zarr"}
        Format of the labels output (``labels`` ends in ``.tif`` or ``.zarr``).
    chunk : int
        Side of the square chunks of a zarr output.
    """

    image: str
    labels: str
    record: str
    config: dict[str, Any]
    replace: bool = False
    fmt: str = "tif"
    chunk: int = 512


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _environment() -> dict[str, Any]:
    import numpy
    import torch

    from napari_useg import __version__

    env: dict[str, Any] = {
        "napari_useg_version": __version__, "numpy_version": numpy.__version__,
        "torch_version": torch.__version__, "python": platform.python_version(),
        "host": platform.node(), "pid": os.getpid(), "threads": torch.get_num_threads(),
    }
    try:
        from distributed import get_worker

        env["worker"] = get_worker().address
    except (ImportError, ValueError):
        env["worker"] = None
    return env


def _remove_other_format(job: BatchJob) -> None:
    """After a replacing write, drop this image's labels left in the other format."""
    import shutil

    if not job.replace:
        return
    labels = Path(job.labels)
    other = labels.with_suffix(".tif" if job.fmt == "zarr" else ".zarr")
    if other.is_dir():
        shutil.rmtree(other, ignore_errors=True)
    elif other.exists():
        other.unlink()


def _error(exc: BaseException, tb: str | None = None) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback": tb if tb is not None else traceback.format_exc()}


def segment_file(job: BatchJob, model: Any = None) -> dict[str, Any]:
    """Segment one image file and write its labels and record (runs on a worker).

    The labels are written first (a TIFF, or a zarr array when ``job.fmt`` says
    so), then the record, each atomically, so a record with ``"status": "ok"``
    always describes a complete labels output. Any error
    (unreadable file, bad image, a method failing) is caught and written as a
    record with ``"status": "error"``.

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
    from napari_useg.io.images import read_image, write_labels

    cfg = job.config
    started, t_start = _now(), time.perf_counter()
    record: dict[str, Any] = {"format": RECORD_FORMAT, "status": "ok", "config": cfg,
                              "input": {"path": str(Path(job.image).resolve())}}
    timings: dict[str, float] = {}
    try:
        record["input"] = input_fingerprint(job.image)
        t = time.perf_counter()
        image = read_image(job.image)
        timings["read_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if cfg.get("model") is None:
            from napari_useg.api import segment

            labels = segment(image, cfg["method"], preset=cfg["preset"],
                             channel_axis=cfg["channel_axis"], seed=cfg["seed"],
                             device=cfg["device"], **cfg["params"])
        else:
            if model is None:
                raise ValueError("this batch needs its model, but the task received none")
            from napari_useg.core.device import resolve_device

            dev = resolve_device(cfg["device"])
            if model.device != dev:
                model.to(dev)
            labels = model.predict(image, channel_axis=cfg["channel_axis"],
                                   output=cfg["model"]["output"],
                                   tile_size=cfg["model"]["tile_size"])
        timings["runtime_s"] = time.perf_counter() - t
        t = time.perf_counter()
        meta = {"method": cfg["method"], "preset": cfg["preset"], "params": cfg["params"],
                "seed": cfg["seed"], "source": str(job.image),
                "model": (cfg.get("model") or {}).get("path")}
        if job.fmt == "zarr":
            from napari_useg.batch.large import write_labels_zarr

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
        _remove_other_format(job)
        timings["write_s"] = time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001 - one bad image must not stop the batch
        record["status"] = "error"
        record["error"] = _error(exc)
    record.update({k: round(v, 4) for k, v in timings.items()})
    record["total_s"] = round(time.perf_counter() - t_start, 4)
    record["started"], record["finished"] = started, _now()
    record["environment"] = _environment()
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
    """

    image: Path
    status: str
    labels: Path
    record: Path
    error: str | None = None
    runtime_s: float | None = None


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
        return text


def _model_config(model_path: Path, model: Any, output: str | None,
                  tile_size: int) -> dict[str, Any]:
    from napari_useg.core.model import WEIGHTS_NAME

    folder = model_path.parent if model_path.is_file() else model_path
    return {"path": str(folder.resolve()), "weights_sha256": file_sha256(folder / WEIGHTS_NAME),
            "output": model._check_output(output), "tile_size": int(tile_size)}


def _result_from_record(job: BatchJob, rec: dict[str, Any] | None, status: str,
                        labels: Path | None = None) -> ImageResult:
    err = None
    if rec is not None and rec.get("status") == "error":
        e = rec.get("error") or {}
        err = f"{e.get('type', 'Error')}: {e.get('message', '')}"
        status = "failed"
    return ImageResult(Path(job.image), status, Path(labels or job.labels), Path(job.record),
                       err, None if rec is None else rec.get("runtime_s"))


def run(paths, *, method: str | None = None, out_dir: str | os.PathLike,
        client: Any = None, scheduler: str | None = None, workers: int | None = None,
        threads_per_worker: int | None = None, model: str | os.PathLike | None = None,
        seed: int = 0, preset: str | None = None, overwrite: bool = False,
        channel_axis: int | None = None, device: str = "auto",
        model_output: str | None = None, tile_size: int = 512,
        output_format: str = "auto", tile_tasks_above: int = DEFAULT_TILE_TASKS_ABOVE,
        progress: bool = False, quiet: bool = True, **params: Any) -> Summary:
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
        since. Outputs of this very configuration are always kept (resume).
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
    from napari_useg.core.options import check_seed as _check_seed
    from napari_useg.core.params import params_to_dict
    from napari_useg.core.registry import get_method

    t0 = time.perf_counter()
    check_target(client, scheduler, workers, threads_per_worker)
    seed = _check_seed(seed)
    if channel_axis is not None and (isinstance(channel_axis, bool)
                                     or not isinstance(channel_axis, int)):
        raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, got {device!r}")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {list(OUTPUT_FORMATS)}, "
                         f"got {output_format!r}")
    for name, v in (("tile_size", tile_size), ("tile_tasks_above", tile_tasks_above)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    loaded = None
    if model is not None:
        from napari_useg.core.model import load_model

        if params or preset is not None:
            raise ValueError("with a model, the method's parameters come from the model; "
                             "drop the parameters/preset (or run without --model)")
        loaded = load_model(model, device="cpu")
        m = get_method(loaded.method)
        if method is not None and get_method(method).name != m.name:
            raise ValueError(f"the model was trained with {m.name!r}, not {method!r}")
        param_dict = params_to_dict(loaded.params)
        model_cfg = _model_config(Path(model), loaded, model_output, tile_size)
        loaded.receptive_radius()  # measured once here; the workers get the cached value
        preset_name = None
    else:
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
        param_dict = params_to_dict(m.build(preset, params))
        preset_name = preset if preset is not None else m.default_preset
        model_cfg = None
        if device not in ("auto", "cpu"):
            from napari_useg.core.device import resolve_device

            resolve_device(device)  # reject a device this machine lacks, before starting
        if not m.uses_torch:
            device = "cpu"  # runs on the CPU whatever was asked: no reason to recompute
    config = json.loads(json.dumps({
        "method": m.name, "preset": preset_name, "params": param_dict, "seed": seed,
        "channel_axis": channel_axis, "device": device, "model": model_cfg,
    }))
    out = Path(out_dir)
    files = [f for f in find_images(paths)  # our own outputs, when reading from out_dir
             if not (f.name.endswith(LABELS_SUFFIX) and out.is_dir()
                     and f.parent.resolve() == out.resolve())]
    if not files:
        raise ValueError(f"no input images besides the outputs in {out}")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir {out} is not a folder")
    inputs = {f.resolve() for f in files}
    jobs: list[BatchJob] = []
    checks: list = []
    grids: dict[int, TileGrid] = {}
    stale: list[tuple[Path, str]] = []
    auto = output_format == "auto"
    for f in files:
        # absolute paths: workers may run in another folder (or on another machine)
        f = Path(os.path.abspath(f))  # (not resolve(): a symlink keeps its own name)
        paths_by_fmt = {fmt: output_paths(os.path.abspath(out), f, fmt)
                        for fmt in ("tif", "zarr")}
        record = paths_by_fmt["tif"][1]
        if any(p.resolve() in inputs for p in (record, *(v[0] for v in paths_by_fmt.values()))):
            raise ValueError(f"output {record} would replace an input; choose another out_dir")
        fmt = "zarr" if output_format == "zarr" else "tif"
        chk = check_outputs(f, paths_by_fmt[fmt][0], record, config, any_format=auto)
        hw = None
        if chk.state != "complete" and (auto or (fmt == "zarr" and loaded is not None)):
            try:
                hw = image_geometry(f, channel_axis)
            except (ValueError, TypeError, OSError):
                hw = None  # the task reads it, fails and records why
        large = hw is not None and hw[0] * hw[1] > tile_tasks_above
        if auto and large:
            fmt = "zarr"
            chk = check_outputs(f, paths_by_fmt[fmt][0], record, config, any_format=True)
        if chk.state == "stale" and not overwrite:
            stale.append((f, chk.reason))
        if large and fmt == "zarr" and loaded is not None and chk.state != "complete":
            assert model_cfg is not None and hw is not None
            grids[len(jobs)] = plan_tiles(loaded, model_cfg["output"], tile_size, hw)
        checks.append(chk)
        jobs.append(BatchJob(str(f), str(paths_by_fmt[fmt][0]), str(record), config,
                             replace=chk.state in ("incomplete", "stale"), fmt=fmt,
                             chunk=grids[len(jobs)].tile if len(jobs) in grids else tile_size))
    if stale:
        f, why = stale[0]
        raise FileExistsError(
            f"{len(stale)} image(s) already have outputs in {out} that this run would replace "
            f"(e.g. {f.name}: {why}); use another out_dir or pass overwrite=True "
            "(CLI: --overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    results: list[ImageResult | None] = [None] * len(jobs)
    todo: list[int] = []
    for i, (job, chk) in enumerate(zip(jobs, checks, strict=True)):
        if chk.state == "complete":
            results[i] = _result_from_record(job, chk.record, "skipped", chk.labels)
        else:
            todo.append(i)
    if todo:
        with open_client(client, scheduler=scheduler, workers=workers,
                         threads_per_worker=threads_per_worker, quiet=quiet) as info:
            _run_todo(info, m.name, jobs, todo, results, loaded, progress, grids)
    assert all(r is not None for r in results)
    summary = Summary(results, out, time.perf_counter() - t0, config)  # type: ignore[arg-type]
    write_record(out / SUMMARY_NAME, summary.to_dict(), overwrite=True)
    return summary


def _submit_image(info: Any, job: BatchJob, grid: TileGrid | None, model_f: Any,
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


def _run_todo(info: Any, name: str, jobs: list[BatchJob], todo: list[int],
              results: list[ImageResult | None], model: Any, progress: bool,
              grids: dict[int, TileGrid] | None = None) -> None:
    import uuid

    from distributed import as_completed

    grids = grids or {}
    c = info.client
    model_f = c.scatter([model], broadcast=True, hash=False)[0] if model is not None else None
    run_id = uuid.uuid4().hex[:8]
    final: dict[str, int] = {}  # key of an image's last future -> its index in jobs
    futures: list[Any] = []
    for i in todo:
        fut, tiles = _submit_image(info, jobs[i], grids.get(i), model_f,
                                   f"useg-{name}-{run_id}-{i}")
        final[fut.key] = i
        futures += [fut, *tiles]
    n_tiles = sum(len(grids[i].windows) for i in todo if i in grids)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=name, unit="img",
                   file=sys.stderr)
    n_failed = tiles_done = 0
    try:
        for fut in as_completed(futures):
            i = final.get(fut.key)
            if i is None:  # a tile: progress only (the finishing task keeps it alive)
                tiles_done += 1
                if bar is not None:
                    bar.set_postfix(_postfix(n_failed, tiles_done, n_tiles))
                continue
            if fut.status == "finished":
                o = Outcome(i, jobs[i], value=fut.result())
            else:
                exc = fut.exception()
                tb = fut.traceback()
                text = "".join(traceback.format_tb(tb)) if tb is not None else None
                o = Outcome(i, jobs[i], error=_describe(exc), traceback=text, exception=exc)
            fut.release()
            results[i] = res = _collect(jobs[i], o)
            n_failed += res.status == "failed"
            if bar is not None:
                bar.set_postfix(_postfix(n_failed, tiles_done, n_tiles), refresh=False)
                bar.update(1)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            c.cancel(pending)
        if model_f is not None:
            model_f.release()
        if bar is not None:
            bar.close()


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
           "finished": _now(), "environment": {"worker": None, "note": "recorded by the client"}}
    try:
        write_record(job.record, rec, overwrite=True)
    except Exception as exc:  # noqa: BLE001 - still report the image as failed
        rec["error"]["message"] += f" (and its record could not be written: {exc})"
    return ImageResult(Path(job.image), "failed", Path(job.labels), Path(job.record),
                       o.error, None)
