"""Bundled sample images (usable from Python, the CLI and napari's sample menu)."""

from __future__ import annotations

import numpy as np

__all__ = ["sample_image", "SAMPLES"]

#: Name -> (loader description, licence note).
SAMPLES = {
    "chelsea": "Chelsea the cat, 300x451 RGB, from scikit-image's bundled data (public domain)",
}


def sample_image(name: str = "chelsea") -> np.ndarray:
    """Load a bundled sample image (no network access needed).

    Parameters
    ----------
    name : str
        One of :data:`SAMPLES`.

    Examples
    --------
    >>> sample_image().shape
    (300, 451, 3)
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; available: {sorted(SAMPLES)}")
    import skimage.data

    return np.asarray(getattr(skimage.data, name)())


def napari_chelsea() -> list[tuple]:
    """napari sample-data contribution: the default sample image as an RGB Image layer."""
    return [(sample_image("chelsea"), {"name": "chelsea", "rgb": True}, "image")]
