"""Bundled sample images (usable from Python, the CLI and napari's sample menu).

``chelsea``
    A natural RGB image from scikit-image's bundled data (public domain); no ground truth.
``nuclei``
    A 256x256 fluorescence crop of nuclei shipped with this package (CC0, from the 2018
    Data Science Bowl / BBBC038v1; cite Caicedo et al., Nature Methods 2019), with its
    ground truth (0 = background, 1 = nucleus). See ``napari_useg/data/README.md``.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import skimage.data

__all__ = ["sample_image", "sample_ground_truth", "SAMPLES"]

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

#: Name -> description and licence note.
SAMPLES = {
    "chelsea": "Chelsea the cat, 300x451 RGB, from scikit-image's bundled data (public domain)",
    "nuclei": "fluorescent nuclei, 256x256 uint8 crop of BBBC038v1 / DSB2018 (CC0; cite "
              "Caicedo et al., Nature Methods 2019), with a ground-truth mask",
}

_GROUND_TRUTH = {"nuclei": "nuclei_mask.png"}


def _check(name: str) -> None:
    if not isinstance(name, str) or name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; available: {sorted(SAMPLES)}")


def sample_image(name: str = "chelsea") -> np.ndarray:
    """Load a bundled sample image (no network access needed).

    Parameters
    ----------
    name : str
        One of :data:`SAMPLES`.

    Returns
    -------
    numpy.ndarray
        ``uint8`` image: ``(H, W, 3)`` for ``chelsea``, ``(H, W)`` for ``nuclei``.

    Examples
    --------
    >>> sample_image().shape
    (300, 451, 3)
    >>> sample_image("nuclei").shape
    (256, 256)
    """
    _check(name)
    if name == "nuclei":
        return np.asarray(iio.imread(DATA_DIR / "nuclei.png"))
    return np.asarray(getattr(skimage.data, name)())


def sample_ground_truth(name: str) -> np.ndarray | None:
    """Ground-truth label map of a sample, or ``None`` when it has none.

    Examples
    --------
    >>> gt = sample_ground_truth("nuclei")
    >>> gt.shape, sorted(set(gt.ravel().tolist()))
    ((256, 256), [0, 1])
    """
    _check(name)
    fname = _GROUND_TRUTH.get(name)
    if fname is None:
        return None
    return np.asarray(iio.imread(DATA_DIR / fname)).astype(np.int32)
