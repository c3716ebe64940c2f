"""Reading images and writing results (atomic, never overwriting silently).

Also BSDS500 ``.mat`` files (:mod:`.bsds`) and annotated dataset folders (:mod:`.datasets`).
"""

from napari_useg.core.atomic import atomic_write
from napari_useg.io.bsds import (
    BSDSFormatError,
    BSDSGroundTruth,
    read_bsds_gt,
    read_segs,
    read_ucm2,
    write_bsds_gt,
    write_segs,
    write_ucm2,
)
from napari_useg.io.datasets import Dataset, Sample, load_dataset
from napari_useg.io.images import (
    open_volume,
    read_image,
    write_agreement,
    write_labels,
    write_overlay,
)

__all__ = [
    "BSDSFormatError",
    "BSDSGroundTruth",
    "Dataset",
    "Sample",
    "atomic_write",
    "load_dataset",
    "read_bsds_gt",
    "open_volume",
    "read_image",
    "read_segs",
    "read_ucm2",
    "write_agreement",
    "write_ucm2",
    "write_bsds_gt",
    "write_labels",
    "write_overlay",
    "write_segs",
]
