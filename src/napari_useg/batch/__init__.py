"""Batch segmentation of whole folders, on this machine or a Dask cluster.

:func:`run` segments every image of a folder (or glob, or list) with one
:mod:`dask.distributed` task per image, writes ``<stem>_labels.tif`` and a JSON
record per image atomically, skips images already done by an earlier run, and
reports failures without stopping. Very large images are written as zarr arrays
and, with a saved model, predicted with one task per tile
(:mod:`napari_useg.batch.large`). The engine underneath (:func:`iter_map`,
:func:`map_images`) runs any picklable per-item function the same way and is
shared with ``napari-useg evaluate --jobs``.

Examples
--------
>>> from napari_useg import batch
>>> summary = batch.run("cells/*.tif", method="kmeans", out_dir="labels",
...                     n_clusters=3)  # doctest: +SKIP
>>> summary.succeeded, summary.failed, summary.skipped  # doctest: +SKIP
(40, 0, 0)

From a notebook with a cluster of your own::

    from distributed import Client
    client = Client("tcp://scheduler:8786")
    batch.run("/data/tiles", method="kanezaki", preset="fast", out_dir="/data/labels",
              client=client)
"""

from __future__ import annotations

from napari_useg.batch.engine import (
    ClientInfo,
    Outcome,
    SchedulerUnreachableError,
    iter_map,
    local_layout,
    machine_cores,
    map_images,
    open_client,
    run_on,
)
from napari_useg.batch.outputs import BatchJob, output_paths
from napari_useg.batch.records import check_outputs
from napari_useg.batch.runner import ImageResult, Summary, run, segment_file
from napari_useg.io.collections import IMAGE_SUFFIXES, find_images

__all__ = [
    "BatchJob",
    "ClientInfo",
    "IMAGE_SUFFIXES",
    "ImageResult",
    "Outcome",
    "SchedulerUnreachableError",
    "Summary",
    "check_outputs",
    "find_images",
    "iter_map",
    "local_layout",
    "machine_cores",
    "map_images",
    "open_client",
    "output_paths",
    "run",
    "run_on",
    "segment_file",
]
