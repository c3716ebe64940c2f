"""Large images in a batch: zarr label output, and one Dask task per tile with a saved model.

An image is *large* when it has more pixels than the run's ``tile_tasks_above``.
With the default ``output_format="auto"`` its labels are written as a chunked,
compressed zarr array ``<stem>_labels.zarr`` instead of a TIFF (``"zarr"`` forces
that for every image).

With a saved dataset-level model (fixed network, ``--model``), a large image is
also split into one task per tile of :meth:`napari_useg.Model.predict`'s own
tiling (:mod:`napari_useg.core.tiling`): every task reads only its window (core plus
the halo the network needs; through ``tifffile``'s memory map or zarr view of a
TIFF when the file allows, otherwise from one decoded copy per worker process),
labels it with the network and writes its core into the zarr chunk of that tile.
The windows, normalisation and arithmetic are those of the whole-image
prediction, so the labels equal ``Model.predict`` on the whole image. Per-image
methods (Kanezaki, k-means, ...) need all pixels at once and stay one task per
image.

Atomicity: the array is written as ``<stem>_labels.zarr.partial`` and renamed
when every tile is in; a rerun ignores (and rebuilds) a ``.partial`` folder.
The record stores a SHA-256 over the array's files, checked on every rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import imageio.v3 as iio
import numpy as np
import tifffile
import torch
import zarr

from napari_useg.batch.engine import task_environment, worker_address
from napari_useg.batch.outputs import (
    WRITER,
    BatchJob,
    now,
    partial_path,
    remove_other_format,
)
from napari_useg.batch.records import (
    RECORD_FORMAT,
    input_fingerprint,
    tree_sha256,
    warning_texts,
    write_record,
)
from napari_useg.core.device import resolve_device
from napari_useg.core.image import channels_last
from napari_useg.core.tiling import plan_windows, read_window, round_up
from napari_useg.io.images import read_image

__all__ = [
    "TileGrid",
    "image_geometry",
    "open_source",
    "plan_tiles",
    "place_model",
    "write_labels_zarr",
    "prepare_tiled",
    "predict_tile",
    "finish_tiled",
]


# ---------------------------------------------------------------------------- zarr files


def _labels_dtype(max_label: int) -> np.dtype:
    return np.dtype(np.uint16) if max_label < 2**16 else np.dtype(np.uint32)


def _create_partial(dest: Path, shape: tuple[int, int], chunk: int, dtype,
                    metadata: dict[str, Any] | None) -> Path:
    """An empty compressed array at ``<dest>.partial`` (an old partial one is discarded)."""
    partial = partial_path(dest)
    if partial.exists():
        shutil.rmtree(partial)
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"folder {dest.parent} does not exist")
    z = zarr.open_array(str(partial), mode="w", shape=tuple(int(s) for s in shape),
                        chunks=(int(chunk), int(chunk)), dtype=dtype, fill_value=0)
    if metadata:
        z.attrs.update(json.loads(json.dumps(metadata, default=str)))
    return partial


def _publish(partial: Path, dest: Path, *, overwrite: bool) -> None:
    """Move a finished ``partial`` array into place (replacing ``dest`` when allowed)."""
    if dest.exists():
        if not overwrite:
            raise FileExistsError(
                f"{dest} exists; pass overwrite=True (CLI: --overwrite) to replace it")
        old = dest.with_name(f".{dest.name}.old.{uuid.uuid4().hex[:8]}")
        os.replace(dest, old)
        os.replace(partial, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, dest)


def write_labels_zarr(path: str | os.PathLike, labels: np.ndarray, *, chunk: int = 512,
                      overwrite: bool = False,
                      metadata: dict[str, Any] | None = None) -> Path:
    """Write a label map held in memory as a compressed zarr array, atomically.

    Parameters
    ----------
    path : path-like
        Destination folder (``.zarr``).
    labels : numpy.ndarray
        2-D integer labels (``uint16`` when they fit, else ``uint32``).
    chunk : int
        Side of the square chunks.
    overwrite : bool
        Replace an existing array.
    metadata : dict, optional
        JSON-serialisable attributes stored with the array.

    Returns
    -------
    pathlib.Path
    """
    dest = Path(path)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 2:
        raise TypeError(f"labels must be a 2-D integer array, got {labels.dtype} "
                        f"{labels.shape}")
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} exists; pass overwrite=True (CLI: --overwrite) "
                              "to replace it")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must not be negative")
    dtype = _labels_dtype(int(labels.max(initial=0)))
    partial = _create_partial(dest, labels.shape, chunk, dtype, metadata)
    try:
        z = zarr.open_array(str(partial), mode="r+")
        z[...] = labels.astype(dtype, copy=False)
        _publish(partial, dest, overwrite=overwrite)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------- reading inputs

#: Decoded or opened inputs of this worker process (path, size, mtime) -> (array, closer).
_SOURCES: OrderedDict[tuple[str, int, int], tuple[Any, Any]] = OrderedDict()
_MAX_SOURCES = 2


def _open_uncached(path: Path) -> tuple[Any, Any]:
    if path.suffix.lower() in (".tif", ".tiff"):
        tif = tifffile.TiffFile(path)
        try:
            series = tif.series[0]
            if series.dataoffset is not None:  # contiguous and uncompressed
                arr = tifffile.memmap(path, mode="r")  # windows are page reads
                tif.close()
                return arr, None
            z = zarr.open_array(series.aszarr(level=0), mode="r")
            if int(np.prod(z.chunks)) * 4 <= int(np.prod(z.shape)):
                # tiles or strips: a window decodes only the blocks it touches
                return da.from_array(z, chunks=z.chunks), tif
        except Exception:  # noqa: BLE001 - any trouble: decode it whole below
            pass
        tif.close()
    return read_image(path), None


def open_source(path: str | os.PathLike) -> Any:
    """The raw pixels of an image file as a sliceable array, cached in this process.

    An uncompressed TIFF is memory-mapped and a tiled or striped one is opened as
    a lazy (dask over zarr) array, so reading a window decodes only the blocks
    it touches; other files are decoded once. The last two inputs stay open (a
    worker running the tiles of one image opens it once).
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _SOURCES:
        _SOURCES.move_to_end(key)
        return _SOURCES[key][0]
    arr, closer = _open_uncached(p)
    _SOURCES[key] = (arr, closer)
    while len(_SOURCES) > _MAX_SOURCES:
        _, (_, old) = _SOURCES.popitem(last=False)
        if old is not None:
            old.close()
    return arr


