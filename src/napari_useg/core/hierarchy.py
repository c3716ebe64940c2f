"""Segmentation hierarchies: a merge tree over fine regions, its cuts and its ``ucm2``.

A :class:`Hierarchy` holds a fine label map (``base``, connected regions ``1..n``) and
the sequence of merges that joins them, each merge with a height in ``[0, 1]``
(non-decreasing). Cutting it at a threshold applies every merge at or below that
height; cutting it at ``n_segments`` applies the first ``n - n_segments`` merges. Every
coarser cut is a union of the regions of every finer one (the cuts are nested), and the
hierarchy is exported as the BSDS ultrametric contour map (``ucm2``,
``(2H+1, 2W+1)``), whose regions at threshold ``t`` (8-connected cells ``<= t`` at
``[1::2, 1::2]``) are exactly ``cut(threshold=t)``.

:func:`build_hierarchy` makes one from a fine label map and per-pixel features (image
colour, a network's response maps...): the regions are the nodes of a
``skimage.graph.RAG``, merged greedily by ``skimage.graph.merge_hierarchical`` with
Ward's criterion on the mean feature vectors (the pair whose merge adds the least
within-region variance first, so small regions go early), and the merge heights are
a monotone transform of those costs per pixel (so a threshold means the same on every
image). Volumes work the same way (a 3-D ``base``, face-connected regions, neighbours
along the three axes); the ``ucm2`` is a 2-D format and exists only for images.

Examples
--------
>>> import numpy as np
>>> img = np.zeros((8, 8, 3)); img[:, 4:] = 1.0; img[4:, :4, 0] = 0.3
>>> fine = np.arange(64).reshape(8, 8) // 2 + 1          # 32 little regions
>>> h = build_hierarchy(fine, img)
>>> int(h.cut(n_segments=3).max())
3
>>> h.ucm2().shape
(17, 17)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.color import rgb2lab
from skimage.filters import gaussian, sobel
from skimage.graph import RAG, merge_hierarchical
from skimage.measure import label as connected_components

from napari_useg.core.labels import sequential

__all__ = ["Hierarchy", "build_hierarchy", "colour_edges", "colour_features", "feature_edges",
           "fine_regions", "merge_regions", "region_statistics"]


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """A merge tree over the regions of a fine label map.

    Attributes
    ----------
    base : numpy.ndarray
        ``int32`` label map ``1..n`` of the finest level; every region is connected.
    merges : numpy.ndarray
        ``(m, 2)`` integer array: merge ``i`` joins the cluster named ``merges[i, 0]``
        into the cluster named ``merges[i, 1]`` (clusters are named after one of their
        base regions). ``m <= n - 1`` (less when the regions are not all connected).
    heights : numpy.ndarray
        ``(m,)`` non-decreasing heights in ``[0, 1]``.
    default_threshold : float
        Threshold of the default cut (:attr:`labels`).

    Examples
    --------
    >>> import numpy as np
    >>> base = np.array([[1, 2], [3, 4]])
    >>> h = Hierarchy(base, np.array([[1, 2], [3, 4], [2, 4]]), np.array([0.2, 0.5, 1.0]))
    >>> h.cut(n_segments=2).tolist()
    [[1, 1], [2, 2]]
    >>> int(h.cut(threshold=0.1).max()), int(h.cut(threshold=1.0).max())
    (4, 1)
    """

    base: np.ndarray
    merges: np.ndarray
    heights: np.ndarray
    default_threshold: float = 0.5

    def __post_init__(self) -> None:
        base = sequential(np.asarray(self.base))
        merges = np.asarray(self.merges, dtype=np.int64).reshape(-1, 2)
        heights = np.asarray(self.heights, dtype=np.float64).reshape(-1)
        if base.ndim not in (2, 3):
            raise ValueError(f"base must be a 2-D or 3-D label map, got shape {base.shape}")
        if len(merges) != len(heights):
            raise ValueError(f"{len(merges)} merges but {len(heights)} heights")
        n = int(base.max())
        if len(merges) >= n and n > 0:
            raise ValueError(f"{len(merges)} merges for {n} regions (at most {n - 1})")
        if merges.size and (merges.min() < 1 or merges.max() > n):
            raise ValueError(f"merges must name base regions 1..{n}")
        if heights.size and (np.any(np.diff(heights) < 0) or heights[0] < 0
                             or heights[-1] > 1 or not np.isfinite(heights).all()):
            raise ValueError("heights must be finite, non-decreasing and within [0, 1]")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "merges", merges)
        object.__setattr__(self, "heights", heights)
        object.__setattr__(self, "default_threshold", float(self.default_threshold))

    @property
    def n_regions(self) -> int:
        """Number of regions of the finest level."""
        return int(self.base.max())

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the label maps."""
        return self.base.shape

    @property
    def labels(self) -> np.ndarray:
        """The default cut (``threshold=default_threshold``)."""
        return self.cut(threshold=self.default_threshold)

    def owners(self, k: int) -> np.ndarray:
        """Cluster of every base region (index ``0..n``) after the first ``k`` merges."""
        n = self.n_regions
        k = int(np.clip(k, 0, len(self.merges)))
        owner = np.arange(n + 1)
        for src, dst in self.merges[:k]:
            owner[owner == src] = dst
        return owner

    def n_merges_at(self, threshold: float) -> int:
        """Number of merges whose height is at most ``threshold``."""
        return int(np.searchsorted(self.heights, float(threshold), side="right"))

    def cut(self, n_segments: int | None = None, threshold: float | None = None
            ) -> np.ndarray:
        """The label map of one level of the hierarchy (no rerun of the method).

        Parameters
        ----------
        n_segments : int, optional
            Number of regions wanted: the first ``n - n_segments`` merges are applied
            (clipped to what the hierarchy holds: at least the number of
            disconnected parts, at most ``n``).
        threshold : float, optional
            Apply every merge of height ``<= threshold`` (the regions of ``ucm2 <= t``).

        Returns
        -------
        numpy.ndarray
            ``int32`` labels ``1..k``.
        """
        if (n_segments is None) == (threshold is None):
            raise ValueError("give exactly one of n_segments and threshold")
        if n_segments is not None:
            if int(n_segments) < 1:
                raise ValueError(f"n_segments must be >= 1, got {n_segments}")
            k = self.n_regions - int(n_segments)
        else:
            k = self.n_merges_at(threshold)  # type: ignore[arg-type]
        return sequential(self.owners(k).astype(np.int32)[self.base])

    def threshold_for(self, n_segments: int) -> float:
        """Smallest threshold whose cut has at most ``n_segments`` regions."""
        k = self.n_regions - int(n_segments)
        if k <= 0 or not len(self.heights):
            return 0.0
        return float(self.heights[min(k, len(self.heights)) - 1])

    def pair_heights(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Height at which base regions ``a[i]`` and ``b[i]`` first share a cluster.

        ``inf`` for regions never joined; 0 for a region and itself.
        """
        a = np.asarray(a, np.int64)
        b = np.asarray(b, np.int64)
        out = np.where(a == b, 0.0, np.inf)
        todo = np.flatnonzero(a != b)
        owner = np.arange(self.n_regions + 1)
        for (src, dst), height in zip(self.merges, self.heights, strict=True):
            if not todo.size:
                break
            owner[owner == src] = dst
            joined = owner[a[todo]] == owner[b[todo]]
            out[todo[joined]] = height
            todo = todo[~joined]
        return out

    def ucm2(self) -> np.ndarray:
        """The BSDS ultrametric contour map, ``(2H+1, 2W+1)`` ``float64``.

        Pixel ``(i, j)`` sits at ``(2i+1, 2j+1)``; the cell between two neighbouring
        pixels holds the height at which their regions merge (0 inside a region);
        the cell between four pixels holds the largest of its four neighbouring
        edge cells, and the outer frame repeats its neighbouring row or column (as
        gPb-owt-ucm's maps), so ``metrics.bsds.ucm2_regions(u, t)`` equals
        ``cut(threshold=t)``. Regions never joined are separated by 1.

        Raises
        ------
        ValueError
            For the hierarchy of a volume (the ``ucm2`` is a format of 2-D images).
        """
        base = self.base
        if base.ndim != 2:
            raise ValueError(f"a ucm2 is a 2-D format; this hierarchy is of a {base.ndim}-D "
                             f"label map {base.shape} (cut it with cut())")
        h, w = base.shape
        u = np.zeros((2 * h + 1, 2 * w + 1))
        pairs = [(base[:, :-1], base[:, 1:]), (base[:-1, :], base[1:, :])]
        a = np.concatenate([p[0].ravel() for p in pairs])
        b = np.concatenate([p[1].ravel() for p in pairs])
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = lo.astype(np.int64) * (self.n_regions + 1) + hi
        uniq, inverse = np.unique(key, return_inverse=True)
        heights = self.pair_heights(uniq // (self.n_regions + 1), uniq % (self.n_regions + 1))
        values = np.minimum(heights, 1.0)[inverse]
        nh = h * (w - 1)
        u[1:-1:2, 2:-1:2] = values[:nh].reshape(h, w - 1)
        u[2:-1:2, 1:-1:2] = values[nh:].reshape(h - 1, w)
        corners = np.maximum(np.maximum(u[1:-2:2, 2:-1:2], u[3::2, 2:-1:2]),
                             np.maximum(u[2:-1:2, 1:-2:2], u[2:-1:2, 3::2]))
        u[2:-1:2, 2:-1:2] = corners
        u[0, :] = u[1, :]
        u[-1, :] = u[-2, :]
        u[:, 0] = u[:, 1]
        u[:, -1] = u[:, -2]
        return u

    def with_default(self, threshold: float) -> Hierarchy:
        """The same hierarchy with another default cut."""
        return Hierarchy(self.base, self.merges, self.heights, threshold)


def fine_regions(*label_maps: np.ndarray) -> np.ndarray:
    """Connected regions of the overlay of label maps, ``int32`` ``1..n``.

    Face-connected: 4-connected in 2-D, 6-connected in 3-D.

    Two pixels share a region when every map gives them the same label and they are
    connected through such pixels: the components of one method's result, or of its
    intersection with an over-segmentation (Felzenszwalb, SLIC).
    """
    if not label_maps:
        raise ValueError("give at least one label map")
    if len(label_maps) == 1:  # no overlay to encode (fewer volume-sized int64 copies)
        comp = connected_components(sequential(label_maps[0]), background=0, connectivity=1)
        return comp.astype(np.int32, copy=False)
    key = np.zeros(label_maps[0].shape, np.int64)
    for lab in label_maps:
        s = sequential(lab).astype(np.int64)
        key = key * (int(s.max()) + 1) + s
    comp = connected_components(sequential(key), background=0, connectivity=1)
    return comp.astype(np.int32)


def colour_features(data: np.ndarray, is_rgb: bool) -> np.ndarray:
    """Per-pixel colour features: CIELAB / 100 for RGB (values in [0, 1]), else the channels."""
    if is_rgb:
        return rgb2lab(np.clip(data[..., :3], 0.0, 1.0)) / 100.0
    return np.asarray(data, np.float64)


def feature_edges(feats: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Boundary strength of ``(H, W)`` or ``(H, W, C)`` features: the Sobel gradient
    magnitude of the features smoothed by a Gaussian of ``sigma`` pixels, over channels."""
    feats = np.asarray(feats, np.float64)
    if feats.ndim == 2:
        feats = feats[..., None]
    smooth = gaussian(feats, sigma=sigma, channel_axis=-1) if sigma > 0 else feats
    return np.sqrt(sum(sobel(smooth[..., c]) ** 2 for c in range(smooth.shape[-1])))


def colour_edges(data: np.ndarray, is_rgb: bool, sigma: float = 1.0) -> np.ndarray:
    """Boundary strength: Sobel gradient magnitude of the smoothed colour features."""
    return feature_edges(colour_features(data, is_rgb), sigma)


def _absorb_specks(key: np.ndarray, counts: np.ndarray, means: np.ndarray, n: int,
                   size: int) -> tuple[np.ndarray, ...]:
    """Join every region of fewer than ``size`` pixels to its cheapest neighbour of at least
    ``size`` pixels (vectorised; see :func:`merge_regions`).

    Returns the neighbour-pair keys, counts and means after those merges, the regions left,
    the merges (``(m, 2)`` pairs ``src, dst``) with their Ward costs, in order of cost, and
    which of the given keys are kept (those between two regions still apart).
    """
    pairs = np.unique(key)
    lo, hi = pairs // (n + 1), pairs % (n + 1)
    small = counts < size
    small[0] = False
    one = small[lo] & ~small[hi]
    other = small[hi] & ~small[lo]
    src = np.concatenate([lo[one], hi[other]])
    dst = np.concatenate([hi[one], lo[other]])
    if not src.size:
        alive = np.flatnonzero(counts > 0)
        return (key, counts, means, alive[alive > 0], np.zeros((0, 2), np.int64),
                np.zeros(0), np.ones(key.shape, bool))
    d = means[src] - means[dst]
    cost = counts[src] * counts[dst] / (counts[src] + counts[dst]) * np.einsum("ij,ij->i", d, d)
    order = np.lexsort((dst, cost, src))  # per speck: least cost, then lowest id
    src, dst, cost = src[order], dst[order], cost[order]
    first = np.r_[True, src[1:] != src[:-1]]
    src, dst, cost = src[first], dst[first], cost[first]
    order = np.lexsort((src, cost))
    src, dst, cost = src[order], dst[order], cost[order]
    sums = means * counts[:, None]
    pooled = counts.copy()
    np.add.at(sums, dst, sums[src])
    np.add.at(pooled, dst, counts[src])
    pooled[src] = 0.0
    means = sums / np.maximum(pooled, 1.0)[:, None]
    owner = np.arange(n + 1)
    owner[src] = dst
    a, b = owner[key // (n + 1)], owner[key % (n + 1)]
    keep = a != b
    key = np.minimum(a[keep], b[keep]) * (n + 1) + np.maximum(a[keep], b[keep])
    alive = np.flatnonzero(pooled > 0)
    alive = alive[alive > 0]
    return key, pooled, means, alive, np.stack([src, dst], axis=1), cost, keep


def _before(array: np.ndarray, axis: int) -> np.ndarray:
    """Every element that has a neighbour after it along ``axis``."""
    return array[(slice(None),) * axis + (slice(None, -1),)]


def _after(array: np.ndarray, axis: int) -> np.ndarray:
    """That neighbour, for every element of :func:`_before`."""
    return array[(slice(None),) * axis + (slice(1, None),)]


def _ward_weight(graph: RAG, a: int, b: int) -> float:
    """Ward's cost of merging ``a`` and ``b``, times the boundary factor when edges are given."""
    na, nb = graph.nodes[a]["count"], graph.nodes[b]["count"]
    d = graph.nodes[a]["mean"] - graph.nodes[b]["mean"]
    cost = float(na * nb / (na + nb) * (d @ d))
    power = graph.graph.get("edge_power", 0.0)
    if power:
        e = graph[a][b]
        cost *= (e["edge_sum"] / e["edge_count"] + graph.graph["edge_eps"]) ** power
    return cost


def _merge_features(graph: RAG, src: int, dst: int) -> None:
    """Before ``src`` merges into ``dst``: record the merge and pool the features."""
    graph.graph["merges"].append((src, dst, graph[src][dst]["weight"]))
    s, d = graph.nodes[src], graph.nodes[dst]
    total = s["mean"] * s["count"] + d["mean"] * d["count"]
    d["count"] = s["count"] + d["count"]
    d["mean"] = total / d["count"]


def _new_weight(graph: RAG, src: int, dst: int, n: int) -> dict[str, float]:
    """Attributes of the edge between the merged region and its neighbour ``n``.

    The boundary statistics add up: the merged region's boundary with ``n`` is the union
    of ``src``'s and ``dst``'s (called while both edges still exist).
    """
    edge_sum = edge_count = 0.0
    for a in (src, dst):
        if graph.has_edge(a, n):
            edge_sum += graph[a][n].get("edge_sum", 0.0)
            edge_count += graph[a][n].get("edge_count", 0.0)
    attrs = {"edge_sum": edge_sum, "edge_count": max(edge_count, 1.0)}
    if graph.has_edge(dst, n):
        graph[dst][n].update(attrs)
    else:
        graph.add_edge(dst, n, **attrs)
    return {**attrs, "weight": _ward_weight(graph, dst, n)}


def build_hierarchy(fine_labels: np.ndarray, features: np.ndarray, *,
                    default_threshold: float = 0.5, edges: np.ndarray | None = None,
                    edge_power: float = 0.0, heights: str = "per_pixel",
                    pixel_scale: float | None = None, absorb_below: int = 0,
                    absorb_passes: int = 1) -> Hierarchy:
    """Merge tree of the regions of ``fine_labels`` by their mean ``features``.

    Parameters
    ----------
    fine_labels : numpy.ndarray
        ``(H, W)`` integer label map, or ``(Z, Y, X)`` for a volume; its connected
        components (face-connected) are the finest regions.
    features : numpy.ndarray
        ``(H, W)`` or ``(H, W, F)`` per-pixel features (``(Z, Y, X)`` or
        ``(Z, Y, X, F)`` per voxel), averaged per region (weight them before: e.g.
        colour and a network's response maps side by side).
    default_threshold : float
        Threshold of the hierarchy's default cut.
    edges : numpy.ndarray, optional
        Boundary strength of the shape of ``fine_labels`` (e.g. a colour gradient
        magnitude): with
        ``edge_power`` > 0 the Ward cost of two regions is multiplied by
        ``(mean strength on their common boundary / mean over the image + 0.1) **
        edge_power``, so regions split by a weak boundary merge first.
    edge_power : float
        Exponent of the boundary factor (0: no boundary term).
    heights : {"per_pixel", "last"}
        How merge costs become heights. ``"per_pixel"``: the Ward cost divided by the
        number of pixels (the growth of the within-region variance of the features, per
        pixel), so one threshold means the same on every image and one threshold for a
        set (the benchmark's ODS) is a fair choice; a cost ``x`` per pixel becomes
        ``x / (1 + x)`` (about ``x`` for the small costs of most merges, below 1 and
        strictly increasing for any cost, so no two merges tie at the top).
        ``"last"``: divided by the image's last merge cost (the last merge at height 1),
        each image's own scale.
    pixel_scale : float, optional
        With ``heights="per_pixel"``: the number of pixels the costs are divided by
        (default: the image's own). A fixed number makes a threshold mean the same merge
        (the same cost in pixels x squared feature difference) on images of every size;
        the volume methods use one million voxels.
    absorb_below, absorb_passes : int
        Regions of fewer pixels first join their most similar larger neighbour, in that
        many passes (:func:`merge_regions`); 0: off.

    Returns
    -------
    Hierarchy
        Merges in the order ``skimage.graph.merge_hierarchical`` applies them (least
        Ward cost first, the cost recomputed for the merged region's neighbours after
        each merge); heights = (normalised cost, see ``heights``) ** (1/6), made
        non-decreasing: the sixth root (the cube root of the Ward distance) spreads the
        heights over ``[0, 1]`` so that evenly spaced thresholds give evenly spread
        granularities.
    """
    fine = np.asarray(fine_labels)
    if fine.ndim not in (2, 3):
        raise ValueError(f"fine_labels must be a 2-D or 3-D label map, got shape {fine.shape}")
    feats = np.asarray(features, np.float64)
    if feats.ndim == fine.ndim:
        feats = feats[..., None]
    if feats.ndim != fine.ndim + 1 or feats.shape[:fine.ndim] != fine.shape:
        raise ValueError(f"features of shape {feats.shape} for labels of shape {fine.shape}")
    base = fine_regions(fine)
    counts, means = region_statistics(base, feats)
    return merge_regions(base, counts, means, default_threshold=default_threshold,
                         edges=edges, edge_power=edge_power, heights=heights,
                         pixel_scale=pixel_scale, absorb_below=absorb_below,
                         absorb_passes=absorb_passes)


#: Elements per slab when :func:`region_statistics` reads its features.
_SLAB_ELEMENTS = 1 << 22


def region_statistics(base: np.ndarray, features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pixels per region and mean feature vector per region.

    Parameters
    ----------
    base : numpy.ndarray
        Regions ``1..n``.
    features : array_like
        Features of the shape of ``base`` plus a last axis of ``F`` features; anything
        sliceable along the first axis (a lazy volume is read one slab of about four
        million elements at a time, and once).

    Returns
    -------
    counts : numpy.ndarray
        ``(n + 1,)`` ``float64`` pixel counts (index 0: pixels labelled 0).
    means : numpy.ndarray
        ``(n + 1, F)`` mean features (row 0 of an absent label 0: zeros).
    """
    n = int(base.max())
    slab = max(1, _SLAB_ELEMENTS // max(1, base[0].size))
    counts = np.zeros(n + 1)
    sums: np.ndarray | None = None
    for start in range(0, base.shape[0], slab):
        ids = base[start:start + slab].ravel()
        block = np.asarray(features[start:start + slab], np.float64).reshape(ids.size, -1)
        if sums is None:
            sums = np.zeros((n + 1, block.shape[1]))
        counts += np.bincount(ids, minlength=n + 1)
        for c in range(block.shape[1]):
            sums[:, c] += np.bincount(ids, weights=block[:, c], minlength=n + 1)
    assert sums is not None
    return counts, sums / np.maximum(counts, 1.0)[:, None]


def merge_regions(base: np.ndarray, counts: np.ndarray, means: np.ndarray, *,
                  default_threshold: float = 0.5, edges: np.ndarray | None = None,
                  edge_power: float = 0.0, heights: str = "per_pixel",
                  pixel_scale: float | None = None, absorb_below: int = 0,
                  absorb_passes: int = 1) -> Hierarchy:
    """The merge tree of :func:`build_hierarchy` from regions and their statistics.

    For callers that gather the per-region statistics themselves (a volume read a slab
    at a time).

    Parameters
    ----------
    base : numpy.ndarray
        Connected regions ``1..n`` (2-D or 3-D, :func:`fine_regions`).
    counts : numpy.ndarray
        ``(n + 1,)`` pixels per region (index 0 unused).
    means : numpy.ndarray
        ``(n + 1, F)`` mean feature vector per region (row 0 unused).
    default_threshold, edges, edge_power, heights, pixel_scale
        As :func:`build_hierarchy`.
    absorb_below : int
        Regions of fewer pixels than this (specks) first join, all at once, the
        neighbour of at least that size whose merge costs least (Ward's choice for a
        speck beside larger regions); those merges come first in the tree, in order of
        cost, and the rest is merged as usual. Ward's greedy merging recomputes the
        costs of every neighbour of a merged region, so a large region bordering
        thousands of specks (the medium of a noisy volume) makes it quadratic; this
        keeps it to the regions that matter; with a boundary term (``edges``) it also
        keeps slivers along a strong edge, whose every boundary is strong, from staying
        apart to the coarsest cuts (their merges cost Ward's alone). 0: off.
    absorb_passes : int
        How many times specks are absorbed: a speck whose neighbours are all specks
        joins a larger region only in a later pass, once one of them has joined it (the
        passes stop early when nothing is left to absorb).
    """
    if heights not in ("per_pixel", "last"):
        raise ValueError(f"heights must be 'per_pixel' or 'last', got {heights!r}")
    if pixel_scale is not None and not pixel_scale > 0:
        raise ValueError(f"pixel_scale must be > 0, got {pixel_scale!r}")
    if absorb_passes < 1:
        raise ValueError(f"absorb_passes must be >= 1, got {absorb_passes!r}")
    n = int(base.max())
    counts = np.asarray(counts, np.float64)
    means = np.asarray(means, np.float64).reshape(len(counts), -1)
    if len(counts) != n + 1:
        raise ValueError(f"counts of {len(counts)} entries for {n} regions (need n + 1)")
    # neighbour pairs across region boundaries, one axis at a time (no volume-sized copies)
    # (last axis first: the order of the boundary-strength sums of earlier releases)
    axes = range(base.ndim - 1, -1, -1)
    across = {axis: _before(base, axis) != _after(base, axis) for axis in axes}
    a = np.concatenate([_before(base, axis)[m] for axis, m in across.items()])
    b = np.concatenate([_after(base, axis)[m] for axis, m in across.items()])
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    key = lo * (n + 1) + hi
    alive = np.arange(1, n + 1)
    absorbed, absorbed_cost = np.zeros((0, 2), np.int64), np.zeros(0)
    strength = None
    if edges is not None and edge_power > 0:
        e = np.asarray(edges, np.float64)
        if e.shape != base.shape:
            raise ValueError(f"edges of shape {e.shape} for labels of shape {base.shape}")
        # boundary strength per neighbour pair of pixels, in the order of ``key``
        strength = np.concatenate([np.maximum(_before(e, axis), _after(e, axis))[m]
                                   for axis, m in across.items()])
        strength = strength / max(float(e.mean()), 1e-12)
    merged: list[np.ndarray] = []
    merged_cost: list[np.ndarray] = []
    for _ in range(absorb_passes if absorb_below > 0 else 0):
        key, counts, means, alive, step, cost, kept = _absorb_specks(
            key, counts, means, n, absorb_below)
        if strength is not None:  # the boundaries left, between the regions after it
            strength = strength[kept]
        if not len(step):
            break
        merged.append(step)
        merged_cost.append(cost)
    if merged:
        absorbed, absorbed_cost = np.concatenate(merged), np.concatenate(merged_cost)
    graph = RAG()
    graph.add_nodes_from((int(i), {"labels": [int(i)], "count": counts[i], "mean": means[i]})
                         for i in alive)
    graph.graph["merges"] = []
    if strength is not None:
        uniq, inverse = np.unique(key, return_inverse=True)
        sums = np.bincount(inverse, weights=strength)
        cnts = np.bincount(inverse).astype(np.float64)
        graph.graph.update(edge_power=float(edge_power), edge_eps=0.1)
        graph.add_edges_from((int(k // (n + 1)), int(k % (n + 1)),
                              {"edge_sum": float(sm), "edge_count": float(c)})
                             for k, sm, c in zip(uniq, sums, cnts, strict=True))
    else:
        graph.add_edges_from((int(k // (n + 1)), int(k % (n + 1))) for k in np.unique(key))
    for i, j in graph.edges:
        graph[i][j]["weight"] = _ward_weight(graph, i, j)
    # the merges are recorded by _merge_features; the relabelled map that
    # merge_hierarchical returns is not needed (a one-element stand-in keeps it tiny)
    merge_hierarchical(np.array([n]), graph, thresh=np.inf, rag_copy=False,
                       in_place_merge=True, merge_func=_merge_features,
                       weight_func=_new_weight)
    record = graph.graph["merges"]
    merges = np.concatenate([absorbed, np.array([(s, d) for s, d, _ in record],
                                                np.int64).reshape(-1, 2)])
    cost = np.maximum(np.concatenate([absorbed_cost, [c for *_, c in record]]), 0.0)
    level = np.maximum.accumulate(cost) if len(cost) else cost
    if len(level):
        scale = ((float(pixel_scale) if pixel_scale is not None else float(base.size))
                 if heights == "per_pixel" else float(level[-1]))
        if scale > 0 and heights == "per_pixel":
            # x / (1 + x): the identity for the small costs of most merges, and strictly
            # increasing above (costs beyond one per pixel, e.g. with a boundary term,
            # keep their order instead of all reaching 1)
            level = level / scale
            level = (level / (1.0 + level)) ** (1.0 / 6.0)
        elif scale > 0:
            level = np.minimum(level / scale, 1.0) ** (1.0 / 6.0)
    return Hierarchy(base, merges, level, default_threshold)
