"""Small synthetic images with known ground truth, made by the tests themselves."""

from __future__ import annotations

import numpy as np


def three_regions(shape=(48, 64), noise=12.0, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 image of three colour regions (a disc on two half-planes) plus noise.

    Returns the image and its ground-truth labels (1, 2, 3).
    """
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    gt = np.where(xx < w // 2, 1, 2)
    gt[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 4) ** 2] = 3
    colours = np.array([[0, 0, 0], [200, 40, 40], [40, 160, 60], [40, 60, 200]], np.float64)
    rng = np.random.default_rng(seed)
    img = colours[gt] + rng.normal(0, noise, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), gt