def image_geometry(path: str | os.PathLike, channel_axis: int | None = None) -> tuple[int, int]:
    """``(height, width)`` of an image file from its header, without decoding pixels.

    Raises
    ------
    ValueError
        If the header cannot be read or the layout is not an image
        (see :func:`napari_useg.core.image.channels_last`).
    """
    p = Path(path)
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(p) as tif:
                series = tif.series[0]
                shape, dtype = tuple(series.shape), series.dtype
        else:
            props = iio.improps(p)
            shape, dtype = tuple(props.shape), props.dtype
    except Exception as exc:  # noqa: BLE001 - any decoder failure
        raise ValueError(f"could not read the header of {p}: {exc}") from exc
    # a zero-strided stand-in of that shape and type: the layout rules, no pixels
    arr, _ = channels_last(np.broadcast_to(np.zeros((), dtype), shape), channel_axis)
    return int(arr.shape[0]), int(arr.shape[1])


# ---------------------------------------------------------------------------- tiled prediction


@dataclass(frozen=True)
class TileGrid:
    """Tiling of one image, exactly as :meth:`napari_useg.Model.predict` tiles it.

    Attributes
    ----------
    shape : (int, int)
        Image height and width.
    tile : int
        Side of a tile's core (and of the zarr chunks).
    margin : int
        Context read around each core.
    multiple : int
        The network's down-sampling factor.
    windows : tuple
        ``(ys, ye, xs, xe, wy0, wy1, wx0, wx1)`` per tile: core and window.
    """

    shape: tuple[int, int]
    tile: int
    margin: int
    multiple: int
    windows: tuple[tuple[int, ...], ...]


