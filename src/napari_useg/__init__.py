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

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-useg")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .align import align_labels
from .api import iter_segment, segment
from .device import available_devices, resolve_device
from .fit import fit, iter_fit
from .layers import run_on_layer  # Qt-free; imports napari only when called
from .layers_model import predict_on_layer, train_on_layers  # Qt-free, as run_on_layer
from .methods.dfc import segment_collection  # DFC reference-image mode
from .model import Model, load_model
from .progress import Progress
from .registry import get_method, list_methods

__all__ = [
    "__version__",
    "align_labels",
    "Progress",
    "available_devices",
    "get_method",
    "fit",
    "iter_fit",
    "iter_segment",
    "list_methods",
    "load_model",
    "Model",
    "predict_on_layer",
    "resolve_device",
    "run_on_layer",
    "segment",
    "segment_collection",
    "train_on_layers",
]
