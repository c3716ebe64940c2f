"""napari-useg: unsupervised image segmentation for napari and Python.

The numerical core imports no Qt: use it from scripts, notebooks and the napari
console alike.

Examples
--------
>>> import numpy as np
>>> from napari_useg import segment, list_methods
>>> img = np.zeros((32, 32, 3), np.uint8); img[:, 16:] = (200, 30, 30)
>>> segment(img, method="kmeans", n_clusters=2, window=1).max()
2
"""

from napari_useg.api import (
    fit,
    iter_fit,
    iter_segment,
    iter_segment_stack,
    load_model,
    segment,
    segment_collection,  # DFC reference-image mode
    segment_hierarchy,
    segment_stack,  # z-stacks, time-lapses: slice by slice, ids aligned
)
from napari_useg.core.align import align_labels
from napari_useg.core.device import available_devices, resolve_device
from napari_useg.core.model import Model
from napari_useg.core.options import FitOptions, RunOptions
from napari_useg.core.progress import Progress
from napari_useg.core.registry import get_method, list_methods
from napari_useg.core.version import __version__
from napari_useg.viewer.model_jobs import predict_on_layer, train_on_layers
from napari_useg.viewer.segment_job import run_on_layer  # Qt-free; imports napari when called

__all__ = [
    "__version__",
    "align_labels",
    "Progress",
    "available_devices",
    "FitOptions",
    "RunOptions",
    "get_method",
    "fit",
    "iter_fit",
    "iter_segment",
    "iter_segment_stack",
    "list_methods",
    "load_model",
    "Model",
    "predict_on_layer",
    "resolve_device",
    "run_on_layer",
    "segment",
    "segment_collection",
    "segment_hierarchy",
    "segment_stack",
    "train_on_layers",
]