def plan_tiles(model: Any, output: str, tile_size: int, shape: tuple[int, int]) -> TileGrid:
    """Tiles of an image of ``shape`` for ``model`` (same geometry as :meth:`Model.predict`)."""
    m = int(model.multiple)
    tile = max(m, (int(tile_size) // m) * m)
    margin = round_up(int(model.margin(output)), m)
    h, w = int(shape[0]), int(shape[1])
    return TileGrid((h, w), tile, margin, m, tuple(plan_windows(h, w, tile, margin, m)))


def _source_view(job: BatchJob, model: Any):
    """The model-checked ``(H, W, C)`` raw view of the job's image."""
    return model.check_image(open_source(job.image), job.config["channel_axis"])


def place_model(model: Any, device: str) -> None:
    """Move a task's model to ``device`` (resolved on this worker) unless it is there.

    Raises
    ------
    ValueError
        If the task received no model.
    """
    if model is None:
        raise ValueError("this batch needs its model, but the task received none")
    dev = resolve_device(device)
    if model.device != dev:
        model.to(dev)


def prepare_tiled(job: BatchJob, grid: TileGrid, model: Any) -> dict[str, Any]:
    """First task of a tiled image: fingerprint the input, fix the normalisation, open the array.

    The normalisation is the one :meth:`Model.predict` would use on the whole
    image (the model's stored ranges, or ranges of this image for per-image
    normalisation, computed from a strided sample as there).
    """
    t0 = time.perf_counter()
    started = now()
    place_model(model, job.config["device"])
    fingerprint = input_fingerprint(job.image)
    # the image's warnings (a 4th channel kept as data, values far from the training
    # range) are given here once, kept for the record; the tile tasks do not repeat them
    with (dask.config.set(scheduler="synchronous"),
          warnings.catch_warnings(record=True) as caught):
        warnings.simplefilter("always", UserWarning)
        arr = _source_view(job, model)
        if tuple(int(s) for s in arr.shape[:2]) != grid.shape:
            raise ValueError(f"{job.image} is {tuple(arr.shape[:2])} pixels, planned as "
                             f"{grid.shape}: the file changed during the run")
        normalise = model.normaliser(arr)  # per-image ranges read from the lazy array
        output = job.config["model"]["output"]
        # a refining model fits the image's class Gaussians here, as Model.predict
        # does, so that the tile tasks label as predict does
        refinement = model.refinement(arr, normalise, output)
    dtype = _labels_dtype(int(model.n_labels(output)))
    cfg = job.config
    meta = {"writer": WRITER, "method": cfg["method"], "params": cfg["params"],
            "seed": cfg["seed"],
            "source": str(job.image), "model": cfg["model"]["path"]}
    _create_partial(Path(job.labels), grid.shape, grid.tile, dtype, meta)
    return {"normalise": normalise, "refinement": refinement, "input": fingerprint,
            "started": started,
            "prepare_s": time.perf_counter() - t0, "dtype": str(dtype),
            "warnings": warning_texts(caught)}


def predict_tile(item: tuple[BatchJob, tuple[int, ...]], prep: dict[str, Any],
                 model: Any) -> dict[str, Any]:
    """Label one tile's window and write its core into the partial array (runs on a worker)."""
    job, (ys, ye, xs, xe, wy0, wy1, wx0, wx1) = item
    place_model(model, job.config["device"])
    output = job.config["model"]["output"]
    t0 = time.perf_counter()
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # given once by prepare_tiled
        raw = read_window(_source_view(job, model), wy0, wy1, wx0, wx1)
    t1 = time.perf_counter()
    win = prep["normalise"](raw)
    model.net.eval()
    with torch.no_grad():
        labels = np.asarray(model.window_labels(win, output, prep.get("refinement")))
    if labels.shape != win.shape[:2]:
        raise RuntimeError(f"the network returned shape {labels.shape} for a window of "
                           f"{win.shape[:2]}")
    core = labels[ys - wy0: ye - wy0, xs - wx0: xe - wx0].astype(np.int64) + 1
    t2 = time.perf_counter()
    z = zarr.open_array(str(partial_path(job.labels)), mode="r+")
    z[ys:ye, xs:xe] = core.astype(prep["dtype"])
    t3 = time.perf_counter()
    return {"max": int(core.max()), "read_s": t1 - t0, "runtime_s": t2 - t1,
            "write_s": t3 - t2, "threads": torch.get_num_threads(),
            "worker": worker_address()}


def finish_tiled(job: BatchJob, grid: TileGrid, prep: dict[str, Any],
                 *tiles: dict[str, Any]) -> dict[str, Any]:
    """Last task of a tiled image: move the finished array into place and write the record."""
    dest = Path(job.labels)
    partial = partial_path(dest)
    t0 = time.perf_counter()
    digest = tree_sha256(partial)
    _publish(partial, dest, overwrite=job.replace)
    remove_other_format(job)
    env = task_environment()
    threads = sorted({int(t["threads"]) for t in tiles})
    env["threads"] = threads[0] if len(threads) == 1 else threads
    env["tile_workers"] = sorted({str(t["worker"]) for t in tiles if t["worker"]})
    record: dict[str, Any] = {
        "format": RECORD_FORMAT, "status": "ok", "config": job.config, "input": prep["input"],
        "labels": {"file": dest.name, "format": "zarr", "sha256": digest,
                   "shape": list(grid.shape), "n_labels": max(int(t["max"]) for t in tiles),
                   "dtype": prep["dtype"], "chunks": [grid.tile, grid.tile]},
        "tiles": {"tasks": len(tiles), "tile_size": grid.tile, "margin": grid.margin},
        "read_s": round(sum(t["read_s"] for t in tiles), 4),
        "runtime_s": round(sum(t["runtime_s"] for t in tiles), 4),
        "write_s": round(sum(t["write_s"] for t in tiles) + time.perf_counter() - t0, 4),
        "prepare_s": round(prep["prepare_s"], 4),
        "started": prep["started"], "finished": now(), "environment": env,
    }
    if prep.get("warnings"):
        record["warnings"] = prep["warnings"]
    write_record(job.record, record, overwrite=True)
    return record

