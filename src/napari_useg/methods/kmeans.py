"""k-means clustering of the values in an a x a window around each pixel (Kanezaki 2018's baseline).

Each pixel is described by the channel values of the ``window x window``
neighbourhood around it (edges reflected), and the descriptors are clustered
into ``n_clusters`` groups with k-means++ seeding (``scipy.cluster.vq.kmeans2``);
the best of ``n_init`` seedings (lowest within-cluster sum of squares) is kept.
A volume is clustered the same way on ``window x window x window`` windows of voxels.
An image with fewer distinct windows than ``n_clusters`` (a constant or binary image)
gets as many labels as it has distinct windows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.cluster.vq import kmeans2

from napari_useg.core.image import PreparedImage
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, RunContext, register

__all__ = ["KMeansParams", "METHOD", "window_features"]


@dataclass(frozen=True)
class KMeansParams:
    """Parameters of the k-means baseline."""

    n_clusters: int = param(5, "k: number of clusters", low=1, high=1000)
    window: int = param(3, "a: side of the window of values around each pixel (odd)", low=1,
                        high=15)
    n_init: int = param(3, "k-means++ restarts; the lowest inertia wins", low=1, high=100)
    max_iter: int = param(30, "Lloyd iterations per restart", low=1, high=10000)

    def check(self) -> None:
        """Cross-parameter checks."""
        if self.window % 2 == 0:
            raise ValueError(f"window must be odd, got {self.window}")


def window_features(data: np.ndarray, window: int) -> np.ndarray:
    """``(N, C*window**d)`` descriptors: all values in the window around each pixel/voxel.

    ``data`` is ``(H, W, C)`` (d = 2) or a volume ``(Z, Y, X, C)`` (d = 3); edges reflected.
    """
    spatial, c = data.shape[:-1], data.shape[-1]
    n = int(np.prod(spatial))
    if window == 1:
        return data.reshape(n, c)
    r = min(window // 2, min(spatial) - 1)
    axes = tuple(range(len(spatial)))
    padded = np.pad(data, [(r, r)] * len(spatial) + [(0, 0)], mode="reflect")
    r2 = window // 2
    if r < r2:  # an axis shorter than the window: repeat the edge beyond the reflection
        padded = np.pad(padded, [(r2 - r, r2 - r)] * len(spatial) + [(0, 0)], mode="edge")
    win = sliding_window_view(padded, (window,) * len(spatial), axis=axes)  # ..., C, a, a(, a)
    return np.ascontiguousarray(win.reshape(n, c * window ** len(spatial)))


def _kmeans2(feats: np.ndarray, k, **kw) -> tuple[np.ndarray, np.ndarray]:
    """``kmeans2`` without its warnings about images with fewer distinct values than ``k``.

    On such an image (e.g. constant, or binary with ``k`` > 2) k-means++ seeding divides
    by a zero total distance and some clusters stay empty; the result simply has fewer
    labels, which the caller reports.
    """
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        return kmeans2(feats, k, **kw)


def memory(shape: tuple[int, ...], n_channels: int, p: KMeansParams) -> int:
    """Peak bytes: the float64 window descriptors, twice (features and distances)."""
    n = int(np.prod(shape, dtype=np.int64))
    d = n_channels * p.window ** len(shape)
    return int(n * d * 8 * 2 + n * p.n_clusters * 8)


def run(image: PreparedImage, p: KMeansParams, ctx: RunContext) -> Iterator[Progress]:
    """Cluster window descriptors, one Lloyd iteration per progress step.

    Each restart is k-means++ seeding followed by at most ``max_iter`` Lloyd
    iterations (``scipy.cluster.vq.kmeans2``, one iteration per call so progress can be
    reported); a restart ends early once an iteration changes no label, a fixed point
    where more iterations would change nothing.
    """
    feats = window_features(image.data, p.window).astype(np.float64)
    k = min(p.n_clusters, len(feats))
    rng = np.random.default_rng(ctx.seed)
    total = p.n_init * p.max_iter
    best, best_inertia = None, np.inf
    for restart in range(p.n_init):
        centroids, labels = _kmeans2(feats, k, iter=1, minit="++", seed=rng)
        for it in range(1, p.max_iter):
            centroids, new = _kmeans2(feats, centroids, iter=1, minit="matrix")
            done_here = np.array_equal(new, labels)
            labels = new
            step = restart * p.max_iter + it
            yield Progress(step=step, total=total, message=f"restart {restart + 1}/{p.n_init}")
            if done_here:
                break
        inertia = float(((feats - centroids[labels]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    yield Progress(step=total, total=total, loss=best_inertia / len(feats),
                   labels=best.reshape(image.shape), done=True,
                   message=f"k-means, inertia {best_inertia:.4g}")


METHOD = register(
    Method(
        name="kmeans",
        title="k-means on pixel windows",
        summary="k-means clustering of the values in a small window around each pixel.",
        reference="baseline of A. Kanezaki, ICASSP 2018 (k-means on a x a RGB windows)",
        params=KMeansParams,
        run=run,
        memory=memory,
        volumes=True,
    )
)
