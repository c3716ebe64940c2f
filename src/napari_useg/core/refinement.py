"""Each image's classes refined by its own values, with a trained model's classes as prior.

A dataset-level model (IIC, InMARS) gives every pixel class probabilities that mean
the same on every image of a collection; on a collection of objects on a background
(nuclei, cells) its classes act as one intensity level for all images, while each
image's own contrast and illumination differ. The refinement fits, per image:

1. features: the mean of each channel over 3 x 3 pixels, minus the image's background
   (a grey opening of side ``background``, as a rolling ball does; a grey closing where
   the objects are dark), which evens out uneven illumination;
2. one Gaussian per class over the features (a diagonal covariance shared by the
   classes, and each class's share of the pixels), fitted by expectation-maximisation
   with the model's probabilities raised to ``weight`` as a fixed prior (``weight`` 1:
   the network and the image count alike; towards 0: a per-image clustering of the
   features started from the model's classes);
3. labels: the class of highest posterior.

The class a label stands for is the model's; only where its boundary falls follows the
image. An image whose 3x3 means do not tell the model's classes apart (their means less
than :data:`MIN_SEPARATION` within-class standard deviations apart, e.g. classes that
differ by texture) keeps the model's labels. :meth:`napari_useg.core.model.Model.predict` fits
the Gaussians on a regular subsample of an image's pixels, so images of any size cost
about the same to fit, and labels tile by tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu, threshold_otsu

from napari_useg.core.image import subtract_background
from napari_useg.core.params import param

__all__ = ["REFINEMENTS", "MIN_SEPARATION", "RefineParams", "Refinement", "ClassGaussians",
           "background_features", "classes_separated", "feature_margin", "fit_class_gaussians",
           "minus_background", "refine_labels", "sample_grid"]

#: Values of a method's ``refine`` parameter: never, always, or where the model's
#: collection was judged objects on a background (``normalisation="auto"`` chose dark
#: backgrounds for it).
REFINEMENTS = ("off", "on", "auto")
#: Floor added to the class variances (features are in [0, 1] units).
_VAR_FLOOR = 1e-4
#: Smallest distance, in within-class standard deviations of the 3x3 means, between the
#: means of two of the model's classes for an image to be refined (below it the classes
#: differ by something else than the local mean, e.g. texture, and the model's labels stay).
MIN_SEPARATION = 0.5


@dataclass(frozen=True)
class RefineParams:
    """The refinement parameters of a dataset-level method (its params dataclass derives
    from this one, so they are declared once for every such method)."""

    refine: str = param("off", "refine each image's classes by its own background-subtracted "
                               "values: 'off', 'on', or 'auto' (where the collection was "
                               "judged objects on a plain background; not in the papers)",
                        choices=REFINEMENTS)
    refine_weight: float = param(0.1, "weight of the network's classes against the image's "
                                      "values in the refinement (1: alike; towards 0: a "
                                      "per-image clustering)", low=0.01, high=10.0)
    refine_background: int = param(41, "side of the window estimating the background in the "
                                        "refinement, larger than the objects (pixels; 0: none)",
                                   low=0, high=1001)


def feature_margin(background: int) -> int:
    """Pixels of context a window needs for its features to equal the whole image's."""
    return 2 * (int(background) // 2) + 1


def background_features(window: np.ndarray, background: int, dark: bool) -> np.ndarray:
    """Features of a normalised ``(h, w, C)`` window: 3x3 means minus the background.

    Parameters
    ----------
    window : numpy.ndarray
        ``float32`` values in [0, 1], channels last.
    background : int
        Side of the grey opening (closing where ``dark``) estimating the background;
        0 or 1 keeps the 3x3 means as they are.
    dark : bool
        Whether the objects are darker than the background.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(h, w, C)``.

    Examples
    --------
    >>> x = np.zeros((32, 32, 1), np.float32); x[:, 16:] = 0.5; x[4:8, 4:8] = 1.0
    >>> f = background_features(x, 11, dark=False)
    >>> float(f[6, 6, 0]), float(f[20, 20, 0])  # the object stays, the step is gone
    (1.0, 0.0)
    """
    f = ndi.uniform_filter(np.asarray(window, dtype=np.float32), size=(3, 3, 1), mode="reflect")
    return minus_background(f, background, dark)


def minus_background(means: np.ndarray, background: int, dark: bool) -> np.ndarray:
    """3x3 means ``(h, w, C)`` minus their grey opening (closing where ``dark``) of side
    ``background`` (0 or 1: as they are); the second step of :func:`background_features`."""
    side = int(background)
    if side <= 1:
        return means
    return subtract_background(means, (side, side, 1), dark)


class ClassGaussians:
    """Per-class means and shares, and a shared diagonal variance, of the refinement features.

    Parameters
    ----------
    mean : numpy.ndarray
        ``(k, C)`` class means.
    var : numpy.ndarray
        ``(C,)`` variance shared by the classes.
    share : numpy.ndarray
        ``(k,)`` fraction of the image's pixels in each class.
    weight : float
        Exponent of the model's probabilities in the posterior.
    """

    def __init__(self, mean: np.ndarray, var: np.ndarray, share: np.ndarray,
                 weight: float) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.var = np.asarray(var, dtype=np.float64)
        self.share = np.asarray(share, dtype=np.float64)
        self.weight = float(weight)

    def log_posterior(self, features: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Unnormalised log-posterior ``(n, k)`` of ``(n, C)`` features and ``(n, k)`` probs."""
        f = np.asarray(features, dtype=np.float64)
        d = f[:, None, :] - self.mean[None]
        loglik = -0.5 * (d * d / self.var).sum(-1) + np.log(np.maximum(self.share, 1e-12))
        return loglik + self.weight * np.log(np.clip(probs, 1e-6, 1.0))


def classes_separated(features: np.ndarray, probs: np.ndarray,
                      min_distance: float = MIN_SEPARATION) -> bool:
    """Whether an image's features can refine the model's classes.

    False when at least two of the model's classes (its argmax) each hold 1% of the
    pixels and some two of them have means less than ``min_distance`` within-class
    standard deviations apart (Mahalanobis distance with the shared diagonal variance):
    the classes then differ by something the features do not hold, e.g. texture. An
    image on which the model gives a single class is refined (the features decide).

    Examples
    --------
    >>> p = np.repeat([[0.9, 0.1], [0.1, 0.9]], 50, axis=0)
    >>> bright = np.repeat([[0.1], [0.8]], 50, axis=0)   # the classes differ in value
    >>> same = np.tile([[0.1], [0.8]], (50, 1))           # they do not
    >>> classes_separated(bright, p), classes_separated(same, p)
    (True, False)
    """
    f = np.asarray(features, dtype=np.float64)
    lab = np.asarray(probs).argmax(1)
    counts = np.bincount(lab, minlength=np.shape(probs)[1])
    kept = np.flatnonzero(counts >= 0.01 * len(lab))
    if kept.size < 2:
        return True
    mean = np.stack([f[lab == c].mean(0) for c in kept])
    var = sum(((f[lab == c] - m) ** 2).sum(0) for c, m in zip(kept, mean, strict=True))
    var = var / counts[kept].sum() + _VAR_FLOOR
    d = mean[:, None, :] - mean[None]
    dist = np.sqrt((d * d / var).sum(-1))
    return bool(dist[np.triu_indices(kept.size, 1)].min() >= min_distance)


def _em(f: np.ndarray, p: np.ndarray, r: np.ndarray, weight: float,
        iters: int) -> tuple[ClassGaussians, float]:
    """EM from responsibilities ``r``; the fit and its mean penalised log-likelihood."""
    k = p.shape[1]
    model = ClassGaussians(np.zeros((k, f.shape[1])), np.ones(f.shape[1]), np.full(k, 1 / k),
                           weight)
    score = -np.inf
    for _ in range(int(iters)):
        nk = r.sum(0) + 1e-9
        mean = (r.T @ f) / nk[:, None]
        sq = (r[:, :, None] * (f[:, None, :] - mean[None]) ** 2).sum((0, 1))
        model = ClassGaussians(mean, sq / nk.sum() + _VAR_FLOOR, nk / nk.sum(), weight)
        a = model.log_posterior(f, p)
        top = a.max(1, keepdims=True)
        r = np.exp(a - top)
        total = r.sum(1, keepdims=True)
        r /= total
        score = float(np.mean(top[:, 0] + np.log(total[:, 0])) - 0.5 * np.log(model.var).sum())
    return model, score


def _threshold_start(f: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Responsibilities of Otsu classes along the features' main axis, in the model's order.

    The features' first principal component is cut by Otsu's (multi-)threshold into
    ``k`` classes; the model's classes, sorted by their mean along it, take them in
    that order. ``None`` where that start is not defined (``k`` > 5, constant features).
    """
    k = p.shape[1]
    if k > 5:
        return None
    centred = f - f.mean(0)
    _, _, vt = np.linalg.svd(centred[:: max(1, len(f) // 20000)], full_matrices=False)
    axis = centred @ vt[0]
    if np.ptp(axis) <= 0:
        return None
    try:
        cuts = threshold_multiotsu(axis, classes=k) if k > 2 else [threshold_otsu(axis)]
    except ValueError:  # fewer distinct values than classes
        return None
    bins = np.digitize(axis, cuts)
    order = np.argsort((p * axis[:, None]).sum(0) / np.maximum(p.sum(0), 1e-12), kind="stable")
    r = np.zeros_like(p)
    r[np.arange(len(f)), order[bins]] = 1.0
    return r


def fit_class_gaussians(features: np.ndarray, probs: np.ndarray, weight: float,
                        iters: int = 10) -> ClassGaussians:
    """Fit the class Gaussians by EM, the model's probabilities as a fixed prior.

    EM runs from two starts, and the fit of the higher penalised log-likelihood is
    kept: the model's probabilities, and Otsu classes of the features' main axis
    assigned to the model's classes in the order of their means along it (for up to
    5 classes; it rescues images on which the model's classes are far off).

    Parameters
    ----------
    features : numpy.ndarray
        ``(n, C)`` features of sampled pixels.
    probs : numpy.ndarray
        ``(n, k)`` the model's class probabilities at those pixels (the prior, raised
        to ``weight``).
    weight : float
        Exponent of the prior, > 0.
    iters : int
        EM iterations from each start.

    Returns
    -------
    ClassGaussians
    """
    f = np.asarray(features, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if f.ndim != 2 or p.ndim != 2 or f.shape[0] != p.shape[0]:
        raise ValueError(f"features (n, C) and probs (n, k) must have the same n, got "
                         f"{f.shape} and {p.shape}")
    best, best_score = _em(f, p, p / np.maximum(p.sum(1, keepdims=True), 1e-12), weight, iters)
    r = _threshold_start(f, p)
    if r is not None:
        fit, score = _em(f, p, r, weight, iters)
        if score > best_score:
            best = fit
    return best


def refine_labels(features: np.ndarray, probs: np.ndarray, model: ClassGaussians) -> np.ndarray:
    """Class indices ``(h, w)`` of ``(h, w, C)`` features and ``(k, h, w)`` probabilities."""
    h, w, c = features.shape
    k = probs.shape[0]
    a = model.log_posterior(features.reshape(-1, c), probs.reshape(k, -1).T)
    return a.argmax(1).reshape(h, w).astype(np.int32)


def sample_grid(area: int, max_samples: int) -> int:
    """Stride of a regular grid holding at most about ``max_samples`` of ``area`` pixels."""
    return max(1, int(np.ceil(np.sqrt(int(area) / max(1, int(max_samples))))))


class Refinement:
    """One image's fitted refinement: labels any window of it.

    Parameters
    ----------
    gaussians : ClassGaussians
        The image's class Gaussians.
    background : int
        Side of the background window of the features.
    dark : bool
        Whether the image's objects are darker than its background.
    """

    def __init__(self, gaussians: ClassGaussians, background: int, dark: bool) -> None:
        self.gaussians = gaussians
        self.background = int(background)
        self.dark = bool(dark)

    def features(self, window: np.ndarray) -> np.ndarray:
        """:func:`background_features` of a normalised window of the image."""
        return background_features(window, self.background, self.dark)

    def labels(self, window: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Class indices ``(h, w)`` of a window and the model's ``(k, h, w)`` probabilities."""
        return refine_labels(self.features(window), probs, self.gaussians)
